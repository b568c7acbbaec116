# Shared by bench/desktop-*.sh (sourced): a private X display and D-Bus
# session bus with the StatusNotifierWatcher stand-in, and the app binary.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need Xvfb dbus-daemon xdotool /usr/bin/python3

STARTED_PIDS=()
SCRATCH=$(mktemp -d /tmp/kitedesk-bench-desktop.XXXXXX)
cleanup() {
    local p
    for ((p = ${#STARTED_PIDS[@]} - 1; p >= 0; p--)); do
        kill "${STARTED_PIDS[$p]}" 2>/dev/null || true
        wait "${STARTED_PIDS[$p]}" 2>/dev/null || true
    done
    [ -n "${BENCH_KEEP:-}" ] && log "kept $SCRATCH" || rm -rf "$SCRATCH"
}
trap cleanup EXIT

# Build the app (release) unless KITEDESK_APP_BIN points at one.
app_bin() {
    if [ -n "${KITEDESK_APP_BIN:-}" ]; then
        [ -x "$KITEDESK_APP_BIN" ] || die "KITEDESK_APP_BIN=$KITEDESK_APP_BIN is not executable"
        echo "$KITEDESK_APP_BIN"
        return
    fi
    log "building kitedesk-app (cargo build --release --workspace --bins)"
    (cd "$ROOT" && cargo build --release --workspace --bins >&2) || die "release build failed"
    echo "${CARGO_TARGET_DIR:-$ROOT/target}/release/kitedesk-app"
}

# A private session: Xvfb on a free display, a bus without activation,
# XDG dirs in the scratch dir, the SNI watcher. Exports the variables.
start_session() {
    mkdir -p "$SCRATCH"/{home,config,data,cache,runtime}
    chmod 700 "$SCRATCH"/runtime
    export HOME=$SCRATCH/home XDG_CONFIG_HOME=$SCRATCH/config XDG_DATA_HOME=$SCRATCH/data \
        XDG_CACHE_HOME=$SCRATCH/cache XDG_RUNTIME_DIR=$SCRATCH/runtime NO_AT_BRIDGE=1
    unset WAYLAND_DISPLAY
    exec {xfd}> >(cat >"$SCRATCH/display")
    Xvfb -displayfd "$xfd" -screen 0 1280x800x24 -nolisten tcp 2>"$SCRATCH/xvfb.err" &
    STARTED_PIDS+=($!)
    local i
    for ((i = 0; i < 400; i++)); do [ -s "$SCRATCH/display" ] && break; sleep 0.05; done
    [ -s "$SCRATCH/display" ] || die "Xvfb did not start"
    export DISPLAY=":$(head -1 "$SCRATCH/display")"
    # No service activation: only what this script starts is on the bus.
    cat >"$SCRATCH/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:dir=$SCRATCH/runtime</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>
CONF
    dbus-daemon --config-file="$SCRATCH/bus.conf" --nofork --print-address=1 >"$SCRATCH/bus.addr" &
    STARTED_PIDS+=($!)
    for ((i = 0; i < 400; i++)); do [ -s "$SCRATCH/bus.addr" ] && break; sleep 0.05; done
    export DBUS_SESSION_BUS_ADDRESS=$(head -1 "$SCRATCH/bus.addr")
    [ -n "$DBUS_SESSION_BUS_ADDRESS" ] || die "dbus-daemon did not start"
    start_watcher
    log "session: DISPLAY=$DISPLAY bus=$DBUS_SESSION_BUS_ADDRESS"
}

start_watcher() {
    : >"$SCRATCH/sni.log"
    /usr/bin/python3 "$ROOT/tests/desktop/sni_watcher.py" >"$SCRATCH/sni.log" 2>&1 &
    WATCHER_PID=$!
    STARTED_PIDS+=("$WATCHER_PID")
    local i
    for ((i = 0; i < 400; i++)); do grep -q 'watcher ready' "$SCRATCH/sni.log" && return; sleep 0.01; done
    die "the SNI watcher did not start"
}

# A process and all its descendants (the window process and WebKit's), one pid a line.
tree_pids() {
    ps -eo pid=,ppid= | awk -v r="$1" '
        { parent[$1] = $2 }
        END { for (p in parent) { q = p; while (q != "" && q != 0 && q != 1) { if (q == r) { print p; break } q = parent[q] } } }'
}

# PSS in kB of a process and all its descendants (/proc/PID/smaps_rollup).
pss_tree_kb() {
    local root=$1 total=0 pid kb
    local pids
    pids=$(tree_pids "$root")
    for pid in $pids; do
        kb=$(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# The per-process breakdown, for the report.
pss_tree_detail() {
    local root=$1 pid
    for pid in $(tree_pids "$root"); do
        printf '    %-22s pid %-7s PSS %6d kB  RSS %6d kB\n' "$(cat /proc/$pid/comm 2>/dev/null)" "$pid" \
            "$(awk '/^Pss:/{print $2}' /proc/$pid/smaps_rollup 2>/dev/null || echo 0)" \
            "$(awk '/^Rss:/{print $2}' /proc/$pid/smaps_rollup 2>/dev/null || echo 0)"
    done
}
