//! The interop matrix: every official SDK client (each pinned) through every
//! scenario a user meets, against `gatehouse serve` with consent given by the
//! CLI. The table in docs/CLIENTS.md is generated from this run
//! (`UPDATE_CLIENTS_TABLE=1` rewrites it; refused in CI): the test fails when
//! a cell fails that is not a known limitation of the client, or when the
//! committed table differs from what the run found.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::support::sdk::{events, one, Agent, Sdk};
use crate::support::serve::Serve;
use crate::support::{config_text, STEP};
use serde_json::Value;

const CLIENTS: [Sdk; 5] = [
    Sdk::TypeScript,
    Sdk::TypeScript2,
    Sdk::Python,
    Sdk::Python1,
    Sdk::Rust,
];

type Scenario = fn(Sdk);

const SCENARIOS: [(&str, Scenario); 7] = [
    ("cold start", cold_start),
    ("refresh after expiry", refresh_after_expiry),
    ("restart, no new consent", restart_without_consent),
    ("step-up", step_up),
    ("revocation", revocation),
    ("`localhost` URL", localhost),
    ("through `gatehouse bridge`", through_bridge),
];

/// What a client is known not to do, and why (shown in the table).
fn known(sdk: Sdk, scenario: &str) -> Option<&'static str> {
    match (sdk, scenario) {
        (Sdk::TypeScript, "step-up") => Some(
            "answers `403 insufficient_scope` with a refresh, which cannot widen a grant, then gives up (typescript-sdk #2255)",
        ),
        (Sdk::Rust, "through `gatehouse bridge`") => Some(
            "not run: the rmcp test client (tests/interop/rmcp_client) speaks streamable HTTP only",
        ),
        _ => None,
    }
}

fn demo() -> Serve {
    Serve::start(&config_text(""), &[])
}

/// The person approves the agent's item with the CLI.
fn approve(gh: &Serve, item: &Value, options: &[&str]) {
    let mut args = vec!["approve", item["id"].as_str().expect("an id")];
    args.extend_from_slice(options);
    gh.cli_ok(&args);
}

fn calls(all: &[Value]) -> Vec<&Value> {
    events(all, "call")
}

fn ok(call: &Value) -> bool {
    call["ok"] == true || (call["isError"] == false && call["error"].is_null())
}

/// Discovery, registration, consent, token, list and call.
fn cold_start(sdk: Sdk) {
    let gh = demo();
    let name = format!("{sdk:?} cold");
    let mut agent = Agent::spawn(sdk, &gh, "demo", &name, &["--call", "list_notes={}"]);
    let request = gh.pending_request(&mut agent);
    approve(&gh, &request, &[]);
    let all = agent.finish();
    assert!(!one(&all, "tools")["names"].as_array().unwrap().is_empty());
    assert!(ok(one(&all, "call")), "{all:?}");
}

/// The access token expires (a 2 s lifetime here); the client refreshes it
/// without asking the person again.
fn refresh_after_expiry(sdk: Sdk) {
    let gh = Serve::start(&config_text("access_token_ttl = \"2s\""), &[]);
    let name = format!("{sdk:?} refresher");
    let mut agent = Agent::spawn(
        sdk,
        &gh,
        "demo",
        &name,
        &["--call", "list_notes={}", "--pause"],
    );
    let request = gh.pending_request(&mut agent);
    approve(&gh, &request, &[]);
    agent.expect("paused");
    std::thread::sleep(Duration::from_millis(2500));
    agent.resume();
    let all = agent.finish();
    let calls = calls(&all);
    assert_eq!(calls.len(), 2, "{all:?}");
    assert!(calls.iter().all(|c| ok(c)), "{all:?}");
    let log = gh.log();
    let refreshed = log
        .iter()
        .filter(|e| e["kind"] == "token_refreshed" && e["agent"] == name.as_str())
        .count();
    assert!(refreshed >= 1, "no refresh in the log");
    let consents = log
        .iter()
        .filter(|e| e["kind"] == "consent_requested" && e["agent"] == name.as_str())
        .count();
    assert_eq!(consents, 1, "asked the person again");
}

