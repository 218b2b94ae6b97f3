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

/// An HTTP MCP server (in this process) that keeps its tasks for the login
/// it is reached with, as MCP 2025-11-25 asks, not for the session: every
/// session sees every task. Its tool `research` runs as a task when asked
/// to. Its URL, and the task ids that `tasks/get`, `tasks/result` and
/// `tasks/cancel` named to it.
async fn server_with_tasks_for_its_login() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>)
{
    use axum::response::IntoResponse;
    use std::sync::{Arc, Mutex};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let tasks: Arc<Mutex<Vec<String>>> = Arc::default();
    let named: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = named.clone();
    let answer = move |body: axum::body::Bytes| {
        let (tasks, named) = (tasks.clone(), named.clone());
        async move {
            let msg: Value = serde_json::from_slice(&body).unwrap_or_default();
            let task = |id: &str| {
                json!({"taskId": id, "status": "completed", "ttl": 60000,
                "createdAt": "2026-12-03T00:00:00Z", "lastUpdatedAt": "2026-12-03T00:00:00Z"})
            };
            let method = msg["method"].as_str().unwrap_or_default();
            // Every task id the message names, wherever it names one.
            let params = &msg["params"];
            let related = &params["_meta"]["io.modelcontextprotocol/related-task"]["taskId"];
            for id in [&params["taskId"], &params["task"]["taskId"], related] {
                if let Some(id) = id.as_str() {
                    named.lock().unwrap().push(id.to_string());
                }
            }
            let result = match method {
                "initialize" => json!({"protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}, "tasks": {"list": {}, "cancel": {},
                        "requests": {"tools": {"call": {}}}}},
                    "serverInfo": {"name": "tasks", "version": "1"}}),
                "tools/list" => json!({"tools": [{"name": "research",
                    "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true},
                    "execution": {"taskSupport": "optional"}}]}),
                "tools/call" if msg["params"].get("task").is_some() => {
                    let mut tasks = tasks.lock().unwrap();
                    let id = format!("task-{}", tasks.len() + 1);
                    tasks.push(id.clone());
                    json!({"task": task(&id)})
                }
                "tools/call" => json!({"content": [{"type": "text", "text": "at once"}]}),
                "tasks/list" => {
                    let all: Vec<Value> = tasks.lock().unwrap().iter().map(|t| task(t)).collect();
                    json!({"tasks": all})
                }
                "tasks/get" => {
                    // The status of every task first, as a server that keeps
                    // them for its login might send them to every session.
                    let mut events = String::new();
                    for t in tasks.lock().unwrap().iter() {
                        let status = json!({"jsonrpc": "2.0",
                            "method": "notifications/tasks/status", "params": task(t)});
                        events += &format!("event: message\ndata: {status}\n\n");
                    }
                    let id = msg["params"]["taskId"].as_str().unwrap_or("");
                    let answer = json!({"jsonrpc": "2.0", "id": msg["id"], "result": task(id)});
                    events += &format!("event: message\ndata: {answer}\n\n");
                    let headers = [
                        ("content-type", "text/event-stream"),
                        ("mcp-session-id", "tasks-1"),
                    ];
                    return (headers, events).into_response();
                }
                "tasks/cancel" => task(msg["params"]["taskId"].as_str().unwrap_or("")),
                "tasks/result" => {
                    let id = msg["params"]["taskId"].as_str().unwrap_or("");
                    json!({"content": [{"type": "text", "text": format!("findings of {id}")}]})
                }
                _ if msg.get("id").is_none() => {
                    return axum::http::StatusCode::ACCEPTED.into_response()
                }
                _ => json!({}),
            };
            let answer = json!({"jsonrpc": "2.0", "id": msg["id"], "result": result});
            ([("mcp-session-id", "tasks-1")], axum::Json(answer)).into_response()
        }
    };
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(answer)
            .get(|| async { axum::http::StatusCode::METHOD_NOT_ALLOWED })
            .delete(|| async { axum::http::StatusCode::OK }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Two agents on a server that keeps tasks for its login (the same login
/// for both, through Gatehouse): each gets, lists, cancels and hears the
/// status of only its own tasks. Another agent's task id is unknown to it (invalid params, as MCP
/// answers a task that is not the requester's), audited as refused, and
/// never reaches the server. Reading its own task's result is audited.
#[tokio::test(flavor = "multi_thread")]
async fn another_agents_task_is_unknown_to_it() {
    let (url, named) = server_with_tasks_for_its_login().await;
    let fx = Fixture::start_with(&format!("port = 0\n[servers.tasks]\nurl = {url:?}\n")).await;
    let (_, alice) = fx
        .agent("Alice", "tasks", ToolChoice::All, AskChoice::None)
        .await;
    let (_, mallory) = fx
        .agent("Mallory", "tasks", ToolChoice::All, AskChoice::None)
        .await;
    let research = json!({"name": "research", "arguments": {}, "task": {"ttl": 60000}});
    let created = alice.ok("tools/call", research.clone()).await;
    let alices = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    let created = mallory.ok("tools/call", research).await;
    let mallorys = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(alices, mallorys);

    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let (status, body) = mallory.request(method, json!({"taskId": alices})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["error"]["code"], -32602, "{method}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no task"),
            "{body}"
        );
        let (_, none) = mallory.request(method, json!({})).await;
        assert_eq!(
            none["error"]["code"], -32602,
            "{method} without a task id: {none}"
        );
    }
    // Nor may a call name Alice's task: as the task it would create (an
    // early draft had the requester choose the id) or as the one it is about.
    let named_call = [
        json!({"name": "research", "arguments": {}, "task": {"taskId": alices}}),
        json!({"name": "research", "arguments": {}, "_meta": {"io.modelcontextprotocol/related-task": {"taskId": alices}}}),
    ];
    for params in named_call {
        let (status, body) = mallory.request("tools/call", params).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["error"]["code"], -32602, "{body}");
    }
    assert!(
        !named.lock().unwrap().contains(&alices),
        "Alice's task reached the server for Mallory"
    );
    let listed = mallory.ok("tasks/list", json!({})).await;
    let ids: Vec<&str> = listed["result"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mallorys.as_str()], "{listed}");

    // Alice's own task is hers to get, read and list.
    // Each hears the status of its own tasks only.
    let get = |id: &str| json!({"jsonrpc": "2.0", "id": 90, "method": "tasks/get", "params": {"taskId": id}});
    let heard = mallory.post(&get(&mallorys)).await.text().await.unwrap();
    assert!(heard.contains("notifications/tasks/status"), "{heard}");
    assert!(heard.contains("\"id\":90"), "the answer: {heard}");
    assert!(
        !heard.contains(&format!("\"{alices}\"")),
        "Alice's status reached Mallory: {heard}"
    );
    let heard = alice.post(&get(&alices)).await.text().await.unwrap();
    assert!(heard.contains("\"status\":\"completed\""), "{heard}");
    assert!(
        !heard.contains(&format!("\"{mallorys}\"")),
        "Mallory's status reached Alice: {heard}"
    );
    let result = alice.ok("tasks/result", json!({"taskId": alices})).await;
    assert_eq!(
        result["result"]["content"][0]["text"],
        format!("findings of {alices}")
    );
    let listed = alice.ok("tasks/list", json!({})).await;
    assert_eq!(
        listed["result"]["tasks"].as_array().unwrap().len(),
        1,
        "{listed}"
    );

    let rows = fx.audit_rows();
    let refused: Vec<_> = rows
        .iter()
        .filter(|r| r.1 == "denied" && r.2.as_deref() == Some("tasks/result"))
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "Mallory's two tasks/result, audited: {rows:?}"
    );
    let refused_calls = rows
        .iter()
        .filter(|r| r.1 == "denied" && r.2.as_deref() == Some("research"));
    assert_eq!(
        refused_calls.count(),
        2,
        "Mallory's two calls naming Alice's task"
    );
    let call = rows.iter().find(|r| r.0 == "tool_call").unwrap();
    assert_eq!(
        call.3["task"],
        json!(alices),
        "the call names the task it created"
    );
    let results: Vec<_> = rows.iter().filter(|r| r.0 == "task_result").collect();
    assert_eq!(results.len(), 1, "Alice's tasks/result, audited: {rows:?}");
    assert_eq!(results[0].1, "allowed");
    assert_eq!(results[0].2.as_deref(), Some("research"));
    assert_eq!(results[0].3["task"], json!(alices));
}
