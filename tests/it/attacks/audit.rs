//! Someone with write access to the database (another program of this user,
//! malware, a restored backup) rewrites history: edits, deletes, inserts or
//! reorders audit events, or cuts off the newest ones. Without the key (in
//! the keychain, never in the database) none of it goes unnoticed:
//! `gatehouse log verify` names the row and exits 1.

use crate::support::serve::run;
use crate::support::*;
use gatehouse::api::{AskChoice, ToolChoice};
use rusqlite::params;
use serde_json::Value;

/// A log of some events (a registration, a consent, tokens).
async fn with_history() -> Fixture {
    let fx = Fixture::start("").await;
    fx.tokens_for("Agent", ToolChoice::All).await;
    fx.tokens_for("Other", ToolChoice::ReadOnly).await;
    assert!(fx.audit_kinds().len() >= 8);
    fx
}

fn db(gh: &Gh) -> rusqlite::Connection {
    rusqlite::Connection::open(gh.data_dir.join("gatehouse.db")).unwrap()
}

fn last_id(gh: &Gh) -> i64 {
    db(gh)
        .query_row("SELECT max(id) FROM audit_events", [], |r| r.get(0))
        .unwrap()
}

/// `gatehouse log verify --json`: (exit code, what it found).
fn verify(gh: &Gh) -> (i32, Value) {
    let (code, out, err) = run(&gh.data_dir, &["--json", "log", "verify"]);
    (
        code,
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}")),
    )
}

