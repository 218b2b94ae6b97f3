//! Life of requests, grants, tokens and upstreams: denial and timeout reach
//! the client as access_denied, reloads do not duplicate requests, tokens
//! survive a restart, hung and crashing upstreams give JSON-RPC errors, CIMD
//! clients are verified, and the CLI fails loudly when nothing matches.
//! (Refresh reuse over time, with the clock passed in, is tested beside the
//! token endpoint: `oauth::token`'s unit tests.)

use std::process::Command;
use std::time::Duration;

use crate::support::serve::run as cli;
use crate::support::*;
use gatehouse::api::{AskChoice, DurationChoice, ErrorCode, Target, ToolChoice};
use gatehouse::control::Request;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn denial_and_timeout_reach_the_client_as_access_denied() {
    let fx = Fixture::start("consent_timeout = \"1s\"").await;
    let client_id = fx.register("Agent").await;
    let (_, wait) = fx.authorize(&fx.authorize_url(&client_id, &[])).await;
    let denied = fx.deny(Target::Client("Agent".into())).await.unwrap();
    assert_eq!(denied["denied"].as_array().unwrap().len(), 1);
    let back = fx.wait_for_redirect(&wait).await;
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "state").as_deref(), Some("st4te"));
    assert_eq!(query(&back, "iss").as_deref(), Some(fx.url.as_str()));

    // Nobody answers: after the timeout the client is told no, and a late approval finds nothing.
    let (_, wait) = fx
        .authorize(
            &fx.authorize_url(&client_id, &[("state", "x")])
                .replace("state=st4te&", ""),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let late = fx
        .decide(
            Target::Client("Agent".into()),
            approval(
                ToolChoice::All,
                AskChoice::default(),
                DurationChoice::Forever,
            ),
        )
        .await;
    assert_eq!(late.unwrap_err().code, ErrorCode::NotFound);
    let back = fx.wait_for_redirect(&wait).await;
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    let kinds = fx.audit_kinds();
    assert!(
        kinds.contains(&"consent_denied".into()) && kinds.contains(&"consent_expired".into()),
        "{kinds:?}"
    );
    assert_eq!(fx.counts()[1].1, 0, "no grant was created");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reloading_does_not_create_a_second_request() {
    let fx = Fixture::start("").await;
    let client_id = fx.register("Agent").await;
    let url = fx.authorize_url(&client_id, &[]);
    let (_, first) = fx.authorize(&url).await;
    let (_, second) = fx.authorize(&url).await;
    for _ in 0..3 {
        assert_eq!(
            fx.http
                .get(format!("{}{second}", fx.url))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(fx.pending().await.len(), 1);
    fx.approve("Agent", ToolChoice::ReadOnly, DurationChoice::Forever)
        .await;
    let back = fx.wait_for_redirect(&second).await;
    assert!(query(&back, "code").is_some());
    // The code is handed out once; the older tab's handle was replaced.
    let again = fx
        .http
        .get(format!("{}{second}", fx.url))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("finished"));
    assert!(fx
        .http
        .get(format!("{}{first}", fx.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("finished"));
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn once_grants_have_no_refresh_token() {
    let fx = Fixture::start("").await;
    let (client_id, code) = fx
        .code_for("Agent", ToolChoice::ReadOnly, DurationChoice::Once)
        .await;
    let (status, body) = fx.exchange_code(&client_id, &code).await;
    assert_eq!(status, 200);
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["scope"], "tool:list_notes tool:read_note tool:wait");
    assert!(body["expires_in"].as_i64().unwrap() <= 3600);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_survive_a_restart() {
    let fx = Fixture::start("").await;
    let agent = fx.tokens_for("Agent", ToolChoice::All).await;
    let dir = fx.stop().await;
    let fx = Fixture::start_in(&config_text(""), dir).await;
    let session = fx.session("demo", agent.access()).await;
    assert!(!session.tool_names().await.is_empty());
    // The refresh token survived too: it rotates, and the new access token works.
    let (status, refreshed) = fx.refresh(&agent.client_id, agent.refresh()).await;
    assert_eq!(status, 200, "{refreshed}");
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert!(!fx
        .session("demo", new_access)
        .await
        .tool_names()
        .await
        .is_empty());
    fx.stop().await;
}

/// A tiny real MCP server that answers initialize and tools/list, then dies on any tool call.
const CRASHING_SERVER: &str = r#"
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("method") == "initialize":
        r = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "crashy", "version": "1"}}
    elif m.get("method") == "tools/list":
        r = {"tools": [{"name": "boom", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}}]}
    elif m.get("method") == "tools/call":
        sys.exit(3)
    else:
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}), flush=True)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn hung_and_crashing_upstreams_give_json_rpc_errors() {
    let extra = format!("call_timeout = \"1s\"\n[servers.crashy]\ncommand = \"python3\"\nargs = [\"-c\", {:?}]\n[servers.broken]\ncommand = \"/nonexistent/mcp-server\"\n", CRASHING_SERVER);
    let fx = Fixture::start(&extra).await;
    let (_, session) = fx
        .agent("Agent", "demo", ToolChoice::All, AskChoice::None)
        .await;
    let started = std::time::Instant::now();
    let (_, hung) = session.call("wait", json!({"ms": 5000})).await;
    assert_eq!(hung["error"]["code"], -32002, "{hung}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // The crashing server: get a token for it, then watch it die mid-call.
    let (crasher, crash_session) = fx
        .agent("Crash Agent", "crashy", ToolChoice::All, AskChoice::None)
        .await;
    let (_, body) = crash_session.call("boom", json!({})).await;
    assert_eq!(body["error"]["code"], -32002);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exited"),
        "{body}"
    );
    let (status, _) = crash_session.request("tools/list", json!({})).await;
    assert_eq!(
        status, 404,
        "the dead session is gone; the client starts a new one"
    );

    // A server that cannot start: the consent request cannot list its tools, the client hears why.
    let (status, location) = fx
        .authorize(&fx.authorize_url(&crasher.client_id, &[("resource", &fx.resource("broken"))]))
        .await;
    assert_eq!(status, 302);
    assert_eq!(
        query(&url::Url::parse(&location).unwrap(), "error").as_deref(),
        Some("temporarily_unavailable")
    );

    // The demo session is unharmed by all of this.
    let (_, listed) = session.call("list_notes", json!({})).await;
    assert!(listed["result"].is_object(), "{listed}");
    let log = fx
        .control(Request::Log {
            limit: 50,
            follow: false,
            filter: Default::default(),
        })
        .await
        .unwrap();
    let errors = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "tool_call" && e["outcome"] == "error")
        .count();
    assert_eq!(errors, 2, "the timeout and the crash are audited as errors");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_rules_localhost_and_preregistered_clients() {
    let extra = format!("[servers.second]\ncommand = {:?}\nargs = [\"demo-server\"]\n[clients.conformance]\nredirect_uris = [\"{REDIRECT}\"]\nserver = \"second\"\n", gatehouse_bin());
    let fx = Fixture::start(&extra).await;
    let client_id = fx.register("Agent").await;
    // Two servers: a missing resource is ambiguous.
    let (_, location) = fx.authorize(&fx.authorize_url(&client_id, &[])).await;
    assert_eq!(
        query(&url::Url::parse(&location).unwrap(), "error").as_deref(),
        Some("invalid_target")
    );
    // The bound, pre-registered client may omit it (as the conformance suite does).
    let (status, wait) = fx.authorize(&fx.authorize_url("conformance", &[])).await;
    assert_eq!(status, 303);
    assert_eq!(fx.pending().await[0]["server"], "second");
    fx.approve("conformance", ToolChoice::All, DurationChoice::Forever)
        .await;
    let code = query(&fx.wait_for_redirect(&wait).await, "code").unwrap();
    // localhost and 127.0.0.1 name the same audience; a bare origin with a slash is the bound server.
    let localhost = format!("http://localhost:{}/", fx.port);
    let (status, body) = fx
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("client_id", "conformance"),
            ("redirect_uri", REDIRECT),
            ("resource", &localhost),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    let r = fx
        .http
        .post(fx.resource("second"))
        .header("host", format!("localhost:{}", fx.port))
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(body["access_token"].as_str().unwrap())
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    fx.stop().await;
}

