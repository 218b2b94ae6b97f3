//! Upstream secrets: stored with `gatehouse secret set` (value from stdin),
//! handed only to the upstream process, and found nowhere else: not in the
//! database, the config, the log, the audit events, or anything an agent sees.

use crate::support::serve::{run, Serve};
use crate::support::servers::files_containing;
use crate::support::*;
use gatehouse::api::{AskChoice, ToolChoice};
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
    let mut serve = Serve::start(&toml, &[("RUST_LOG", "debug")]);
    let config_path = serve.config_path();
    let config_path = config_path.to_str().unwrap();
    let set = serve.cli_with_stdin(
        &["secret", "set", "fx", "API_KEY", "--config", config_path],
        &format!("{SECRET}\n"),
    );
    assert!(set.status.success(), "{set:?}");
    let listed = serve.cli_ok(&["secret", "list", "--config", config_path]);
    assert_eq!(listed.trim(), "fx: API_KEY");

    let (_, session) = serve
        .agent("Agent", "fx", ToolChoice::All, AskChoice::None)
        .await;
    let (_, body) = session.call("lookup", json!({"word": "w"})).await;
    assert_eq!(body["result"]["content"][0]["text"], "lookup:w");
    assert_eq!(
        std::fs::read_to_string(&probe_out).unwrap(),
        SECRET,
        "the upstream got the secret in its environment"
    );
    let log_json = serve.cli_ok(&["log", "--json", "--limit", "1000"]);
    let data_dir = serve.data_dir.clone();
    serve.stop();

    // Nowhere else: no file anywhere under the data dir but the fallback store
    // itself, the serve log, the audit log.
    let fallback = data_dir.join("secrets.json");
    let leaks: Vec<_> = files_containing(&data_dir, SECRET)
        .into_iter()
        .filter(|p| *p != fallback)
        .collect();
    assert!(leaks.is_empty(), "the secret leaked into {leaks:?}");
    if store == "file" {
        assert_eq!(
            files_containing(&data_dir, SECRET),
            std::slice::from_ref(&fallback),
            "the scan reads the data dir: it finds the fallback store"
        );
    }
    assert!(
        log_json.contains("\"tool_call\""),
        "the audit log was read: {log_json}"
    );
    assert!(!log_json.contains(SECRET));
    assert!(!std::fs::read_to_string(serve.log_path())
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
    let (code, _, err) = run(fx.dir.path(), &["secret", "set", "fx", "API_KEY"]);
    assert_eq!(code, 1);
    assert!(err.contains("no value on stdin"), "{err}");
    let (code, _, err) = run(fx.dir.path(), &["secret", "rm", "fx", "NOPE"]);
    assert_eq!(code, 1);
    assert!(err.contains("no secret"), "{err}");
    fx.stop().await;
}
