//! Interop: real, independently written MCP clients complete Gatehouse's whole flow
//! against `gatehouse serve`, with consent given by the `gatehouse` CLI.
//!
//! The clients are the official TypeScript SDK (`tests/interop/ts_client.mjs`) and the
//! official Python SDK (`tests/interop/py_client.py`); the servers behind Gatehouse are the
//! third-party `server-everything` and the built-in demo server. Each test starts its own
//! `gatehouse serve` on a free port with a fresh data directory, runs one client (which plays
//! the browser on the waiting page), and plays the person here with `gatehouse pending`,
//! `approve`, `deny` and `revoke`. It proves: the challenge, discovery, registration,
//! consent and token exchange work for both SDKs; the consent request shows the right
//! server and tools with risk classes; a partial approval hides and refuses the other tools;
//! a denial reaches the client as `access_denied`; a revocation makes the next call fail and
//! the refresh token useless. Needs `scripts/setup-interop` (Node, npm packages, Python venv).

use std::time::{Duration, Instant};

use crate::support::sdk::{events, names, one, text_of, Agent, Sdk};
use crate::support::serve::Serve;
use crate::support::servers::everything_and_demo;
use crate::support::STEP;
use serde_json::{json, Value};

/// Checks what the person is shown, and the client's side of the waiting page.
fn check_request(request: &Value, agent: &mut Agent, gh: &Serve, server: &str) {
    assert_eq!(request["server"], server, "{request}");
    assert_eq!(
        request["verified"], false,
        "a self-registered client is unverified"
    );
    assert!(request["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("cr_")));
    assert!(request["phrase"].as_str().is_some_and(|p| p.len() >= 5));
    assert_eq!(request["redirect_host"], "127.0.0.1");
    let tools = request["tools"].as_array().expect("tools");
    assert!(!tools.is_empty(), "{request}");
    for tool in tools {
        let risk = tool["risk"].as_str().unwrap_or_default();
        assert!(["read", "write", "destructive"].contains(&risk), "{tool}");
    }
    let registered = agent.expect("registered");
    assert_eq!(request["client_id"], registered["client_id"]);
    let authorize = agent.expect("authorize");
    assert_eq!(
        authorize["resource"],
        json!(gh.mcp_url(server)),
        "RFC 8707 resource"
    );
    assert_eq!(agent.expect("waiting_page")["refreshes"], true);
}

fn risk_of<'a>(request: &'a Value, tool: &str) -> &'a str {
    request["tools"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == tool))
        .and_then(|t| t["risk"].as_str())
        .unwrap_or_else(|| panic!("{tool} not in {request}"))
}

fn logged<'a>(log: &'a [Value], kind: &str, agent: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|e| e["kind"] == kind && e["agent"] == agent)
        .collect()
}

