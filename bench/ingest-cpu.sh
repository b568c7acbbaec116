#!/usr/bin/env bash
# Ingest CPU split: where a signed webhook's CPU time goes in `kitedesk
# serve`, per thread group (tokio workers: HTTP, verification,
# normalization, the writer task; the sqlx SQLite worker: the database).
# Runs wrk -t2 -c32 against /hooks/github (1,229-byte signed push) for 3 s of
# warm-up and 8 s measured, and prints req/s, latency and the CPU share of
# each thread group over the measured run (from /proc/PID/task/*/stat).
# Divide a share by req/s for the CPU microseconds per webhook.
#
#   bash bench/ingest-cpu.sh
#
# Environment: KITEDESK_BIN=path (else the release build is made),
#   BENCH_PERF=1 (also perf-record the daemon: perf.data in the scratch dir,
#   kept with BENCH_KEEP=1).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need wrk curl python3

KD_BIN=$(kitedesk_bin)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kitedesk-ingest-cpu.XXXXXX")
KD=""
cleanup() {
    [ -n "$KD" ] && kill "$KD" 2>/dev/null && wait "$KD" 2>/dev/null
    if [ -n "${BENCH_KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

SECRET="bench-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export KITEDESK_GITHUB_SECRET="$SECRET"
export KITEDESK_API_TOKEN="bench-token-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export KITEDESK_LOG=${KITEDESK_LOG:-warn}
SIG=$(python3 "$BENCH_DIR/tools/payload.py" 1229 "$WORK/push.json" "$SECRET" 2>/dev/null)

"$KD_BIN" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 --no-notify >"$WORK/serve.log" 2>&1 &
KD=$!
URL=""
for _ in $(seq 200); do
    URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$WORK/data/daemon.json" 2>/dev/null) && break
    sleep 0.05
done
[ -n "$URL" ] || die "kitedesk serve did not start: $(cat "$WORK/serve.log")"
for _ in $(seq 200); do curl -s -o /dev/null "$URL/api/health" && break; sleep 0.05; done
log "$(machine)"

wrk_run() { # ID SECS
    wrk -t2 -c32 -d"$2s" -s "$BENCH_DIR/tools/hook.lua" "$URL/hooks/github" -- "$WORK/push.json" "$SIG" "$1"
}
wrk_run warm 3 >/dev/null
PERF_PID=""
if [ -n "${BENCH_PERF:-}" ]; then
    perf record -q -F 999 -g -p "$KD" -o "$WORK/perf.data" -- sleep 8 >/dev/null 2>&1 &
    PERF_PID=$!
fi
declare -A before
for t in /proc/"$KD"/task/*; do before[$t]=$(awk '{print $14+$15}' "$t/stat"); done
wrk_run run 8 | grep '^RESULT' | grep -oE "rps=[0-9.]+ p50_us=[0-9]+ p90_us=[0-9]+ p99_us=[0-9]+ .*"
TICKS=$(getconf CLK_TCK)
for t in /proc/"$KD"/task/*; do
    echo "$(cat "$t/comm") $(($(awk '{print $14+$15}' "$t/stat") - ${before[$t]:-0}))"
done | awk -v hz="$TICKS" '{s[$1]+=$2} END {for (k in s) if (s[k] > 0) printf "%s %.1f%% of a core\n", k, s[k] / 8 / hz * 100}'
[ -n "$PERF_PID" ] && wait "$PERF_PID"
exit 0
