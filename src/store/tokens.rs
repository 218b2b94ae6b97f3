//! The `authorization_codes` and `tokens` tables. Only SHA-256 hashes of
//! codes and tokens are stored.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::StoreError;
use crate::clock::UnixMs;

#[derive(Debug, Clone)]
pub struct CodeRow {
    pub code_hash: String,
    pub request_id: String,
    pub grant_id: String,
    pub client_id: String,
    pub created_at: UnixMs,
    pub expires_at: UnixMs,
    pub used_at: Option<UnixMs>,
}

pub fn insert_code(conn: &Connection, c: &CodeRow) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO authorization_codes (code_hash, request_id, grant_id, client_id, created_at, expires_at, used_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?.execute(params![c.code_hash, c.request_id, c.grant_id, c.client_id, c.created_at, c.expires_at, c.used_at],
    )?;
    Ok(())
}

pub fn get_code(conn: &Connection, code_hash: &str) -> Result<Option<CodeRow>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT * FROM authorization_codes WHERE code_hash = ?1")?
        .query_row([code_hash], |row| {
            Ok(CodeRow {
                code_hash: row.get("code_hash")?,
                request_id: row.get("request_id")?,
                grant_id: row.get("grant_id")?,
                client_id: row.get("client_id")?,
                created_at: row.get("created_at")?,
                expires_at: row.get("expires_at")?,
                used_at: row.get("used_at")?,
            })
        })
        .optional()?)
}

/// Marks a code used; false when it was already used (a replay racing us).
pub fn use_code(conn: &Connection, code_hash: &str, now: UnixMs) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE authorization_codes SET used_at = ?2 WHERE code_hash = ?1 AND used_at IS NULL",
        )?
        .execute(params![code_hash, now])?;
    Ok(n == 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub token_hash: String,
    pub kind: TokenKind,
    pub client_id: String,
    pub grant_id: String,
    pub family_id: String,
    pub code_hash: Option<String>,
    pub issued_at: UnixMs,
    pub expires_at: UnixMs,
    pub rotated_at: Option<UnixMs>,
    pub revoked_at: Option<UnixMs>,
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
    let kind: String = row.get("kind")?;
    Ok(TokenRow {
        token_hash: row.get("token_hash")?,
        kind: if kind == "refresh" {
            TokenKind::Refresh
        } else {
            TokenKind::Access
        },
        client_id: row.get("client_id")?,
        grant_id: row.get("grant_id")?,
        family_id: row.get("family_id")?,
        code_hash: row.get("code_hash")?,
        issued_at: row.get("issued_at")?,
        expires_at: row.get("expires_at")?,
        rotated_at: row.get("rotated_at")?,
        revoked_at: row.get("revoked_at")?,
    })
}

pub fn insert_token(conn: &Connection, t: &TokenRow) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO tokens (token_hash, kind, client_id, grant_id, family_id, code_hash, issued_at, expires_at, rotated_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?.execute(params![
            t.token_hash,
            t.kind.as_str(),
            t.client_id,
            t.grant_id,
            t.family_id,
            t.code_hash,
            t.issued_at,
            t.expires_at,
            t.rotated_at,
            t.revoked_at
        ],
    )?;
    Ok(())
}

pub fn get_token(conn: &Connection, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT * FROM tokens WHERE token_hash = ?1")?
        .query_row([token_hash], token_from_row)
        .optional()?)
}

/// Marks a refresh token exchanged; false when it already was.
pub fn rotate(conn: &Connection, token_hash: &str, now: UnixMs) -> Result<bool, StoreError> {
    let n = conn.prepare_cached("UPDATE tokens SET rotated_at = ?2 WHERE token_hash = ?1 AND rotated_at IS NULL AND revoked_at IS NULL")?.execute(params![token_hash, now],
    )?;
    Ok(n == 1)
}

pub fn revoke_token(conn: &Connection, token_hash: &str, now: UnixMs) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE tokens SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![token_hash, now])?)
}

pub fn revoke_family(conn: &Connection, family_id: &str, now: UnixMs) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![family_id, now])?)
}

pub fn revoke_for_code(
    conn: &Connection,
    code_hash: &str,
    now: UnixMs,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE tokens SET revoked_at = ?2 WHERE code_hash = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![code_hash, now])?)
}

pub fn revoke_for_grant(
    conn: &Connection,
    grant_id: &str,
    now: UnixMs,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE tokens SET revoked_at = ?2 WHERE grant_id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![grant_id, now])?)
}

pub fn revoke_for_client(
    conn: &Connection,
    client_id: &str,
    now: UnixMs,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE tokens SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![client_id, now])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{auth_server, tokens as issued, T0};

    #[test]
    fn a_refresh_token_rotates_once_and_a_family_revokes_together() {
        let auth = auth_server("");
        let (client, body) = issued(&auth, "agent", T0);
        let rt = crate::crypto::hash(body["refresh_token"].as_str().unwrap());
        let at = crate::crypto::hash(body["access_token"].as_str().unwrap());
        let store = &auth.store;
        let row = store.read(|c| get_token(c, &rt)).unwrap().unwrap();
        assert_eq!(
            (row.kind, row.client_id.as_str()),
            (TokenKind::Refresh, client.client_id.as_str())
        );
        assert!(store.write(|tx| rotate(tx.conn(), &rt, T0 + 1)).unwrap());
        assert!(
            !store.write(|tx| rotate(tx.conn(), &rt, T0 + 2)).unwrap(),
            "once"
        );
        let n = store
            .write(|tx| revoke_family(tx.conn(), &row.family_id, T0 + 3))
            .unwrap();
        assert_eq!(n, 2, "the access and the refresh token of the family");
        let access = store.read(|c| get_token(c, &at)).unwrap().unwrap();
        assert_eq!(access.revoked_at, Some(T0 + 3));
        assert_eq!(
            store
                .write(|tx| revoke_token(tx.conn(), &at, T0 + 4))
                .unwrap(),
            0,
            "already revoked"
        );
    }

    #[test]
    fn a_code_is_used_once() {
        let auth = auth_server("");
        let client = crate::testing::public_client(&auth, "agent", T0);
        let code = crate::testing::approved_code(
            &auth,
            &client,
            crate::oauth::consent::ToolChoice::All,
            crate::oauth::consent::DurationChoice::Forever,
            T0,
        );
        let hash = crate::crypto::hash(&code);
        let row = auth.store.read(|c| get_code(c, &hash)).unwrap().unwrap();
        assert_eq!(
            (row.used_at, row.expires_at),
            (None, T0 + crate::oauth::CODE_TTL_MS)
        );
        assert!(auth
            .store
            .write(|tx| use_code(tx.conn(), &hash, T0 + 1))
            .unwrap());
        assert!(!auth
            .store
            .write(|tx| use_code(tx.conn(), &hash, T0 + 2))
            .unwrap());
        assert!(auth.store.read(|c| get_code(c, "nope")).unwrap().is_none());
    }
}
