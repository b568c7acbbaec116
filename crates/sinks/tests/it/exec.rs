//! The exec sink with real commands under `sh`.

use std::path::Path;
use std::time::Duration;

use kitedesk_sinks::{
    Delivery, ExecCommand, ExecSink, ExecSinkConfig, Failure, Outcome, Schedule, next_delay,
};

use crate::support::{event, github_delivery};

fn shell(line: &str, dir: &Path) -> ExecSink {
    let mut config = ExecSinkConfig::new(ExecCommand::Shell(line.into()));
    config.current_dir = Some(dir.to_path_buf());
    ExecSink::new(config).unwrap()
}

#[tokio::test]
async fn a_command_that_fails_once_succeeds_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("flaky.sh");
    std::fs::write(
        &script,
        "state=\"$1\"\n\
         if [ -e \"$state\" ]; then echo 'second run'; exit 0; fi\n\
         touch \"$state\"\n\
         echo 'first run: not ready' >&2\n\
         exit 3\n",
    )
    .unwrap();
    let sink = ExecSink::new(ExecSinkConfig::new(ExecCommand::Argv(vec![
        "sh".into(),
        script.display().to_string(),
        dir.path().join("state").display().to_string(),
    ])))
    .unwrap();
    let d = github_delivery();
    let schedule = Schedule::default();

    let first = sink.deliver(&d).await;
    assert_eq!(first.failure(), Some(&Failure::Exit(3)));
    assert_eq!(
        first.stderr.as_ref().unwrap().as_text(),
        Some("first run: not ready\n"),
        "stderr is kept with the failed attempt"
    );
    assert!(
        next_delay(1, &schedule, 0.5).is_some(),
        "one failure is far from dead-lettering"
    );

    let second = sink.deliver(&d).await;
    assert_eq!(second.outcome, Outcome::Delivered, "{second:?}");
    assert_eq!(
        second.stdout.as_ref().unwrap().as_text(),
        Some("second run\n"),
        "stdout is captured, not written to ours"
    );
}

#[tokio::test]
async fn the_command_gets_the_cloudevent_on_stdin_and_kite_variables() {
    let dir = tempfile::tempdir().unwrap();
    let sink = shell(
        "cat > stdin.json && \
         printf '%s\\n' \"$KITE_EVENT_ID\" \"$KITE_EVENT_TYPE\" \"$KITE_EVENT_SOURCE\" \
           \"$KITE_SOURCE\" \"$KITE_IMPORTANCE\" \"$KITE_SUMMARY\" > env.txt",
        dir.path(),
    );
    let d = github_delivery();
    let attempt = sink.deliver(&d).await;
    assert!(attempt.is_delivered(), "{attempt:?}");

    let stdin = std::fs::read_to_string(dir.path().join("stdin.json")).unwrap();
    assert!(stdin.ends_with('\n') && stdin.matches('\n').count() == 1);
    let ce: serde_json::Value = serde_json::from_str(&stdin).unwrap();
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["id"], d.event.id.as_str());
    assert_eq!(&ce["data"], d.event.data.value());

    let env = std::fs::read_to_string(dir.path().join("env.txt")).unwrap();
    assert_eq!(
        env.lines().collect::<Vec<_>>(),
        [
            d.event.id.as_str(),
            "com.github.ping",
            "https://getkite.sh/hooks/team_abc/github",
            "github",
            "high",
            d.event.summary.as_str(),
        ]
    );
}

#[tokio::test]
async fn shell_metacharacters_in_event_fields_are_never_executed() {
    let dir = tempfile::tempdir().unwrap();
    let mut ev = event(
        "$(touch pwned-id)",
        "com.evil.`touch pwned-type`",
        "https://x.example/';touch pwned-source;'",
    );
    ev.summary = "\"; touch pwned-summary; echo \" && touch pwned-and | tee pwned-pipe".into();
    let d = Delivery::new(ev.clone(), "{}");
    let sink = shell(
        "cat > /dev/null; printf '%s' \"$KITE_SUMMARY\" > summary.txt; \
         printf '%s' \"$KITE_EVENT_ID\" > id.txt",
        dir.path(),
    );
    let attempt = sink.deliver(&d).await;
    assert!(attempt.is_delivered(), "{attempt:?}");

    assert_eq!(
        std::fs::read_to_string(dir.path().join("summary.txt")).unwrap(),
        ev.summary,
        "the summary arrives as data, unchanged"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("id.txt")).unwrap(),
        ev.id
    );
    let pwned: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pwned"))
        .collect();
    assert!(pwned.is_empty(), "event data was executed: {pwned:?}");
}

