//! The `clients` table: registered agents (OAuth clients).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::{corrupt, from_json, to_json, StoreError};
use crate::clock::UnixMs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// RFC 7591 dynamic registration: the name is self-asserted.
    Registered,
    /// A Client ID Metadata Document fetched over https: the domain is
    /// verified when its codes go only to https addresses (`Client::is_verified`).
    MetadataDocument,
    /// Listed in the config file by the person.
    Preconfigured,
}

impl ClientKind {
    fn as_str(self) -> &'static str {
        match self {
            ClientKind::Registered => "registered",
            ClientKind::MetadataDocument => "metadata_document",
            ClientKind::Preconfigured => "preconfigured",
        }
    }
    fn parse(s: &str) -> Result<ClientKind, StoreError> {
        match s {
            "registered" => Ok(ClientKind::Registered),
            "metadata_document" => Ok(ClientKind::MetadataDocument),
            "preconfigured" => Ok(ClientKind::Preconfigured),
            other => Err(StoreError::Corrupt(format!("client kind {other}"))),
        }
    }
}

impl Client {
    /// Whether the person can trust who this agent says it is: they listed
    /// it themselves, or its metadata document's domain also receives its
    /// codes. A document whose redirect URIs include one on this machine
    /// (loopback, or a private-use scheme any app can claim) proves nothing
    /// about the program in front of the person: any local process can name
    /// that document as its client_id and take the code on its own port.
    pub fn is_verified(&self) -> bool {
        match self.kind {
            ClientKind::Registered => false,
            ClientKind::Preconfigured => true,
            ClientKind::MetadataDocument => self
                .redirect_uris
                .iter()
                .all(|uri| crate::oauth::redirect::leaves_this_machine(uri)),
        }
    }

    /// The https domain a metadata-document client proved it controls.
    pub fn verified_domain(&self) -> Option<String> {
        if self.kind != ClientKind::MetadataDocument || !self.is_verified() {
            return None;
        }
        url::Url::parse(&self.client_id)
            .ok()?
            .host_str()
            .map(str::to_string)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    None,
    ClientSecretPost,
    ClientSecretBasic,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
        }
    }
    pub fn parse(s: &str) -> Option<AuthMethod> {
        match s {
            "none" => Some(AuthMethod::None),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    pub auth_method: AuthMethod,
    #[serde(skip)]
    pub secret_hash: Option<String>,
    pub bound_server: Option<String>,
    pub metadata: serde_json::Value,
    pub created_at: UnixMs,
    pub last_seen_at: Option<UnixMs>,
    /// For a metadata-document client: when its document was last fetched.
    #[serde(default)]
    pub fetched_at: Option<UnixMs>,
    /// When the person removed it (`gatehouse clients rm`): it can never
    /// authenticate or authorize again.
    #[serde(default)]
    pub removed_at: Option<UnixMs>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Client> {
    let kind: String = row.get("kind")?;
    let method: String = row.get("auth_method")?;
    let metadata: String = row.get("metadata")?;
    Ok(Client {
        client_id: row.get("client_id")?,
        name: row.get("name")?,
        kind: ClientKind::parse(&kind).map_err(corrupt)?,
        redirect_uris: from_json(&row.get::<_, String>("redirect_uris")?).map_err(corrupt)?,
        auth_method: AuthMethod::parse(&method)
            .ok_or_else(|| corrupt(StoreError::Corrupt(method)))?,
        secret_hash: row.get("secret_hash")?,
        bound_server: row.get("bound_server")?,
        metadata: from_json(&metadata).map_err(corrupt)?,
        created_at: row.get("created_at")?,
        last_seen_at: row.get("last_seen_at")?,
        fetched_at: row.get("fetched_at")?,
        removed_at: row.get("removed_at")?,
    })
}

pub fn insert(conn: &Connection, c: &Client) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO clients (client_id, name, kind, redirect_uris, auth_method, secret_hash, bound_server, metadata, created_at, last_seen_at, fetched_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT(client_id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
           redirect_uris = excluded.redirect_uris, auth_method = excluded.auth_method,
           secret_hash = excluded.secret_hash, bound_server = excluded.bound_server, metadata = excluded.metadata,
           fetched_at = excluded.fetched_at")?.execute(params![
            c.client_id,
            c.name,
            c.kind.as_str(),
            to_json(&c.redirect_uris),
            c.auth_method.as_str(),
            c.secret_hash,
            c.bound_server,
            c.metadata.to_string(),
            c.created_at,
            c.last_seen_at,
            c.fetched_at
        ],
    )?;
    Ok(())
}

/// A client by id; a removed one is not found.
pub fn get(conn: &Connection, client_id: &str) -> Result<Option<Client>, StoreError> {
    conn.prepare_cached("SELECT * FROM clients WHERE client_id = ?1 AND removed_at IS NULL")?
        .query_row([client_id], from_row)
        .optional()
        .map_err(Into::into)
}

/// Every client but the removed ones, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<Client>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT * FROM clients WHERE removed_at IS NULL ORDER BY created_at")?;
    let rows = stmt
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Removes a client for good: it keeps its row (its history refers to it)
/// but no redirect URI and no secret, and is never found again; its open
/// consent requests end.
pub fn remove(conn: &Connection, client_id: &str, now: UnixMs) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE clients SET removed_at = ?2, redirect_uris = '[]', secret_hash = NULL
         WHERE client_id = ?1 AND removed_at IS NULL",
        )?
        .execute(params![client_id, now])?;
    conn.prepare_cached(
        "UPDATE consent_requests SET status = 'expired', decided_at = ?2
         WHERE client_id = ?1 AND status = 'pending'",
    )?
    .execute(params![client_id, now])?;
    Ok(changed == 1)
}

