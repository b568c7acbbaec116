//! `POST /api/relays` bodies from arbitrary bytes, through the handler's
//! own `parse_new_relay`: never a panic; a refusal is a 400 naming the
//! field (or the body's line and column, never echoing the body, which may
//! carry a token); an accepted link keeps the checks' promises and reads
//! the same when sent again.
#![no_main]

use kitedesk_daemon::parse_new_relay;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_new_relay(data) {
        Ok(r) => {
            let slug_ok = !r.name.is_empty()
                && r.name.len() <= 64
                && r.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !r.name.starts_with('-');
            assert!(slug_ok && r.name != "local", "name {:?}", r.name);
            assert!(
                r.url.starts_with("ws://") || r.url.starts_with("wss://"),
                "url {:?}",
                r.url
            );
            assert!(r.url.len() <= 2048);
            assert!(!r.url.chars().any(|c| c.is_whitespace() || c.is_control()));
            let authority = r
                .url
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or_default();
            let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
            assert!(
                !authority.is_empty() && !authority.contains('@'),
                "url {:?}",
                r.url
            );
            assert!(!r.team_id.is_empty() && r.team_id.len() <= 256);
            assert!(
                !r.team_id
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            );
            for s in &r.scopes {
                assert!(
                    s == "*"
                        || ["source:", "type:", "agent_to:"]
                            .iter()
                            .any(|p| s.len() > p.len() && s.starts_with(p)),
                    "scope {s:?}"
                );
            }
            // What was accepted, sent again, reads the same (the URL is
            // already the WebSocket one, names and ids already trimmed).
            let mut again = serde_json::json!({
                "name": r.name, "url": r.url, "team_id": r.team_id, "scopes": r.scopes,
            });
            if r.has_token() {
                again["token"] = "t".into();
            }
            let back = parse_new_relay(&serde_json::to_vec(&again).unwrap())
                .unwrap_or_else(|e| panic!("{again} refused: {}", e.message));
            assert_eq!(
                (
                    &back.name,
                    &back.url,
                    &back.team_id,
                    &back.scopes,
                    back.has_token()
                ),
                (&r.name, &r.url, &r.team_id, &r.scopes, r.has_token())
            );
        }
        Err(e) => {
            assert_eq!(e.status, 400, "{}: {}", e.code, e.message);
            match e.code {
                "invalid_body" => assert!(
                    e.message.starts_with("invalid request body (line "),
                    "a body error says where, and echoes nothing: {}",
                    e.message
                ),
                "invalid_relay" => assert!(
                    ["name:", "url:", "team_id:", "scopes:"]
                        .iter()
                        .any(|f| e.message.starts_with(f)),
                    "names the field: {}",
                    e.message
                ),
                other => panic!("unexpected code {other}: {}", e.message),
            }
        }
    }
});
