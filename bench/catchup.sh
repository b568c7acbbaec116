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
# Also printed: the CPU time per event of the relay and of the daemon
# during the catch-up, split by thread group (from /proc/PID/task/*/stat),
# a figure that survives a busy machine.
#
# Environment: KITEDESK_BIN=path, BENCH_KEEP=1, BENCH_PERF=1 (perf-record
#   both processes during the catch-up: relay.perf and daemon.perf in the
#   scratch dir, kept with BENCH_KEEP=1)
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

# CPU ticks per thread of PID, as "comm ticks" lines.
thread_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        echo "$(cat "$t/comm" 2>/dev/null | tr ' ' _) $(awk '{print $14+$15}' "$t/stat" 2>/dev/null || echo 0)"
    done
}

# 3. The client comes back and catches up.
RELAY_T0=$(thread_ticks "$RELAY_PID")
T0=$(date +%s.%N)
start_kitedesk "$WORK/daemon" "$WORK/d2" --relay "$WS" --team "$TEAM"
PERF_PIDS=()
if [ -n "${BENCH_PERF:-}" ]; then
    perf record -q -F 499 -g -p "$RELAY_PID" -o "$WORK/relay.perf" >/dev/null 2>&1 &
    PERF_PIDS+=($!)
    perf record -q -F 499 -g -p "$KD_PID" -o "$WORK/daemon.perf" >/dev/null 2>&1 &
    PERF_PIDS+=($!)
fi
while [ "$(relay_conn '.last_seq // 0' 2>/dev/null || echo 0)" -lt "$TOTAL" ]; do
    sleep 0.05
done
T1=$(date +%s.%N)
RELAY_T1=$(thread_ticks "$RELAY_PID")
DAEMON_T1=$(thread_ticks "$KD_PID")
HIST="file:$WORK/daemon/history.db?mode=ro"
# The search index is a file of its own beside the history.
SEARCH="file:$WORK/daemon/history.search.db?mode=ro"
while :; do
    done_=$(sqlite3 "$HIST" "ATTACH '$SEARCH' AS s;
        SELECT (SELECT indexed_upto FROM s.fts_state) >= (SELECT MAX(id) FROM events)") \
        || die "cannot read the search index's watermark"
    [ "$done_" = 1 ] && break
    sleep 0.05
done
T2=$(date +%s.%N)
DAEMON_T2=$(thread_ticks "$KD_PID")
for p in "${PERF_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
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
    # CPU per event: the relay from T0 to T1 (it only sends), the daemon
    # from its start to the index catching up (T2).
    cpu_split() { # LABEL BEFORE AFTER
        python3 - "$1" "$2" "$3" "$TOTAL" "$(getconf CLK_TCK)" <<'PY'
import sys
label, before, after, n, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def parse(text):
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out.setdefault(parts[0], []).append(int(parts[1]))
    return out
b, a = parse(before), parse(after)
groups = {}
for comm, ticks in a.items():
    groups[comm] = sum(ticks) - sum(b.get(comm, []))
total = sum(groups.values())
us = lambda t: t / hz * 1e6 / n
parts = ", ".join(f"{k} {us(v):.1f}" for k, v in sorted(groups.items(), key=lambda kv: -kv[1]) if v > 0)
print(f"{label} CPU: {us(total):.1f} us/event ({parts})")
PY
    }
    cpu_split relay "$RELAY_T0" "$RELAY_T1"
    cpu_split daemon "" "$DAEMON_T2"
} | tee "$REPORT"
log "report: $REPORT"
