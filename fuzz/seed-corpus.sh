#!/usr/bin/env bash
# Seed fuzz/corpus/<target>/ from the test fixtures and the known-answer
# vectors, so libFuzzer starts from real webhooks instead of empty input.
# The corpus directory is not committed (see .gitignore); rerun this after
# adding fixtures. Safe to rerun: files are named by content.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
FIX=../crates/core/tests/fixtures
C=corpus

seed() { # target name  (content on stdin)
    mkdir -p "$C/$1"
    cat > "$C/$1/$2"
}

# Provider selector bytes follow ProviderKind::ALL:
# github 0, stripe 1, paperclip 2, kiket 3, standard-webhooks 4, generic 5.
i=0
for dir in github stripe paperclip kiket standard-webhooks generic; do
    for f in "$FIX/$dir"/*.json; do
        name=$(basename "$f" .json)
        ct="application/json"
        [[ $name == *.ce ]] && ct="application/cloudevents+json"
        {
            printf "\\x$(printf %02x "$i")"
            printf 'Content-Type: %s\n' "$ct"
            case $dir in
                github) printf 'X-GitHub-Event: %s\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\n' "${name%%.*}" ;;
                paperclip) printf 'X-Paperclip-Event: %s\n' "$(sed -n 's/^  "event": "\(.*\)",$/\1/p' "$f")" ;;
                standard-webhooks) printf 'webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek\n' ;;
            esac
            printf '\n'
            cat "$f"
        } | seed normalize "$dir-$name"
    done
    i=$((i + 1))
done

# search_text: every fixture payload as it is, and a few escapes.
for dir in github stripe paperclip kiket standard-webhooks generic; do
    for f in "$FIX/$dir"/*.json; do
        seed search_text "$dir-$(basename "$f" .json)" < "$f"
    done
done
printf '{"a\\"b": "\\u00e9t\\u00e9\\n\\ud83d\\ude80", "n": [-1.5e3, true, null]}' | seed search_text escapes

# json_doc: the same payloads, repeated keys, and numbers at the edges.
for f in "$C"/search_text/*; do
    seed json_doc "$(basename "$f")" < "$f"
done
printf '{"k": 1, "a": {"k": [1, 2]}, "k": "last", "~/": {"": null}}' | seed json_doc repeated-keys
printf '[18446744073709551615, -9223372036854775808, 1e308, 5e-324, -0, 0.1]' | seed json_doc numbers

# verify: scheme selector (github 0, stripe 1, kiket 2, standard-webhooks 3).
printf '\x00X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\n\nHello, World!' | seed verify github
printf '\x01Stripe-Signature: t=1614265330,v1=bcf8277e5553fbaa23b6be35b16c98d188f8e336b5e14e142389a05dad620268,v0=00\n\n{"id":"evt_1","type":"payment_intent.succeeded"}' | seed verify stripe
printf '\x02X-Kiket-Signature: sha256=64c31ea06050f51fb323390788fad920e9313f2beeeaea4f0c7c18325beb0632\n\n{"event":"workflow.sla_status","id":"evt_1"}' | seed verify kiket
printf '\x03webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek\nwebhook-timestamp: 1614265330\nwebhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,I/S85BK+lnhkJTZl75oG08+O4+ibK4N8Gt6zyNw8FT0=\n\n{"test": 2432232314}' | seed verify standard

printf 't=1614265330,v1=bcf8277e5553fbaa23b6be35b16c98d188f8e336b5e14e142389a05dad620268,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39' | seed stripe_signature_header valid
printf 't=1614265330, v1=00, v1=ff' | seed stripe_signature_header two-v1
printf '1614265330|v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' | seed standard_webhooks_signature_header valid
printf '1614265330|v1,Zm9v v2,YmFy v1a,c2ln' | seed standard_webhooks_signature_header several

mkdir -p "$C/manifest" "$C/cloudevent"
cp ../crates/core/src/default-kite.json "$C/manifest/default-kite.json"
cat <<'JSON' | seed manifest kite-docs-full
{"name":"my-agent","subscriptions":[{"source":"github","type":"com.github.push"}],
 "sink":{"type":"exec","command":"./handle.sh","importance":"high"},
 "filters":{"drop":[{"actor":"*\\[bot\\]"}],"keep_only":[]},
 "enrichment":[{"match":{"source":"github"},"run":"./files.sh","timeout":"10s"}],
 "scoring":{"rules":[{"match":{"ref":"refs/heads/main"},"paths":["deploy/**"],"importance":"critical","reason":"prod deploy"}],
            "dedup":{"window":"5m","key":["source","type"],"strategy":"keep_last"},"default_importance":"normal"},
 "queue":{"retention":"7d","max_size":"1_500"},
 "ingress":{"maxBodyBytes":262144}}
JSON

cp "$FIX/generic/sdk-report.ce.json" "$C/cloudevent/"
cat <<'JSON' | seed cloudevent kite-relay
{"specversion":"1.0","id":"01HXYZ","source":"https://getkite.sh/hooks/team_abc/github","type":"com.github.push",
 "time":"2024-01-15T12:00:00Z","datacontenttype":"application/json","kiteseq":"17","kite-verified":"true",
 "kitesummary":"alice pushed 2 commits to main in owner/repo","kiteoriginalheaders":"{\"X-GitHub-Event\":\"push\"}",
 "data":{"ref":"refs/heads/main"}}
JSON
# Notification settings: the defaults and a full example.
seed notification_settings default.json <<'JSON'
{"threshold":"high","quiet_hours":{"enabled":false,"start":"22:00","end":"07:00","critical_breaks_through":true},"muted_sources":[],"muted_types":[],"group":{"window_secs":10,"max_individual":3},"rate_limit_per_minute":20}
JSON
seed notification_settings full.json <<'JSON'
{"threshold":"critical","quiet_hours":{"enabled":true,"start":"21:30","end":"06:00","critical_breaks_through":false},"paused_until":"2026-11-24T20:00:00Z","muted_sources":["acme/api","github"],"muted_types":["com.github.check_run.*","com.{stripe,kiket}.**"],"group":{"window_secs":60,"max_individual":1},"rate_limit_per_minute":5}
JSON

# Relay frames (kite-protocol ServerMessage): an event carrying a CloudEvent,
# and the other frame kinds.
{ printf '{"type":"event","seq":17,"event":'; tr -d '\n' < "$C/cloudevent/kite-relay"; printf '}'; } | seed relay_frame event
printf '{"type":"connected","last_seq":16,"client_id":"c1"}' | seed relay_frame connected
printf '{"type":"cursor_expired","oldest_available_seq":3,"message":"gone"}' | seed relay_frame cursor-expired
printf '{"type":"error","code":401,"message":"bad token"}' | seed relay_frame error

# Frames a client sends to `kitedesk relay` (kite-protocol ClientMessage).
printf '{"type":"connect","version":1,"token":"kd_tok","team_id":"local","scopes":["*"],"client_id":"c1"}' | seed relay_client_frame connect
printf '{"type":"ack","seq":3}' | seed relay_client_frame ack
printf '{"type":"request","id":"r1","method":"events.list","params":{"limit":10}}' | seed relay_client_frame request

# Web UI request paths.
for p in / /index.html /events/12 /assets/index-abc.js '/./assets//x.css' '/a%20b' '/../etc/passwd' '/%2e%2e/%2e%2e/etc/passwd' '/assets/..%2f..%2fsecret' '/a\b'; do
    printf '%s' "$p" | seed static_path "$(printf '%s' "$p" | sha1sum | cut -c1-12)"
done

# API query strings (/api/events, /api/stream, /api/volume).
printf 'source=github,stripe&type=com.github.*&min_importance=high&since=2026-11-01T00:00:00Z&until=1764000000000&verified=true&q=card_declined+pus*&limit=50&cursor=1234' | seed api_query events-all
printf 'type=com.%%7Bgithub,stripe%%7D.**&q=%%22say%%22+OR+(x)&importance=critical&verified=0' | seed api_query braces-search
printf 'type=a%%5C*b&from=0&to=-62135596800000&before=9223372036854775807&after=5' | seed api_query escapes-range
printf 'from=2026-11-01T00:00:00%%2B01:00&to=2026-11-24T00:00:00Z&bucket=3600' | seed api_query volume

# Globs: pattern, newline, text.
printf 'com.github.*\ncom.github.push' | seed glob type
printf 'refs/**\nrefs/heads/main' | seed glob double-star
printf '*\\[bot\\]\ndependabot[bot]' | seed glob escape
printf 'com.{stripe,kiket}.**\ncom.kiket.a.b' | seed glob braces
printf '[!a-c]?[0-9]\nzz7' | seed glob class

# relay_event: the relay link's fast reading of `event` frames and their
# CloudEvents, seeded with both.
mkdir -p "$C/relay_event"
cp "$C/relay_frame/"* "$C/cloudevent/"* "$C/relay_event/"

# relay_settings / retention_settings: POST /api/relays and
# PUT /api/settings/retention bodies.
printf '{"name":"acme","url":"ws://127.0.0.1:7700/ws","team_id":"team_abc","scopes":["*","source:github","type:com.github.*"],"token":"kite_deadbeef"}' | seed relay_settings full
printf '{"name":"eu-1","url":"https://relay.example","team_id":"t"}' | seed relay_settings https-base
printf '{"name":"x","url":"wss://relay.example:443/ws?x=1","team_id":"t","scopes":["agent_to:bot"]}' | seed relay_settings wss
printf '{"max_age_days":30,"max_events":100000}' | seed retention_settings both
printf '{"max_age_days":null}' | seed retention_settings null
printf '{"reset":true}' | seed retention_settings reset
# sink_settings: POST /api/sinks bodies.
printf '{"name":"local","url":"http://127.0.0.1:3000/hook"}' | seed sink_settings plain
printf '{"name":"gh","url":"https://example.com/x","timeout_ms":5000,"envelope":true,"resign":{"scheme":"github","secret_name":"sink/gh"}}' | seed sink_settings resign
printf '{"name":"x","kind":"exec","command":"rm -rf /"}' | seed sink_settings exec
# deliveries_query: GET /api/deliveries query strings.
printf 'status=dead&sink=app&event_id=42&cursor=1234&limit=50' | seed deliveries_query all
printf 'status=+pending%%09&before=-7&limit=500&sink=&limit=1' | seed deliveries_query alias-repeat
printf 'sink=my%%20hook&status=delivered&cursor=9223372036854775807' | seed deliveries_query encoded
printf 'limit=0&colour=red' | seed deliveries_query refused

for t in normalize verify stripe_signature_header standard_webhooks_signature_header manifest cloudevent notification_settings relay_frame relay_client_frame static_path api_query glob relay_event relay_settings retention_settings sink_settings deliveries_query search_text; do
    printf '%-36s %s seeds\n' "$t" "$(ls "$C/$t" | wc -l)"
done

# relay_client_frame: the frames a Kite CLI sends.
printf '{"type":"connect","version":1,"token":"kite_deadbeef_cafebabecafebabe","team_id":"team_abc","scopes":["source:github","type:push"],"client_id":"my-agent"}' | seed relay_client_frame connect
printf '{"type":"connect","version":1,"token":"t","team_id":"t","scopes":["*"]}' | seed relay_client_frame connect-bare
printf '{"type":"ack","seq":42}' | seed relay_client_frame ack
printf '{"type":"request","id":"0190a0b0-0000-7000-8000-000000000000","method":"events.recent","params":{"limit":10}}' | seed relay_client_frame request
