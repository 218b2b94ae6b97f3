//! `gatehouse bridge`: a client that can only launch stdio servers (the
//! official TypeScript SDK's StdioClientTransport) reaches a server behind
//! Gatehouse through the bridge, with consent, step-up and revocation as for
//! any agent; and the bridge says plainly when it cannot.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::support::sdk::{events, Agent, Sdk};
use crate::support::serve::Serve;
use crate::support::*;
use serde_json::{json, Value};

fn demo() -> Serve {
    Serve::start(&config_text(""), &[])
}

/// The person approves an item with the CLI.
fn approve(gh: &Serve, item: &Value, options: &[&str]) {
    let id = item["id"].as_str().expect("an id");
    let mut args = vec!["approve", id];
    args.extend_from_slice(options);
    gh.cli_ok(&args);
}

#[test]
fn a_stdio_client_goes_through_the_bridge() {
    let gh = demo();
    let mut agent = Agent::through_bridge(
        Sdk::TypeScript,
        &gh,
        "demo",
        "Desktop",
        &[
            "--call",
            "list_notes={}",
            "--call",
            r#"write_note={"title":"from the bridge","text":"hi"}"#,
            "--pause",
        ],
    );
    // Consent, as for any agent: it is named "<client> via bridge".
    let request = gh.pending_request(&mut agent);
    assert_eq!(request["kind"], "authorization");
    approve(&gh, &request, &[]);
    let tools = agent.expect("tools");
    assert!(
        !names_of(&tools).contains(&"write_note".to_string()),
        "read-only tools only: {tools}"
    );
    // A tool outside the grant: the bridge follows the step-up.
    let step_up = gh.pending_where(&mut agent, |p| p["kind"] == "step_up");
    assert_eq!(step_up["tools"][0]["name"], "write_note");
    approve(&gh, &step_up, &["--all-tools", "--ask-none"]);
    agent.expect("paused");
    let calls = events(&agent.events, "call");
    assert_eq!(calls.len(), 2, "{}", agent.report());
    assert_eq!(calls[0]["text"], "welcome");
    assert!(calls[1]["error"].is_null(), "{}", agent.report());

    // Revoked while the client runs: its next call asks the person again.
    gh.cli_ok(&["revoke", "Desktop via bridge"]);
    agent.resume();
    let again = gh.pending_request(&mut agent);
    assert_eq!(again["kind"], "authorization");
    approve(&gh, &again, &["--all-tools", "--ask-none"]);
    agent.finish();
    let calls = events(&agent.events, "call");
    assert_eq!(calls.len(), 4, "{}", agent.report());
    assert_eq!(calls[2]["text"], "welcome");
    assert!(calls[3]["error"].is_null(), "{}", agent.report());
}

fn names_of(tools: &Value) -> Vec<String> {
    tools["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_bridge_keeps_its_tokens_between_runs() {
    let gh = demo();
    let mut first = Agent::through_bridge(
        Sdk::TypeScript,
        &gh,
        "demo",
        "Keeper",
        &["--call", "list_notes={}"],
    );
    let request = gh.pending_request(&mut first);
    approve(&gh, &request, &[]);
    first.finish();
    // The second run needs no consent: it would wait (and time out) if it did.
    let mut second = Agent::through_bridge(
        Sdk::TypeScript,
        &gh,
        "demo",
        "Keeper",
        &["--call", "list_notes={}"],
    );
    let events = second.finish();
    assert_eq!(crate::support::sdk::one(&events, "call")["text"], "welcome");
    let pending = gh.cli_json(&["pending"]);
    assert!(pending.as_array().unwrap().is_empty(), "{pending}");
}

/// Runs `gatehouse bridge <server>` on `data_dir`, sends `initialize`, and
/// returns its first line of output and what it said on stderr.
fn first_answer(data_dir: &std::path::Path, server: &str) -> (Value, String) {
    let mut child = Command::new(gatehouse_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["bridge", server])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", initialize()).unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        serde_json::from_str(&line).unwrap_or(Value::String(line)),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_bridge_says_when_gatehouse_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (answer, stderr) = first_answer(dir.path(), "demo");
    assert!(started.elapsed() < STEP, "an answer, not a hang");
    assert_eq!(answer["id"], 1, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("not running"), "{message}");
    assert!(stderr.contains("not running"), "{stderr}");
}

#[test]
fn the_bridge_names_the_servers_gatehouse_fronts() {
    let gh = demo();
    let (answer, _) = first_answer(&gh.data_dir, "nope");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"nope\"") && message.contains("demo"),
        "{message}"
    );
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": 1, "error": answer["error"].clone()})
    );
}
