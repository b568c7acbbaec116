#!/usr/bin/env bash
# Catch-up benchmark: a `kitedesk serve --relay` client is offline while N
# events (default 200,000 signed 1.2 KB GitHub pushes) arrive at
# `kitedesk relay`; then it starts again and catches up. Measured: events
# per second from the daemon's start until every event is committed to the
# history and acked (the link's last_seq = the relay's last seq), and until
# the full-text index has caught up too. Budget: >= 10,000 events/s.
#
#   bash bench/catchup.sh [events=200000]
#
# Environment: KITEDESK_BIN=path, BENCH_KEEP=1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH_DIR/relay-common.sh"

N=${1:-200000}
need wrk curl jq python3 sqlite3 cargo

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kitedesk-catchup.XXXXXX")
cleanup() {
    cleanup_pids
    if [ -n "${BENCH_KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
REPORT="$OUT_DIR/catchup-$(date -u +%Y%m%dT%H%M%SZ).txt"

KD_BIN=$(kitedesk_bin)
SECRET="bench-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export KITEDESK_GITHUB_SECRET="$SECRET"
export KITEDESK_LOG=${KITEDESK_LOG:-warn}
export KITEDESK_API_TOKEN="bench-api-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
BODY="$WORK/push.json"
SIG=$(python3 "$BENCH_DIR/tools/payload.py" 1229 "$BODY" "$SECRET")

start_relay "$WORK/relay"
export KITEDESK_RELAY_TOKEN="$API_TOKEN"
WS="ws://127.0.0.1:$RELAY_PORT/ws"

# 1. The client connects once (the relay registers its cursor), then stops.
start_kitedesk "$WORK/daemon" "$WORK/d1" --relay "$WS" --team "$TEAM"
wait_connected
stop_pid "$KD_PID"
log "client offline; posting $N events to the relay"

# 2. N events arrive while it is away (wrk stops once the log holds N).
URL="http://127.0.0.1:$RELAY_PORT/hooks/$TEAM/github/$HOOK"
wrk -t2 -c32 -d 3600 -s "$BENCH_DIR/tools/hook.lua" "$URL" -- "$BODY" "$SIG" \
    "$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
STARTED_PIDS+=("$WRK_PID")
while [ "$(relay_last_seq "$WORK/relay")" -lt "$N" ]; do
    kill -0 "$WRK_PID" 2>/dev/null || { cat "$WORK/wrk.out" >&2; die "wrk exited"; }
    sleep 0.2
done
stop_pid "$WRK_PID"
# Requests in flight when wrk stopped still land: wait for the log to settle.
TOTAL=$(relay_last_seq "$WORK/relay")
while sleep 0.5; do
    now=$(relay_last_seq "$WORK/relay")
    [ "$now" = "$TOTAL" ] && break
    TOTAL=$now
done
log "relay holds $TOTAL events; starting the client"

# 3. The client comes back and catches up.
T0=$(date +%s.%N)
start_kitedesk "$WORK/daemon" "$WORK/d2" --relay "$WS" --team "$TEAM"
while [ "$(relay_conn '.last_seq // 0' 2>/dev/null || echo 0)" -lt "$TOTAL" ]; do
    sleep 0.05
done
T1=$(date +%s.%N)
HIST="file:$WORK/daemon/history.db?mode=ro"
while [ "$(sqlite3 "$HIST" 'SELECT (SELECT indexed_upto FROM fts_state) >= (SELECT MAX(id) FROM events)')" != 1 ]; do
    sleep 0.05
done
T2=$(date +%s.%N)
ROWS=$(sqlite3 "$HIST" 'SELECT COUNT(*) FROM events')
[ "$ROWS" = "$TOTAL" ] || die "history has $ROWS rows for $TOTAL relay events"

{
    echo "catch-up benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  rev $(git_rev)"
    echo "machine: $(machine)"
    echo "events: $TOTAL (signed 1.2 KB GitHub pushes), history rows after: $ROWS"
    python3 - "$T0" "$T1" "$T2" "$TOTAL" <<'PY'
import sys
t0, t1, t2, n = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print(f"committed+acked: {t1 - t0:.2f} s -> {n / (t1 - t0):,.0f} events/s")
print(f"full-text indexed: {t2 - t0:.2f} s -> {n / (t2 - t0):,.0f} events/s")
PY
} | tee "$REPORT"
log "report: $REPORT"
