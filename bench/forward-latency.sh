#!/usr/bin/env bash
# Forward latency, on loopback: webhook -> `kitedesk relay` -> forwarding
# client -> a local HTTP target, for (a) `kitedesk serve --relay` with a
# proxy sink and (b) smee-client 5.0.0 (npm) reading the relay's
# smee-compatible SSE channel (GET /smee/{team}?token=…). The same relay,
# target and driver (tools/forward_latency.py) for both, one client at a
# time; N webhooks posted one at a time; latency = POST -> arrival at the
# target. Memory: each client's PSS (/proc/PID/smaps_rollup, summed over the
# process and its children) after its run; CPU: the client's user+system
# time (/proc/PID/stat, with children) over the run, per event (warm-up
# included), a figure that holds up better under load.
#
#   bash bench/forward-latency.sh [samples=500]
#
# Environment: KITEDESK_BIN=path, BENCH_KEEP=1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH_DIR/relay-common.sh"

N=${1:-500}
need curl jq python3 node
SMEE_DIR="$BENCH_DIR/tools/smee"
SMEE_JS="$SMEE_DIR/node_modules/smee-client/bin/smee.js"
[ -f "$SMEE_JS" ] || die "smee-client is not installed: run bash bench/setup.sh (npm install in $SMEE_DIR)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kitedesk-forward-latency.XXXXXX")
cleanup() {
    cleanup_pids
    if [ -n "${BENCH_KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
REPORT="$OUT_DIR/forward-latency-$(date -u +%Y%m%dT%H%M%SZ).txt"

# pss_kb PID: PSS in kB of PID and all its descendants.
pss_kb() {
    local pid=$1 total=0 kid
    total=$(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
    for kid in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        total=$((total + $(pss_kb "$kid")))
    done
    echo "$total"
}
# cpu_ticks PID: user + system clock ticks of PID and its descendants.
cpu_ticks() {
    local pid=$1 total kid
    total=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)
    for kid in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        total=$((total + $(cpu_ticks "$kid")))
    done
    echo "${total:-0}"
}
# cpu_ms_per_event TICKS_BEFORE TICKS_AFTER EVENTS
cpu_ms_per_event() {
    awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.3f", (b - a) * 1000 / hz / n}'
}
mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k / 1024}'; }

KD_BIN=$(kitedesk_bin)
export KITEDESK_LOG=${KITEDESK_LOG:-warn}
export KITEDESK_API_TOKEN="bench-api-token-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
start_relay "$WORK/relay"
HOOK_URL="http://127.0.0.1:$RELAY_PORT/hooks/$TEAM/app"

# (a) kitedesk serve linked to the relay, a proxy sink to the target.
TARGET_PORT=$(free_port)
cat >"$WORK/kite.json" <<JSON
{"sink": {"type": "proxy", "target": "http://127.0.0.1:$TARGET_PORT/kite", "timeout": "10s"}}
JSON
export KITEDESK_RELAY_TOKEN="$API_TOKEN"
start_kitedesk "$WORK/daemon" "$WORK/d" --manifest "$WORK/kite.json" --no-notify \
    --relay "ws://127.0.0.1:$RELAY_PORT/ws" --team "$TEAM"
wait_connected
KD_T0=$(cpu_ticks "$KD_PID")
KD_RESULT=$(python3 "$BENCH_DIR/tools/forward_latency.py" "$HOOK_URL" "$HOOK" "$TARGET_PORT" "$N")
KD_CPU=$(cpu_ms_per_event "$KD_T0" "$(cpu_ticks "$KD_PID")" "$((N + 20))")
KD_PSS=$(pss_kb "$KD_PID")
stop_pid "$KD_PID"

# (b) smee-client on the relay's SSE channel, to the same kind of target.
TARGET_PORT=$(free_port)
: >"$WORK/smee.out"
node "$SMEE_JS" --url "http://127.0.0.1:$RELAY_PORT/smee/$TEAM?token=$API_TOKEN" \
    --target "http://127.0.0.1:$TARGET_PORT/smee" >"$WORK/smee.out" 2>"$WORK/smee.err" &
SMEE_PID=$!
STARTED_PIDS+=("$SMEE_PID")
for ((i = 0; i < 600; i++)); do
    grep -q '^Forwarding' "$WORK/smee.out" 2>/dev/null && break
    kill -0 "$SMEE_PID" 2>/dev/null || { cat "$WORK/smee.err" >&2; die "smee-client exited"; }
    sleep 0.05
done
grep -q '^Forwarding' "$WORK/smee.out" || die "smee-client did not connect: $(cat "$WORK/smee.err")"
log "smee-client pid $SMEE_PID connected"
SMEE_T0=$(cpu_ticks "$SMEE_PID")
SMEE_RESULT=$(python3 "$BENCH_DIR/tools/forward_latency.py" "$HOOK_URL" "$HOOK" "$TARGET_PORT" "$N")
SMEE_CPU=$(cpu_ms_per_event "$SMEE_T0" "$(cpu_ticks "$SMEE_PID")" "$((N + 20))")
SMEE_PSS=$(pss_kb "$SMEE_PID")
stop_pid "$SMEE_PID"

{
    echo "forward latency benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  rev $(git_rev)"
    echo "machine: $(machine)"
    echo "smee-client $(node "$SMEE_JS" --version 2>/dev/null || echo '?'), node $(node --version)"
    echo "kitedesk serve + proxy sink: ${KD_RESULT#RESULT } client_pss_mb=$(mb "$KD_PSS") client_cpu_ms_per_event=$KD_CPU"
    echo "smee-client:                 ${SMEE_RESULT#RESULT } client_pss_mb=$(mb "$SMEE_PSS") client_cpu_ms_per_event=$SMEE_CPU"
    echo "RESULT kitedesk_p50_ms=$(field p50_ms "$KD_RESULT") kitedesk_p99_ms=$(field p99_ms "$KD_RESULT") kitedesk_pss_mb=$(mb "$KD_PSS") kitedesk_cpu_ms_per_event=$KD_CPU smee_p50_ms=$(field p50_ms "$SMEE_RESULT") smee_p99_ms=$(field p99_ms "$SMEE_RESULT") smee_pss_mb=$(mb "$SMEE_PSS") smee_cpu_ms_per_event=$SMEE_CPU"
} | tee "$REPORT"
log "report: $REPORT"
