//! An agent with a narrow grant trying to get more out of the gateway than
//! the person allowed: calls that skip the policy, sessions that are not its
//! own, more sessions than it may hold, arguments that hide what a call does.

use super::{assert_unchanged, stored};
use crate::support::*;
use gatehouse::api::{AskChoice, ToolChoice};
use serde_json::{json, Value};

/// An agent allowed only the read-only tools of `demo`, with a session.
async fn reader(fx: &Fixture) -> (Grantee, Session) {
    fx.agent("Reader", "demo", ToolChoice::ReadOnly, AskChoice::default())
        .await
}

/// Whether a note with this title exists (read with the agent's own grant).
async fn note_exists(session: &Session, title: &str) -> bool {
    session
        .call_text("list_notes", json!({}))
        .await
        .contains(title)
}

/// A governed method sent as a JSON-RPC notification (no `id`): refused,
/// audited as denied, never forwarded.
async fn as_notification(method: &str, params: Value) {
    let fx = Fixture::start("").await;
    let (_, session) = reader(&fx).await;
    let before = stored(&fx);
    let r = session
        .post(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
        .await;
    assert_eq!(r.status(), 400, "{method}");
    let refused = fx.audit_rows().into_iter().last().unwrap();
    assert_eq!(refused.1, "denied", "{refused:?}");
    assert_eq!(refused.3["notification"], true, "{refused:?}");
    assert!(!note_exists(&session, "pwned").await, "the call never ran");
    assert_unchanged(&fx, &before);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_call_sent_as_a_notification() {
    as_notification(
        "tools/call",
        json!({"name": "write_note", "arguments": {"title": "pwned", "text": "x"}}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_read_sent_as_a_notification() {
    as_notification("resources/read", json!({"uri": "note://pwned"})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_method_sent_as_a_notification() {
    as_notification("tools/delete", json!({"name": "write_note"})).await;
}

/// A message the gateway cannot check as one request: refused whole.
async fn unreadable(body: Value) {
    let fx = Fixture::start("").await;
    let (_, session) = reader(&fx).await;
    let r = session.post(&body).await;
    assert_eq!(r.status(), 400, "{body}");
    assert!(!note_exists(&session, "pwned").await);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_call_hidden_in_a_batch() {
    let write = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "write_note", "arguments": {"title": "pwned", "text": "x"}}});
    let list = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"});
    unreadable(json!([list, write])).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_call_without_jsonrpc_version() {
    unreadable(json!({"id": 9, "method": "tools/call", "params": {"name": "write_note", "arguments": {"title": "pwned", "text": "x"}}})).await;
}

/// A tool the grant does not hold, named exactly or in disguise.
async fn ungranted(method: &str, tool: &str) {
    let fx = Fixture::start("").await;
    let (_, session) = reader(&fx).await;
    let (status, body) = session
        .request(
            method,
            json!({"name": tool, "arguments": {"title": "pwned", "text": "x"}}),
        )
        .await;
    assert!(
        body["error"].is_object() || status >= 400,
        "{tool}: {status} {body}"
    );
    assert!(body.get("result").is_none(), "{body}");
    assert!(!note_exists(&session, "pwned").await, "{tool} ran");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ungranted_tool_called_by_name() {
    ungranted("tools/call", "write_note").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ungranted_tool_called_in_other_case() {
    ungranted("tools/call", "Write_Note").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ungranted_tool_called_with_a_trailing_nul() {
    ungranted("tools/call", "write_note\u{0}").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ungranted_tool_called_through_a_method_in_other_case() {
    ungranted("TOOLS/CALL", "write_note").await;
}

/// Another agent's session id, with the attacker's own valid token.
#[tokio::test(flavor = "multi_thread")]
async fn session_hijack_with_another_agents_token() {
    let fx = Fixture::start("").await;
    let (_, victim) = fx
        .agent("Victim", "demo", ToolChoice::All, AskChoice::default())
        .await;
    let (attacker, _) = reader(&fx).await;
    let before = stored(&fx);
    let hijacked = victim.with_token(attacker.access());
    let (status, body) = hijacked
        .call("write_note", json!({"title": "pwned", "text": "x"}))
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(!note_exists(&victim, "pwned").await);
    assert_unchanged(&fx, &before);
    fx.stop().await;
}

/// A session id guessed or made up.
#[tokio::test(flavor = "multi_thread")]
async fn session_id_made_up() {
    let fx = Fixture::start("").await;
    let (agent, _) = reader(&fx).await;
    let fake = Session::new(
        fx.http.clone(),
        fx.resource("demo"),
        agent.access(),
        "00000000-0000-0000-0000-000000000000".into(),
    );
    let (status, _) = fake.call("list_notes", json!({})).await;
    assert_eq!(status, 404);
    fx.stop().await;
}

/// One agent opening session after session (each one an upstream process):
/// it never holds more than 10; opening another closes the one it used least
/// recently (a client that forgets to end sessions keeps working).
#[tokio::test(flavor = "multi_thread")]
async fn session_flood_from_one_agent() {
    let fx = Fixture::start("").await;
    let agent = fx.tokens_for("Flooder", ToolChoice::ReadOnly).await;
    let mut sessions = Vec::new();
    for _ in 0..10 {
        sessions.push(fx.session("demo", agent.access()).await);
    }
    // Use all but the first, so the first is the least recently used.
    for s in &sessions[1..] {
        assert!(!s.tool_names().await.is_empty());
    }
    let newest = fx.session("demo", agent.access()).await;
    assert!(!newest.tool_names().await.is_empty());
    let (status, _) = sessions[0].request("tools/list", json!({})).await;
    assert_eq!(status, 404, "the least recently used session was closed");
    for s in &sessions[1..] {
        let (status, _) = s.request("tools/list", json!({})).await;
        assert_eq!(status, 200, "the others live on");
    }
    assert_eq!(fx.api().status().unwrap().sessions, 10);
    fx.stop().await;
}

/// A held call whose padding argument would push the one that matters out
/// of view: what the call acts on comes first, and cuts are said.
#[tokio::test(flavor = "multi_thread")]
async fn held_call_hides_its_target_behind_padding() {
    let fx = Fixture::start("").await;
    let (_, session) = fx
        .agent("Agent", "demo", ToolChoice::All, AskChoice::default())
        .await;
    let padding = "a".repeat(20_000);
    let held = session.call_later(
        "delete_note",
        json!({"aaaa": padding, "title": "the one that matters"}),
    );
    let item = fx.wait_for_pending("tool_call").await;
    let fields = item["argument_fields"].as_array().unwrap();
    assert_eq!(fields[0]["name"], "title", "{fields:?}");
    assert_eq!(fields[0]["preview"], "\"the one that matters\"");
    assert_eq!(fields[0]["cut"], 0);
    let pad = fields.iter().find(|f| f["name"] == "aaaa").unwrap();
    assert!(
        pad["cut"].as_u64().unwrap() > 19_000,
        "the cut is said: {pad}"
    );
    assert_eq!(
        item["arguments"]["aaaa"].as_str().unwrap().len(),
        20_000,
        "nothing lost"
    );
    let (_, out, _) = crate::support::serve::run(&fx.data_dir, &["pending"]);
    let title = out.find("the one that matters").expect("shown");
    let cut = out.find("more character").expect("the cut is said");
    assert!(title < cut, "{out}");
    fx.deny_held(&item, held).await;
    fx.stop().await;
}
