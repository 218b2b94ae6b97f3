//! Pausing: `gatehouse pause` stops every agent's calls (or one agent's) with
//! a JSON-RPC error and an audit event, without revoking anything; listings
//! still answer; the pause survives a restart; `resume` lets calls through.

use crate::support::serve::Serve;
use crate::support::*;
use gatehouse::api::{AskChoice, ToolChoice};
use serde_json::{json, Value};

fn note() -> Value {
    json!({"title": "welcome"})
}

/// The JSON-RPC error a call got, or a panic if it went through.
async fn refused(session: &Session, what: &str) -> String {
    let (status, body) = session.call("read_note", note()).await;
    assert_eq!(status, 200, "{what}: {body}");
    assert!(
        body.get("result").is_none(),
        "{what}: the call went through: {body}"
    );
    assert_eq!(body["error"]["code"], -32003, "{what}: {body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_refuses_every_call_until_resumed_and_survives_a_restart() {
    let mut gh = Serve::start(&config_text(""), &[]);
    let (a, one) = gh
        .agent("Agent One", "demo", ToolChoice::All, AskChoice::None)
        .await;
    let (b, two) = gh
        .agent("Agent Two", "demo", ToolChoice::All, AskChoice::None)
        .await;
    assert!(one
        .call_text("read_note", note())
        .await
        .contains("Hello from"));

    let said = gh.cli_ok(&["pause"]);
    assert!(said.contains("PAUSED"), "{said}");
    let why = refused(&one, "paused").await;
    assert!(why.contains("paused every agent"), "{why}");
    refused(&two, "paused").await;
    // Agents stay connected and can still see what they hold.
    assert!(one.tool_names().await.contains(&"read_note".to_string()));
    let status = gh.cli_ok(&["status"]);
    assert!(status.contains("PAUSED"), "{status}");
    let log = gh.log();
    let refusal = log.iter().rev().find(|e| e["kind"] == "tool_call").unwrap();
    assert_eq!(refusal["outcome"], "denied", "{refusal}");
    assert_eq!(refusal["detail"]["paused"], true, "{refusal}");
    assert!(log
        .iter()
        .any(|e| e["kind"] == "paused" && e["actor"].as_str().unwrap().ends_with("(cli)")));

    gh.restart();
    let one = gh.session("demo", a.access()).await;
    let two = gh.session("demo", b.access()).await;
    refused(&one, "still paused after a restart").await;

    gh.cli_ok(&["resume"]);
    assert!(one
        .call_text("read_note", note())
        .await
        .contains("Hello from"));
    assert!(gh.log().iter().any(|e| e["kind"] == "resumed"));

    // One agent on its own: the other goes on.
    let said = gh.cli_ok(&["pause", &a.client_id]);
    assert!(said.contains(&a.client_id), "{said}");
    let why = refused(&one, "this agent paused").await;
    assert!(why.contains("this agent is paused"), "{why}");
    assert!(two
        .call_text("read_note", note())
        .await
        .contains("Hello from"));
    let agents = gh.cli_json(&["agents"]);
    let paused: Vec<&Value> = agents
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| !x["paused"].is_null())
        .collect();
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0]["client_id"], a.client_id.as_str());
    gh.cli_ok(&["resume", &a.client_id]);
    assert!(one
        .call_text("read_note", note())
        .await
        .contains("Hello from"));
    // Nothing was revoked along the way.
    assert_eq!(gh.cli_json(&["grants"]).as_array().unwrap().len(), 2);
}

#[test]
fn pausing_an_unknown_agent_says_so() {
    let gh = Serve::start(&config_text(""), &[]);
    let out = gh.cli(&["pause", "Nobody"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Nobody"), "{err}");
    let status = gh.cli_ok(&["status"]);
    assert!(!status.contains("PAUSED"), "{status}");
}