/// How fine "last seen" is: a client seen again within this is not written
/// again (an agent refreshing in a loop would rewrite its row every time).
pub const LAST_SEEN_RESOLUTION_MS: UnixMs = 60_000;

/// Notes that the client was seen now (at most once per [`LAST_SEEN_RESOLUTION_MS`]).
pub fn touch(conn: &Connection, client_id: &str, now: UnixMs) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE clients SET last_seen_at = ?2 WHERE client_id = ?1 AND (last_seen_at IS NULL OR last_seen_at <= ?2 - ?3)",
    )?
    .execute(params![client_id, now, LAST_SEEN_RESOLUTION_MS])?;
    Ok(())
}

/// The client's display name, for audit rows.
pub fn name_of(conn: &Connection, client_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT name FROM clients WHERE client_id = ?1")?
        .query_row([client_id], |r| r.get(0))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn client(id: &str, name: &str) -> Client {
        Client {
            client_id: id.into(),
            name: name.into(),
            kind: ClientKind::Registered,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            auth_method: AuthMethod::ClientSecretBasic,
            secret_hash: Some("ab".repeat(32)),
            bound_server: None,
            metadata: serde_json::json!({"client_name": name}),
            created_at: 10,
            last_seen_at: None,
            fetched_at: None,
            removed_at: None,
        }
    }

    #[test]
    fn clients_round_trip_and_upsert() {
        let store = Store::open_in_memory().unwrap();
        store
            .write(|tx| {
                insert(tx.conn(), &client("c1", "First"))?;
                insert(tx.conn(), &client("c2", "Second"))?;
                // A metadata document fetched again replaces what was stored.
                let refetched = Client {
                    kind: ClientKind::MetadataDocument,
                    fetched_at: Some(99),
                    ..client("c1", "First, renamed")
                };
                insert(tx.conn(), &refetched)?;
                touch(tx.conn(), "c2", 42)
            })
            .unwrap();
        let c1 = store.read(|c| get(c, "c1")).unwrap().unwrap();
        assert_eq!(
            (c1.name.as_str(), c1.kind, c1.fetched_at),
            ("First, renamed", ClientKind::MetadataDocument, Some(99))
        );
        assert_eq!(c1.created_at, 10, "the first registration's time is kept");
        assert_eq!(c1.secret_hash.as_deref(), Some("ab".repeat(32).as_str()));
        let all = store.read(list).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].last_seen_at, Some(42));
        assert_eq!(
            store.read(|c| name_of(c, "c2")).unwrap().as_deref(),
            Some("Second")
        );
        assert!(store.read(|c| get(c, "nobody")).unwrap().is_none());
    }

    #[test]
    fn only_a_metadata_document_has_a_verified_domain() {
        let doc = Client {
            client_id: "https://claude.ai/oauth/client.json".into(),
            kind: ClientKind::MetadataDocument,
            redirect_uris: vec!["https://claude.ai/api/callback".into()],
            ..client("x", "Claude")
        };
        assert!(doc.is_verified());
        assert_eq!(doc.verified_domain().as_deref(), Some("claude.ai"));
        for on_this_machine in [
            "http://127.0.0.1/callback",
            "https://localhost/callback",
            "https://[::1]/callback",
            "claude:/callback",
            "https://127.0.0.2/callback",
            "https://0.0.0.0/callback",
            "https://[::ffff:7f00:1]/callback",
            "https://192.168.1.20/callback",
            "https://app.localhost/callback",
            "https://LOCALHOST./callback",
        ] {
            let local = Client {
                redirect_uris: vec![
                    "https://claude.ai/api/callback".into(),
                    on_this_machine.into(),
                ],
                ..doc.clone()
            };
            assert!(!local.is_verified(), "{on_this_machine}");
            assert_eq!(local.verified_domain(), None, "{on_this_machine}");
        }
        let named = Client {
            client_id: "https://claude.ai/oauth/client.json".into(),
            ..client("x", "Claude")
        };
        assert_eq!(
            named.verified_domain(),
            None,
            "a registered client proves nothing"
        );
    }

    #[test]
    fn last_seen_is_written_once_a_minute() {
        let store = Store::open_in_memory().unwrap();
        let seen = |now| {
            store.write(|tx| touch(tx.conn(), "c1", now)).unwrap();
            store.read(|c| get(c, "c1")).unwrap().unwrap().last_seen_at
        };
        store
            .write(|tx| insert(tx.conn(), &client("c1", "First")))
            .unwrap();
        assert_eq!(seen(1_000), Some(1_000));
        assert_eq!(seen(1_000 + LAST_SEEN_RESOLUTION_MS - 1), Some(1_000));
        assert_eq!(
            seen(1_000 + LAST_SEEN_RESOLUTION_MS),
            Some(1_000 + LAST_SEEN_RESOLUTION_MS)
        );
    }
}
