#!/usr/bin/env bash
# Notification latency: webhook POST → `Notify` call observed on the bus,
# over EVENTS events (budget: p99 < 25 ms over 1,000), with a real
# notification server (dunst under Xvfb) on a private session bus.
#
#   bash bench/notify-latency.sh [events=1000] [warmup=50]
#
# The settings make every event notify: threshold low, grouping and rate
# limit far above the event count. Each event is a generic `acme` webhook
# with a unique message; bench/tools/notify_latency.py monitors the bus
# (org.freedesktop.DBus.Monitoring), POSTs one event at a time on a
# keep-alive connection and times until that event's Notify call is seen.
# KITEDESK_BIN=path skips building the daemon.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EVENTS=${1:-1000}
WARMUP=${2:-50}

# Re-run inside a virtual display and a private session bus.
if [ -z "${KD_BENCH_INSIDE:-}" ]; then
    need xvfb-run dbus-run-session dunst python3 curl
    KD_BIN=$(kitedesk_bin)
    export KD_BIN KD_BENCH_INSIDE=1
    exec xvfb-run -a dbus-run-session -- bash "$0" "$EVENTS" "$WARMUP"
fi

STARTED_PIDS=()
cleanup() { for p in "${STARTED_PIDS[@]}"; do stop_pid "$p"; done; rm -rf "$WORK"; }
WORK=$(mktemp -d)
trap cleanup EXIT

dunst >"$WORK/dunst.log" 2>&1 &
STARTED_PIDS+=("$!")
timeout 10 gdbus wait --session org.freedesktop.Notifications || die "dunst did not start: $(cat "$WORK/dunst.log")"

cat >"$WORK/kite.json" <<'JSON'
{
  "sources": [{"name": "acme", "type": "generic", "verify": {"allowUnsigned": true}}],
  "scoring": {"rules": [{"match": {"source": "acme"}, "importance": "high", "reason": "bench"}]}
}
JSON
start_kitedesk "$WORK/data" "$WORK/kitedesk" --manifest "$WORK/kite.json"
TOKEN=$(cat "$WORK/data/api-token")
api() { curl -fsS -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@"; }
status=$(api "$KD_URL/api/notifications/status") || die "no /api/notifications/status: is $KD_BIN built from this branch?"
grep -q '"backend":"available"' <<<"$status" || die "notifications unavailable: $status"
api -X PUT "$KD_URL/api/settings/notifications" -d '{
  "threshold": "low",
  "quiet_hours": {"enabled": false, "start": "22:00", "end": "07:00", "critical_breaks_through": true},
  "muted_sources": [], "muted_types": [],
  "group": {"window_secs": 1, "max_individual": 10000},
  "rate_limit_per_minute": 100000
}' >/dev/null

log "$(machine)"
log "measuring $EVENTS events after $WARMUP warm-up (rev $(git_rev))"
/usr/bin/python3 "$BENCH_DIR/tools/notify_latency.py" "$KD_URL" "$EVENTS" "$WARMUP" >"$WORK/latencies.txt"
final=$(api "$KD_URL/api/notifications/status")
sort -n "$WORK/latencies.txt" | awk -v final="$final" '
    { v[NR] = $1; sum += $1 }
    END {
        n = NR
        printf "notify latency (webhook POST -> Notify observed), %d events\n", n
        printf "| p50 ms | p90 ms | p99 ms | max ms | mean ms |\n| ---: | ---: | ---: | ---: | ---: |\n"
        printf "| %.2f | %.2f | %.2f | %.2f | %.2f |\n", v[int(n*0.50+0.5)], v[int(n*0.90+0.5)], v[int(n*0.99+0.5)], v[n], sum/n
        printf "daemon status after the run: %s\n", final
    }' | tee "$OUT_DIR/notify-latency-$(date -u +%Y%m%dT%H%M%SZ).txt"