/// Approve every tool of `everything`; the client lists them all and calls `echo`.
fn everything_all_tools(sdk: Sdk) {
    let gh = everything_and_demo();
    let name = format!("{sdk:?} interop agent");
    let call = format!(r#"echo={{"message":"hello from {sdk:?}"}}"#);
    let mut agent = Agent::spawn(sdk, &gh, "everything", &name, &["--call", &call]);
    let request = gh.pending_request(&mut agent);
    check_request(&request, &mut agent, &gh, "everything");
    assert_eq!(risk_of(&request, "echo"), "read");
    let id = request["id"].as_str().expect("id");
    gh.cli_ok(&["approve", id, "--all-tools"]);
    let all = agent.finish();

    assert_eq!(one(&all, "authorized")["issuer"], json!(gh.url));
    assert_eq!(one(&all, "tokens")["has_refresh_token"], true);
    assert_eq!(one(&all, "connected")["server"], "mcp-servers/everything");
    // Every tool the request offered (its `@resources`/`@prompts` items are not tools).
    let offered: Vec<String> = names(&request["tools"])
        .into_iter()
        .filter(|n| !n.starts_with('@'))
        .collect();
    assert_eq!(names(&one(&all, "tools")["names"]), offered);
    let call = one(&all, "call");
    assert_eq!(call["ok"], true, "{call}");
    assert_eq!(text_of(call), format!("Echo: hello from {sdk:?}"));
    let log = gh.log();
    let calls = logged(&log, "tool_call", &name);
    assert!(
        calls
            .iter()
            .any(|e| e["tool"] == "echo" && e["outcome"] == "allowed"),
        "{calls:?}"
    );
    assert_eq!(logged(&log, "token_issued", &name).len(), 1);
}

/// Approve only the two reading tools of `demo`: the others are hidden, and a call to one
/// of them is answered with a step-up challenge (403 `insufficient_scope`).
fn demo_subset(sdk: Sdk) {
    let gh = everything_and_demo();
    let name = format!("{sdk:?} partial agent");
    let args = [
        "--call",
        r#"read_note={"title":"welcome"}"#,
        "--call",
        r#"write_note={"title":"x","text":"written after a step-up"}"#,
        "--relist",
    ];
    let mut agent = Agent::spawn(sdk, &gh, "demo", &name, &args);
    let request = gh.pending_request(&mut agent);
    check_request(&request, &mut agent, &gh, "demo");
    let all_tools = [
        "delete_note",
        "list_notes",
        "read_note",
        "wait",
        "write_note",
    ];
    assert_eq!(names(&request["tools"]), all_tools);
    assert_eq!(risk_of(&request, "read_note"), "read");
    assert_eq!(risk_of(&request, "write_note"), "write");
    assert_eq!(risk_of(&request, "delete_note"), "destructive");
    let id = request["id"].as_str().expect("id");
    gh.cli_ok(&["approve", id, "--tools", "list_notes,read_note"]);
    let listed = agent.expect("tools");
    assert_eq!(names(&listed["names"]), ["list_notes", "read_note"]);
    let tokens = agent.expect("tokens");
    assert_eq!(tokens["scope"], "tool:list_notes tool:read_note");

    let step_up_approved = match sdk {
        // mcp 2.x answers the 403 with a new authorization for the union of the scopes;
        // Gatehouse asks the person only about the tools not granted yet.
        Sdk::Python => {
            let step_up = gh.pending_request(&mut agent);
            assert_eq!(step_up["server"], "demo");
            let asked = names(&step_up["tools"]);
            assert!(asked.contains(&"write_note".to_string()), "{step_up}");
            assert!(!asked.contains(&"read_note".to_string()), "{step_up}");
            let id = step_up["id"].as_str().expect("id");
            gh.cli_ok(&["approve", id, "--tools", "write_note"]);
            true
        }
        // SDK 1.32.2 answers the 403 with a refresh (which cannot widen the scope), gets
        // the same 403 and gives up: typescript-sdk issue #2255. No new request is made.
        Sdk::TypeScript => false,
        // The matrix (tests/it/matrix.rs) covers the other clients.
        Sdk::TypeScript2 | Sdk::Python1 | Sdk::Rust => {
            unreachable!("run for the TypeScript 1.x and Python 2.x clients")
        }
    };
    let all = agent.finish();
    let calls = events(&all, "call");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0]["ok"], true, "{}", calls[0]);
    assert_eq!(text_of(calls[0]), "Hello from the Gatehouse demo server.");
    let lists = events(&all, "tools");
    let log = gh.log();
    let write_calls: Vec<_> = logged(&log, "tool_call", &name)
        .into_iter()
        .filter(|e| e["tool"] == "write_note")
        .collect();
    assert!(
        write_calls[0]["outcome"] == "denied"
            && write_calls[0]["detail"]["step_up"]
                == "tool:list_notes tool:read_note tool:write_note",
        "{write_calls:?}"
    );
    if step_up_approved {
        assert_eq!(calls[1]["ok"], true, "{}", calls[1]);
        assert_eq!(text_of(calls[1]), "saved \"x\"");
        assert_eq!(
            names(&lists[1]["names"]),
            ["list_notes", "read_note", "write_note"]
        );
        assert_eq!(write_calls.len(), 2, "{write_calls:?}");
        assert_eq!(write_calls[1]["outcome"], "allowed");
    } else {
        assert_eq!(calls[1]["ok"], false, "{}", calls[1]);
        assert_eq!(calls[1]["error"]["code"], 403, "{}", calls[1]);
        assert_eq!(names(&lists[1]["names"]), ["list_notes", "read_note"]);
        assert!(write_calls.iter().all(|e| e["outcome"] == "denied"));
        assert_eq!(logged(&log, "consent_requested", &name).len(), 1);
    }
}

