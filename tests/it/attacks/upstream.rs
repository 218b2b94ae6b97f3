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
