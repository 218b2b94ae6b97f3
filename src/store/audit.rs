//! The `audit_events` table: append-only.

use rusqlite::{params, Connection, Row};

use super::{corrupt, StoreError};
use crate::audit::{AuditEvent, EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;

fn from_row(row: &Row<'_>) -> rusqlite::Result<AuditEvent> {
    let kind: String = row.get("kind")?;
    let outcome: String = row.get("outcome")?;
    let detail: String = row.get("detail")?;
    Ok(AuditEvent {
        id: row.get("id")?,
        at: row.get("at")?,
        kind: EventKind::parse(&kind).ok_or_else(|| corrupt(StoreError::Corrupt(kind)))?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt(StoreError::Corrupt(outcome)))?,
        client_id: row.get("client_id")?,
        agent: row.get("agent")?,
        server: row.get("server")?,
        tool: row.get("tool")?,
        grant_id: row.get("grant_id")?,
        actor: row.get("actor")?,
        duration_ms: row.get("duration_ms")?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
    })
}

/// Inserts an event; the agent's name is copied in so the log stays readable.
pub fn insert(conn: &Connection, e: NewEvent, now: UnixMs) -> Result<AuditEvent, StoreError> {
    let agent = match &e.client_id {
        Some(id) => super::clients::name_of(conn, id)?,
        None => None,
    };
    conn.execute(
        "INSERT INTO audit_events (at, kind, outcome, client_id, agent, server, tool, grant_id, actor, duration_ms, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            now,
            e.kind.as_str(),
            e.outcome.as_str(),
            e.client_id,
            agent,
            e.server,
            e.tool,
            e.grant_id,
            e.actor,
            e.duration_ms,
            e.detail.to_string()
        ],
    )?;
    Ok(AuditEvent {
        id: conn.last_insert_rowid(),
        at: now,
        kind: e.kind,
        outcome: e.outcome,
        client_id: e.client_id,
        agent,
        server: e.server,
        tool: e.tool,
        grant_id: e.grant_id,
        actor: e.actor,
        duration_ms: e.duration_ms,
        detail: e.detail,
    })
}

/// Filter for reading the log.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Query {
    pub client_id: Option<String>,
    pub kind: Option<EventKind>,
    /// Only events with an id above this (for following).
    pub after_id: Option<i64>,
    pub limit: Option<u32>,
}

/// The newest events matching `q`, returned oldest first.
pub fn list(conn: &Connection, q: &Query) -> Result<Vec<AuditEvent>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT * FROM audit_events
         WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR kind = ?2) AND id > ?3
         ORDER BY id DESC LIMIT ?4",
    )?;
    let mut rows = stmt
        .query_map(
            params![
                q.client_id,
                q.kind.map(|k| k.as_str()),
                q.after_id.unwrap_or(0),
                q.limit.unwrap_or(100).min(10_000)
            ],
            from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    rows.reverse();
    Ok(rows)
}

/// What the desktop timeline asks for: every filter is optional; the page is
/// the newest matching events with an id below `before_id`, newest first.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    pub client_id: Option<String>,
    pub server: Option<String>,
    pub outcome: Option<Outcome>,
    /// Inclusive lower bound on `at` (Unix ms).
    pub since: Option<UnixMs>,
    /// Exclusive upper bound on `at` (Unix ms).
    pub until: Option<UnixMs>,
    /// Case-insensitive substring of the agent, server, tool, kind, actor or detail.
    pub text: Option<String>,
}

/// The WHERE clause for a [`Filter`], with its parameters numbered from 1.
fn filter_sql(f: &Filter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let mut push = |column: &str, op: &str, value: Value| {
        args.push(value);
        clauses.push(format!("{column} {op} ?{}", args.len()));
    };
    if let Some(c) = &f.client_id {
        push("client_id", "=", Value::Text(c.clone()));
    }
    if let Some(s) = &f.server {
        push("server", "=", Value::Text(s.clone()));
    }
    if let Some(o) = f.outcome {
        push("outcome", "=", Value::Text(o.as_str().into()));
    }
    if let Some(t) = f.since {
        push("at", ">=", Value::Integer(t));
    }
    if let Some(t) = f.until {
        push("at", "<", Value::Integer(t));
    }
    if let Some(text) = f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        args.push(Value::Text(format!("%{escaped}%")));
        let n = args.len();
        let any: Vec<String> = ["agent", "server", "tool", "kind", "actor", "detail"]
            .iter()
            .map(|column| format!("{column} LIKE ?{n} ESCAPE '\\'"))
            .collect();
        clauses.push(format!("({})", any.join(" OR ")));
    }
    let sql = if clauses.is_empty() {
        "1".to_string()
    } else {
        clauses.join(" AND ")
    };
    (sql, args)
}

