#!/usr/bin/env bash
# Memory of the desktop app, idle, release build: PSS summed over the app
# and its WebKit children (/proc/<pid>/smaps_rollup), after IDLE seconds
# (default 30) in each state:
#   0. tray only, started --hidden (the window never opened: a login start)
#   1. window open   (budget < 200 MB)
#   2. window closed (tray only, after it was open; budget < 80 MB)
# Usage: bash bench/desktop-memory.sh [idle_secs]
set -euo pipefail
source "$(dirname "$0")/desktop-session.sh"
IDLE=${1:-30}
BIN=$(app_bin)
start_session

"$BIN" --hidden --data-dir "$SCRATCH/kd0" --listen 127.0.0.1:0 >"$SCRATCH/app0.out" 2>"$SCRATCH/app0.err" &
APP=$!
STARTED_PIDS+=("$APP")
for ((i = 0; i < 1200; i++)); do
    grep -q REGISTERED "$SCRATCH/sni.log" && break
    kill -0 "$APP" 2>/dev/null || { cat "$SCRATCH/app0.err" >&2; die "the app exited"; }
    sleep 0.05
done
log "started --hidden (tray only); idle ${IDLE}s"
sleep "$IDLE"
hidden_kb=$(pss_tree_kb "$APP")
hidden_detail=$(pss_tree_detail "$APP")
kill -TERM "$APP"
wait "$APP" || die "the --hidden app exited non-zero"

"$BIN" --data-dir "$SCRATCH/kd" --listen 127.0.0.1:0 >"$SCRATCH/app.out" 2>"$SCRATCH/app.err" &
APP=$!
STARTED_PIDS+=("$APP")
for ((i = 0; i < 1200; i++)); do
    win=$(xdotool search --name '^Kite Desk$' 2>/dev/null || true)
    [ -n "$win" ] && break
    kill -0 "$APP" 2>/dev/null || { cat "$SCRATCH/app.err" >&2; die "the app exited"; }
    sleep 0.05
done
[ -n "$win" ] || die "no window within 60 s"
log "window open; idle ${IDLE}s"
sleep "$IDLE"
open_kb=$(pss_tree_kb "$APP")
open_detail=$(pss_tree_detail "$APP")

/usr/bin/python3 "$ROOT/tests/desktop/close_window.py" $win
for ((i = 0; i < 1200; i++)); do
    # The window process and every WebKit process end with the window.
    [ "$(tree_pids "$APP" | wc -l)" -le 1 ] && break
    sleep 0.05
done
kill -0 "$APP" 2>/dev/null || die "the app exited when its window closed"
log "window closed; idle ${IDLE}s"
sleep "$IDLE"
closed_kb=$(pss_tree_kb "$APP")
closed_detail=$(pss_tree_detail "$APP")

verdict() { [ "$1" -lt "$2" ] && echo pass || echo MISS; }
report="$OUT_DIR/desktop-memory-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
    echo "kitedesk-app memory, release, idle ${IDLE}s, PSS of the app + children ($(git_rev), $(date -u +%FT%TZ))"
    echo "$(machine)"
    printf '  tray only, never opened (--hidden): %4d MB (budget <  80 MB: %s)\n' $((hidden_kb / 1024)) "$(verdict $((hidden_kb / 1024)) 80)"
    echo "$hidden_detail"
    printf '  window open:   %4d MB (budget < 200 MB: %s)\n' $((open_kb / 1024)) "$(verdict $((open_kb / 1024)) 200)"
    echo "$open_detail"
    printf '  window closed: %4d MB (budget <  80 MB: %s)\n' $((closed_kb / 1024)) "$(verdict $((closed_kb / 1024)) 80)"
    echo "$closed_detail"
} | tee "$report"
kill -TERM "$APP"
wait "$APP" && log "app exited 0" || log "app exited $?"
