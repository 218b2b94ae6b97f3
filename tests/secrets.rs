//! Upstream secrets: stored with `gatehouse secret set` (value from stdin),
//! handed only to the upstream process, and found nowhere else: not in the
//! database, the config, the log, the audit events, or anything an agent sees.

mod common;

use common::*;
use gatehouse::oauth::consent::{AskChoice, ToolChoice};
use serde_json::json;

const SECRET: &str = "sk-live-4f1c9e77d2b0a8c3-do-not-leak";

fn config(probe_out: &std::path::Path, store: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upstream.py");
    format!(
        "secret_store = {store:?}\n[servers.fx]\ncommand = \"python3\"\nargs = [{script:?}]\n\
         env = {{ API_KEY = {{ secret = \"API_KEY\" }}, SECRET_PROBE_NAME = \"API_KEY\", SECRET_PROBE_OUT = {:?} }}\n",
        probe_out.display().to_string()
    )
}

/// Walks the flow, calls a tool with the secret in play, and checks where the secret went.
async fn secret_reaches_only_the_upstream(store: &str) {
    let probe = tempfile::tempdir().unwrap();
    let probe_out = probe.path().join("seen-by-upstream");
    let toml = config(&probe_out, store);
    let mut serve = ServeProcess::start(&toml, &[("RUST_LOG", "debug")]);
    let fx = &serve.fixture;
    let config_path = fx.dir.path().join("config.toml");
    let (code, _, err) = cli_with_stdin(
        fx.dir.path(),
        &[
            "secret",
            "set",
            "fx",
            "API_KEY",
            "--config",
            config_path.to_str().unwrap(),
        ],
        &format!("{SECRET}\n"),
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = cli_with_stdin(
        fx.dir.path(),
        &["secret", "list", "--config", config_path.to_str().unwrap()],
        "",
    );
    assert_eq!((code, out.trim()), (0, "fx: API_KEY"));

    let (_, tokens) = fx
        .grant_on("Agent", "fx", ToolChoice::All, AskChoice::None)
        .await;
    let token = tokens["access_token"].as_str().unwrap();
    let sid = fx.open_session("fx", token).await;
    let (_, body) = fx
        .call_on(
            "fx",
            token,
            &sid,
            2,
            "tools/call",
            json!({"name": "lookup", "arguments": {"word": "w"}}),
        )
        .await;
    assert_eq!(body["result"]["content"][0]["text"], "lookup:w");
    assert_eq!(
        std::fs::read_to_string(&probe_out).unwrap(),
        SECRET,
        "the upstream got the secret in its environment"
    );
    let (_, log_json, _) = cli_with_stdin(fx.dir.path(), &["log", "--json", "--limit", "1000"], "");
    let data_dir = fx.dir.path().to_path_buf();
    serve.stop();

    // Nowhere else: every file in the data dir but the fallback store itself, the log, the audit.
    let fallback = data_dir.join("secrets.json");
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path == fallback || path.is_dir() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !contains(&bytes, SECRET.as_bytes()),
            "the secret leaked into {}",
            path.display()
        );
    }
    assert!(
        log_json.contains("\"tool_call\""),
        "the audit log was read: {log_json}"
    );
    assert!(!log_json.contains(SECRET));
    assert!(!std::fs::read_to_string(&serve.log)
        .unwrap()
        .contains(SECRET));
    assert!(!body.to_string().contains(SECRET));
    if store == "keychain" {
        assert!(
            !fallback.exists(),
            "with a keychain nothing is written to the fallback file"
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_in_the_fallback_file_reaches_only_the_upstream() {
    secret_reaches_only_the_upstream("file").await;
}

/// Needs a Secret Service: `scripts/test` runs it inside `dbus-run-session`
/// with an unlocked gnome-keyring (`-- --ignored`).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a D-Bus session with a Secret Service (scripts/test provides one)"]
async fn a_secret_in_the_os_keychain_reaches_only_the_upstream() {
    secret_reaches_only_the_upstream("keychain").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_is_a_clear_error() {
    let probe = tempfile::tempdir().unwrap();
    let fx = Fixture::start_with(&format!(
        "port = 0\n{}",
        config(&probe.path().join("x"), "file")
    ))
    .await;
    let client_id = fx.register("Agent").await;
    let (status, location) = fx.authorize(&fx.authorize_url(&client_id, &[])).await;
    assert_eq!(status, 302);
    let back = url::Url::parse(&location).unwrap();
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("temporarily_unavailable")
    );
    let (code, _, err) = cli_with_stdin(fx.dir.path(), &["secret", "set", "fx", "API_KEY"], "");
    assert_eq!(code, 1);
    assert!(err.contains("no value on stdin"), "{err}");
    let (code, _, err) = cli_with_stdin(fx.dir.path(), &["secret", "rm", "fx", "NOPE"], "");
    assert_eq!(code, 1);
    assert!(err.contains("no secret"), "{err}");
    fx.stop().await;
}