/// Deny the request: the client learns `access_denied` at its redirect URI and gets no token.
fn denied(sdk: Sdk) {
    let gh = everything_and_demo();
    let name = format!("{sdk:?} unwelcome agent");
    let mut agent = Agent::spawn(sdk, &gh, "demo", &name, &["--call", "list_notes={}"]);
    let request = gh.pending_request(&mut agent);
    check_request(&request, &mut agent, &gh, "demo");
    gh.cli_ok(&["deny", request["id"].as_str().expect("id")]);
    let all = agent.finish();

    assert_eq!(one(&all, "denied")["error"], "access_denied");
    for never in ["authorized", "tokens", "connected", "tools", "call"] {
        assert!(
            events(&all, never).is_empty(),
            "{never} after a denial: {all:?}"
        );
    }
    let log = gh.log();
    assert_eq!(logged(&log, "consent_denied", &name).len(), 1);
    assert!(logged(&log, "token_issued", &name).is_empty());
    assert!(
        gh.cli_json(&["pending"])
            .as_array()
            .is_some_and(Vec::is_empty),
        "a decided request is no longer pending"
    );
}

/// Revoke the agent between two calls: the second fails, and so does its refresh token.
fn revoked(sdk: Sdk) {
    let gh = everything_and_demo();
    let name = format!("{sdk:?} revoked agent");
    let args = ["--call", "list_notes={}", "--pause"];
    let mut agent = Agent::spawn(sdk, &gh, "demo", &name, &args);
    let request = gh.pending_request(&mut agent);
    check_request(&request, &mut agent, &gh, "demo");
    gh.cli_ok(&[
        "approve",
        request["id"].as_str().expect("id"),
        "--all-tools",
    ]);
    agent.expect("paused");
    let first = one(&agent.events, "call").clone();
    assert_eq!(first["ok"], true, "{first}");
    let before = agent.events.len();

    let revoked = gh.cli_ok(&["revoke", &name]);
    assert!(revoked.contains("Revoked 1 grant"), "{revoked}");
    agent.resume();
    // The client must ask the person again; the person now says no (to every new request).
    let deadline = Instant::now() + STEP;
    while !agent.events.iter().any(|e| e["event"] == "denied") {
        let _ = gh.cli(&["deny", "--client", &name]);
        if !agent.pump(Duration::from_millis(300)) {
            break; // exited: the assertions below say what was missing
        }
        assert!(Instant::now() < deadline, "no denial\n{}", agent.report());
    }
    let all = agent.finish();
    let after = &all[before..];

    assert!(
        events(after, "call").iter().all(|c| c["ok"] == false),
        "a call succeeded after the revocation: {after:?}"
    );
    one(after, "call_unauthorized");
    assert_eq!(one(after, "denied")["error"], "access_denied");
    assert!(events(after, "tokens").is_empty(), "{after:?}");
    assert!(!events(after, "authorize").is_empty(), "{after:?}");
    if let Sdk::TypeScript = sdk {
        // The SDK tried its refresh token first; Gatehouse answered invalid_grant.
        let dropped = events(after, "invalidate_credentials");
        assert!(!dropped.is_empty(), "{after:?}");
        assert!(
            dropped.iter().all(|e| e["scope"] == "tokens"),
            "{dropped:?}"
        );
    }
    let log = gh.log();
    assert_eq!(logged(&log, "agent_revoked", &name).len(), 1);
    let allowed = logged(&log, "tool_call", &name)
        .into_iter()
        .filter(|e| e["outcome"] == "allowed")
        .count();
    assert_eq!(allowed, 1, "only the call before the revocation ran");
    assert!(logged(&log, "token_refreshed", &name).is_empty());
}

#[test]
fn typescript_sdk_everything_all_tools() {
    everything_all_tools(Sdk::TypeScript);
}

#[test]
fn python_sdk_everything_all_tools() {
    everything_all_tools(Sdk::Python);
}

#[test]
fn typescript_sdk_demo_subset_of_tools() {
    demo_subset(Sdk::TypeScript);
}

#[test]
fn python_sdk_demo_subset_of_tools() {
    demo_subset(Sdk::Python);
}

#[test]
fn typescript_sdk_denied() {
    denied(Sdk::TypeScript);
}

#[test]
fn python_sdk_denied() {
    denied(Sdk::Python);
}

#[test]
fn typescript_sdk_revoked() {
    revoked(Sdk::TypeScript);
}

#[test]
fn python_sdk_revoked() {
    revoked(Sdk::Python);
}