/// Gatehouse restarts between two runs of a client that keeps its tokens:
/// the second run needs no consent.
fn restart_without_consent(sdk: Sdk) {
    let mut gh = demo();
    let store = gh.dir().join("client-store.json");
    let store = store.to_str().unwrap();
    let name = format!("{sdk:?} returning");
    let args = ["--call", "list_notes={}", "--store", store];
    let mut first = Agent::spawn(sdk, &gh, "demo", &name, &args);
    let request = gh.pending_request(&mut first);
    approve(&gh, &request, &[]);
    first.finish();
    drop(first);
    gh.restart();
    let mut second = Agent::spawn(sdk, &gh, "demo", &name, &args);
    let all = second.finish();
    assert!(ok(one(&all, "call")), "{all:?}");
    assert!(
        events(&all, "authorize").is_empty(),
        "authorized again: {all:?}"
    );
}

/// A tool outside the grant: the client asks for it, the person allows it,
/// the call goes through.
fn step_up(sdk: Sdk) {
    let gh = demo();
    let name = format!("{sdk:?} stepper");
    let write = r#"write_note={"title":"x","text":"y"}"#;
    let mut agent = Agent::spawn(
        sdk,
        &gh,
        "demo",
        &name,
        &["--call", "list_notes={}", "--call", write],
    );
    let request = gh.pending_request(&mut agent);
    approve(&gh, &request, &["--tools", "list_notes,read_note"]);
    let step = gh.pending_where(&mut agent, |p| p["kind"] == "step_up");
    assert!(step["tools"].to_string().contains("write_note"), "{step}");
    approve(&gh, &step, &["--tools", "write_note", "--ask-none"]);
    let all = agent.finish();
    let calls = calls(&all);
    assert!(calls.len() == 2 && calls.iter().all(|c| ok(c)), "{all:?}");
}

/// The person revokes the agent: its next call fails, it asks again, a new
/// consent appears, and it gets new tokens once allowed. (Revocation also
/// ends the agent's sessions; what the client does with its next request on
/// the ended session is its own: the SDKs report it.)
fn revocation(sdk: Sdk) {
    let gh = demo();
    let name = format!("{sdk:?} revoked");
    let mut agent = Agent::spawn(
        sdk,
        &gh,
        "demo",
        &name,
        &["--call", "list_notes={}", "--pause"],
    );
    let request = gh.pending_request(&mut agent);
    approve(&gh, &request, &[]);
    agent.expect("paused");
    let before = agent.events.len();
    gh.cli_ok(&["revoke", &name]);
    agent.resume();
    let again = gh.pending_request(&mut agent);
    assert_ne!(again["id"], request["id"]);
    approve(&gh, &again, &[]);
    let all = agent.finish();
    let after = &all[before..];
    assert!(
        !events(after, "tokens").is_empty(),
        "no new tokens: {after:?}"
    );
    let log = gh.log();
    let allowed = log
        .iter()
        .filter(|e| {
            e["kind"] == "tool_call" && e["agent"] == name.as_str() && e["outcome"] == "allowed"
        })
        .count();
    assert!(allowed >= 1, "the call before the revocation");
    let refused_after: Vec<&Value> = log
        .iter()
        .skip_while(|e| e["kind"] != "agent_revoked")
        .filter(|e| e["kind"] == "token_issued" && e["agent"] == name.as_str())
        .collect();
    assert_eq!(
        refused_after.len(),
        1,
        "one new token, after the new consent"
    );
}

/// The client is given `http://localhost:<port>/mcp/demo`.
fn localhost(sdk: Sdk) {
    let gh = demo();
    let name = format!("{sdk:?} localhost");
    let url = gh.mcp_url("demo").replace("127.0.0.1", "localhost");
    let mut agent = Agent::spawn_url(sdk, &gh, &url, &name, &["--call", "list_notes={}"]);
    let request = gh.pending_request(&mut agent);
    approve(&gh, &request, &[]);
    let all = agent.finish();
    assert!(ok(one(&all, "call")), "{all:?}");
}