/// One page of the events matching `f`, newest first, with ids below
/// `before_id` (the last id of the previous page; `None` for the first page).
pub fn page(
    conn: &Connection,
    f: &Filter,
    before_id: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    let (clause, mut args) = filter_sql(f);
    args.push(rusqlite::types::Value::Integer(
        before_id.unwrap_or(i64::MAX),
    ));
    args.push(rusqlite::types::Value::Integer(limit.min(10_000) as i64));
    let n = args.len();
    let sql = format!(
        "SELECT * FROM audit_events WHERE {clause} AND id < ?{} ORDER BY id DESC LIMIT ?{n}",
        n - 1
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// How many events match `f`.
pub fn count(conn: &Connection, f: &Filter) -> Result<i64, StoreError> {
    let (clause, args) = filter_sql(f);
    let sql = format!("SELECT COUNT(*) FROM audit_events WHERE {clause}");
    let mut stmt = conn.prepare_cached(&sql)?;
    Ok(stmt.query_row(rusqlite::params_from_iter(args), |r| r.get(0))?)
}

/// Whether a live event matches `f` (the same rules as the SQL, for events
/// pushed to a filtered view as they commit).
pub fn matches(e: &AuditEvent, f: &Filter) -> bool {
    let eq = |want: &Option<String>, have: &Option<String>| {
        want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
    };
    let text_ok = match f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => true,
        Some(t) => {
            let t = t.to_lowercase();
            let has = |s: Option<&str>| s.is_some_and(|s| s.to_lowercase().contains(&t));
            has(e.agent.as_deref())
                || has(e.server.as_deref())
                || has(e.tool.as_deref())
                || has(Some(e.kind.as_str()))
                || has(e.actor.as_deref())
                || has(Some(&e.detail.to_string()))
        }
    };
    eq(&f.client_id, &e.client_id)
        && eq(&f.server, &e.server)
        && f.outcome.is_none_or(|o| o == e.outcome)
        && f.since.is_none_or(|t| e.at >= t)
        && f.until.is_none_or(|t| e.at < t)
        && text_ok
}

#[cfg(test)]
mod filter_tests {
    use super::*;
    use crate::audit::{EventKind, NewEvent, Outcome};
    use crate::store::Store;

    fn seed(store: &Store) {
        store
            .write(|tx| {
                for i in 0..50i64 {
                    let outcome = if i % 5 == 0 {
                        Outcome::Denied
                    } else {
                        Outcome::Allowed
                    };
                    let server = if i % 2 == 0 { "demo" } else { "files" };
                    let tool = format!("tool_{}", i % 3);
                    tx.record(
                        NewEvent::new(EventKind::ToolCall, outcome)
                            .server(server)
                            .tool(&tool)
                            .detail(serde_json::json!({"arguments": {"path": format!("notes/100%_{i}")}})),
                        1_000 + i,
                    )?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }

    #[test]
    fn pages_are_newest_first_and_continue_below_the_cursor() {
        let store = Store::open_in_memory().unwrap();
        seed(&store);
        let f = Filter::default();
        let first = store.read(|c| page(c, &f, None, 20)).unwrap();
        assert_eq!(first.len(), 20);
        assert!(first.windows(2).all(|w| w[0].id > w[1].id));
        let next = store
            .read(|c| page(c, &f, Some(first.last().unwrap().id), 20))
            .unwrap();
        assert_eq!(next[0].id, first.last().unwrap().id - 1);
        assert_eq!(store.read(|c| count(c, &f)).unwrap(), 50);
    }

    #[test]
    fn filters_agree_between_sql_and_live_matching() {
        let store = Store::open_in_memory().unwrap();
        seed(&store);
        let all = store
            .read(|c| page(c, &Filter::default(), None, 100))
            .unwrap();
        let filters = [
            Filter {
                server: Some("demo".into()),
                ..Default::default()
            },
            Filter {
                outcome: Some(Outcome::Denied),
                since: Some(1_010),
                until: Some(1_040),
                ..Default::default()
            },
            Filter {
                text: Some("TOOL_2".into()),
                ..Default::default()
            },
            // `%` and `_` are literal characters, not LIKE wildcards.
            Filter {
                text: Some("100%_4".into()),
                ..Default::default()
            },
            Filter {
                text: Some("0%x".into()),
                ..Default::default()
            },
        ];
        for f in filters {
            let sql = store.read(|c| page(c, &f, None, 100)).unwrap();
            let live: Vec<_> = all.iter().filter(|e| matches(e, &f)).cloned().collect();
            assert_eq!(sql, live, "{f:?}");
            assert_eq!(store.read(|c| count(c, &f)).unwrap(), sql.len() as i64);
        }
        let f = Filter {
            text: Some("100%_4".into()),
            ..Default::default()
        };
        assert_eq!(store.read(|c| count(c, &f)).unwrap(), 11); // 4, 40..49
    }
}

/// File formats for exporting the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// One JSON event per line.
    Jsonl,
    /// A header row, then one row per event; `detail` as a JSON cell.
    Csv,
}

const CSV_HEADER: &str =
    "id,at,kind,outcome,client_id,agent,server,tool,grant_id,actor,duration_ms,detail";

fn csv_cell(s: &str) -> String {
    // Quote everything that could break a row or be read as a formula.
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(['=', '+', '-', '@']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_row(e: &AuditEvent) -> String {
    let opt = |v: &Option<String>| csv_cell(v.as_deref().unwrap_or(""));
    [
        e.id.to_string(),
        e.at.to_string(),
        e.kind.as_str().to_string(),
        e.outcome.as_str().to_string(),
        opt(&e.client_id),
        opt(&e.agent),
        opt(&e.server),
        opt(&e.tool),
        opt(&e.grant_id),
        opt(&e.actor),
        e.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        csv_cell(&e.detail.to_string()),
    ]
    .join(",")
}

/// Writes every event matching `f`, newest first, reading the store one page
/// at a time (the connection is never held for the whole export). Returns the
/// number of events written.
pub fn export(
    store: &super::Store,
    f: &Filter,
    format: ExportFormat,
    out: &mut impl std::io::Write,
) -> Result<usize, ExportError> {
    if format == ExportFormat::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    let mut before = None;
    let mut written = 0;
    loop {
        let events = store.read(|c| page(c, f, before, 2_000))?;
        let Some(last) = events.last() else { break };
        before = Some(last.id);
        for e in &events {
            match format {
                ExportFormat::Jsonl => writeln!(
                    out,
                    "{}",
                    serde_json::to_string(e).map_err(std::io::Error::other)?
                )?,
                ExportFormat::Csv => writeln!(out, "{}", csv_row(e))?,
            }
        }
        written += events.len();
    }
    out.flush()?;
    Ok(written)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod export_tests {
    use super::*;
    use crate::audit::{EventKind, NewEvent, Outcome};
    use crate::store::Store;

    #[test]
    fn exports_the_filter_as_jsonl_and_csv() {
        let store = Store::open_in_memory().unwrap();
        store
            .write(|tx| {
                for i in 0..2_500i64 {
                    tx.record(
                        NewEvent::new(EventKind::ToolCall, Outcome::Allowed)
                            .server(if i % 2 == 0 { "demo" } else { "other" })
                            .tool("read_note")
                            .detail(serde_json::json!({"arguments": {"title": "a, \"b\"\n=c"}})),
                        i,
                    )?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let f = Filter {
            server: Some("demo".into()),
            ..Default::default()
        };
        let mut jsonl = Vec::new();
        assert_eq!(
            export(&store, &f, ExportFormat::Jsonl, &mut jsonl).unwrap(),
            1_250
        );
        let lines: Vec<&str> = std::str::from_utf8(&jsonl).unwrap().lines().collect();
        assert_eq!(lines.len(), 1_250);
        let first: AuditEvent = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first.server.as_deref(), Some("demo"));
        assert_eq!(first.at, 2_498);

        let mut csv = Vec::new();
        export(&store, &f, ExportFormat::Csv, &mut csv).unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert!(text.starts_with(CSV_HEADER));
        assert!(text.starts_with(&format!(
            "{CSV_HEADER}\n2499,2498,tool_call,allowed,,,demo,"
        )));
        assert_eq!(text.lines().count(), 1_251);
        // The detail cell is quoted: its commas and quotes stay inside one cell.
        assert!(text.contains(r#""{""arguments"":{""title"":""a, \""b\""\n=c""}}""#));
    }
}