/// `gatehouse log export` of the whole log to a file in the fixture's dir.
fn export(fx: &Fixture) -> std::path::PathBuf {
    let file = fx.dir.path().join("export.jsonl");
    let (code, _, err) = run(
        &fx.data_dir,
        &["log", "export", "--out", file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    file
}

/// `gatehouse log verify --file`: (exit code, what it printed).
fn verify_file(fx: &Fixture, file: &std::path::Path, json: bool) -> (i32, String) {
    let mut args = vec!["log", "verify", "--file", file.to_str().unwrap()];
    if json {
        args.insert(0, "--json");
    }
    let (code, out, _) = run(&fx.data_dir, &args);
    (code, out)
}

/// The log verifies, then `tamper` runs, then verify fails naming `row` as `what`.
#[track_caller]
fn named(gh: &Gh, row: i64, what: &str) -> Value {
    let (code, found) = verify(gh);
    assert_eq!(code, 1, "{found}");
    let problems = found["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["id"] == row && p["what"] == what),
        "expected #{row} {what}: {found}"
    );
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_row_edited() {
    let fx = with_history().await;
    assert_eq!(verify(&fx).0, 0);
    db(&fx)
        .execute(
            "UPDATE audit_events SET outcome = 'denied' WHERE id = 3",
            [],
        )
        .unwrap();
    named(&fx, 3, "edited");
    let (_, text, _) = run(&fx.data_dir, &["log", "verify"]);
    assert!(text.contains("TAMPERED") && text.contains("#3"), "{text}");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_row_detail_rewritten() {
    let fx = with_history().await;
    db(&fx)
        .execute(
            r#"UPDATE audit_events SET detail = '{"note":"nothing happened"}' WHERE id = 2"#,
            [],
        )
        .unwrap();
    named(&fx, 2, "edited");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_row_given_a_kind_no_gatehouse_writes() {
    let fx = with_history().await;
    db(&fx)
        .execute("UPDATE audit_events SET kind = 'nothing' WHERE id = 4", [])
        .unwrap();
    named(&fx, 4, "edited");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_row_deleted() {
    let fx = with_history().await;
    db(&fx)
        .execute("DELETE FROM audit_events WHERE id = 3", [])
        .unwrap();
    let found = named(&fx, 4, "out_of_chain");
    assert!(found.to_string().contains("between #2 and #4"), "{found}");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_row_inserted_with_a_copied_seal() {
    let fx = with_history().await;
    let last = last_id(&fx);
    let db = db(&fx);
    db.execute(
        "INSERT INTO audit_events (id, at, kind, outcome, client_id, agent, server, tool, grant_id, actor, duration_ms, detail, prev_seal, seal)
         SELECT id + 1, at, 'consent_approved', outcome, client_id, agent, server, tool, grant_id, actor, duration_ms, detail, seal, seal
         FROM audit_events WHERE id = ?1",
        params![last],
    )
    .unwrap();
    named(&fx, last + 1, "edited");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_row_inserted_unsealed_survives_a_restart() {
    let fx = with_history().await;
    let last = last_id(&fx);
    db(&fx)
        .execute(
            "INSERT INTO audit_events (id, at, kind, outcome, detail) VALUES (?1, 0, 'agent_revoked', 'allowed', '{}')",
            params![last + 1],
        )
        .unwrap();
    named(&fx, last + 1, "unsealed");
    // A restart must not seal what someone else wrote.
    let dir = fx.stop().await;
    let fx = Fixture::start_in(&config_text(""), dir).await;
    named(&fx, last + 1, "unsealed");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_rows_reordered() {
    let fx = with_history().await;
    let db = db(&fx);
    // Swap the content of events 2 and 5 (each keeps its place and seals).
    let columns =
        "at, kind, outcome, client_id, agent, server, tool, grant_id, actor, duration_ms, detail";
    db.execute_batch(&format!(
        "CREATE TEMP TABLE swap AS SELECT id, {columns} FROM audit_events WHERE id IN (2, 5);
         UPDATE audit_events SET ({columns}) = (SELECT {columns} FROM swap WHERE swap.id = 7 - audit_events.id) WHERE id IN (2, 5);"
    ))
    .unwrap();
    named(&fx, 2, "edited");
    named(&fx, 5, "edited");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_rows_renumbered() {
    let fx = with_history().await;
    let db = db(&fx);
    // Move event 3 to the end, whole (content and seals): its place and link are wrong.
    let last = last_id(&fx);
    db.execute(
        "UPDATE audit_events SET id = ?1 WHERE id = 3",
        params![last + 1],
    )
    .unwrap();
    let (code, found) = verify(&fx);
    assert_eq!(code, 1);
    assert!(found["problem_count"].as_u64().unwrap() >= 2, "{found}");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_tail_cut_while_running() {
    let fx = with_history().await;
    let last = last_id(&fx);
    db(&fx)
        .execute("DELETE FROM audit_events WHERE id >= ?1", params![last - 1])
        .unwrap();
    named(&fx, last, "truncated");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_tail_cut_while_stopped() {
    let fx = with_history().await;
    let last = last_id(&fx);
    let dir = fx.stop().await;
    let cut = rusqlite::Connection::open(dir.path().join("gatehouse.db")).unwrap();
    cut.execute("DELETE FROM audit_events WHERE id >= ?1", params![last - 1])
        .unwrap();
    drop(cut);
    let fx = Fixture::start_in(&config_text(""), dir).await;
    // Found at start and recorded as an event of its own (ids are never reused).
    let found = named(&fx, last + 1, "truncated");
    assert!(
        found
            .to_string()
            .contains(&format!("#{} to #{last}", last - 1)),
        "{found}"
    );
    assert_eq!(fx.audit_kinds().last().unwrap(), "audit_truncated");
    // New events do not wash it out.
    fx.tokens_for("Later", ToolChoice::ReadOnly).await;
    named(&fx, last + 1, "truncated");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_export_edited() {
    let fx = with_history().await;
    let file = export(&fx);
    let (code, out) = verify_file(&fx, &file, false);
    assert_eq!(code, 0, "an untouched export verifies on its own: {out}");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("\"allowed\"", "\"denied\"", 1)).unwrap();
    let (code, out) = verify_file(&fx, &file, false);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("WAS TAMPERED WITH"), "{out}");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_export_of_the_whole_log_holds_every_event_of_a_call() {
    let fx = with_history().await;
    let (_, session) = fx
        .agent("Caller", "demo", ToolChoice::All, AskChoice::default())
        .await;
    let said = session
        .call_text("read_note", serde_json::json!({"title": "welcome"}))
        .await;
    assert!(!said.is_empty());
    let file = export(&fx);
    let text = std::fs::read_to_string(&file).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["kind"].to_string())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "\"call_started\""),
        "a finished call's start is part of the whole log: {kinds:?}"
    );
    assert_eq!(kinds.len() as i64, last_id(&fx), "every event: {kinds:?}");
    let (code, out) = verify_file(&fx, &file, true);
    let found: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(found["gaps"], 0, "a whole export has no gaps: {found}");
    assert_eq!(code, 0, "{found}");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_export_with_a_line_removed() {
    let fx = with_history().await;
    let file = export(&fx);
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(3);
    std::fs::write(&file, lines.join("\n")).unwrap();
    let (code, out) = verify_file(&fx, &file, true);
    let found: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(found["gaps"], 1, "a removed line is a gap, said: {found}");
    assert_eq!(code, 0, "each remaining event still holds");
    fx.stop().await;
}
