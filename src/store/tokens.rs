//! The `authorization_codes`, `token_families` and `tokens` tables. Only
//! SHA-256 hashes of codes and tokens are stored. A token carries its row id
//! in its text (`gh_rt_<id>.<secret>`, [`crate::crypto::Secret::numbered`]) and
//! is found by it, its hash compared; one issued before schema version 13
//! has no id and is found by its hash alone. A token works while neither it
//! nor its family is revoked: a family (one authorization code's tokens and
//! their rotations) is revoked in its one row of `token_families`.

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

/// How a presented token is looked up: by the id its text carries and its
/// hash, or (issued before ids) by its hash alone.
#[derive(Debug, Clone)]
pub struct TokenKey {
    id: Option<i64>,
    hash: String,
}

impl TokenKey {
    pub fn of(presented: &str) -> TokenKey {
        // A base64url secret has no '.', so a token without one has no id.
        let id = presented
            .split_once('.')
            .and_then(|(head, _)| head.rsplit('_').next())
            .and_then(|digits| digits.parse().ok());
        TokenKey {
            id,
            hash: crate::crypto::hash(presented),
        }
    }

    pub fn hash(&self) -> &str {
        &self.hash
    }
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: i64,
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
        id: row.get("id")?,
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
        revoked_at: row
            .get::<_, Option<UnixMs>>("revoked_at")?
            .or(row.get("family_revoked_at")?),
    })
}

/// A family of tokens: the ones one authorization code issued, and their
/// rotations. Revoking a client's, a grant's or a replayed code's tokens
/// revokes their families.
pub fn insert_family(conn: &Connection, family_id: &str, code: &CodeRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO token_families (id, client_id, grant_id, code_hash) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        family_id,
        code.client_id,
        code.grant_id,
        code.code_hash
    ])?;
    Ok(())
}

/// The id the next token gets; its text carries it. Called inside the
/// write transaction that inserts the token (one writer: no race).
pub fn next_id(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) + 1 FROM tokens")?
        .query_row([], |r| r.get(0))?)
}

pub fn insert_token(conn: &Connection, t: &TokenRow) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO tokens (id, token_hash, kind, client_id, grant_id, family_id, code_hash, issued_at, expires_at, rotated_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")?.execute(params![
            t.id,
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

/// A token with its family's revocation: a token of a revoked family is
/// revoked. A token without a family row is never found.
const WITH_FAMILY: &str = "SELECT t.*, f.revoked_at AS family_revoked_at
     FROM tokens t JOIN token_families f ON f.id = t.family_id";

pub fn get_token(conn: &Connection, key: &TokenKey) -> Result<Option<TokenRow>, StoreError> {
    let found = match key.id {
        Some(id) => conn
            .prepare_cached(&format!(
                "{WITH_FAMILY} WHERE t.id = ?1 AND t.token_hash = ?2"
            ))?
            .query_row(params![id, key.hash], token_from_row)
            .optional()?,
        None => None,
    };
    match found {
        Some(row) => Ok(Some(row)),
        // A token from before ids, whatever its text looks like.
        None => Ok(conn
            .prepare_cached(&format!(
                "{WITH_FAMILY} WHERE t.token_hash = ?1 AND t.found_by_hash = 1"
            ))?
            .query_row([&key.hash], token_from_row)
            .optional()?),
    }
}

/// Marks a refresh token exchanged; false when it already was.
pub fn rotate(conn: &Connection, id: i64, now: UnixMs) -> Result<bool, StoreError> {
    let n = conn.prepare_cached("UPDATE tokens SET rotated_at = ?2 WHERE id = ?1 AND rotated_at IS NULL AND revoked_at IS NULL")?.execute(params![id, now],
    )?;
    Ok(n == 1)
}

/// Revokes one token; 0 when it (or its family) already was.
pub fn revoke_token(conn: &Connection, id: i64, now: UnixMs) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL
             AND (SELECT revoked_at FROM token_families f WHERE f.id = tokens.family_id) IS NULL",
        )?
        .execute(params![id, now])?)
}

