#!/usr/bin/env bash
# Ingest benchmark: wrk POSTs a signed GitHub push to
#   1. kitedesk serve      (verify HMAC, normalize, score, commit the row, then answer)
#   2. adnanh/webhook      (Debian's `webhook`: verify the same HMAC, run /bin/true)
#   3. the ceiling         (bench/ceiling: same axum/hyper stack, read body, answer 202)
# with the same body, the same signature and the same wrk settings, one after
# the other, and prints req/s, latency p50/p99, the ratio, and the machine.
# kitedesk and webhook run BENCH_ROUNDS times, alternating (kitedesk, webhook,
# kitedesk, webhook, ...), each round on a fresh daemon; the budgets are
# judged on each server's median round, so one fast or slow 10 s of either
# server (webhook's own rounds vary by up to 17 % within an hour here) does
# not decide the ratio. Every round is printed.
#
#   bash bench/ingest.sh [payload_bytes=1229] [duration_secs=10]
#
# Environment:
#   BENCH_CONNECTIONS=32 BENCH_THREADS=2   wrk -c / -t
#   BENCH_WARMUP=2                         seconds of warm-up per server (not measured)
#   BENCH_SERVERS="kitedesk webhook ceiling"  which to run, in order
#   BENCH_ROUNDS=3                         rounds of kitedesk and webhook (the
#                                          ceiling runs once, after them)
#   BENCH_PIN=1                            pin servers to CPU 1 and wrk to CPU 0
#   KITEDESK_BIN=path                      use this kitedesk binary instead of building
#   BENCH_KEEP=1                           keep the scratch dir (history.db, logs)
#   BENCH_PERF=1                           perf-record the daemon during its run (needs perf)
#
# Every request carries a unique X-GitHub-Delivery, so each one is a new
# event (not a dedup hit); after the run the history's row count is checked
# against the number of `202 accepted` answers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BYTES=${1:-1229}
DUR=${2:-10}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
WARMUP=${BENCH_WARMUP:-2}
SERVERS=${BENCH_SERVERS:-kitedesk webhook ceiling}
ROUNDS=${BENCH_ROUNDS:-3}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_ROUNDS must be a positive integer, got '$ROUNDS'" >&2; exit 2; }

