//! Which program an agent really is: the executable that registered it is
//! kept and shown; a token presented by another executable is flagged (an
//! audit event naming both), and refused when `bind_grants_to_program` is on.
//! The agent here is this test binary (it registers and redeems the code over
//! loopback); the other program is a Python process given the token.

use std::process::Command;

use crate::support::serve::Serve;
use crate::support::*;
use gatehouse::api::{AskChoice, ToolChoice};
use serde_json::{json, Value};

/// `initialize` sent by a python3 process with this token: (status, body).
fn initialize_from_python(url: &str, token: &str) -> (u16, String) {
    let script = r#"
import sys, urllib.request, urllib.error, json
req = urllib.request.Request(sys.argv[1], method="POST", data=json.dumps({"jsonrpc": "2.0", "id": 1,
    "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "borrowed", "version": "0"}}}).encode(), headers={
    "Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream"})
try:
    r = urllib.request.urlopen(req); print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.headers.get("WWW-Authenticate"))
"#;
    let out = Command::new("python3")
        .args(["-c", script, url, token])
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, rest) = text.split_once('\n').unwrap_or((&text, ""));
    (status.trim().parse().unwrap_or(0), rest.to_string())
}

fn python_exe() -> String {
    let which = Command::new("python3")
        .args([
            "-c",
            "import sys, os; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&which.stdout).trim().to_string()
}

fn me() -> String {
    std::env::current_exe()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_program_behind_an_agent_is_known_and_another_one_is_flagged() {
    let gh = Serve::start(&config_text(""), &[]);
    let (agent, session) = gh
        .agent("Claimed Name", "demo", ToolChoice::All, AskChoice::None)
        .await;
    // The agent's card says which program registered it: this test binary.
    let agents = gh.cli_json(&["agents"]);
    let card = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["client_id"] == agent.client_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(card["program"]["exe"], me(), "{card}");
    assert_eq!(card["program"]["pid"], std::process::id(), "{card}");
    assert!(
        !card["program"]["started_by"].as_array().unwrap().is_empty(),
        "{card}"
    );
    // Its calls carry the program in the audit log, and nothing is flagged.
    session
        .call_text("read_note", json!({"title": "welcome"}))
        .await;
    let log = gh.log();
    let call = log.iter().rev().find(|e| e["kind"] == "tool_call").unwrap();
    assert_eq!(call["detail"]["program"]["exe"], me(), "{call}");
    assert!(!log.iter().any(|e| e["kind"] == "program_mismatch"));

    // The same token from another program: it works (not bound), but is flagged once.
    let url = gh.mcp_url("demo");
    let (status, _) = initialize_from_python(&url, agent.access());
    assert_eq!(status, 200);
    let (status, _) = initialize_from_python(&url, agent.access());
    assert_eq!(status, 200);
    let flagged: Vec<Value> = gh
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "program_mismatch")
        .collect();
    assert_eq!(flagged.len(), 2, "once per connection: {flagged:?}");
    let event = &flagged[0];
    assert_eq!(event["detail"]["granted_to"], me(), "{event}");
    assert_eq!(event["detail"]["used_by"], python_exe(), "{event}");
    assert_eq!(event["outcome"], "allowed");
    assert_eq!(event["client_id"], agent.client_id.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn bound_grants_refuse_another_program() {
    let config = config_text("bind_grants_to_program = true\n");
    let gh = Serve::start(&config, &[]);
    let (agent, session) = gh
        .agent("Bound", "demo", ToolChoice::All, AskChoice::None)
        .await;
    // Its own program goes on working.
    session
        .call_text("read_note", json!({"title": "welcome"}))
        .await;
    let (status, challenge) = initialize_from_python(&gh.mcp_url("demo"), agent.access());
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert!(challenge.contains("another program"), "{challenge}");
    let log = gh.log();
    let event = log
        .iter()
        .find(|e| e["kind"] == "program_mismatch")
        .unwrap();
    assert_eq!(event["outcome"], "denied", "{event}");
    assert_eq!(event["detail"]["refused"], true, "{event}");
}
