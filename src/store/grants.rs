//! The `grants` table: what the person allowed an agent to use on a server, and for how long.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::{corrupt, from_json, to_json, StoreError};
use crate::clock::UnixMs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "GrantDuration")]
pub enum Duration {
    /// This one authorization: the access token it issues, no refresh.
    Once,
    /// Until `expires_at`.
    Timed,
    /// Until revoked.
    Forever,
}

impl Duration {
    fn as_str(self) -> &'static str {
        match self {
            Duration::Once => "once",
            Duration::Timed => "timed",
            Duration::Forever => "forever",
        }
    }
    fn parse(s: &str) -> Result<Duration, StoreError> {
        Ok(match s {
            "once" => Duration::Once,
            "timed" => Duration::Timed,
            "forever" => Duration::Forever,
            other => return Err(StoreError::Corrupt(format!("grant duration {other}"))),
        })
    }
}

/// What the person allowed an agent to use on a server.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub server: String,
    pub tools: Vec<String>,
    /// Granted tools whose every call is held for the person's decision.
    #[serde(default)]
    pub ask_tools: Vec<String>,
    pub scope: String,
    pub duration: Duration,
    #[ts(type = "number")]
    pub created_at: UnixMs,
    #[ts(type = "number | null")]
    pub expires_at: Option<UnixMs>,
    #[ts(type = "number | null")]
    pub revoked_at: Option<UnixMs>,
    pub decided_by: String,
    /// The agent sees the tools it was not granted (marked as needing
    /// approval) and may ask for one by calling it (a step-up).
    #[serde(default)]
    pub may_ask_more: bool,
}

impl Grant {
    pub fn is_active(&self, now: UnixMs) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// The columns [`from_row`] reads, in its order (read by position: a name
/// is looked up column by column, and a start-up reads 10,000 grants).
macro_rules! columns {
    () => {
        "id, client_id, server, tools, ask_tools, scope, duration, created_at, expires_at, \
         revoked_at, decided_by, may_ask_more"
    };
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Grant> {
    let tools: String = row.get(3)?;
    let ask_tools: String = row.get(4)?;
    let duration: String = row.get(6)?;
    Ok(Grant {
        id: row.get(0)?,
        client_id: row.get(1)?,
        server: row.get(2)?,
        tools: from_json(&tools).map_err(corrupt)?,
        ask_tools: from_json(&ask_tools).map_err(corrupt)?,
        scope: row.get(5)?,
        duration: Duration::parse(&duration).map_err(corrupt)?,
        created_at: row.get(7)?,
        expires_at: row.get(8)?,
        revoked_at: row.get(9)?,
        decided_by: row.get(10)?,
        may_ask_more: row.get(11)?,
    })
}

pub fn insert(conn: &Connection, g: &Grant) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO grants (id, client_id, server, tools, scope, duration, created_at, expires_at, revoked_at, decided_by, ask_tools, may_ask_more)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")?.execute(params![
            g.id,
            g.client_id,
            g.server,
            to_json(&g.tools),
            g.scope,
            g.duration.as_str(),
            g.created_at,
            g.expires_at,
            g.revoked_at,
            g.decided_by,
            to_json(&g.ask_tools),
            g.may_ask_more
        ],
    )?;
    Ok(())
}

