//! `kitedesk relays` and `kitedesk retention` against a real daemon: relay
//! links added to a real `kitedesk relay` with the token in a real keychain
//! (crates/testkit's private D-Bus session), and the history's retention.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use kitedesk_testkit::DesktopSession;
use reqwest::Method;

use super::secrets::{
    Daemon, api, contains, files, kitedesk, lookup, relay, relay_admin, serve, wait_until,
};

/// `kitedesk ARGS…` in the session with `stdin` piped in.
fn cli(session: &DesktopSession, d: &Daemon, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = kitedesk(session, &d.data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn list_json(session: &DesktopSession, d: &Daemon) -> serde_json::Value {
    let (ok, out, err) = cli(session, d, &["relays", "list", "--json"], "");
    assert!(ok, "relays list --json: {err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn relays_add_list_rm_through_the_cli_with_the_token_in_the_keychain() {
    let session = DesktopSession::builder().keyring(true).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    let team = relay_admin(&relay_dir, &["teams", "create", "acme"]);
    let api_token = relay_admin(
        &relay_dir,
        &["tokens", "create", "--team", &team, "--kind", "api"],
    );
    let r = relay(&relay_dir);
    let d = serve(&session, dir.path());

    let (ok, out, _) = cli(&session, &d, &["relays", "list"], "");
    assert!(ok);
    assert!(out.starts_with("no relay links"), "{out}");

    // add: the token comes from stdin and goes to the keychain.
    let (ok, _, err) = cli(
        &session,
        &d,
        &[
            "relays", "add", "acme", "--relay", &r.ws, "--team", &team, "--scope", "*",
        ],
        &format!("{api_token}\n"),
    );
    assert!(ok, "relays add: {err}");
    assert!(
        err.contains("added relay link acme") && err.contains("keychain:relay/acme"),
        "{err}"
    );
    assert_eq!(
        lookup(&session, "relay/acme").as_deref(),
        Some(api_token.as_str())
    );

    // list: it connects to the real relay.
    let listed = wait_until("the added link to connect", || async {
        let list = list_json(&session, &d);
        let link = list["relays"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == "acme")
            .cloned()
            .unwrap_or_else(|| panic!("acme not listed: {list}"));
        (link["state"] == "connected").then_some(list)
    })
    .await;
    let (_, from_api) = api(&d, Method::GET, "/api/relays", None).await;
    assert_eq!(listed, from_api, "--json prints the API's answer");
    let (ok, table, err) = cli(&session, &d, &["relays", "list"], "");
    assert!(ok, "{err}");
    let row = table
        .lines()
        .find(|l| l.starts_with("acme "))
        .unwrap_or_else(|| panic!("no acme row: {table}"));
    for cell in ["api", "connected", team.as_str(), "keychain:relay/acme"] {
        assert!(row.contains(cell), "{cell} missing from {row:?}");
    }
    assert!(table.starts_with("NAME "), "{table}");

    // Bad input: the API's code and message, a non-zero exit.
    let (ok, _, err) = cli(
        &session,
        &d,
        &[
            "relays",
            "add",
            "Not A Slug",
            "--relay",
            &r.ws,
            "--team",
            &team,
        ],
        "tok\n",
    );
    assert!(!ok);
    assert!(err.contains("invalid_relay (400): name:"), "{err}");
    let (ok, _, err) = cli(
        &session,
        &d,
        &[
            "relays",
            "add",
            "acme",
            "--relay",
            &r.ws,
            "--team",
            &team,
            "--no-token",
        ],
        "",
    );
    assert!(!ok);
    assert!(err.contains("relay_exists (409)"), "{err}");
    let (ok, _, err) = cli(
        &session,
        &d,
        &[
            "relays", "add", "other", "--relay", "ftp://x", "--team", &team,
        ],
        "tok\n",
    );
    assert!(!ok);
    assert!(err.contains("invalid_relay (400): url:"), "{err}");
    // An empty token on stdin is refused before the daemon is asked.
    let (ok, _, err) = cli(
        &session,
        &d,
        &["relays", "add", "other", "--relay", &r.ws, "--team", &team],
        "",
    );
    assert!(!ok);
    assert!(err.contains("no value given"), "{err}");
    assert_eq!(
        list_json(&session, &d)["relays"].as_array().unwrap().len(),
        1,
        "refused adds add nothing"
    );

    // The token is nowhere but the keychain: not in any output, file or log.
    let mut checked = files(&d.data_dir);
    checked.extend([d.log.clone(), r.log.clone()]);
    for f in checked {
        assert!(
            !contains(&std::fs::read(&f).unwrap(), &api_token),
            "the relay token is in {}",
            f.display()
        );
    }
    assert!(!table.contains(&api_token) && !listed.to_string().contains(&api_token));

    // rm: gone from the list and from the keychain; a second rm is a 404.
    let (ok, _, err) = cli(&session, &d, &["relays", "rm", "acme"], "");
    assert!(ok, "relays rm: {err}");
    assert!(err.contains("removed relay link acme"), "{err}");
    assert_eq!(list_json(&session, &d)["relays"], serde_json::json!([]));
    assert_eq!(lookup(&session, "relay/acme"), None);
    let (ok, _, err) = cli(&session, &d, &["relays", "rm", "acme"], "");
    assert!(!ok);
    assert!(err.contains("relay_not_found (404)"), "{err}");
}

fn retention_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["retention"];
    all.extend_from_slice(args);
    all.push("--json");
    let (ok, out, err) = super::run_cli(dir, &all);
    assert!(ok, "{all:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

async fn get(d: &super::Served, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{}{path}", d.url))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_show_set_reset_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = super::serve(dir.path());
    let dir = dir.path();

    // show (the default): what the API says, from the manifest.
    let shown = retention_json(dir, &[]);
    assert_eq!(shown, get(&d, "/api/settings/retention").await);
    assert_eq!(shown["origin"], "manifest");
    let (ok, out, err) = super::run_cli(dir, &["retention", "show"]);
    assert!(ok, "{err}");
    assert!(out.contains("set by:     the manifest"), "{out}");

    // Three events, then keep at most one: applied at once.
    for _ in 0..3 {
        let (ok, out, err) = super::run_cli(dir, &["send-test", "stripe"]);
        assert!(ok, "send-test: {out} {err}");
    }
    let (ok, out, err) = super::run_cli(
        dir,
        &["retention", "set", "--max-age", "30d", "--max-events", "1"],
    );
    assert!(ok, "retention set: {err}");
    for line in [
        "max age:    30 days",
        "max events: 1 events",
        "set by:     settings",
        "applied:    2 events removed",
    ] {
        assert!(out.contains(line), "{line:?} missing from {out}");
    }
    let page = get(&d, "/api/events?limit=10").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "{page}");
    let now = get(&d, "/api/settings/retention").await;
    assert_eq!(
        (&now["max_age_days"], &now["max_events"], &now["origin"]),
        (&30.into(), &1.into(), &"settings".into())
    );

    // A limit not given stays; `none` lifts one.
    let after = retention_json(dir, &["set", "--max-events", "none"]);
    assert_eq!(after["max_age_days"], 30, "{after}");
    assert!(after["max_events"].is_null(), "{after}");

    // Bad input: the API's code and message, non-zero exit, nothing changed.
    let (ok, _, err) = super::run_cli(dir, &["retention", "set", "--max-age", "0"]);
    assert!(!ok);
    assert!(
        err.contains("invalid_retention (400): max_age_days:"),
        "{err}"
    );
    let (ok, _, err) = super::run_cli(dir, &["retention", "set", "--max-age", "forever"]);
    assert!(!ok);
    assert!(err.contains("not a whole number"), "{err}");
    let (ok, _, err) = super::run_cli(dir, &["retention", "set"]);
    assert!(!ok);
    assert!(err.contains("nothing to set"), "{err}");
    assert_eq!(retention_json(dir, &["show"]), retention_json(dir, &[]));
    assert_eq!(retention_json(dir, &[])["max_age_days"], 30);

    // reset: the manifest's again.
    let reset = retention_json(dir, &["reset"]);
    assert_eq!(reset["origin"], "manifest", "{reset}");
    assert_eq!(
        (&reset["max_age_days"], &reset["max_events"]),
        (&shown["max_age_days"], &shown["max_events"])
    );
}

#[test]
fn settings_commands_need_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["relays", "list"][..], &["retention"]] {
        let (ok, _, err) = super::run_cli(dir.path(), args);
        assert!(!ok, "{args:?}");
        assert!(err.contains("no Kite Desk daemon is running"), "{err}");
    }
}
