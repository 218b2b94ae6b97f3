//! `gatehouse log` filters: by agent, server, outcome, time and text, alone
//! and together, each event shown meeting every one given; bad values are
//! refused with a clear message.

use crate::support::serve::Serve;
use crate::support::*;
use gatehouse::api::{AskChoice, ToolChoice};
use serde_json::{json, Value};
use std::io::{BufRead, Write};

#[tokio::test(flavor = "multi_thread")]
async fn the_log_shows_only_the_events_its_filters_ask_for() {
    let gh = Serve::start(&config_text(""), &[]);
    let (a, one) = gh
        .agent("Agent One", "demo", ToolChoice::All, AskChoice::None)
        .await;
    let (b, two) = gh
        .agent("Agent Two", "demo", ToolChoice::All, AskChoice::None)
        .await;
    let note = json!({"title": "welcome"});
    assert!(one
        .call_text("read_note", note.clone())
        .await
        .contains("Hello from"));
    one.call_text("list_notes", json!({})).await;
    gh.cli_ok(&["pause", &b.client_id]);
    let (_, refused) = two.call("read_note", note).await;
    assert_eq!(refused["error"]["code"], -32003, "{refused}");

    let log = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["log", "--limit", "1000"];
        all.extend_from_slice(args);
        gh.cli_json(&all).as_array().expect("an array").clone()
    };
    let calls = |events: &[Value]| -> Vec<(String, String, String)> {
        let text = |e: &Value, k: &str| e[k].as_str().unwrap_or("-").to_string();
        events
            .iter()
            .filter(|e| e["kind"] == "tool_call")
            .map(|e| (text(e, "agent"), text(e, "tool"), text(e, "outcome")))
            .collect()
    };
    let everything = log(&[]);
    assert_eq!(calls(&everything).len(), 3, "{everything:?}");

    let denied = log(&["--outcome", "denied"]);
    assert!(
        denied.iter().all(|e| e["outcome"] == "denied"),
        "{denied:?}"
    );
    assert_eq!(
        calls(&denied),
        [("Agent Two".into(), "read_note".into(), "denied".into())]
    );

    let agent = log(&["--agent", "Agent One"]);
    assert!(!agent.is_empty());
    assert!(
        agent.iter().all(|e| e["client_id"] == a.client_id.as_str()),
        "{agent:?}"
    );
    assert_eq!(calls(&agent).len(), 2, "{agent:?}");

    let found = log(&["--search", "LIST_notes"]);
    assert_eq!(
        calls(&found),
        [("Agent One".into(), "list_notes".into(), "allowed".into())],
        "any case, and nothing without the text"
    );

    let together = log(&["--since", "1h", "--server", "demo", "--agent", &b.client_id]);
    assert_eq!(
        calls(&together),
        [("Agent Two".into(), "read_note".into(), "denied".into())]
    );
    assert!(log(&["--server", "nosuch"]).is_empty());
    let said = gh.cli_ok(&["log", "--server", "nosuch"]);
    assert_eq!(said.trim(), "No events match.");

    let out = gh.cli(&["log", "--since", "an hour"]);
    assert!(!out.status.success());
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(why.contains("a duration such as 10m"), "{why}");
    let out = gh.cli(&["log", "--outcome", "maybe"]);
    assert!(!out.status.success());
    let out = gh.cli(&["log", "--agent", "Nobody"]);
    assert!(
        !out.status.success(),
        "an unknown agent is an error, not an empty log"
    );
    // The whole log is exported or verified, never a filtered part of it.
    let out = gh.cli(&["log", "--server", "demo", "export"]);
    assert!(
        !out.status.success(),
        "a filtered export was taken for a whole one"
    );

    // A CLI from before the filters asks with an agent only: it is refused,
    // not answered with every agent's events.
    let mut socket =
        std::os::unix::net::UnixStream::connect(gh.data_dir.join("control.sock")).unwrap();
    let old = r#"{"op":"log","limit":5,"client":"Agent One","follow":false}"#;
    writeln!(socket, "{old}").unwrap();
    let mut answer = String::new();
    std::io::BufReader::new(&socket)
        .read_line(&mut answer)
        .unwrap();
    assert!(answer.contains("malformed control request"), "{answer}");
}
