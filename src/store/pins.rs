//! The `tool_pins` and `tool_reviews` tables: the definition of every granted
//! tool as the person saw it, and the reviews opened when an upstream changes one.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::{corrupt, from_json, StoreError};
use crate::clock::UnixMs;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pin {
    pub grant_id: String,
    pub tool: String,
    pub hash: String,
    pub definition: serde_json::Value,
    pub suspended_at: Option<UnixMs>,
}

fn pin_from_row(row: &Row<'_>) -> rusqlite::Result<Pin> {
    let definition: String = row.get("definition")?;
    Ok(Pin {
        grant_id: row.get("grant_id")?,
        tool: row.get("tool")?,
        hash: row.get("hash")?,
        definition: from_json(&definition).map_err(corrupt)?,
        suspended_at: row.get("suspended_at")?,
    })
}

/// Pins (or re-pins) a tool's definition for a grant, lifting any suspension.
pub fn pin(
    conn: &Connection,
    grant_id: &str,
    tool: &str,
    hash: &str,
    definition: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO tool_pins (grant_id, tool, hash, definition, suspended_at) VALUES (?1, ?2, ?3, ?4, NULL)
         ON CONFLICT(grant_id, tool) DO UPDATE SET hash = excluded.hash, definition = excluded.definition, suspended_at = NULL")?.execute(params![grant_id, tool, hash, definition.to_string()],
    )?;
    Ok(())
}

#[cfg(test)]
pub fn for_grant(conn: &Connection, grant_id: &str) -> Result<Vec<Pin>, StoreError> {
    let mut stmt = conn.prepare("SELECT * FROM tool_pins WHERE grant_id = ?1 ORDER BY tool")?;
    let rows = stmt
        .query_map([grant_id], pin_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A grant's pins without their definitions (tool, hash, suspension): what a
/// listing checks, read without parsing a definition per tool. `definition`
/// is `null`; [`for_tool`] reads a whole pin.
pub fn heads_for_grant(conn: &Connection, grant_id: &str) -> Result<Vec<Pin>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT grant_id, tool, hash, suspended_at FROM tool_pins WHERE grant_id = ?1 ORDER BY tool",
    )?;
    let rows = stmt
        .query_map([grant_id], head_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// [`heads_for_grant`] for every grant not revoked, in no order (one read
/// where a start-up asked 10,000 times).
pub fn heads(conn: &Connection) -> Result<Vec<Pin>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT tool_pins.grant_id, tool, hash, suspended_at FROM tool_pins
         JOIN grants ON grants.id = tool_pins.grant_id WHERE grants.revoked_at IS NULL",
    )?;
    let rows = stmt
        .query_map([], head_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn head_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Pin> {
    Ok(Pin {
        grant_id: row.get(0)?,
        tool: row.get(1)?,
        hash: row.get(2)?,
        definition: serde_json::Value::Null,
        suspended_at: row.get(3)?,
    })
}

/// One tool's pin in a grant, if it has one.
pub fn for_tool(conn: &Connection, grant_id: &str, tool: &str) -> Result<Option<Pin>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT * FROM tool_pins WHERE grant_id = ?1 AND tool = ?2")?
        .query_row(params![grant_id, tool], pin_from_row)
        .optional()?)
}

/// The pin of `item` in the newest grant on `server` that has one, other
/// than `grant_id`: of the agent `client_id`'s grants if `client_id` is
/// given, else of anyone's (revoked or not).
pub fn newest_on_server(
    conn: &Connection,
    server: &str,
    client_id: Option<&str>,
    item: &str,
    grant_id: &str,
) -> Result<Option<Pin>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT tool_pins.* FROM tool_pins JOIN grants ON grants.id = tool_pins.grant_id
             WHERE grants.server = ?1 AND (?2 IS NULL OR grants.client_id = ?2)
               AND tool_pins.tool = ?3 AND grants.id != ?4
             ORDER BY grants.created_at DESC, grants.rowid DESC LIMIT 1",
        )?
        .query_row(params![server, client_id, item, grant_id], pin_from_row)
        .optional()?)
}

/// The person's last decision on `item` offered as the definition whose
/// pin is `hash`, for the agent `client_id` on `server` (any of its grants).
pub fn decision_on(
    conn: &Connection,
    client_id: &str,
    server: &str,
    item: &str,
    hash: &str,
) -> Result<Option<ReviewStatus>, StoreError> {
    let status: Option<String> = conn
        .prepare_cached(
            "SELECT status FROM tool_reviews
             WHERE client_id = ?1 AND server = ?2 AND tool = ?3 AND new_hash = ?4 AND status != 'pending'
             ORDER BY decided_at DESC, rowid DESC LIMIT 1",
        )?
        .query_row(params![client_id, server, item, hash], |r| r.get(0))
        .optional()?;
    status.as_deref().map(ReviewStatus::parse).transpose()
}

