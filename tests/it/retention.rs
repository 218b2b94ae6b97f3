//! Retention: with `keep_audit_events` set (`gatehouse settings`), upkeep exports the oldest events
//! to the data directory's `audit-archive/` (a file `log verify --file`
//! checks) and deletes them, recording where the log now starts; `log verify`
//! still holds. Deleting more of the log's start by hand is then caught.

use std::time::{Duration, Instant};

use crate::support::serve::Serve;
use crate::support::*;

#[test]
fn the_oldest_events_are_archived_then_cut_and_the_log_still_verifies() {
    let gh = Serve::start(&config_text(""), &[]);
    let said = gh.cli_ok(&["settings", "--keep-audit-events", "5"]);
    assert!(said.contains("most 5 events"), "{said}");
    for _ in 0..4 {
        gh.cli_ok(&["pause"]);
        gh.cli_ok(&["resume"]);
    }
    let deadline = Instant::now() + STEP;
    let pruned = loop {
        let log = gh.log();
        if let Some(p) = log.iter().find(|e| e["kind"] == "audit_pruned") {
            break p.clone();
        }
        assert!(Instant::now() < deadline, "nothing was cut: {log:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(pruned["actor"], "retention", "{pruned}");
    let log = gh.log();
    assert!(log.len() <= 6, "5 kept and the record of the cut: {log:?}");
    gh.cli_ok(&["log", "verify"]);

    let archived = pruned["detail"]["exported_to"]
        .as_str()
        .unwrap()
        .to_string();
    let lines = std::fs::read_to_string(&archived).unwrap();
    assert_eq!(
        lines.lines().count() as u64,
        pruned["detail"]["count"].as_u64().unwrap(),
        "every cut event is in the archive"
    );
    assert!(lines.contains("\"kind\":\"paused\""), "{lines}");
    gh.cli_ok(&["log", "verify", "--file", &archived]);

    // Cutting more by hand is not retention: the log no longer holds.
    let db = rusqlite::Connection::open(gh.data_dir.join("gatehouse.db")).unwrap();
    db.execute(
        "DELETE FROM audit_events WHERE id = (SELECT MIN(id) FROM audit_events)",
        [],
    )
    .unwrap();
    let out = gh.cli(&["log", "verify"]);
    assert!(!out.status.success(), "a hand-cut start was not caught");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("missing"), "{said}");
    // Retention does not cut over it: new events would have it cut again,
    // and a clean record of that cut would hide the hand-cut.
    for _ in 0..3 {
        gh.cli_ok(&["pause"]);
        gh.cli_ok(&["resume"]);
    }
    std::thread::sleep(Duration::from_secs(5));
    let cuts = gh
        .log()
        .iter()
        .filter(|e| e["kind"] == "audit_pruned")
        .count();
    assert_eq!(cuts, 1, "retention cut a log that does not verify");
    assert!(
        !gh.cli(&["log", "verify"]).status.success(),
        "the hand-cut is hidden"
    );

    // 0: no limit again, and the key is gone from the config file.
    gh.cli_ok(&["settings", "--keep-audit-events", "0"]);
    let config = std::fs::read_to_string(gh.config_path()).unwrap();
    assert!(!config.contains("keep_audit_events"), "{config}");
}
