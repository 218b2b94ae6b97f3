//! A malicious (or compromised) MCP server behind Gatehouse: it prints the
//! secret it was given, and names and describes its tools with escape
//! sequences meant for the person's terminal.

use super::assert_inert;
use crate::support::serve::Serve;
use gatehouse::api::{AskChoice, ToolChoice};
use serde_json::json;

const SECRET: &str = "sk-hostile-0a1b2c3d4e5f-never-print";

fn hostile_gatehouse() -> Serve {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hostile_upstream.py"
    );
    let toml = format!(
        "secret_store = \"file\"\n[servers.evil]\ncommand = \"python3\"\nargs = [{script:?}]\n\
         env = {{ API_KEY = {{ secret = \"API_KEY\" }} }}\n"
    );
    let serve = Serve::start(&toml, &[("RUST_LOG", "debug")]);
    let config = serve.config_path();
    let set = serve.cli_with_stdin(
        &[
            "secret",
            "set",
            "evil",
            "API_KEY",
            "--config",
            config.to_str().unwrap(),
        ],
        &format!("{SECRET}\n"),
    );
    assert!(set.status.success(), "{set:?}");
    serve
}

/// What the upstream prints (stderr, non-JSON stdout) reaches the serve log
/// without the secret it was given, and inert.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_prints_its_secret() {
    let mut serve = hostile_gatehouse();
    let (_, session) = serve
        .agent("Agent", "evil", ToolChoice::ReadOnly, AskChoice::None)
        .await;
    let (_, body) = session.call("lookup", json!({"word": "w"})).await;
    assert_eq!(body["result"]["content"][0]["text"], "ok", "{body}");
    serve.stop();
    let log = std::fs::read_to_string(serve.log_path()).unwrap();
    assert!(
        log.contains("connecting with API_KEY=[redacted]"),
        "relayed, redacted: {log}"
    );
    assert!(log.contains("token [redacted]"), "{log}");
    assert!(!log.contains(SECRET), "{log}");
}

/// The tool names and descriptions reach `pending`, `grants` and `agents` inert.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_tool_names_reach_the_terminal() {
    let mut serve = hostile_gatehouse();
    let client_id = serve.register("Agent").await;
    let (status, _) = serve
        .authorize(&serve.authorize_url(&client_id, &[("resource", &serve.resource("evil"))]))
        .await;
    assert_eq!(status, 303);
    serve.wait_for_pending("authorization").await;
    let out = serve.cli_ok(&["pending"]);
    assert_inert(&out);
    assert!(out.contains("owned"), "the tool is shown, inert: {out}");
    let json_out = serve.cli_ok(&["--json", "pending"]);
    assert_inert(&json_out);
    serve
        .approve(
            "Agent",
            ToolChoice::All,
            gatehouse::api::DurationChoice::Forever,
        )
        .await;
    for args in [
        &["grants"][..],
        &["agents"],
        &["--json", "grants"],
        &["status"],
    ] {
        let out = serve.cli_ok(args);
        assert_inert(&out);
    }
    assert!(serve.cli_ok(&["grants"]).contains("owned"));
    serve.stop();
}

/// A tool definition that names a member twice reaches the agent as
/// Gatehouse read it (each member once), never as the upstream wrote it: an
/// agent whose parser keeps a member's first value must not read another
/// name or description than the ones the grant and the pin were checked on.
/// And an unfiltered listing sent first with the request's id as a float,
/// or with its id and a method beside the result (either of which some SDKs
/// would take for the answer), never reaches the agent.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_named_twice_reaches_the_agent_as_gatehouse_read_it() {
    let mut serve = hostile_gatehouse();
    let (_, session) = serve
        .agent("Agent", "evil", ToolChoice::ReadOnly, AskChoice::None)
        .await;
    let list = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}});
    let listed = session.post(&list).await.text().await.unwrap();
    assert!(!listed.contains("erase"), "{listed}");
    assert_eq!(listed.matches("\"name\"").count(), 1, "{listed}");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let tool = &listed["result"]["tools"][0];
    assert_eq!(tool["name"], "lookup", "{listed}");
    assert_eq!(tool["description"], "Look a word up.", "{listed}");
    serve.stop();
}

