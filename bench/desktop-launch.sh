#!/usr/bin/env bash
# Launch to tray registered (warm disk): time from exec of kitedesk-app
# (--hidden, fresh data dir) to the StatusNotifierWatcher stand-in logging
# its RegisterStatusNotifierItem call. One unmeasured warm-up launch, then
# RUNS measured ones (default 5). Budget < 1 s.
# Usage: bash bench/desktop-launch.sh [runs]
set -euo pipefail
source "$(dirname "$0")/desktop-session.sh"
RUNS=${1:-5}
BIN=$(app_bin)
start_session

launch_ms() {
    local n=$1 t0 t1 pid i
    kill "$WATCHER_PID" 2>/dev/null; wait "$WATCHER_PID" 2>/dev/null || true
    start_watcher
    t0=$(date +%s%N)
    "$BIN" --hidden --data-dir "$SCRATCH/kd-$n" --listen 127.0.0.1:0 >"$SCRATCH/app-$n.out" 2>"$SCRATCH/app-$n.err" &
    pid=$!
    for ((i = 0; i < 20000; i++)); do
        grep -q REGISTERED "$SCRATCH/sni.log" && break
        sleep 0.002
    done
    t1=$(date +%s%N)
    grep -q REGISTERED "$SCRATCH/sni.log" || { cat "$SCRATCH/app-$n.err" >&2; die "tray never registered"; }
    kill -TERM "$pid"; wait "$pid" || die "app $n exited non-zero"
    echo $(((t1 - t0) / 1000000))
}

launch_ms warmup >/dev/null
times=()
for ((r = 1; r <= RUNS; r++)); do
    times+=("$(launch_ms "$r")")
    log "run $r: ${times[-1]} ms"
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(sed -n "$(((RUNS + 1) / 2))p" <<<"$sorted")
report="$OUT_DIR/desktop-launch-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
    echo "kitedesk-app launch -> tray registered, release, warm ($(git_rev), $(date -u +%FT%TZ))"
    echo "$(machine)"
    echo "  runs (ms): ${times[*]}"
    printf '  min %s ms, median %s ms, max %s ms (budget < 1000 ms: %s)\n' \
        "$(head -1 <<<"$sorted")" "$median" "$(tail -1 <<<"$sorted")" \
        "$([ "$median" -lt 1000 ] && echo pass || echo MISS)"
} | tee "$report"
