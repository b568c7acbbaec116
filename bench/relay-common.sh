# Shared by bench/catchup.sh and bench/relay-latency.sh (sourced): a
# `kitedesk relay` with a team, a hook token and an API token, and a
# `kitedesk serve --relay` daemon linked to it.

# start_relay DIR: sets RELAY_PID RELAY_PORT TEAM HOOK API_TOKEN.
start_relay() {
    local dir=$1
    TEAM=$("$KD_BIN" relay --data-dir "$dir" teams create bench)
    HOOK=$("$KD_BIN" relay --data-dir "$dir" tokens create --team "$TEAM" --kind hook 2>/dev/null)
    API_TOKEN=$("$KD_BIN" relay --data-dir "$dir" tokens create --team "$TEAM" --kind api 2>/dev/null)
    RELAY_PORT=$(free_port)
    "$KD_BIN" relay --data-dir "$dir" --listen "127.0.0.1:$RELAY_PORT" \
        >"$dir.out" 2>"$dir.err" &
    RELAY_PID=$!
    STARTED_PIDS+=("$RELAY_PID")
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q 'websocket:' "$dir.out" 2>/dev/null && break
        kill -0 "$RELAY_PID" 2>/dev/null || { cat "$dir.err" >&2; die "kitedesk relay exited"; }
        sleep 0.05
    done
    grep -q 'websocket:' "$dir.out" || die "kitedesk relay did not start"
    log "kitedesk relay pid $RELAY_PID on 127.0.0.1:$RELAY_PORT (team $TEAM)"
}

# relay_conn JQ-EXPR: evaluate on the daemon's relay connection object.
relay_conn() {
    api /api/health | jq -r ".connections[] | select(.kind == \"relay\") | $1"
}

wait_connected() {
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(relay_conn .state 2>/dev/null)" = connected ] && return 0
        sleep 0.05
    done
    die "the daemon's relay link did not connect: $(relay_conn . 2>&1)"
}

# The team's last seq in the relay's own log.
relay_last_seq() {
    sqlite3 "file:$1/relay.db?mode=ro" "SELECT last_seq FROM teams WHERE id = '$TEAM'"
}
