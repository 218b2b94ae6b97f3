//! The attack suite: Gatehouse attacked the way an outsider would, one named
//! case per attack, each asserting the secure outcome and that nothing stored
//! changed. The families, by who attacks:
//!
//! - `browser`: a web page in the person's browser (DNS rebinding, CSRF with
//!   simple requests at every state-changing endpoint, clickjacking).
//! - `rfc9700`: a client or a network position attacking the OAuth flow
//!   (code injection, PKCE downgrade, mix-up, open redirects, refresh replay).
//! - `decisions`: an agent that lies about its name or changes its request
//!   while the person reads it.
//! - `gateway`: an agent that tries to get around the policy (notifications,
//!   sessions of others, too many sessions, hidden arguments).
//! - `terminal`: outside text that tries to drive the person's terminal.
//! - `local`: another OS user who plants files or a fake daemon.
//! - `cimd`: a client id metadata URL that points inside the network (SSRF).
//! - `limits`: a flood of registrations, requests or sessions.
//! - `upstream`: a malicious MCP server.
//! - `audit`: someone with write access to the database who edits history.

mod audit;
mod browser;
mod cimd;
mod decisions;
mod gateway;
mod limits;
mod local;
mod rfc9700;
mod terminal;
mod upstream;

use std::collections::BTreeMap;

use crate::support::Gh;

/// Every row of every table but the audit log's (`audit_*`: the log, which
/// records the attempt, and what follows it: its text index, its time
/// blocks, how far it holds the calls' journal): what an attack must leave
/// as it was.
pub fn stored(gh: &Gh) -> BTreeMap<String, Vec<String>> {
    let db = rusqlite::Connection::open(gh.data_dir.join("gatehouse.db")).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'audit\\_%' ESCAPE '\\' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables
        .into_iter()
        .map(|table| {
            let mut stmt = db.prepare(&format!("SELECT * FROM {table}")).unwrap();
            let columns = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    let values: Vec<String> = (0..columns)
                        .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                        .collect();
                    Ok(values.join("|"))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.sort();
            (table, rows)
        })
        .collect()
}

/// Asserts that nothing stored changed since `before` (see [`stored`]).
#[track_caller]
pub fn assert_unchanged(gh: &Gh, before: &BTreeMap<String, Vec<String>>) {
    let now = stored(gh);
    for (table, rows) in before {
        assert_eq!(&now[table], rows, "table {table} changed");
    }
}

/// Characters that must never reach a terminal raw: ESC, BEL, CR, bidi
/// overrides and isolates, zero-width characters.
pub const RAW: &[char] = &[
    '\u{1b}', '\u{07}', '\r', '\u{9b}', '\u{202E}', '\u{2066}', '\u{200B}', '\u{FEFF}',
];

/// Asserts that `out` (what the CLI printed) holds none of [`RAW`].
#[track_caller]
pub fn assert_inert(out: &str) {
    if let Some(c) = out.chars().find(|c| RAW.contains(c)) {
        panic!(
            "U+{:04X} reached the terminal raw in:\n{}",
            c as u32,
            out.escape_debug()
        );
    }
}
