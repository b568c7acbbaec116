//! The file sink: NDJSON lines in a real file.

use std::collections::BTreeSet;

use kitedesk_sinks::{Delivery, Failure, FileSink};

use crate::support::event;

fn delivery(id: &str) -> Delivery {
    Delivery::new(event(id, "com.acme.event", "https://acme.example"), "{}")
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn appends_one_cloudevent_line_per_event_creating_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/events.ndjson");
    let sink = FileSink::new(&path);
    for id in ["e1", "e2"] {
        let attempt = sink.deliver(&delivery(id)).await;
        assert!(attempt.is_delivered(), "{attempt:?}");
    }
    let got = lines(&path);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["id"], "e1");
    assert_eq!(got[1]["id"], "e2", "appended, in order");
    assert_eq!(got[1]["specversion"], "1.0");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "payloads are private to the user: {mode:o}"
        );
    }
}

#[tokio::test]
async fn concurrent_deliveries_never_interleave_within_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let sink = FileSink::new(&path);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let sink = sink.clone();
        tasks.spawn(async move {
            let mut d = delivery(&format!("e{i}"));
            // Lines of different, larger-than-a-page lengths.
            d.event.data = serde_json::json!({ "pad": "x".repeat(5000 + i * 97) }).into();
            sink.deliver(&d).await
        });
    }
    while let Some(attempt) = tasks.join_next().await {
        assert!(attempt.unwrap().is_delivered());
    }
    let ids: BTreeSet<String> = lines(&path)
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 40, "every line parses and none is lost");
}

#[tokio::test]
async fn an_unwritable_path_is_an_io_failure_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // The path is a directory: it cannot be opened for appending.
    let attempt = FileSink::new(dir.path()).deliver(&delivery("e1")).await;
    match attempt.failure() {
        Some(Failure::Io(why)) => assert!(why.contains(&dir.path().display().to_string()), "{why}"),
        other => panic!("expected an i/o failure, got {other:?}"),
    }
}