/// The SDK's stdio client launches `gatehouse bridge demo`.
fn through_bridge(sdk: Sdk) {
    let gh = demo();
    let name = format!("{sdk:?} stdio");
    let mut agent = Agent::through_bridge(sdk, &gh, "demo", &name, &["--call", "list_notes={}"]);
    let request = gh.pending_request(&mut agent);
    approve(&gh, &request, &[]);
    let all = agent.finish();
    assert!(ok(one(&all, "call")), "{all:?}");
}

/// One cell: Ok, or the first line of what failed.
fn run(sdk: Sdk, scenario: Scenario) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| scenario(sdk))).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        message.lines().next().unwrap_or("failed").to_string()
    })
}

const BEGIN: &str = "<!-- interop matrix: generated by tests/it/matrix.rs -->";
const END: &str = "<!-- end of the interop matrix -->";

#[test]
fn interop_matrix() {
    let started = Instant::now();
    let cells: Vec<(Sdk, &str, Scenario)> = CLIENTS
        .iter()
        .flat_map(|sdk| SCENARIOS.iter().map(move |(label, f)| (*sdk, *label, *f)))
        .collect();
    // A few at a time: each cell runs its own Gatehouse and client.
    let results: Vec<(Sdk, &str, Result<(), String>)> = cells
        .chunks(4)
        .flat_map(|chunk| {
            std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|(sdk, label, f)| (sdk, label, s.spawn(move || run(*sdk, *f))))
                    .collect();
                handles
                    .into_iter()
                    .map(|(sdk, label, h)| (*sdk, *label, h.join().unwrap()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    assert!(started.elapsed() < STEP * 20, "the matrix took too long");

    let mut unexpected = Vec::new();
    let mut table = format!(
        "| client | {} |\n|---|{}\n",
        SCENARIOS.map(|s| s.0).join(" | "),
        "---|".repeat(SCENARIOS.len())
    );
    let mut notes = Vec::new();
    for sdk in CLIENTS {
        table.push_str(&format!("| {} |", sdk.label()));
        for (label, _) in SCENARIOS {
            let (_, _, result) = results
                .iter()
                .find(|(s, l, _)| *s == sdk && *l == label)
                .unwrap();
            let cell = match (result, known(sdk, label)) {
                (Ok(()), None) => "yes".to_string(),
                (Err(_), Some(why)) => {
                    notes.push(format!("{} {label}: {why}.", sdk.label()));
                    format!("no ({})", notes.len())
                }
                (Ok(()), Some(_)) => {
                    unexpected.push(format!(
                        "{sdk:?} / {label}: passes, but is listed as a known limitation"
                    ));
                    "yes".to_string()
                }
                (Err(why), None) => {
                    unexpected.push(format!("{sdk:?} / {label}: {why}"));
                    "FAILS".to_string()
                }
            };
            table.push_str(&format!(" {cell} |"));
        }
        table.push('\n');
    }
    for (i, note) in notes.iter().enumerate() {
        table.push_str(&format!("\n({}) {note}\n", i + 1));
    }
    assert!(
        unexpected.is_empty(),
        "interop matrix:\n{}\n\n{table}",
        unexpected.join("\n")
    );

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/CLIENTS.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (start, end) = (
        doc.find(BEGIN)
            .expect("the matrix markers in docs/CLIENTS.md"),
        doc.find(END).unwrap(),
    );
    let generated = format!("{BEGIN}\n{table}{END}");
    if doc[start..end + END.len()] != generated {
        if std::env::var_os("UPDATE_CLIENTS_TABLE").is_some() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "UPDATE_CLIENTS_TABLE is refused in CI"
            );
            let updated = format!("{}{generated}{}", &doc[..start], &doc[end + END.len()..]);
            std::fs::write(&path, updated).unwrap();
        } else {
            panic!("docs/CLIENTS.md's interop matrix is stale; run `UPDATE_CLIENTS_TABLE=1 cargo test --test it interop_matrix` and commit it. This run found:\n{table}");
        }
    }
}
