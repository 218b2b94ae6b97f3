//! The audit log's invariant: nothing reaches an upstream unless its audit
//! record is committed. Gatehouse is killed (SIGKILL) at the moment the
//! upstream has a call: after a restart the log holds the call's start,
//! marked as having no outcome, and the log still verifies.

use std::time::{Duration, Instant};

use crate::support::serve::Serve;
use crate::support::*;
use gatehouse::api::{AskChoice, ToolChoice};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_reached_the_upstream_is_in_the_log_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls.log");
    let upstream = fixture_server(
        "fx",
        &[
            ("CALLS_LOG", calls.display().to_string()),
            ("PURGE_HANG_S", "20".to_string()),
        ],
    );
    let mut gh = Serve::start(&config_text(&upstream), &[]);
    let (_, session) = gh
        .agent("Killed Mid-call", "fx", ToolChoice::All, AskChoice::None)
        .await;
    let call = tokio::spawn(async move { session.call("purge", json!({"word": "kiwi"})).await });
    // The moment the upstream has the call, Gatehouse dies.
    let deadline = Instant::now() + STEP;
    while !std::fs::read_to_string(&calls).is_ok_and(|c| c.contains("kiwi")) {
        assert!(
            Instant::now() < deadline,
            "the call never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    gh.kill();
    let _ = call.await;

    gh.restart();
    let log = gh.log();
    let purges: Vec<_> = log.iter().filter(|e| e["tool"] == "purge").collect();
    assert_eq!(purges.len(), 1, "one record of the call: {purges:?}");
    assert_eq!(purges[0]["kind"], "call_started", "{:?}", purges[0]);
    assert_eq!(purges[0]["detail"]["arguments"]["word"], "kiwi");
    // Exits non-zero unless every event holds.
    gh.cli_ok(&["log", "verify"]);
}
