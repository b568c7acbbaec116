#!/usr/bin/env bash
# Webhook -> relay -> client -> history row, on loopback: `kitedesk relay`,
# `kitedesk serve --relay` linked to it, and tools/relay_latency.py posting
# one webhook at a time to the relay and waiting for its row on the
# daemon's live feed (sent after the history commit). Budget: p50 < 5 ms,
# p99 < 25 ms.
#
#   bash bench/relay-latency.sh [samples=2000]
#
# Environment: KITEDESK_BIN=path, BENCH_KEEP=1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH_DIR/relay-common.sh"

N=${1:-2000}
need curl jq python3 sqlite3 cargo

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kitedesk-relay-latency.XXXXXX")
cleanup() {
    cleanup_pids
    if [ -n "${BENCH_KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
REPORT="$OUT_DIR/relay-latency-$(date -u +%Y%m%dT%H%M%SZ).txt"

KD_BIN=$(kitedesk_bin)
export KITEDESK_LOG=${KITEDESK_LOG:-warn}
export KITEDESK_API_TOKEN="bench-api-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
start_relay "$WORK/relay"
export KITEDESK_RELAY_TOKEN="$API_TOKEN"
start_kitedesk "$WORK/daemon" "$WORK/d" --relay "ws://127.0.0.1:$RELAY_PORT/ws" --team "$TEAM"
wait_connected
# Warm-up (connections, page cache), not measured.
python3 "$BENCH_DIR/tools/relay_latency.py" "http://127.0.0.1:$RELAY_PORT/hooks/$TEAM/app" \
    "$HOOK" "$KD_URL" "$KITEDESK_API_TOKEN" 100 >/dev/null
RESULT=$(python3 "$BENCH_DIR/tools/relay_latency.py" "http://127.0.0.1:$RELAY_PORT/hooks/$TEAM/app" \
    "$HOOK" "$KD_URL" "$KITEDESK_API_TOKEN" "$N")
{
    echo "relay latency benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  rev $(git_rev)"
    echo "machine: $(machine)"
    echo "$RESULT"
} | tee "$REPORT"
log "report: $REPORT"
