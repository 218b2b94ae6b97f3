//! The `consent_requests` table: one row per `/authorize` that waits for the
//! person's decision, and what became of it.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::{corrupt, from_json, to_json, StoreError};
use crate::clock::UnixMs;
use crate::tools::{Instructions, ToolInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the person.
    Pending,
    /// Approved; the browser has not yet collected the code.
    Approved,
    Denied,
    /// Nobody answered in time: a denial of this one request.
    Expired,
    /// Approved and the code was handed to the browser.
    Delivered,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Delivered => "delivered",
        }
    }
    fn parse(s: &str) -> Result<Status, StoreError> {
        Ok(match s {
            "pending" => Status::Pending,
            "approved" => Status::Approved,
            "denied" => Status::Denied,
            "expired" => Status::Expired,
            "delivered" => Status::Delivered,
            other => return Err(StoreError::Corrupt(format!("consent status {other}"))),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsentRequest {
    pub id: String,
    #[serde(skip)]
    pub handle_hash: String,
    pub client_id: String,
    pub server: String,
    /// The RFC 8707 resource the token will be bound to.
    pub resource: String,
    pub redirect_uri: String,
    /// Whether `/authorize` named the redirect URI (then `/token` must repeat it).
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    #[serde(skip)]
    pub code_challenge: String,
    pub scope: Option<String>,
    /// The tools this request would reach, with their risk classes.
    pub tools: Vec<ToolInfo>,
    pub phrase: String,
    pub status: Status,
    pub created_at: UnixMs,
    pub expires_at: UnixMs,
    pub decided_at: Option<UnixMs>,
    pub decided_by: Option<String>,
    pub grant_id: Option<String>,
    /// A step-up: approving widens this grant instead of creating one.
    pub base_grant_id: Option<String>,
    /// The server's instructions as the request shows them (a new grant pins them).
    pub instructions: Option<Instructions>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<ConsentRequest> {
    let status: String = row.get("status")?;
    let tools: String = row.get("tools")?;
    let instructions: Option<String> = row.get("instructions")?;
    Ok(ConsentRequest {
        id: row.get("id")?,
        handle_hash: row.get("handle_hash")?,
        client_id: row.get("client_id")?,
        server: row.get("server")?,
        resource: row.get("resource")?,
        redirect_uri: row.get("redirect_uri")?,
        redirect_uri_given: row.get("redirect_uri_given")?,
        state: row.get("state")?,
        code_challenge: row.get("code_challenge")?,
        scope: row.get("scope")?,
        tools: from_json(&tools).map_err(corrupt)?,
        phrase: row.get("phrase")?,
        status: Status::parse(&status).map_err(corrupt)?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        decided_at: row.get("decided_at")?,
        decided_by: row.get("decided_by")?,
        grant_id: row.get("grant_id")?,
        base_grant_id: row.get("base_grant_id")?,
        instructions: instructions
            .map(|i| from_json(&i))
            .transpose()
            .map_err(corrupt)?,
    })
}

pub fn insert(conn: &Connection, r: &ConsentRequest) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO consent_requests (id, handle_hash, client_id, server, resource, redirect_uri, redirect_uri_given,
           state, code_challenge, scope, tools, phrase, status, created_at, expires_at, base_grant_id, instructions)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)")?.execute(params![
            r.id,
            r.handle_hash,
            r.client_id,
            r.server,
            r.resource,
            r.redirect_uri,
            r.redirect_uri_given,
            r.state,
            r.code_challenge,
            r.scope,
            to_json(&r.tools),
            r.phrase,
            r.status.as_str(),
            r.created_at,
            r.expires_at,
            r.base_grant_id,
            r.instructions.as_ref().map(to_json)
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<ConsentRequest>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT * FROM consent_requests WHERE id = ?1")?
        .query_row([id], from_row)
        .optional()?)
}

pub fn by_handle(
    conn: &Connection,
    handle_hash: &str,
) -> Result<Option<ConsentRequest>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT * FROM consent_requests WHERE handle_hash = ?1")?
        .query_row([handle_hash], from_row)
        .optional()?)
}