/// A tool's name is one scope, whatever it holds: `lookup tools:destructive`
/// is advertised as one scope token, and asking for it reaches the person
/// as that one tool, never as `lookup` and every destructive tool. A tool
/// named `@resources` is neither offered nor listed, and calling it is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_tool_name_cannot_add_scopes() {
    let mut serve = hostile_gatehouse();
    let prm = serve
        .get_json("/.well-known/oauth-protected-resource/mcp/evil")
        .await;
    let supported: Vec<&str> = prm["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let token = |s: &&str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && c != '"');
    assert!(supported.iter().all(token), "{supported:?}");
    assert!(!supported.iter().any(|s| s.contains('@')), "{supported:?}");
    let loud = supported
        .iter()
        .find(|s| s.starts_with("tool:lookup") && **s != "tool:lookup")
        .expect("the tool with a space is offered");

    let client_id = serve.register("Agent").await;
    let url = serve.authorize_url(
        &client_id,
        &[("resource", &serve.resource("evil")), ("scope", loud)],
    );
    let (status, _) = serve.authorize(&url).await;
    assert_eq!(status, 303);
    let pending = serve.wait_for_pending("authorization").await;
    let asked: Vec<&str> = pending["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(asked, ["lookup tools:destructive"], "{pending}");

    let (_, session) = serve
        .agent("Everything", "evil", ToolChoice::All, AskChoice::None)
        .await;
    let names = session.tool_names().await;
    assert!(
        names.iter().any(|n| n == "lookup tools:destructive"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n == "@resources"), "{names:?}");
    let (_, body) = session.call("@resources", json!({})).await;
    assert!(body["result"]["content"][0]["text"] != "ok", "{body}");
    // Refused outright: a step-up would ask for a grant no call can use,
    // and a client that steps up on its own would ask again and again.
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no tool is named"), "{body}");
    serve.stop();
}

/// A server that floods notifications while no request runs and no GET
/// stream is open: Gatehouse keeps 16 MiB of them for the stream, not all
/// 40 MiB (nor the 4 GiB 256 messages of the 16 MiB cap could hold), and
/// the session still works.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_server_messages_is_kept_within_the_backlog() {
    let mut serve = hostile_gatehouse();
    let (_, session) = serve
        .agent("Agent", "evil", ToolChoice::ReadOnly, AskChoice::None)
        .await;
    let done = serve.dir().join("flooded");
    let args = json!({"word": "flood", "done": done.to_str().unwrap()});
    assert_eq!(session.call_text("lookup", args).await, "ok");
    for _ in 0..200 {
        if done.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(done.exists(), "the server flooded");
    // The pipe holds at most 64 KiB: Gatehouse has read all but the last.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let mut stream = session.open_stream().await;
    assert_eq!(stream.status(), 200);
    let mut received = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = stream.chunk().await {
            received.extend_from_slice(&chunk);
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), read).await;
    let text = String::from_utf8_lossy(&received);
    let kept = text.matches("\"flood ").count();
    assert!((1..=16).contains(&kept), "{kept} of 40 kept");
    assert_eq!(
        session.call_text("lookup", json!({"word": "w"})).await,
        "ok"
    );
    serve.stop();
}

