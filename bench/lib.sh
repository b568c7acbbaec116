# Shared helpers for bench/*.sh (sourced, not run).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
OUT_DIR="$BENCH_DIR/out"
mkdir -p "$OUT_DIR"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

need() {
    for c in "$@"; do
        command -v "$c" >/dev/null || die "$c is not installed: run bash bench/setup.sh"
    done
}

# The machine, for the results.
machine() {
    local cpu
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    printf 'nproc=%s cpu="%s" kernel=%s mem=%s load="%s"\n' \
        "$(nproc)" "$cpu" "$(uname -r)" \
        "$(free -g | awk '/^Mem:/{print $2 "G"}')" \
        "$(cut -d' ' -f1-3 /proc/loadavg)"
}

git_rev() {
    local rev
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
        rev="$rev+dirty"
    fi
    echo "$rev"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Build the daemon (release) unless KITEDESK_BIN points at one; echo its path.
kitedesk_bin() {
    if [ -n "${KITEDESK_BIN:-}" ]; then
        [ -x "$KITEDESK_BIN" ] || die "KITEDESK_BIN=$KITEDESK_BIN is not executable"
        echo "$KITEDESK_BIN"
        return
    fi
    log "building kitedesk (cargo build --release --workspace --bins)"
    (cd "$ROOT" && cargo build --release --workspace --bins >&2) || die "release build failed"
    local target="${CARGO_TARGET_DIR:-$ROOT/target}"
    echo "$target/release/kitedesk"
}

# start_kitedesk DATA_DIR LOG_PREFIX [extra serve args...]
# Starts `kitedesk serve` on a free port and waits for its "Hooks:" line.
# Sets KD_PID and KD_URL (http://127.0.0.1:PORT).
start_kitedesk() {
    local data=$1 prefix=$2
    shift 2
    # Empty the log first: the loop below must not read a previous run's line
    # before the new daemon's redirection truncates it.
    : >"$prefix.out"
    "$KD_BIN" serve --data-dir "$data" --listen 127.0.0.1:0 "$@" \
        >"$prefix.out" 2>"$prefix.err" &
    KD_PID=$!
    STARTED_PIDS+=("$KD_PID")
    # Poll the daemon's own stdout for the line scripts rely on (up to 60 s:
    # opening a big history runs migrations and the retention pass).
    local i line=""
    for ((i = 0; i < 1200; i++)); do
        line=$(grep -m1 'Hooks:' "$prefix.out" 2>/dev/null || true)
        [ -n "$line" ] && break
        kill -0 "$KD_PID" 2>/dev/null || { cat "$prefix.err" >&2; die "kitedesk serve exited"; }
        sleep 0.05
    done
    [ -n "$line" ] || die "kitedesk serve printed no Hooks: line within 60 s"
    KD_URL=$(sed -E 's#.*(http://[^ ]+)/hooks/.*#\1#' <<<"$line")
    log "kitedesk serve pid $KD_PID at $KD_URL"
}

# stop PID: SIGTERM and wait (only processes this script started).
stop_pid() {
    local pid=$1
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

STARTED_PIDS=()
cleanup_pids() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
}

# api GET-path: call the daemon API with the bench token.
api() {
    curl -fsS -H "Authorization: Bearer $KITEDESK_API_TOKEN" "$KD_URL$1"
}

# field NAME "RESULT a=1 b=2": value of NAME.
field() { sed -nE "s/.*(^| )$1=([^ ]+).*/\2/p" <<<"$2"; }

# ensure_history EVENTS DATA_DIR WORDS: generate the bench/gen history of
# EVENTS events into DATA_DIR unless one is there that this tree's daemon
# can open. DATA_DIR/migrations records the store's migrations (sha256 and
# file name) the history was made with: it is reused while each of them is
# unchanged (migrations added since are applied by the daemon when it opens
# the history); regenerated when one changed or disappeared, when the event
# count differs, when BENCH_GEN_ARGS (extra kitedesk-bench-gen options such
# as the smaller payload mix `--mix-bytes 100000`, recorded in
# DATA_DIR/gen-args) differ, or with BENCH_REGEN=1. Builds bench/gen first.
ensure_history() {
    local events=$1 data=$2 words=$3 mig="$ROOT/crates/store/migrations" regen=${BENCH_REGEN:-}
    local gen_args=${BENCH_GEN_ARGS:-}
    log "building the generator and the query client (bench/gen)"
    cargo build --release --quiet --manifest-path "$BENCH_DIR/gen/Cargo.toml" \
        --target-dir "$BENCH_DIR/gen/target" >&2 || die "bench/gen build failed"
    if [ -z "$regen" ] && [ -f "$data/bench-gen.json" ]; then
        if [ -f "$data/migrations" ]; then
            (cd "$mig" && sha256sum --quiet --strict -c "$data/migrations" >/dev/null 2>&1) || {
                log "$data was made with a store migration that has changed since: regenerating"
                regen=1
            }
        else
            # Histories made before the per-file record: the old whole-set hash.
            [ "$(cat "$data/schema" 2>/dev/null)" = "$(cat "$mig"/*.sql | sha256sum | cut -c1-16)" ] || {
                log "$data was made under another schema: regenerating"
                regen=1
            }
        fi
        [ "$(jq -r .events "$data/bench-gen.json")" = "$events" ] || {
            log "$data does not hold $events events: regenerating"
            regen=1
        }
        [ "$(cat "$data/gen-args" 2>/dev/null)" = "$gen_args" ] || {
            log "$data was made with other generator options than '$gen_args': regenerating"
            regen=1
        }
    fi
    if [ -n "$regen" ] || [ ! -f "$data/bench-gen.json" ]; then
        rm -rf "$data"
        log "generating $events events into $data (a 1M history takes 10+ minutes)"
        # shellcheck disable=SC2086 # BENCH_GEN_ARGS is a list of options
        nice -n 10 "$BENCH_DIR/gen/target/release/kitedesk-bench-gen" --data-dir "$data" \
            --events "$events" --words "$words" $gen_args >/dev/null || die "bench/gen failed"
        (cd "$mig" && sha256sum -- *.sql) >"$data/migrations"
        printf '%s' "$gen_args" >"$data/gen-args"
    else
        log "reusing $data ($(jq -r .events "$data/bench-gen.json") events, generated $(jq -r .generated_at "$data/bench-gen.json"))"
    fi
}
