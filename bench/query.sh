#!/usr/bin/env bash
# Query benchmark: a history of EVENTS events generated from the real payload
# corpus (bench/gen), served by `kitedesk serve`, queried through the HTTP
# API with REQUESTS sequential requests per query over one keep-alive
# connection (bench/gen's kitedesk-bench-query: a std-only HTTP/1.1 client
# timing each request, after REQUESTS/10 warm-up requests); prints
# p50/p95/p99 per query.
#
#   bash bench/query.sh [events=1000000] [requests=2000]
#
# The history is generated once into bench/out/history-EVENTS and reused by
# later runs (shared with bench/ui.sh; regenerated when one of the store
# migrations it was made with changed: lib.sh ensure_history); delete the
# directory (or set BENCH_REGEN=1) to make a new one. BENCH_DATA=dir uses
# another location. KITEDESK_BIN=path skips building the daemon.
# BENCH_MAX_SECS=60 bounds the time spent on one query (and on one request:
# a request slower than that counts under t/o and ends that query).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EVENTS=${1:-1000000}
REQUESTS=${2:-2000}
WARM=$((REQUESTS / 10 > 20 ? REQUESTS / 10 : 20))
DATA=${BENCH_DATA:-$OUT_DIR/history-$EVENTS}
# Per query, warm-up included: a pathological query stops after this long
# with fewer than REQUESTS samples (the n column says how many).
MAX_SECS=${BENCH_MAX_SECS:-60}
# Words whose share of events bench/gen reports (see bench-gen.json).
WORDS=codertocat,merged,invoice,failed,refunded,dismissed

need curl jq cargo

STAMP=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REPORT="$OUT_DIR/query-${EVENTS}-$(date -u +%Y%m%dT%H%M%SZ).txt"
trap cleanup_pids EXIT

KD_BIN=$(kitedesk_bin)

ensure_history "$EVENTS" "$DATA" "$WORDS"
QUERY_BIN="$BENCH_DIR/gen/target/release/kitedesk-bench-query"
GEN="$DATA/bench-gen.json"
have=$(jq -r .events "$GEN")
[ "$have" = "$EVENTS" ] || die "$DATA holds $have events, not $EVENTS (BENCH_REGEN=1 to rebuild)"
RARE=$(jq -r .rare_event_id "$GEN")
share() { jq -r --arg w "$1" '.word_share[$w] // 0 | . * 100 | floor | tostring + "%"' "$GEN"; }

export KITEDESK_API_TOKEN="bench-token-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export KITEDESK_LOG=${KITEDESK_LOG:-warn}
start_kitedesk "$DATA" "$OUT_DIR/query-serve"
count=$(api /api/health | jq -r .events)
log "daemon reports $count events"

# name | budget p95 ms (- for none) | path
QUERIES=(
    "filtered first page (source+importance)|10|/api/events?source=github&min_importance=normal&limit=50"
    "full-text page: 'codertocat' ($(share codertocat) of events)|20|/api/events?q=codertocat&limit=50"
    "unfiltered first page|-|/api/events?limit=50"
    "full-text: 'merged' ($(share merged) in payload values; summaries of merged PRs)|-|/api/events?q=merged&limit=50"
    "full-text: 'refunded' ($(share refunded))|-|/api/events?q=refunded&limit=50"
    "full-text: one event id (1 match)|-|/api/events?q=$RARE&limit=50"
    "full-text + source: 'failed' in github|-|/api/events?q=failed&source=github&limit=50"
    "type glob com.stripe.invoice.*|-|/api/events?type=com.stripe.invoice.*&limit=50"
    "type glob com.github.pull_request*|-|/api/events?type=com.github.pull_request*&limit=50"
    "critical only|-|/api/events?min_importance=critical&limit=50"
    "one source: paperclip (a walk per importance level)|-|/api/events?source=paperclip&limit=50"
    "two sources: stripe, kiket|-|/api/events?source=stripe&source=kiket&limit=50"
)
# Page 2 of the filtered query, through the cursor the first page returned.
cursor=$(api "/api/events?source=github&min_importance=normal&limit=50" | jq -r .next_cursor)
QUERIES+=("filtered page 2 (cursor)|-|/api/events?source=github&min_importance=normal&limit=50&cursor=$cursor")
# Deep keyset pages: the same filtered and full-text queries with a cursor
# halfway into the history and one 95 % of the way to its oldest event
# (ids grow with time; the cursor is an event id).
top=$(api "/api/events?limit=1" | jq -r '.events[0].id')
for depth in "middle|2" "95 % deep|20"; do
    IFS='|' read -r where div <<<"$depth"
    c=$((top / div))
    QUERIES+=("filtered page, $where (cursor $c)|-|/api/events?source=github&min_importance=normal&limit=50&cursor=$c")
    QUERIES+=("full-text 'merged' page, $where|-|/api/events?q=merged&limit=50&cursor=$c")
done

MACHINE=$(machine)
{
    echo "# bench/query.sh $EVENTS $REQUESTS  ($STAMP, commit $(git_rev))"
    echo "machine: $MACHINE"
    echo "history: $DATA ($(du -sh "$DATA" | cut -f1)), generated $(jq -r .generated_at "$GEN")"
    jq -c '{events, by_source, by_importance, word_share, rows_per_sec, db_bytes, payload_bytes, mix: (.mix // {} | del(.fixtures))}' "$GEN"
} >"$REPORT"

ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
rows=()
for q in "${QUERIES[@]}"; do
    IFS='|' read -r name budget path <<<"$q"
    url="$KD_URL$path"
    # Check the answer once, then warm up, then measure.
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KITEDESK_API_TOKEN" "$url")
    [ "$code" = 200 ] || die "$path answered $code"
    r=$("$QUERY_BIN" "$url" "$KITEDESK_API_TOKEN" "$REQUESTS" "$WARM" "$MAX_SECS" | grep '^RESULT')
    { echo "---- $name: $path"; echo "$r"; } >>"$REPORT"
    p95=$(field p95_us "$r")
    verdict="-"
    if [ "$budget" != "-" ]; then
        verdict=$(awk -v p="$p95" -v b="$budget" 'BEGIN { print (p / 1000 < b) ? "PASS" : "MISS" }')
        verdict="$verdict (<$budget)"
    fi
    rows+=("$(printf '%-44s %6s %9s %9s %9s %9s %5s %6s %4s  %s' "$name" "$(field requests "$r")" \
        "$(ms "$(field p50_us "$r")")" "$(ms "$p95")" "$(ms "$(field p99_us "$r")")" \
        "$(ms "$(field max_us "$r")")" "$(field empty "$r")" "$(field bad "$r")" \
        "$(field timeouts "$r")" "$verdict")")
    log "$name: p50 $(ms "$(field p50_us "$r")") ms, p95 $(ms "$p95") ms"
done
stop_pid "$KD_PID"

{
    echo
    echo "## Query: $EVENTS-event history, $REQUESTS sequential requests per query (1 keep-alive connection)"
    echo "date: $STAMP   commit: $(git_rev)"
    echo "machine: $MACHINE"
    echo "history: $(jq -c .by_source "$GEN"), $(du -sh "$DATA" | cut -f1) on disk"
    echo
    printf '%-44s %6s %9s %9s %9s %9s %5s %6s %4s  %s\n' query n "p50 ms" "p95 ms" "p99 ms" "max ms" empty non200 t/o "budget p95"
    printf '%s\n' "${rows[@]}"
} | tee -a "$REPORT"
log "report: $REPORT"