/// Lets the grant's agent ask for more tools (or stops it); false when no such grant.
pub fn set_may_ask_more(conn: &Connection, id: &str, on: bool) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("UPDATE grants SET may_ask_more = ?2 WHERE id = ?1")?
        .execute(params![id, on])?
        == 1)
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<Grant>, StoreError> {
    Ok(conn
        .prepare_cached(concat!("SELECT ", columns!(), " FROM grants WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// Grants, newest first; only those still in force unless `include_ended`.
pub fn list(
    conn: &Connection,
    client_id: Option<&str>,
    include_ended: bool,
    now: UnixMs,
) -> Result<Vec<Grant>, StoreError> {
    let mut stmt = conn.prepare(concat!(
        "SELECT ",
        columns!(),
        " FROM grants WHERE (?1 IS NULL OR client_id = ?1)
           AND (?2 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?3)))
         ORDER BY created_at DESC, id"
    ))?;
    let rows = stmt
        .query_map(params![client_id, include_ended, now], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Revokes the grants still in force for a client; returns their ids.
pub fn revoke_for_client(
    conn: &Connection,
    client_id: &str,
    now: UnixMs,
) -> Result<Vec<String>, StoreError> {
    let ids: Vec<String> = list(conn, Some(client_id), false, now)?
        .into_iter()
        .map(|g| g.id)
        .collect();
    for id in &ids {
        revoke(conn, id, now)?;
    }
    Ok(ids)
}

/// Revokes the grants still in force on a server; returns them.
pub fn revoke_for_server(
    conn: &Connection,
    server: &str,
    now: UnixMs,
) -> Result<Vec<Grant>, StoreError> {
    let grants: Vec<Grant> = list(conn, None, false, now)?
        .into_iter()
        .filter(|g| g.server == server)
        .collect();
    for g in &grants {
        revoke(conn, &g.id, now)?;
    }
    Ok(grants)
}

/// Revokes one grant; false if it was already revoked.
pub fn revoke(conn: &Connection, id: &str, now: UnixMs) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("UPDATE grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")?
        .execute(params![id, now])?;
    Ok(n == 1)
}

/// Replaces a grant's tool set (a step-up widened it).
pub fn set_tools(
    conn: &Connection,
    id: &str,
    tools: &[String],
    ask_tools: &[String],
    scope: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE grants SET tools = ?2, ask_tools = ?3, scope = ?4 WHERE id = ?1")?
        .execute(params![id, to_json(&tools), to_json(&ask_tools), scope])?;
    Ok(())
}

/// The grant in force for an agent on a server (the newest, if several).
pub fn active_for(
    conn: &Connection,
    client_id: &str,
    server: &str,
    now: UnixMs,
) -> Result<Option<Grant>, StoreError> {
    Ok(list(conn, Some(client_id), false, now)?
        .into_iter()
        .find(|g| g.server == server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::testing::{public_client, T0};

    fn grant(id: &str, server: &str, expires_at: Option<UnixMs>) -> Grant {
        Grant {
            id: id.into(),
            client_id: "gh_client_agent".into(),
            server: server.into(),
            tools: vec!["read_note".into()],
            ask_tools: vec![],
            scope: "tool:read_note".into(),
            duration: if expires_at.is_some() {
                Duration::Timed
            } else {
                Duration::Forever
            },
            created_at: T0,
            expires_at,
            revoked_at: None,
            decided_by: "me".into(),
            may_ask_more: false,
        }
    }

    fn store_with_client() -> Store {
        let auth = crate::testing::auth_server("");
        public_client(&auth, "agent", T0);
        std::sync::Arc::try_unwrap(auth.store).ok().unwrap()
    }

    #[test]
    fn grants_in_force_and_ended() {
        let store = store_with_client();
        store
            .write(|tx| {
                insert(tx.conn(), &grant("g1", "demo", None))?;
                insert(tx.conn(), &grant("g2", "other", Some(T0 + 100)))?;
                insert(tx.conn(), &grant("g3", "third", None))?;
                assert!(revoke(tx.conn(), "g3", T0 + 1)?);
                assert!(!revoke(tx.conn(), "g3", T0 + 2)?, "already revoked");
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let in_force = |now| {
            store
                .read(|c| list(c, Some("gh_client_agent"), false, now))
                .unwrap()
        };
        assert_eq!(in_force(T0 + 99).len(), 2);
        assert_eq!(in_force(T0 + 100).len(), 1, "expired at expires_at");
        assert_eq!(
            store.read(|c| list(c, None, true, T0 + 100)).unwrap().len(),
            3
        );
        assert!(store
            .read(|c| active_for(c, "gh_client_agent", "third", T0))
            .unwrap()
            .is_none());
        assert_eq!(
            store
                .read(|c| active_for(c, "gh_client_agent", "demo", T0))
                .unwrap()
                .unwrap()
                .id,
            "g1"
        );
    }

    #[test]
    fn a_widened_grant_keeps_its_id() {
        let store = store_with_client();
        store
            .write(|tx| {
                insert(tx.conn(), &grant("g1", "demo", None))?;
                let tools = ["read_note".to_string(), "write_note".to_string()];
                set_tools(
                    tx.conn(),
                    "g1",
                    &tools,
                    &tools[1..],
                    "tool:read_note tool:write_note",
                )?;
                let revoked = revoke_for_client(tx.conn(), "gh_client_agent", T0)?;
                assert_eq!(revoked, ["g1"]);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let g = store.read(|c| get(c, "g1")).unwrap().unwrap();
        assert_eq!(
            (g.tools.len(), g.ask_tools.as_slice()),
            (2, &["write_note".to_string()][..])
        );
        assert!(!g.is_active(T0));
    }
}
