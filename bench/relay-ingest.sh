#!/usr/bin/env bash
# Relay ingest benchmark: wrk POSTs a signed GitHub push to `kitedesk relay`
# at /hooks/{team}/github/{hook_token}. Each request is authenticated (hook
# token), verified (X-Hub-Signature-256 on the raw bytes), normalized,
# scored and durably appended to the team's event log (seq assigned,
# committed) before the answer. Budget: >= 15,000 req/s with p99 < 20 ms at
# 32 connections.
#
#   bash bench/relay-ingest.sh [payload_bytes=1229] [duration_secs=10]
#
# Environment: BENCH_CONNECTIONS=32 BENCH_THREADS=2 BENCH_WARMUP=2
#   BENCH_PIN=1 (relay on CPU 1, wrk on CPU 0), KITEDESK_BIN=path, BENCH_KEEP=1
#
# Same payload builder (tools/payload.py) and wrk script (tools/hook.lua,
# unique X-GitHub-Delivery per request) as bench/ingest.sh. After the run
# the number of appended events (the seq advance) is checked against the
# number of `202 accepted` answers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BYTES=${1:-1229}
DUR=${2:-10}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
WARMUP=${BENCH_WARMUP:-2}

need wrk curl jq python3 cargo

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kitedesk-relay-ingest.XXXXXX")
cleanup() {
    cleanup_pids
    if [ -n "${BENCH_KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

STAMP=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REPORT="$OUT_DIR/relay-ingest-${BYTES}B-$(date -u +%Y%m%dT%H%M%SZ).txt"
SRV_CPU=() WRK_CPU=()
if [ -n "${BENCH_PIN:-}" ]; then
    SRV_CPU=(taskset -c 1)
    WRK_CPU=(taskset -c 0)
fi

KD_BIN=$(kitedesk_bin)
DATA="$WORK/relay"
SECRET="bench-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# The relay's embedded default manifest reads the GitHub secret from here.
export KITEDESK_GITHUB_SECRET="$SECRET"
export KITEDESK_LOG=${KITEDESK_LOG:-warn}
BODY="$WORK/push.json"
SIG=$(python3 "$BENCH_DIR/tools/payload.py" "$BYTES" "$BODY" "$SECRET")
BAD_SIG="sha256=$(printf '0%.0s' {1..64})"

MAX_BODY=262144
[ "$BYTES" -le "$MAX_BODY" ] || MAX_BODY=$((25 * 1024 * 1024))

TEAM=$("$KD_BIN" relay --data-dir "$DATA" teams create bench)
HOOK=$("$KD_BIN" relay --data-dir "$DATA" tokens create --team "$TEAM" --kind hook 2>/dev/null)
PORT=$(free_port)
"${SRV_CPU[@]}" "$KD_BIN" relay --data-dir "$DATA" --listen "127.0.0.1:$PORT" \
    --max-body-bytes "$MAX_BODY" >"$WORK/relay.out" 2>"$WORK/relay.err" &
RELAY_PID=$!
STARTED_PIDS+=("$RELAY_PID")
for ((i = 0; i < 600; i++)); do
    grep -q 'websocket:' "$WORK/relay.out" 2>/dev/null && break
    kill -0 "$RELAY_PID" 2>/dev/null || { cat "$WORK/relay.err" >&2; die "kitedesk relay exited"; }
    sleep 0.05
done
grep -q 'websocket:' "$WORK/relay.out" || die "kitedesk relay did not start"
if [ -n "${BENCH_PIN:-}" ]; then taskset -a -p -c 1 "$RELAY_PID" >/dev/null; fi
URL="http://127.0.0.1:$PORT/hooks/$TEAM/github/$HOOK"
log "kitedesk relay pid $RELAY_PID at http://127.0.0.1:$PORT (team $TEAM)"

post() { # SIG DELIVERY -> "STATUS BODY"
    curl -sS -o "$WORK/answer" -w '%{http_code}' -X POST "$URL" \
        -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
        -H "X-GitHub-Delivery: $2" -H "X-Hub-Signature-256: $1" \
        --data-binary "@$BODY"
    printf ' %s' "$(head -c 300 "$WORK/answer")"
}
# The team's last seq: one more signed request, answered after everything
# queued before it is committed (the writer is FIFO); it adds one event.
last_seq() {
    local res
    res=$(post "$SIG" "drain-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')")
    [[ $res == 202* ]] || die "drain request answered: $res"
    jq -r .seq <<<"${res#* }"
}

ok=$(post "$SIG" "sanity-ok-1")
bad=$(post "$BAD_SIG" "sanity-bad-1")
log "sanity: good signature -> $ok"
log "sanity: bad signature  -> $bad"
[[ $ok == 202* && $ok == *'"verified":true'* ]] || die "the relay did not accept a signed push as verified"
[[ $bad == 401* ]] || die "the relay did not refuse a bad signature"

run_wrk() { # NAME SECS
    local run_id
    run_id=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
    "${WRK_CPU[@]}" wrk -t "$THREADS" -c "$CONNS" -d "${2}s" --timeout 10s --latency \
        -s "$BENCH_DIR/tools/hook.lua" "$URL" -- "$BODY" "$SIG" "$run_id" >"$WORK/wrk-$1.txt"
    { echo "---- wrk: $1 ($2 s) ----"; cat "$WORK/wrk-$1.txt"; } >>"$REPORT"
    grep '^RESULT' "$WORK/wrk-$1.txt"
}

MACHINE=$(machine)
{
    echo "# bench/relay-ingest.sh $BYTES $DUR  ($STAMP, commit $(git_rev))"
    echo "machine: $MACHINE"
    echo "wrk -t $THREADS -c $CONNS -d ${DUR}s, warm-up ${WARMUP}s, pinned: ${BENCH_PIN:-no}"
} >"$REPORT"
if [ "$WARMUP" -gt 0 ]; then run_wrk warmup "$WARMUP" >/dev/null; fi
before=$(last_seq)
R=$(run_wrk relay "$DUR")
after=$(last_seq)
delta=$((after - before - 1)) # minus the second drain request
acc=$(field accepted "$R")
if [ "$delta" -ge "$acc" ] && [ "$delta" -le $((acc + CONNS)) ]; then
    ROWCHECK="ok: $delta events appended for $acc '202 accepted' answers (<= $CONNS in flight at stop)"
else
    ROWCHECK="MISMATCH: $delta events appended for $acc '202 accepted' answers"
fi
du -sh "$DATA" | awk '{print "relay data size after run: " $1}' >>"$REPORT"
stop_pid "$RELAY_PID"

ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
rps=$(field rps "$R")
p99=$(ms "$(field p99_us "$R")")
{
    echo
    echo "## Relay ingest: ${BYTES}-byte signed GitHub push, wrk -t$THREADS -c$CONNS -d${DUR}s"
    echo "date: $STAMP   commit: $(git_rev)"
    echo "machine: $MACHINE"
    echo
    printf '%10s %10s %10s %10s %9s %s\n' "req/s" "p50 ms" "p90 ms" "p99 ms" non2xx errors
    printf '%10s %10s %10s %10s %9s %s\n' "$rps" "$(ms "$(field p50_us "$R")")" \
        "$(ms "$(field p90_us "$R")")" "$p99" \
        "$(($(field c4xx "$R") + $(field s5xx "$R") + $(field other "$R")))" \
        "$(($(field err_connect "$R") + $(field err_read "$R") + $(field err_write "$R") + $(field err_timeout "$R")))"
    echo
    echo "events: $ROWCHECK"
    echo "budget >= 15000 req/s: $(awk -v r="$rps" 'BEGIN { print (r >= 15000) ? "PASS" : "MISS" }') ($rps)"
    echo "budget p99 < 20 ms: $(awk -v p="$p99" 'BEGIN { print (p < 20) ? "PASS" : "MISS" }') ($p99 ms)"
} | tee -a "$REPORT"
log "full wrk output: $REPORT"
