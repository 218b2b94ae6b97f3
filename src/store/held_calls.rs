//! The `held_calls` table: calls to ask-every-time tools waiting for the
//! person, and what they decided.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::{corrupt, from_json, StoreError};
use crate::clock::UnixMs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Pending,
    Allowed,
    Denied,
    Expired,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Pending => "pending",
            CallStatus::Allowed => "allowed",
            CallStatus::Denied => "denied",
            CallStatus::Expired => "expired",
        }
    }
    fn parse(s: &str) -> Result<CallStatus, StoreError> {
        Ok(match s {
            "pending" => CallStatus::Pending,
            "allowed" => CallStatus::Allowed,
            "denied" => CallStatus::Denied,
            "expired" => CallStatus::Expired,
            other => return Err(StoreError::Corrupt(format!("held call status {other}"))),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct HeldCall {
    pub id: String,
    pub client_id: String,
    pub server: String,
    pub grant_id: String,
    pub tool: String,
    /// Redacted and size-capped, for the person to read.
    #[ts(type = "unknown")]
    pub arguments: serde_json::Value,
    pub status: CallStatus,
    #[ts(type = "number")]
    pub created_at: UnixMs,
    #[ts(type = "number")]
    pub expires_at: UnixMs,
    #[ts(type = "number | null")]
    pub decided_at: Option<UnixMs>,
    pub decided_by: Option<String>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<HeldCall> {
    let arguments: String = row.get("arguments")?;
    let status: String = row.get("status")?;
    Ok(HeldCall {
        id: row.get("id")?,
        client_id: row.get("client_id")?,
        server: row.get("server")?,
        grant_id: row.get("grant_id")?,
        tool: row.get("tool")?,
        arguments: from_json(&arguments).map_err(corrupt)?,
        status: CallStatus::parse(&status).map_err(corrupt)?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        decided_at: row.get("decided_at")?,
        decided_by: row.get("decided_by")?,
    })
}

pub fn insert(conn: &Connection, c: &HeldCall) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO held_calls (id, client_id, server, grant_id, tool, arguments, status, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![c.id, c.client_id, c.server, c.grant_id, c.tool, c.arguments.to_string(), c.status.as_str(), c.created_at, c.expires_at],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<HeldCall>, StoreError> {
    Ok(conn
        .query_row("SELECT * FROM held_calls WHERE id = ?1", [id], from_row)
        .optional()?)
}

pub fn pending(conn: &Connection, now: UnixMs) -> Result<Vec<HeldCall>, StoreError> {
    let mut stmt = conn.prepare("SELECT * FROM held_calls WHERE status = 'pending' AND expires_at > ?1 ORDER BY created_at, id")?;
    let rows = stmt
        .query_map([now], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Closes a pending held call; false when it was no longer pending.
pub fn decide(
    conn: &Connection,
    id: &str,
    to: CallStatus,
    actor: Option<&str>,
    now: UnixMs,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE held_calls SET status = ?2, decided_at = ?3, decided_by = ?4 WHERE id = ?1 AND status = 'pending'",
        params![id, to.as_str(), now, actor],
    )?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{auth_server, tokens, T0};

    #[test]
    fn a_held_call_is_decided_once() {
        let auth = auth_server("");
        let (client, _) = tokens(&auth, "agent", T0);
        let grant_id = auth
            .store
            .read(|c| crate::store::grants::list(c, None, false, T0))
            .unwrap()[0]
            .id
            .clone();
        let call = HeldCall {
            id: "hc_1".into(),
            client_id: client.client_id,
            server: "demo".into(),
            grant_id,
            tool: "delete_note".into(),
            arguments: serde_json::json!({"title": "groceries"}),
            status: CallStatus::Pending,
            created_at: T0,
            expires_at: T0 + 1_000,
            decided_at: None,
            decided_by: None,
        };
        let store = &auth.store;
        store.write(|tx| insert(tx.conn(), &call)).unwrap();
        assert_eq!(store.read(|c| pending(c, T0)).unwrap().len(), 1);
        assert!(
            store.read(|c| pending(c, T0 + 1_000)).unwrap().is_empty(),
            "expired"
        );
        let decide_as = |to| {
            store
                .write(|tx| decide(tx.conn(), "hc_1", to, Some("me"), T0 + 5))
                .unwrap()
        };
        assert!(decide_as(CallStatus::Allowed));
        assert!(!decide_as(CallStatus::Denied), "decided once");
        let stored = store.read(|c| get(c, "hc_1")).unwrap().unwrap();
        assert_eq!(
            (stored.status, stored.arguments),
            (CallStatus::Allowed, call.arguments)
        );
    }
}
