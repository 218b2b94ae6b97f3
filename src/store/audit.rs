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