/// Whether a review of `item` offered as `hash` waits for the agent
/// `client_id` on `server`, on a grant in force.
pub fn waits_for_agent(
    conn: &Connection,
    client_id: &str,
    server: &str,
    item: &str,
    hash: &str,
    now: UnixMs,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM tool_reviews JOIN grants ON grants.id = tool_reviews.grant_id
             WHERE tool_reviews.client_id = ?1 AND tool_reviews.server = ?2 AND tool = ?3
               AND new_hash = ?4 AND status = 'pending' AND grants.revoked_at IS NULL
               AND (grants.expires_at IS NULL OR grants.expires_at > ?5)",
        )?
        .query_row(params![client_id, server, item, hash, now], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Blocks a pinned tool; false if it already was.
pub fn suspend(
    conn: &Connection,
    grant_id: &str,
    tool: &str,
    now: UnixMs,
) -> Result<bool, StoreError> {
    let n = conn.prepare_cached("UPDATE tool_pins SET suspended_at = ?3 WHERE grant_id = ?1 AND tool = ?2 AND suspended_at IS NULL")?.execute(params![grant_id, tool, now],
    )?;
    Ok(n == 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Pending,
    Approved,
    Denied,
}

impl ReviewStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Denied => "denied",
        }
    }
    fn parse(s: &str) -> Result<ReviewStatus, StoreError> {
        Ok(match s {
            "pending" => ReviewStatus::Pending,
            "approved" => ReviewStatus::Approved,
            "denied" => ReviewStatus::Denied,
            other => return Err(StoreError::Corrupt(format!("review status {other}"))),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct ToolReview {
    pub id: String,
    pub grant_id: String,
    pub client_id: String,
    pub server: String,
    pub tool: String,
    #[ts(type = "unknown")]
    pub old_definition: serde_json::Value,
    #[ts(type = "unknown")]
    pub new_definition: serde_json::Value,
    pub new_hash: String,
    pub status: ReviewStatus,
    #[ts(type = "number")]
    pub created_at: UnixMs,
    #[ts(type = "number | null")]
    pub decided_at: Option<UnixMs>,
    pub decided_by: Option<String>,
}

fn review_from_row(row: &Row<'_>) -> rusqlite::Result<ToolReview> {
    let old: String = row.get("old_definition")?;
    let new: String = row.get("new_definition")?;
    let status: String = row.get("status")?;
    Ok(ToolReview {
        id: row.get("id")?,
        grant_id: row.get("grant_id")?,
        client_id: row.get("client_id")?,
        server: row.get("server")?,
        tool: row.get("tool")?,
        old_definition: from_json(&old).map_err(corrupt)?,
        new_definition: from_json(&new).map_err(corrupt)?,
        new_hash: row.get("new_hash")?,
        status: ReviewStatus::parse(&status).map_err(corrupt)?,
        created_at: row.get("created_at")?,
        decided_at: row.get("decided_at")?,
        decided_by: row.get("decided_by")?,
    })
}

pub fn insert_review(conn: &Connection, r: &ToolReview) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO tool_reviews (id, grant_id, client_id, server, tool, old_definition, new_definition, new_hash, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?.execute(params![
            r.id,
            r.grant_id,
            r.client_id,
            r.server,
            r.tool,
            r.old_definition.to_string(),
            r.new_definition.to_string(),
            r.new_hash,
            r.status.as_str(),
            r.created_at
        ],
    )?;
    Ok(())
}

/// The open review of this grant's tool, if any (one at a time).
pub fn pending_review(
    conn: &Connection,
    grant_id: &str,
    tool: &str,
) -> Result<Option<ToolReview>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT * FROM tool_reviews WHERE grant_id = ?1 AND tool = ?2 AND status = 'pending'",
        )?
        .query_row(params![grant_id, tool], review_from_row)
        .optional()?)
}

pub fn get_review(conn: &Connection, id: &str) -> Result<Option<ToolReview>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT * FROM tool_reviews WHERE id = ?1")?
        .query_row([id], review_from_row)
        .optional()?)
}