/// A still-pending request for the same client and PKCE challenge (a reload or retry of the same `/authorize`).
pub fn find_pending_duplicate(
    conn: &Connection,
    client_id: &str,
    code_challenge: &str,
    now: UnixMs,
) -> Result<Option<ConsentRequest>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT * FROM consent_requests WHERE client_id = ?1 AND code_challenge = ?2
               AND status = 'pending' AND expires_at > ?3",
        )?
        .query_row(params![client_id, code_challenge, now], from_row)
        .optional()?)
}

/// Requests still waiting for a decision, oldest first.
pub fn pending(conn: &Connection, now: UnixMs) -> Result<Vec<ConsentRequest>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT * FROM consent_requests WHERE status = 'pending' AND expires_at > ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt
        .query_map([now], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Pending requests whose time is up.
pub fn overdue(conn: &Connection, now: UnixMs) -> Result<Vec<ConsentRequest>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT * FROM consent_requests WHERE status = 'pending' AND expires_at <= ?1 ORDER BY created_at")?;
    let rows = stmt
        .query_map([now], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Moves a request from `from` to `to`; false when it was not in `from` (someone else decided first).
pub fn transition(
    conn: &Connection,
    id: &str,
    from: Status,
    to: Status,
    now: UnixMs,
    decided_by: Option<&str>,
    grant_id: Option<&str>,
) -> Result<bool, StoreError> {
    let changed = conn.prepare_cached("UPDATE consent_requests SET status = ?3,
           decided_at = COALESCE(decided_at, ?4), decided_by = COALESCE(?5, decided_by), grant_id = COALESCE(?6, grant_id)
         WHERE id = ?1 AND status = ?2")?.execute(params![id, from.as_str(), to.as_str(), now, decided_by, grant_id],
    )?;
    Ok(changed == 1)
}

/// Gives a request a new browser handle (a reload of the same `/authorize`).
pub fn replace_handle(conn: &Connection, id: &str, handle_hash: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE consent_requests SET handle_hash = ?2 WHERE id = ?1")?
        .execute(params![id, handle_hash])?;
    Ok(())
}

/// The open request of an agent for a server, if any (at most one is kept open).
pub fn pending_for(
    conn: &Connection,
    client_id: &str,
    server: &str,
    now: UnixMs,
) -> Result<Option<ConsentRequest>, StoreError> {
    Ok(conn.prepare_cached("SELECT * FROM consent_requests WHERE client_id = ?1 AND server = ?2 AND status = 'pending' AND expires_at > ?3
             ORDER BY created_at DESC LIMIT 1")?.query_row(params![client_id, server, now],
            from_row,
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{auth_server, public_client, request, T0};

    #[test]
    fn a_request_moves_only_from_the_status_it_is_in() {
        let auth = auth_server("");
        let client = public_client(&auth, "agent", T0);
        let (id, handle) = request(&auth, &client, None, T0);
        let store = &auth.store;
        let found = store
            .read(|c| by_handle(c, &handle.hash()))
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.id.as_str(), found.status),
            (id.as_str(), Status::Pending)
        );
        assert_eq!(store.read(|c| pending(c, T0)).unwrap().len(), 1);
        assert_eq!(
            store
                .read(|c| pending_for(c, &client.client_id, "demo", T0))
                .unwrap()
                .unwrap()
                .id,
            id
        );
        let timeout = found.expires_at;
        assert!(
            store.read(|c| pending(c, timeout)).unwrap().is_empty(),
            "not pending once overdue"
        );
        assert_eq!(store.read(|c| overdue(c, timeout)).unwrap().len(), 1);
        let moved = |from, to| {
            store
                .write(|tx| transition(tx.conn(), &id, from, to, T0 + 1, Some("me"), None))
                .unwrap()
        };
        assert!(
            !moved(Status::Approved, Status::Delivered),
            "it is not approved"
        );
        assert!(moved(Status::Pending, Status::Denied));
        assert!(!moved(Status::Pending, Status::Approved), "decided once");
        let decided = store.read(|c| get(c, &id)).unwrap().unwrap();
        assert_eq!(
            (decided.status, decided.decided_by.as_deref()),
            (Status::Denied, Some("me"))
        );
    }
}