async fn serve_metadata(doc: Value) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/oauth/client.json",
        listener.local_addr().unwrap().port()
    );
    let mut doc = doc;
    if doc["client_id"] == "SELF" {
        doc["client_id"] = json!(url);
    }
    let app = axum::Router::new().route(
        "/oauth/client.json",
        axum::routing::get(move || async move { axum::Json(doc) }),
    );
    (
        url,
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn client_id_metadata_documents() {
    let fx = Fixture::start("[testing]\nallow_loopback_client_metadata = true").await;
    // Its codes go to an https address of its own: its domain is verified.
    let callback = "https://app.example/cb";
    let (good, _g) = serve_metadata(
        json!({"client_id": "SELF", "client_name": "Doc Client", "redirect_uris": [callback]}),
    )
    .await;
    let encoded = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let url = fx
        .authorize_url(&good, &[])
        .replace(&encoded(REDIRECT), &encoded(callback));
    let (status, _) = fx.authorize(&url).await;
    assert_eq!(status, 303);
    let pending = fx.pending().await;
    assert_eq!(pending[0]["client_name"], "Doc Client");
    assert_eq!(pending[0]["verified"], true);
    assert_eq!(pending[0]["verified_domain"], "127.0.0.1");

    // Its codes come back to this machine (loopback), where any program can
    // take them: the document names it, but nothing proves the program is it.
    let (local, _c) = serve_metadata(
        json!({"client_id": "SELF", "client_name": "Local Doc", "redirect_uris": [REDIRECT]}),
    )
    .await;
    let (status, _) = fx.authorize(&fx.authorize_url(&local, &[])).await;
    assert_eq!(status, 303);
    let pending = fx.pending().await;
    let request = pending
        .iter()
        .find(|p| p["client_name"] == "Local Doc")
        .expect("the loopback client's request");
    assert_eq!(request["verified"], false, "{request}");
    assert_eq!(request["verified_domain"], Value::Null, "{request}");

    let (lying, _l) = serve_metadata(json!({"client_id": "https://claude.ai/oauth/client.json", "client_name": "Claude", "redirect_uris": [REDIRECT]})).await;
    assert_eq!(
        fx.authorize(&fx.authorize_url(&lying, &[])).await.0,
        400,
        "a document that names another client_id"
    );
    let (bad_redirect, _b) =
        serve_metadata(json!({"client_id": "SELF", "redirect_uris": ["javascript:alert(1)"]}))
            .await;
    assert_eq!(
        fx.authorize(&fx.authorize_url(&bad_redirect, &[])).await.0,
        400
    );
    fx.stop().await;

    // Without the test switch, a loopback document is never fetched (SSRF guard).
    let fx = Fixture::start("").await;
    let (status, location) = fx.authorize(&fx.authorize_url(&good, &[])).await;
    assert_eq!((status, location.as_str()), (400, ""));
    assert_eq!(
        fx.authorize(&fx.authorize_url("https://127.0.0.1/c.json", &[]))
            .await
            .0,
        400
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_follows_live() {
    let fx = Fixture::start("").await;
    let dir = fx.dir.path().to_path_buf();
    let follower = tokio::task::spawn_blocking(move || {
        let mut c = gatehouse::control::client::ControlClient::connect(&dir).unwrap();
        c.send(&Request::Log {
            limit: 10,
            follow: true,
            filter: Default::default(),
        })
        .unwrap();
        let mut kinds = Vec::new();
        while let Some(Ok(e)) = c.next_answer() {
            kinds.push(e["kind"].as_str().unwrap().to_string());
            if kinds.len() == 2 {
                break;
            }
        }
        kinds
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client_id = fx.register("Agent").await;
    fx.authorize(&fx.authorize_url(&client_id, &[])).await;
    let followed = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the follower saw both events within 10 s");
    assert_eq!(
        followed.unwrap(),
        ["client_registered", "consent_requested"]
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_says_what_went_wrong() {
    let idle = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(idle.path(), &["pending"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Gatehouse is not running") && err.contains("gatehouse serve"),
        "{err}"
    );

    let fx = Fixture::start("").await;
    let dir = fx.dir.path().to_path_buf();
    let (code, out, _) = cli(&dir, &["pending"]);
    assert_eq!((code, out.trim()), (0, "No pending requests."));
    let (code, _, err) = cli(&dir, &["approve", "--client", "nobody", "--all-tools"]);
    assert_eq!(code, 1);
    assert!(err.contains("no pending request from \"nobody\""), "{err}");
    let (code, _, err) = cli(&dir, &["deny", "cr_000000000000"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = cli(&dir, &["approve", "x", "--for", "soon"]);
    assert_eq!(code, 1);
    assert!(err.contains("--for"), "{err}");
    let client_id = fx.register("Agent").await;
    fx.authorize(&fx.authorize_url(&client_id, &[])).await;
    let (code, out, _) = cli(&dir, &["pending", "--json"]);
    assert_eq!(code, 0);
    let pending: Value = serde_json::from_str(&out).unwrap();
    let id = pending[0]["id"].as_str().unwrap();
    let (code, _, err) = cli(&dir, &["approve", id, "--tools", "delete_everything"]);
    assert_eq!(code, 1);
    assert!(err.contains("not part of request"), "{err}");
    let (code, out, _) = cli(
        &dir,
        &["approve", id, "--tools", "read_note", "--for", "1h"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("Approved"), "{out}");

    // A second daemon on the same data directory is refused, clearly.
    let (code, _, err) = cli(&dir, &["serve", "--port", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("already running"), "{err}");
    fx.stop().await;

    // Config errors name the file, line and key; a port in use is explained.
    let conf = idle.path().join("bad.toml");
    std::fs::write(&conf, "port = 0\n[servers.a]\ncommand = \"x\"\nargz = []\n").unwrap();
    let (code, _, err) = cli(idle.path(), &["serve", "--config", conf.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.toml") && err.contains("line 4") && err.contains("argz"),
        "{err}"
    );
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let (code, _, err) = cli(idle.path(), &["serve", "--port", &port]);
    assert_eq!(code, 1);
    assert!(err.contains("in use"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_server_message_stream_per_session() {
    let fx = Fixture::start("").await;
    let agent = fx.tokens_for("Agent", ToolChoice::All).await;
    let token = agent.access();
    let session = fx.session("demo", token).await;
    let first = session.open_stream().await;
    assert_eq!(first.status(), 200);
    assert!(first.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(
        session.open_stream().await.status(),
        405,
        "one stream at a time"
    );
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        session.open_stream().await.status(),
        200,
        "a reconnect gets the stream back"
    );
    let r = fx
        .http
        .get(fx.resource("demo"))
        .bearer_auth(token)
        .header("mcp-session-id", "gh_sess_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    fx.stop().await;
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(gatehouse_bin())
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.starts_with("Gatehouse is running at http://127.0.0.1:"),
        "{first}"
    );
    assert!(dir.path().join("control.sock").exists());
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(
        !dir.path().join("control.sock").exists(),
        "the socket is removed"
    );
    assert!(dir.path().join("gatehouse.db").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_keeps_crashing_is_held_back() {
    let fx =
        Fixture::start("[servers.crashy]\ncommand = \"sh\"\nargs = [\"-c\", \"exit 7\"]\n").await;
    let api = fx.api();
    for _ in 0..3 {
        let reason = api.server_tools("crashy").await.unwrap_err().message;
        assert!(
            reason.contains("closed") || reason.contains("exited"),
            "{reason}"
        );
    }
    let reason = api.server_tools("crashy").await.unwrap_err().message;
    assert!(reason.contains("crashed 3 or more times"), "{reason}");
    assert!(
        api.server_tools("demo").await.is_ok(),
        "other servers are not held back"
    );
    fx.stop().await;
}