pub fn pending_reviews(conn: &Connection, now: UnixMs) -> Result<Vec<ToolReview>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT tool_reviews.* FROM tool_reviews JOIN grants ON grants.id = tool_reviews.grant_id
         WHERE tool_reviews.status = 'pending' AND grants.revoked_at IS NULL
           AND (grants.expires_at IS NULL OR grants.expires_at > ?1)
         ORDER BY tool_reviews.created_at, tool_reviews.id",
    )?;
    let rows = stmt
        .query_map([now], review_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Closes a pending review; false when it was not pending.
pub fn decide_review(
    conn: &Connection,
    id: &str,
    to: ReviewStatus,
    actor: &str,
    now: UnixMs,
) -> Result<bool, StoreError> {
    let n = conn.prepare_cached("UPDATE tool_reviews SET status = ?2, decided_at = ?3, decided_by = ?4 WHERE id = ?1 AND status = 'pending'")?.execute(params![id, to.as_str(), now, actor],
    )?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{auth_server, tokens, T0};

    #[test]
    fn a_pin_is_suspended_once_and_a_review_decided_once() {
        let auth = auth_server("");
        let (client, _) = tokens(&auth, "agent", T0);
        let store = &auth.store;
        let grant_id = store
            .read(|c| crate::store::grants::list(c, None, false, T0))
            .unwrap()[0]
            .id
            .clone();
        let pinned = store.read(|c| for_grant(c, &grant_id)).unwrap();
        assert_eq!(pinned.len(), 3, "approval pinned every granted tool");
        let read = store
            .read(|c| for_tool(c, &grant_id, "read_note"))
            .unwrap()
            .unwrap();
        assert!(store
            .write(|tx| suspend(tx.conn(), &grant_id, "read_note", T0 + 1))
            .unwrap());
        assert!(!store
            .write(|tx| suspend(tx.conn(), &grant_id, "read_note", T0 + 2))
            .unwrap());
        let review = ToolReview {
            id: "tr_1".into(),
            grant_id: grant_id.clone(),
            client_id: client.client_id,
            server: "demo".into(),
            tool: "read_note".into(),
            old_definition: read.definition.clone(),
            new_definition: serde_json::json!({"name": "read_note", "description": "changed"}),
            new_hash: "new".into(),
            status: ReviewStatus::Pending,
            created_at: T0 + 1,
            decided_at: None,
            decided_by: None,
        };
        store.write(|tx| insert_review(tx.conn(), &review)).unwrap();
        assert_eq!(
            store
                .read(|c| pending_review(c, &grant_id, "read_note"))
                .unwrap()
                .unwrap()
                .id,
            "tr_1"
        );
        assert_eq!(store.read(|c| pending_reviews(c, T0 + 2)).unwrap().len(), 1);
        let decide_as = |to| {
            store
                .write(|tx| decide_review(tx.conn(), "tr_1", to, "me", T0 + 3))
                .unwrap()
        };
        assert!(decide_as(ReviewStatus::Approved));
        assert!(!decide_as(ReviewStatus::Denied), "decided once");
        // Re-pinning lifts the suspension.
        store
            .write(|tx| {
                pin(
                    tx.conn(),
                    &grant_id,
                    "read_note",
                    "new",
                    &review.new_definition,
                )
            })
            .unwrap();
        let repinned = store
            .read(|c| for_tool(c, &grant_id, "read_note"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (repinned.hash.as_str(), repinned.suspended_at),
            ("new", None)
        );
        assert_eq!(
            store
                .read(|c| get_review(c, "tr_1"))
                .unwrap()
                .unwrap()
                .status,
            ReviewStatus::Approved
        );
        // A review of a grant that ended is not pending: nothing is left to decide for.
        let later = ToolReview {
            id: "tr_2".into(),
            ..review
        };
        store.write(|tx| insert_review(tx.conn(), &later)).unwrap();
        let pending = |at| store.read(|c| pending_reviews(c, at)).unwrap().len();
        assert_eq!(pending(T0 + 6), 1);
        let expire = |tx: &mut crate::store::Tx<'_>| {
            let sql = "UPDATE grants SET expires_at = ?2 WHERE id = ?1";
            Ok::<_, StoreError>(tx.conn().execute(sql, params![grant_id, T0 + 7])?)
        };
        store.write(expire).unwrap();
        assert_eq!(
            (pending(T0 + 6), pending(T0 + 7)),
            (1, 0),
            "until it expires"
        );
        let revoke = |tx: &mut crate::store::Tx<'_>| {
            crate::store::grants::revoke(tx.conn(), &grant_id, T0 + 5)
        };
        assert!(store.write(revoke).unwrap());
        assert_eq!(pending(T0 + 6), 0, "or is revoked");
    }
}