/// Revokes the families `which` selects (a `WHERE` on `token_families`,
/// its one parameter `?1`), and with each every token it holds, in one row
/// apiece; how many families were not revoked before.
fn revoke_families(
    conn: &Connection,
    which: &str,
    key: &str,
    now: UnixMs,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "UPDATE token_families SET revoked_at = ?2 WHERE {which} AND revoked_at IS NULL"
        ))?
        .execute(params![key, now])?)
}

/// Revokes a family: the tokens one authorization code issued and their rotations.
pub fn revoke_family(conn: &Connection, family_id: &str, now: UnixMs) -> Result<usize, StoreError> {
    revoke_families(conn, "id = ?1", family_id, now)
}

/// Revokes what a (replayed) authorization code issued.
pub fn revoke_for_code(
    conn: &Connection,
    code_hash: &str,
    now: UnixMs,
) -> Result<usize, StoreError> {
    revoke_families(conn, "code_hash = ?1", code_hash, now)
}

pub fn revoke_for_grant(
    conn: &Connection,
    grant_id: &str,
    now: UnixMs,
) -> Result<usize, StoreError> {
    revoke_families(conn, "grant_id = ?1", grant_id, now)
}

pub fn revoke_for_client(
    conn: &Connection,
    client_id: &str,
    now: UnixMs,
) -> Result<usize, StoreError> {
    revoke_families(conn, "client_id = ?1", client_id, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{auth_server, tokens as issued, T0};

    #[test]
    fn a_refresh_token_rotates_once_and_a_family_revokes_together() {
        let auth = auth_server("");
        let (client, body) = issued(&auth, "agent", T0);
        let rt = TokenKey::of(body["refresh_token"].as_str().unwrap());
        let at = TokenKey::of(body["access_token"].as_str().unwrap());
        let store = &auth.store;
        let row = store.read(|c| get_token(c, &rt)).unwrap().unwrap();
        assert_eq!(
            (row.kind, row.client_id.as_str()),
            (TokenKind::Refresh, client.client_id.as_str())
        );
        assert!(store.write(|tx| rotate(tx.conn(), row.id, T0 + 1)).unwrap());
        assert!(
            !store.write(|tx| rotate(tx.conn(), row.id, T0 + 2)).unwrap(),
            "once"
        );
        let n = store
            .write(|tx| revoke_family(tx.conn(), &row.family_id, T0 + 3))
            .unwrap();
        assert_eq!(n, 1, "the family");
        let access = store.read(|c| get_token(c, &at)).unwrap().unwrap();
        assert_eq!(access.revoked_at, Some(T0 + 3));
        assert_eq!(
            store
                .write(|tx| revoke_token(tx.conn(), access.id, T0 + 4))
                .unwrap(),
            0,
            "already revoked"
        );
    }

    #[test]
    fn a_token_is_found_by_its_id_only_with_its_own_secret() {
        let auth = auth_server("");
        let (_, body) = issued(&auth, "agent", T0);
        let access = body["access_token"].as_str().unwrap();
        let (head, secret) = access.split_once('.').expect("an id before the secret");
        let id: i64 = head.strip_prefix("gh_at_").unwrap().parse().unwrap();
        let find = |text: &str| {
            auth.store
                .read(|c| get_token(c, &TokenKey::of(text)))
                .unwrap()
        };
        assert_eq!(find(access).map(|t| t.id), Some(id));
        let other_row = format!("gh_at_{}.{secret}", id + 1);
        assert!(
            find(&other_row).is_none(),
            "another row's id with this secret"
        );
        let guessed = format!("{head}.{}", "A".repeat(secret.len()));
        assert!(
            find(&guessed).is_none(),
            "this row's id with another secret"
        );
        assert!(find("gh_at_1.").is_none() && find("gh_at_.x").is_none());
    }

    /// The `tokens` table as schema versions 1 to 12 had it (and without
    /// what later versions added elsewhere).
    /// Run after [`crate::store::audit::BACK_TO_SCHEMA_21`].
    const TOKENS_UNTIL_V12: &str = "
        DROP TABLE audit_journal; ALTER TABLE audit_events DROP COLUMN journal_seq;
        DROP TABLE audit_text_grams; ALTER TABLE audit_text_indexed DROP COLUMN grams_upto;
        ALTER TABLE audit_text_indexed DROP COLUMN grams_held;
        DROP TABLE audit_time_blocks; CREATE INDEX audit_events_at ON audit_events(at);
        DROP INDEX audit_events_not_allowed; DROP INDEX audit_events_server;
        DROP TABLE tokens; DROP TABLE token_families;
        CREATE TABLE tokens (
            token_hash TEXT PRIMARY KEY, kind TEXT NOT NULL,
            client_id TEXT NOT NULL REFERENCES clients(client_id),
            grant_id TEXT NOT NULL REFERENCES grants(id),
            family_id TEXT NOT NULL, code_hash TEXT,
            issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
            rotated_at INTEGER, revoked_at INTEGER);
        CREATE INDEX tokens_family ON tokens(family_id);
        CREATE INDEX tokens_grant ON tokens(grant_id);
        CREATE INDEX tokens_client ON tokens(client_id);
        PRAGMA user_version = 12;";

    #[test]
    fn tokens_issued_before_ids_keep_working_after_the_upgrade() {
        use crate::oauth::{agents, bearer, consent};
        let dir = tempfile::tempdir().unwrap();
        // A version 12 database: a client, its grant, and tokens stored by
        // hash alone.
        let (legacy_access, legacy_refresh) = (
            "gh_at_12_oldAccessTokenWithDigitsAndUnderscores_0123456789",
            "gh_rt_OldRefreshTokenBase64urlText-_0123456789abcdefghijkl",
        );
        let client = {
            let auth = crate::testing::auth_server_on(crate::testing::file_store(&dir, T0));
            let client = crate::testing::public_client(&auth, "agent", T0);
            crate::testing::approved_code(
                &auth,
                &client,
                consent::ToolChoice::All,
                consent::DurationChoice::Forever,
                T0,
            );
            client
        };
        let conn = Connection::open(dir.path().join("p.db")).unwrap();
        conn.execute_batch(crate::store::audit::BACK_TO_SCHEMA_21)
            .unwrap();
        conn.execute_batch(TOKENS_UNTIL_V12).unwrap();
        let grant: String = conn
            .query_row("SELECT id FROM grants", [], |r| r.get(0))
            .unwrap();
        // Two tokens whose text carries no id, and a family revoked then
        // (each of its tokens marked, as before schema 21).
        let (live, revoked) = (None, Some(T0));
        for (text, kind, family, revoked_at) in [
            (legacy_access, "access", "fam_old", live),
            (legacy_refresh, "refresh", "fam_old", live),
            ("gh_at_dead", "access", "fam_dead", revoked),
            ("gh_rt_dead", "refresh", "fam_dead", revoked),
        ] {
            conn.execute(
                "INSERT INTO tokens VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, NULL, ?8)",
                params![
                    crate::crypto::hash(text),
                    kind,
                    client.client_id,
                    grant,
                    family,
                    T0,
                    T0 + 3_600_000,
                    revoked_at
                ],
            )
            .unwrap();
        }
        drop(conn);

        let auth = crate::testing::auth_server_on(crate::testing::file_store(&dir, T0 + 1));
        let dead = auth
            .store
            .read(|c| get_token(c, &TokenKey::of("gh_rt_dead")));
        assert_eq!(dead.unwrap().unwrap().revoked_at, Some(T0));
        assert!(bearer::authenticate(&auth, legacy_access, "demo", T0 + 1).is_ok());
        let body = crate::testing::refresh_grant(&auth, &client, legacy_refresh, T0 + 2).unwrap();
        let (access, refresh) = (
            body["access_token"].as_str().unwrap(),
            body["refresh_token"].as_str().unwrap(),
        );
        assert!(access.contains('.') && refresh.contains('.'), "{body}");
        assert!(bearer::authenticate(&auth, access, "demo", T0 + 2).is_ok());
        let again = crate::testing::refresh_grant(&auth, &client, legacy_refresh, T0 + 3);
        assert!(again.is_err(), "a legacy refresh token rotates once");
        let revoked = agents::revoke_agent(&auth, &client.client_id, "me", T0 + 4).unwrap();
        assert_eq!(
            revoked.token_families, 1,
            "the old tokens' family, the new ones' too; not the one revoked before"
        );
        for text in [legacy_access, access] {
            assert!(bearer::authenticate(&auth, text, "demo", T0 + 5).is_err());
        }
        assert!(crate::testing::refresh_grant(&auth, &client, refresh, T0 + 5).is_err());
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