#[tokio::test]
async fn a_command_that_ignores_stdin_and_exits_zero_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let mut ev = event("big", "com.acme.event", "https://acme.example");
    // Far more than a pipe buffer (64 KiB): writing it to a command that
    // has exited must hit EPIPE, which is not a failure.
    ev.data = serde_json::json!({ "blob": "x".repeat(1 << 20) }).into();
    let d = Delivery::new(ev, "{}");
    let attempt = shell("exit 0", dir.path()).deliver(&d).await;
    assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
}

#[tokio::test]
async fn large_output_is_drained_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB on each stream: a command blocked on a full pipe would never exit.
    let attempt = shell(
        "head -c 1048576 /dev/zero | tr '\\0' o; head -c 1048576 /dev/zero | tr '\\0' e >&2",
        dir.path(),
    )
    .deliver(&github_delivery())
    .await;
    assert!(attempt.is_delivered(), "{attempt:?}");
    let stdout = attempt.stdout.unwrap();
    let stderr = attempt.stderr.unwrap();
    assert_eq!(stdout.as_bytes().len(), kitedesk_sinks::CAPTURE_LIMIT);
    assert!(stdout.is_truncated() && stderr.is_truncated());
    assert!(stderr.as_bytes().iter().all(|b| *b == b'e'));
}

#[tokio::test]
async fn a_timed_out_command_is_killed_with_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("held");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());

    // The grandchild `sleep` holds the FIFO's write end: the reader below
    // sees EOF exactly when every process holding it has died. A plain
    // thread, not the runtime's blocking pool: if the kill never came, the
    // test fails at its own timeout instead of hanging the runtime.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let reader_path = fifo.clone();
    std::thread::spawn(move || {
        let read = std::fs::read(&reader_path);
        let _ = done_tx.send(read.map(|b| b.len()));
    });

    let mut config = ExecSinkConfig::new(ExecCommand::Shell("sleep 30 > held & wait".into()));
    config.current_dir = Some(dir.path().to_path_buf());
    config.timeout = Duration::from_millis(500);
    let sink = ExecSink::new(config).unwrap();
    let attempt = sink.deliver(&github_delivery()).await;

    assert_eq!(
        attempt.failure(),
        Some(&Failure::Timeout(Duration::from_millis(500)))
    );
    assert!(
        attempt.latency < Duration::from_secs(10),
        "the attempt ended at its timeout, not when sleep would (30 s): {:?}",
        attempt.latency
    );
    let closed = tokio::time::timeout(Duration::from_secs(10), done_rx).await;
    assert!(
        matches!(closed, Ok(Ok(Ok(_)))),
        "the backgrounded sleep was killed with the group: {closed:?}"
    );
}

#[tokio::test]
async fn exit_codes_signals_and_missing_programs_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = github_delivery();

    let attempt = shell("echo 'no such table' >&2; exit 7", dir.path())
        .deliver(&d)
        .await;
    assert_eq!(attempt.failure(), Some(&Failure::Exit(7)));
    assert_eq!(attempt.stderr.unwrap().as_text(), Some("no such table\n"));

    let attempt = shell("cat > /dev/null; kill -TERM $$", dir.path())
        .deliver(&d)
        .await;
    assert_eq!(attempt.failure(), Some(&Failure::Signal(15)));

    let missing = ExecSink::new(ExecSinkConfig::new(ExecCommand::Argv(vec![
        "/nonexistent/kitedesk-hook".into(),
    ])))
    .unwrap();
    match missing.deliver(&d).await.failure() {
        Some(Failure::Spawn(why)) => assert!(
            why.contains("/nonexistent/kitedesk-hook"),
            "names the command: {why}"
        ),
        other => panic!("expected a spawn failure, got {other:?}"),
    }

    assert!(
        ExecSink::new(ExecSinkConfig::new(ExecCommand::Argv(vec![]))).is_err(),
        "an empty argv is refused when the sink is built"
    );
    assert!(ExecSink::new(ExecSinkConfig::new(ExecCommand::Shell("  ".into()))).is_err());
}

#[tokio::test]
async fn the_daemon_environment_does_not_leak_into_the_command() {
    // Cargo sets CARGO_MANIFEST_DIR for this test process; it stands in for
    // a daemon variable such as KITEDESK_GITHUB_SECRET.
    assert!(
        std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
        "precondition: the test process has the variable"
    );
    let dir = tempfile::tempdir().unwrap();
    let sink = shell(
        "printf '%s|%s\\n' \"${CARGO_MANIFEST_DIR-unset}\" \"${PATH:+has-path}\" > env.txt",
        dir.path(),
    );
    let attempt = sink.deliver(&github_delivery()).await;
    assert!(attempt.is_delivered(), "{attempt:?}");
    let env = std::fs::read_to_string(dir.path().join("env.txt")).unwrap();
    assert_eq!(
        env, "unset|has-path\n",
        "only the allow-listed variables are inherited"
    );
}
