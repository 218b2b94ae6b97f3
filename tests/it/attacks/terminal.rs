//! Outside text that tries to drive the person's terminal: escape sequences
//! (colours, the window title, OSC 8 links, OSC 52 clipboard writes), bells,
//! carriage returns that overwrite a line, bidi overrides that reorder it.
//! Every CLI output shows such text inert (`\u{1B}`); (tool names and
//! descriptions from an upstream: see `upstream`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use super::assert_inert;
use crate::support::serve::run;
use crate::support::*;
use gatehouse::api::{AskChoice, ToolChoice};
use serde_json::json;

/// A tool name built to attack a terminal: a title change, a clipboard
/// write, a line overwrite and a bidi override.
const HOSTILE: &str = "\u{1b}]0;owned\u{07}\u{1b}]52;c;cm0gLXJmIH4=\u{07}\rok\u{202E}gnp.exe";

/// An agent that calls the hostile "tool" (refused: it does not exist, but audited).
async fn hostile_call(fx: &Fixture) {
    let (_, session) = fx
        .agent("Agent", "demo", ToolChoice::ReadOnly, AskChoice::default())
        .await;
    let (_, body) = session.call(HOSTILE, json!({})).await;
    assert!(body["error"].is_object(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_name_in_the_log() {
    let fx = Fixture::start("").await;
    hostile_call(&fx).await;
    let (code, out, _) = run(&fx.data_dir, &["log"]);
    assert_eq!(code, 0);
    assert_inert(&out);
    assert!(out.contains("\\u{1B}]0;owned"), "shown, not hidden: {out}");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_name_in_the_log_as_json() {
    let fx = Fixture::start("").await;
    hostile_call(&fx).await;
    let (code, out, _) = run(&fx.data_dir, &["--json", "log"]);
    assert_eq!(code, 0);
    assert_inert(&out);
    let events: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["tool"] == HOSTILE),
        "the JSON still carries the exact name: {out}"
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_name_in_the_followed_log() {
    let fx = Fixture::start("").await;
    let mut follow = Command::new(gatehouse_bin())
        .arg("--data-dir")
        .arg(&fx.data_dir)
        .args(["log", "--follow", "--limit", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, rx) = mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            if lines
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    hostile_call(&fx).await;
    let mut seen = String::new();
    while !seen.contains("owned") {
        let line = rx
            .recv_timeout(STEP)
            .expect("the followed log shows the call");
        seen.push_str(&line);
        seen.push('\n');
    }
    follow.kill().unwrap();
    follow.wait().unwrap();
    assert_inert(&seen);
    fx.stop().await;
}

/// An agent name built the same way, in `pending` and `agents`.
#[tokio::test(flavor = "multi_thread")]
async fn agent_name_in_pending_and_agents() {
    let fx = Fixture::start("").await;
    let name = format!("Agent{HOSTILE}");
    let client_id = fx.register(&name).await;
    fx.authorize(&fx.authorize_url(&client_id, &[])).await;
    for args in [
        &["pending"][..],
        &["agents"],
        &["--json", "pending"],
        &["--json", "agents"],
    ] {
        let (code, out, _) = run(&fx.data_dir, args);
        assert_eq!(code, 0, "{args:?}");
        assert_inert(&out);
        assert!(out.contains("owned"), "{args:?}: {out}");
    }
    fx.stop().await;
}

/// An argument the agent chose, in the held-call prompt.
#[tokio::test(flavor = "multi_thread")]
async fn argument_in_a_held_call() {
    let fx = Fixture::start("").await;
    let (_, session) = fx
        .agent("Agent", "demo", ToolChoice::All, AskChoice::default())
        .await;
    let held = session.call_later("delete_note", json!({"title": HOSTILE}));
    let item = fx.wait_for_pending("tool_call").await;
    let (_, out, _) = run(&fx.data_dir, &["pending"]);
    assert_inert(&out);
    assert!(out.contains("owned"), "{out}");
    fx.deny_held(&item, held).await;
    fx.stop().await;
}

/// What the person typed, echoed back in an error message.
#[tokio::test(flavor = "multi_thread")]
async fn name_echoed_in_an_error() {
    let fx = Fixture::start("").await;
    for args in [
        &["revoke", HOSTILE][..],
        &["log", "--agent", HOSTILE],
        &["approve", HOSTILE],
        &["grants", "--agent", HOSTILE],
    ] {
        let (_, out, err) = run(&fx.data_dir, args);
        assert_inert(&out);
        assert_inert(&err);
    }
    fx.stop().await;
}