need wrk webhook curl jq python3 cargo

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kitedesk-ingest.XXXXXX")
cleanup() {
    cleanup_pids
    if [ -n "${BENCH_KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

STAMP=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REPORT="$OUT_DIR/ingest-${BYTES}B-$(date -u +%Y%m%dT%H%M%SZ).txt"

SRV_CPU=() WRK_CPU=()
if [ -n "${BENCH_PIN:-}" ]; then
    SRV_CPU=(taskset -c 1)
    WRK_CPU=(taskset -c 0)
fi

# ---- build --------------------------------------------------------------
KD_BIN=$(kitedesk_bin)
log "building the ceiling server (bench/ceiling)"
cargo build --release --quiet --manifest-path "$BENCH_DIR/ceiling/Cargo.toml" \
    --target-dir "$BENCH_DIR/ceiling/target" >&2 || die "ceiling build failed"
CEILING_BIN="$BENCH_DIR/ceiling/target/release/kitedesk-bench-ceiling"

# ---- payload ------------------------------------------------------------
SECRET="bench-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export KITEDESK_GITHUB_SECRET="$SECRET"
export KITEDESK_API_TOKEN="bench-token-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export KITEDESK_LOG=${KITEDESK_LOG:-warn}
BODY="$WORK/push.json"
SIG=$(python3 "$BENCH_DIR/tools/payload.py" "$BYTES" "$BODY" "$SECRET")
BAD_SIG="sha256=$(printf '0%.0s' {1..64})"

# The embedded default manifest caps bodies at 256 KB: above that, run with
# a copy of it whose ingress.maxBodyBytes is 25 MB (GitHub's maximum).
SERVE_ARGS=()
if [ "$BYTES" -gt 262144 ]; then
    python3 - "$ROOT/crates/core/src/default-kite.json" "$WORK/kite.json" <<'PY'
import json, sys
src = [l for l in open(sys.argv[1], encoding="utf-8") if not l.lstrip().startswith("//")]
m = json.loads("".join(src))
m["ingress"]["maxBodyBytes"] = 25 * 1024 * 1024
json.dump(m, open(sys.argv[2], "w"), indent=2)
PY
    SERVE_ARGS=(--manifest "$WORK/kite.json")
    log "payload > 256 KB: serving with ingress.maxBodyBytes = 25 MB"
fi

# adnanh/webhook: verify X-Hub-Signature-256 (payload-hmac-sha256 strips the
# sha256= prefix) and run a trivial command (webhook runs it after answering,
# its default). A bad signature is refused (500 in webhook 2.8).
cat >"$WORK/hooks.json" <<EOF
[
  {
    "id": "github",
    "execute-command": "/bin/true",
    "response-message": "accepted",
    "http-methods": ["POST"],
    "trigger-rule-mismatch-http-response-code": 401,
    "trigger-rule": {
      "match": {
        "type": "payload-hmac-sha256",
        "secret": "$SECRET",
        "parameter": { "source": "header", "name": "X-Hub-Signature-256" }
      }
    }
  }
]
EOF

# ---- helpers ------------------------------------------------------------
post() { # URL SIG DELIVERY -> "STATUS BODY"
    curl -sS -o "$WORK/answer" -w '%{http_code}' -X POST "$1" \
        -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
        -H "X-GitHub-Delivery: $3" -H "X-Hub-Signature-256: $2" \
        --data-binary "@$BODY"
    printf ' %s' "$(head -c 300 "$WORK/answer")"
}

wait_http() { # URL: until something answers
    local i
    for ((i = 0; i < 600; i++)); do
        curl -s -o /dev/null -m 1 "$1" && return 0
        sleep 0.05
    done
    die "nothing answers at $1"
}

run_wrk() { # NAME URL SECS -> RESULT line (full output in the report)
    local name=$1 url=$2 secs=$3 run_id
    run_id=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
    "${WRK_CPU[@]}" wrk -t "$THREADS" -c "$CONNS" -d "${secs}s" --timeout 10s --latency \
        -s "$BENCH_DIR/tools/hook.lua" "$url" -- "$BODY" "$SIG" "$run_id" >"$WORK/wrk-$name.txt"
    {
        echo "---- wrk: $name ($secs s) ----"
        cat "$WORK/wrk-$name.txt"
    } >>"$REPORT"
    grep '^RESULT' "$WORK/wrk-$name.txt"
}

# RES[server#round]: the RESULT line of that run; ROWCHECK[round]: kitedesk's.
declare -A RES ROWCHECK
ROUND=1

# The history's row count once every event already queued for the writer is
# committed: one more signed request goes through the same FIFO writer queue,
# so when it is answered everything queued before it is committed. (Requests
# whose connection wrk closed before they reached the queue are dropped by
# the server and never stored.) The drain request adds one row.
drained_count() {
    local res
    res=$(post "$1" "$SIG" "drain-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')")
    [[ $res == 202* ]] || die "drain request answered: $res"
    api /api/health | jq -r .events
}

bench_kitedesk() {
    local data="$WORK/kd-data-$ROUND"
    start_kitedesk "$data" "$WORK/kd" "${SERVE_ARGS[@]}"
    # Pin all of the daemon's threads (already started) to CPU 1.
    if [ -n "${BENCH_PIN:-}" ]; then taskset -a -p -c 1 "$KD_PID" >/dev/null; fi
    local url="$KD_URL/hooks/github" ok bad
    ok=$(post "$url" "$SIG" "sanity-ok-1")
    bad=$(post "$url" "$BAD_SIG" "sanity-bad-1")
    log "kitedesk sanity: good signature -> $ok"
    log "kitedesk sanity: bad signature  -> $bad"
    [[ $ok == 202* && $ok == *'"verified":true'* ]] || die "kitedesk did not accept a signed push as verified"
    [[ $bad == 401* ]] || die "kitedesk did not refuse a bad signature"
    if [ "$WARMUP" -gt 0 ]; then run_wrk kitedesk-warmup "$url" "$WARMUP" >/dev/null; fi
    local before after r delta acc
    before=$(drained_count "$url")
    local perf_pid=""
    if [ -n "${BENCH_PERF:-}" ]; then
        # Sample the daemon (all threads, with call graphs) while wrk runs.
        perf record -q -F 499 -g -p "$KD_PID" -o "$WORK/perf.data" -- sleep "$DUR" \
            >"$WORK/perf.log" 2>&1 &
        perf_pid=$!
    fi
    r=$(run_wrk kitedesk "$url" "$DUR")
    after=$(($(drained_count "$url") - 1)) # minus the drain request itself
    if [ -n "$perf_pid" ]; then
        wait "$perf_pid" || true
        local prof="${REPORT%.txt}-perf.txt"
        {
            echo "# perf: kitedesk serve during the measured run, by thread"
            perf report -i "$WORK/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20
            echo
            echo "# by thread and symbol (self time)"
            perf report -i "$WORK/perf.data" --no-children --sort comm,dso,sym --stdio -g none 2>/dev/null \
                | grep -v '^#' | grep -v '^$' | head -80
        } >"$prof" || true  # head closes the pipe early: not an error
        log "perf profile: $prof"
    fi
    delta=$((after - before))
    acc=$(field accepted "$r")
    # wrk stops with up to CONNS requests in flight: the server may commit
    # those rows without wrk counting their answers. The drain request that
    # preceded the run is excluded: "before" counted it.
    if [ "$delta" -ge "$acc" ] && [ "$delta" -le $((acc + CONNS)) ]; then
        ROWCHECK[$ROUND]="ok: $delta new rows for $acc '202 accepted' answers (<= $CONNS in flight at stop)"
    else
        ROWCHECK[$ROUND]="MISMATCH: $delta new rows for $acc '202 accepted' answers"
    fi
    log "row check: ${ROWCHECK[$ROUND]}"
    RES[kitedesk#$ROUND]=$r
    du -sh "$data" | awk '{print "history size after run: " $1}' >>"$REPORT"
    stop_pid "$KD_PID"
    if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$data"; fi # each round starts on a fresh history
}

bench_webhook() {
    local port url ok bad pid
    port=$(free_port)
    "${SRV_CPU[@]}" webhook -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port "$port" \
        >"$WORK/webhook.log" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")
    url="http://127.0.0.1:$port/hooks/github"
    wait_http "http://127.0.0.1:$port/"
    ok=$(post "$url" "$SIG" "sanity-ok-1")
    bad=$(post "$url" "$BAD_SIG" "sanity-bad-1")
    log "webhook sanity: good signature -> $ok"
    log "webhook sanity: bad signature  -> $bad"
    [[ $ok == 200* ]] || die "webhook did not accept the signed push"
    # webhook 2.8 answers a signature mismatch with 500 "Error occurred while
    # evaluating hook rules." (the HMAC check returns an error, not false).
    [[ $bad != 2* ]] || die "webhook did not refuse a bad signature"
    if [ "$WARMUP" -gt 0 ]; then run_wrk webhook-warmup "$url" "$WARMUP" >/dev/null; fi
    RES[webhook#$ROUND]=$(run_wrk webhook "$url" "$DUR")
    stop_pid "$pid"
}

bench_ceiling() {
    local pid url i line=""
    "${SRV_CPU[@]}" "$CEILING_BIN" 127.0.0.1:0 >"$WORK/ceiling.out" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")
    for ((i = 0; i < 600; i++)); do
        line=$(grep -m1 'listening on' "$WORK/ceiling.out" 2>/dev/null || true)
        [ -n "$line" ] && break
        sleep 0.05
    done
    [ -n "$line" ] || die "ceiling server did not start"
    url="http://${line#listening on }/hooks/github"
    if [ "$WARMUP" -gt 0 ]; then run_wrk ceiling-warmup "$url" "$WARMUP" >/dev/null; fi
    RES[ceiling#$ROUND]=$(run_wrk ceiling "$url" "$DUR")
    stop_pid "$pid"
}

# ---- run ----------------------------------------------------------------
MACHINE=$(machine)
{
    echo "# bench/ingest.sh $BYTES $DUR  ($STAMP, commit $(git_rev))"
    echo "machine: $MACHINE"
    echo "wrk -t $THREADS -c $CONNS -d ${DUR}s, warm-up ${WARMUP}s, rounds: $ROUNDS, pinned: ${BENCH_PIN:-no}"
    echo "payload: $BYTES bytes, signature $SIG"
} >"$REPORT"
log "machine: $MACHINE"

# The servers that run every round (kitedesk, webhook), then the ceiling
# once: it is a reference, not a budget.
ROUNDED=() ONCE=()
for s in $SERVERS; do
    if [ "$s" = ceiling ]; then ONCE+=("$s"); else ROUNDED+=("$s"); fi
done
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    for s in "${ROUNDED[@]}"; do
        log "== $s, round $ROUND of $ROUNDS: ${BYTES}-byte push, wrk -t$THREADS -c$CONNS -d${DUR}s"
        "bench_$s"
    done
done
ROUND=1
for s in "${ONCE[@]}"; do
    log "== $s: ${BYTES}-byte push, wrk -t$THREADS -c$CONNS -d${DUR}s"
    "bench_$s"
done

# ---- report -------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
median_rps() { # SERVER -> the median of its rounds' req/s (the mean of the middle two for an even count)
    local k
    for ((k = 1; k <= ROUNDS; k++)); do field rps "${RES[$1#$k]}"; done | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
{
    echo
    echo "## Ingest: ${BYTES}-byte signed GitHub push, wrk -t$THREADS -c$CONNS -d${DUR}s"
    echo "date: $STAMP   commit: $(git_rev)"
    echo "machine: $MACHINE"
    echo
    printf '%-10s %5s %10s %10s %10s %10s %9s %s\n' server round "req/s" "p50 ms" "p90 ms" "p99 ms" non2xx errors
    for s in "${ROUNDED[@]}" "${ONCE[@]}"; do
        for ((k = 1; k <= ROUNDS; k++)); do
            r=${RES[$s#$k]:-}
            [ -n "$r" ] || continue
            non2xx=$(($(field c4xx "$r") + $(field s5xx "$r") + $(field other "$r")))
            errs=$(($(field err_connect "$r") + $(field err_read "$r") + $(field err_write "$r") + $(field err_timeout "$r")))
            printf '%-10s %5s %10s %10s %10s %10s %9s %s\n' "$s" "$k" "$(field rps "$r")" \
                "$(ms "$(field p50_us "$r")")" "$(ms "$(field p90_us "$r")")" "$(ms "$(field p99_us "$r")")" \
                "$non2xx" "$errs"
        done
    done
    echo
    if [ -n "${RES[kitedesk#1]:-}" ]; then
        for ((k = 1; k <= ROUNDS; k++)); do echo "kitedesk rows, round $k: ${ROWCHECK[$k]}"; done
        kd=$(median_rps kitedesk)
        verdict=$(awk -v r="$kd" 'BEGIN { print (r >= 15000) ? "PASS" : "MISS" }')
        echo "budget >= 15000 req/s: $verdict (median of $ROUNDS rounds: $kd)"
        if [ -n "${RES[webhook#1]:-}" ]; then
            wh=$(median_rps webhook)
            ratio=$(awk -v a="$kd" -v b="$wh" 'BEGIN { printf "%.2f", a / b }')
            verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 3) ? "PASS" : "MISS" }')
            echo "kitedesk / webhook = ${ratio}x, medians $kd / $wh  (budget >= 3x: $verdict)"
            rounds=""
            for ((k = 1; k <= ROUNDS; k++)); do
                rounds+=" $(awk -v a="$(field rps "${RES[kitedesk#$k]}")" -v b="$(field rps "${RES[webhook#$k]}")" 'BEGIN { printf "%.2fx", a / b }')"
            done
            echo "kitedesk / webhook, round by round:$rounds"
        fi
        if [ -n "${RES[ceiling#1]:-}" ]; then
            ce=$(field rps "${RES[ceiling#1]}")
            echo "kitedesk / ceiling = $(awk -v a="$kd" -v b="$ce" 'BEGIN { printf "%.0f%%", 100 * a / b }')"
        fi
    fi
} | tee -a "$REPORT"
log "full wrk output: $REPORT"