/// An HTTP MCP server (in this process) that hangs both ways a server can:
/// it takes calls of its one tool, `hang`, and never answers them, and its
/// GET stream sends a notification every 100 ms and never ends, not even
/// after its session's DELETE. Its URL.
async fn server_that_never_answers() -> String {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let answer = |body: axum::body::Bytes| async move {
        let msg: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let result = match msg["method"].as_str() {
            Some("initialize") => {
                json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                "serverInfo": {"name": "hang", "version": "1"}})
            }
            Some("tools/list") => {
                json!({"tools": [{"name": "hang", "inputSchema": {"type": "object"},
                "annotations": {"readOnlyHint": true}}]})
            }
            Some("tools/call") => std::future::pending().await,
            _ if msg.get("id").is_none() => {
                return axum::http::StatusCode::ACCEPTED.into_response()
            }
            _ => json!({}),
        };
        let answer = json!({"jsonrpc": "2.0", "id": msg["id"], "result": result});
        ([("mcp-session-id", "hang-1")], axum::Json(answer)).into_response()
    };
    let stream = || async {
        let note = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"tick\"}}\n\n";
        let ticks = futures::stream::unfold((), move |()| async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(note)), ()))
        });
        let body = axum::body::Body::from_stream(ticks);
        ([("content-type", "text/event-stream")], body).into_response()
    };
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(answer)
            .get(stream)
            .delete(|| async { axum::http::StatusCode::OK }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// An HTTP MCP server that takes a call and never answers: the agent gets a
/// JSON-RPC error after the call timeout (the POST's own response counted),
/// the call is audited, and Gatehouse goes on.
#[tokio::test(flavor = "multi_thread")]
async fn an_http_server_that_never_answers_a_call_times_out() {
    let url = server_that_never_answers().await;
    let toml = format!("port = 0\ncall_timeout = \"1s\"\n[servers.hang]\nurl = {url:?}\n");
    let gh = crate::support::Fixture::start_with(&toml).await;
    let (_, session) = gh
        .agent("Patient Agent", "hang", ToolChoice::All, AskChoice::None)
        .await;
    let started = std::time::Instant::now();
    let (status, body) = session.call("hang", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("did not answer within 1 s"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let outcome = gh
        .audit_rows()
        .into_iter()
        .rev()
        .find(|r| r.0 == "tool_call");
    assert_eq!(outcome.map(|r| r.1), Some("error".to_string()));
}

/// An agent that goes away while its call waits on an HTTP server: the call
/// that started still gets its outcome in the log (cut short), not silence.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_the_agent_walks_away_from_still_gets_its_outcome() {
    let url = server_that_never_answers().await;
    let toml = format!("port = 0\ncall_timeout = \"60s\"\n[servers.hang]\nurl = {url:?}\n");
    let gh = crate::support::Fixture::start_with(&toml).await;
    let (_, session) = gh
        .agent("Impatient Agent", "hang", ToolChoice::All, AskChoice::None)
        .await;
    let wait = std::time::Duration::from_millis(300);
    let gave_up = tokio::time::timeout(wait, session.call("hang", json!({}))).await;
    assert!(
        gave_up.is_err(),
        "the server answered a call it never answers"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let outcome = loop {
        let rows = gh.audit_rows();
        if let Some(r) = rows.into_iter().rev().find(|r| r.0 == "tool_call") {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no outcome for the call"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(outcome.1, "error", "{outcome:?}");
    assert!(
        outcome.3["error"]
            .as_str()
            .unwrap_or_default()
            .contains("went away"),
        "{outcome:?}"
    );
}

/// A server that keeps its GET stream open after its session ended does not
/// keep the agent's stream (and Gatehouse's relay of it) going: the stream
/// ends with the agent's session.
#[tokio::test(flavor = "multi_thread")]
async fn a_servers_stream_ends_with_the_agents_session() {
    let url = server_that_never_answers().await;
    let toml = format!("port = 0\n[servers.chatty]\nurl = {url:?}\n");
    let gh = crate::support::Fixture::start_with(&toml).await;
    let (_, session) = gh
        .agent(
            "Listening Agent",
            "chatty",
            ToolChoice::All,
            AskChoice::None,
        )
        .await;
    let mut stream = session.open_stream().await;
    assert_eq!(stream.status(), 200);
    let wait = std::time::Duration::from_secs(5);
    let first = tokio::time::timeout(wait, stream.chunk()).await;
    let first = first.expect("a tick in time").unwrap().unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&first).contains("tick"),
        "{first:?}"
    );

    assert_eq!(session.end().await.status(), 204);
    let drained = async { while let Ok(Some(_)) = stream.chunk().await {} };
    assert!(
        tokio::time::timeout(wait, drained).await.is_ok(),
        "the agent's stream outlived its session"
    );
}
