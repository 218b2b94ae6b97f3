//! The authorization state an agent's request needs, kept in memory: every
//! live access token (by hash) and the grant it speaks for, with the grant's
//! tool set, ask-every-time set and pins. A request is decided from this
//! without touching SQLite.
//!
//! It is built when the store opens and kept coherent by the write path, not
//! by expiry: the write connection reports every row of `tokens`,
//! `token_families`, `grants`, `tool_pins` and `clients` a transaction
//! touches (SQLite's update hook), and
//! [`super::Store::write`] reads those rows inside the transaction, just
//! before its COMMIT, and installs them once it is committed, under the
//! writer's lock, before it returns. A revocation is therefore in force for
//! the very next request: there is no cache to expire and no window. A write
//! that did not end in a clean commit or rollback empties the state, and
//! upkeep loads it again; until then every request reads the database.
//!
//! Only success is answered from here. A token that is not live (unknown,
//! revoked, expired, a refresh token) misses, and the caller reads the store
//! to say why.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::hooks::Action;
use rusqlite::{params, Connection, OptionalExtension};

use super::clients::AuthMethod;
use super::grants::{self, Grant};
use super::{pins, StoreError};
use crate::clock::UnixMs;

/// A token's hash (64 hex digits, as stored) as the live state keys it:
/// 32 bytes in the table, not a string of 64 on the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct HashKey([u8; 32]);

impl HashKey {
    /// `None` for anything but 64 lowercase hex digits (no token hashes so).
    fn of(hex: &str) -> Option<HashKey> {
        let digits = hex.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        let mut key = [0; 32];
        for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(HashKey(key))
    }
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// A set of tool names, sorted and searched by halves: as fast as a hash
/// set at 1 to 1,000 names, and one allocation for a grant's set, where a
/// hash table cost three times the memory (10,000 grants held at start).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ToolSet(Box<[Box<str>]>);

impl ToolSet {
    pub fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|t| (**t).cmp(name)).is_ok()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<S> for ToolSet {
    fn from_iter<I: IntoIterator<Item = S>>(names: I) -> ToolSet {
        let mut names: Vec<Box<str>> = names.into_iter().map(|n| n.as_ref().into()).collect();
        names.sort_unstable();
        names.dedup();
        ToolSet(names.into_boxed_slice())
    }
}

/// A live access token: whom it speaks for, until when.
#[derive(Debug, Clone)]
struct LiveToken {
    client_id: Arc<str>,
    grant_id: Arc<str>,
    /// Its family's row id in `token_families`: revoking the family ends it.
    /// Stable while held: no family row is deleted (a delete in a write
    /// reloads the whole state), and `VACUUM`, which may renumber rows, runs
    /// only while Gatehouse is stopped; the state is read anew at start.
    family: i64,
    issued_at: UnixMs,
    expires_at: UnixMs,
}

/// A granted tool's pin as a request checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinHead {
    pub hash: String,
    pub suspended: bool,
}

/// A grant in force, with the sets a request is decided by.
#[derive(Debug)]
pub struct LiveGrant {
    pub grant: Grant,
    /// Granted tools (and `resources`/`prompts`).
    pub tools: ToolSet,
    /// Granted tools whose every call is held for the person.
    pub ask: ToolSet,
    /// Granted tools blocked because their definition changed upstream.
    pub suspended: ToolSet,
    /// Each pinned tool's pin.
    pub pins: HashMap<String, PinHead>,
}

impl LiveGrant {
    /// A grant and its pins as stored.
    pub fn load(conn: &Connection, grant: Grant) -> Result<LiveGrant, StoreError> {
        let pins = pins::heads_for_grant(conn, &grant.id)?;
        Ok(LiveGrant::new(grant, pins))
    }

    /// A grant with its pins (the heads of `tool_pins` for it).
    fn new(grant: Grant, pins: Vec<pins::Pin>) -> LiveGrant {
        let pins: HashMap<String, PinHead> = pins
            .into_iter()
            .map(|p| {
                let head = PinHead {
                    hash: p.hash,
                    suspended: p.suspended_at.is_some(),
                };
                (p.tool, head)
            })
            .collect();
        LiveGrant {
            tools: grant.tools.iter().collect(),
            ask: grant.ask_tools.iter().collect(),
            suspended: pins
                .iter()
                .filter(|(_, p)| p.suspended)
                .map(|(t, _)| t)
                .collect(),
            pins,
            grant,
        }
    }
}

/// How a client that can still authenticate does so.
#[derive(Debug, Clone)]
pub struct ClientKey {
    pub auth_method: AuthMethod,
    /// Shared, so a lookup copies no text.
    pub secret_hash: Option<Arc<str>>,
}

/// A live token's holder: the agent and its grant.
pub struct Holder {
    pub client_id: Arc<str>,
    pub grant: Arc<LiveGrant>,
    pub issued_at: UnixMs,
    pub expires_at: UnixMs,
}

/// The rows a transaction touched, as the update hook reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Touched {
    Token(i64),
    Family(i64),
    Grant(i64),
    Pin(i64),
    Client(i64),
    /// A row of one of these tables was deleted: reload everything.
    Deleted,
}

#[derive(Default)]
pub struct Live {
    tokens: RwLock<Tokens>,
    grants: RwLock<HashMap<Arc<str>, Arc<LiveGrant>>>,
    /// Every client not removed, by id.
    clients: RwLock<HashMap<Box<str>, ClientKey>>,
    touched: Arc<Mutex<Vec<Touched>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Live {
    /// The holder of a live access token at `now`, or `None` (the caller
    /// reads the store to say why).
    pub fn access(&self, token_hash: &str, now: UnixMs) -> Option<Holder> {
        let token = {
            let tokens = self.tokens.read().unwrap_or_else(|p| p.into_inner());
            let t = tokens.by_hash.get(&HashKey::of(token_hash)?)?;
            if t.expires_at <= now {
                return None;
            }
            t.clone()
        };
        let grant = self.grant(&token.grant_id)?;
        grant.grant.is_active(now).then_some(Holder {
            client_id: token.client_id,
            grant,
            issued_at: token.issued_at,
            expires_at: token.expires_at,
        })
    }

    /// A grant that was in force when last written (check `is_active`).
    pub fn grant(&self, id: &str) -> Option<Arc<LiveGrant>> {
        let grants = self.grants.read().unwrap_or_else(|p| p.into_inner());
        grants.get(id).cloned()
    }

    /// How a client authenticates; `None` for one unknown or removed.
    pub fn client(&self, client_id: &str) -> Option<ClientKey> {
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        clients.get(client_id).cloned()
    }

    /// How many live tokens and grants are held.
    pub fn size(&self) -> (usize, usize) {
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_hash
            .len();
        let grants = self.grants.read().unwrap_or_else(|p| p.into_inner()).len();
        (tokens, grants)
    }

    /// Has `conn` report each row it writes in the tables the live state
    /// holds; [`Live::changes`] reads them before COMMIT.
    pub(super) fn watch(&self, conn: &Connection) {
        let touched = self.touched.clone();
        conn.update_hook(Some(
            move |action: Action, _db: &str, table: &str, rowid: i64| {
                let t = match (action, table) {
                    (
                        Action::SQLITE_DELETE,
                        "tokens" | "token_families" | "grants" | "tool_pins" | "clients",
                    ) => Touched::Deleted,
                    (_, "clients") => Touched::Client(rowid),
                    (_, "tokens") => Touched::Token(rowid),
                    (_, "token_families") => Touched::Family(rowid),
                    (_, "grants") => Touched::Grant(rowid),
                    (_, "tool_pins") => Touched::Pin(rowid),
                    _ => return,
                };
                lock(&touched).push(t);
            },
        ));
    }

    /// Forgets what a rolled-back transaction touched.
    pub(super) fn discard(&self) {
        lock(&self.touched).clear();
    }

    /// What the transaction open on `conn` changes in the state: the rows it
    /// touched, read inside it just before its COMMIT (no read transaction
    /// of their own), to [`Live::install`] once it is committed.
    pub(super) fn changes(&self, conn: &Connection) -> Result<Changes, StoreError> {
        let mut touched = std::mem::take(&mut *lock(&self.touched));
        // A batch of writes touches many rows more than once (a client's last use).
        touched.sort_unstable();
        touched.dedup();
        if touched.contains(&Touched::Deleted) {
            return Ok(Changes(Kind::All(Snapshot::read(conn, None)?)));
        }
        let token_rows: Vec<i64> = touched
            .iter()
            .filter_map(|t| match t {
                Touched::Token(rowid) => Some(*rowid),
                _ => None,
            })
            .collect();
        let mut rows = read_access_tokens(conn, &token_rows)?;
        let mut grant_rows = Vec::new();
        for t in &touched {
            match *t {
                Touched::Token(_) => {}
                Touched::Family(rowid) => rows.extend(read_family(conn, rowid)?),
                Touched::Client(rowid) => rows.extend(read_client(conn, rowid)?),
                Touched::Grant(rowid) => grant_rows.push(rowid),
                Touched::Pin(rowid) => {
                    let grant: Option<i64> = conn.prepare_cached("SELECT g.rowid FROM tool_pins p JOIN grants g ON g.id = p.grant_id WHERE p.rowid = ?1")?.query_row([rowid],
                            |r| r.get(0),
                        )
                        .optional()?;
                    // None: inserted and undone in a savepoint, it never existed.
                    grant_rows.extend(grant);
                }
                Touched::Deleted => {}
            }
        }
        grant_rows.sort_unstable();
        grant_rows.dedup();
        for rowid in grant_rows {
            rows.extend(read_grant(conn, rowid)?);
        }
        Ok(Changes(Kind::Rows(rows)))
    }

    /// Brings the state up to date with a committed transaction's
    /// [`Live::changes`]. Called with the writer's lock held, so writes are
    /// installed in commit order.
    pub(super) fn install(&self, changes: Changes) {
        let rows = match changes.0 {
            Kind::All(all) => {
                *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = all.tokens;
                *self.grants.write().unwrap_or_else(|p| p.into_inner()) = all.grants;
                *self.clients.write().unwrap_or_else(|p| p.into_inner()) = all.clients;
                return;
            }
            Kind::Rows(rows) if rows.is_empty() => return,
            Kind::Rows(rows) => rows,
        };
        let mut tokens = self.tokens.write().unwrap_or_else(|p| p.into_inner());
        let mut grants = self.grants.write().unwrap_or_else(|p| p.into_inner());
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        for row in rows {
            match row {
                Change::Token(hash, Some(token)) => tokens.insert(hash, token),
                Change::Token(hash, None) => tokens.remove(&hash),
                // Each token was read with its family as it stands at the
                // commit: one of a family revoked in this write is not live.
                Change::FamilyRevoked(family) => tokens.end_family(family),
                Change::Client(id, Some(key)) => drop(clients.insert(id, key)),
                Change::Client(id, None) => drop(clients.remove(&id)),
                Change::Grant(id, Some(grant)) => drop(grants.insert(id, grant)),
                Change::Grant(id, None) => drop(grants.remove(&id)),
            }
        }
    }

    /// Reads every live token and grant from the store (those in force at
    /// `now`, or all not revoked when `now` is not known) and every client.
    pub(super) fn load(&self, conn: &Connection, now: Option<UnixMs>) -> Result<(), StoreError> {
        self.install(Changes(Kind::All(Snapshot::read(conn, now)?)));
        Ok(())
    }

    /// Forgets everything: every request then reads the store, until the next
    /// [`Live::load`]. For when a reload failed and the state may be stale.
    pub(super) fn forget(&self) {
        *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = Tokens::default();
        self.grants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.clients
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Forgets tokens and grants that have expired by `now` (upkeep).
    pub fn prune(&self, now: UnixMs) {
        self.grants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, g| g.grant.is_active(now));
        self.tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .prune(now);
    }
}

/// The live access tokens, by hash and by family.
#[derive(Default)]
struct Tokens {
    by_hash: HashMap<HashKey, LiveToken>,
    /// Each token in `by_hash` as (family, hash): revoking a family ends its
    /// tokens without a walk of every live token.
    by_family: BTreeSet<(i64, HashKey)>,
}

impl Tokens {
    fn insert(&mut self, hash: HashKey, token: LiveToken) {
        let family = token.family;
        if let Some(old) = self.by_hash.insert(hash, token) {
            self.by_family.remove(&(old.family, hash));
        }
        self.by_family.insert((family, hash));
    }

    fn remove(&mut self, hash: &HashKey) {
        if let Some(gone) = self.by_hash.remove(hash) {
            self.by_family.remove(&(gone.family, *hash));
        }
    }

    fn end_family(&mut self, family: i64) {
        let ended = (family, HashKey([0; 32]))..=(family, HashKey([u8::MAX; 32]));
        let ended: Vec<_> = self.by_family.range(ended).copied().collect();
        for entry in ended {
            self.by_family.remove(&entry);
            self.by_hash.remove(&entry.1);
        }
    }

    /// Forgets the tokens expired by `now`.
    fn prune(&mut self, now: UnixMs) {
        let by_family = &mut self.by_family;
        self.by_hash.retain(|hash, t| {
            let live = t.expires_at > now;
            if !live {
                by_family.remove(&(t.family, *hash));
            }
            live
        });
    }
}

/// What a committed write changes in the live state ([`Live::changes`]).
pub(super) struct Changes(Kind);

impl Default for Changes {
    /// None.
    fn default() -> Changes {
        Changes(Kind::Rows(Vec::new()))
    }
}

enum Kind {
    /// The touched rows, each as it now stands (`None`: no longer live).
    Rows(Vec<Change>),
    /// A row was deleted: the whole state, read again.
    All(Snapshot),
}

enum Change {
    Token(HashKey, Option<LiveToken>),
    /// Every token of this family is no longer live.
    FamilyRevoked(i64),
    Client(Box<str>, Option<ClientKey>),
    Grant(Arc<str>, Option<Arc<LiveGrant>>),
}

/// The whole live state as read from the store.
struct Snapshot {
    tokens: Tokens,
    grants: HashMap<Arc<str>, Arc<LiveGrant>>,
    clients: HashMap<Box<str>, ClientKey>,
}

impl Snapshot {
    /// Every live token and grant: those in force at `now`, or all not
    /// revoked when `now` is not known; and every client not removed.
    fn read(conn: &Connection, now: Option<UnixMs>) -> Result<Snapshot, StoreError> {
        let now = now.unwrap_or(UnixMs::MIN);
        let in_force = grants::list(conn, None, false, now)?;
        let mut pins: HashMap<String, Vec<pins::Pin>> = HashMap::new();
        for pin in pins::heads(conn)? {
            pins.entry(pin.grant_id.clone()).or_default().push(pin);
        }
        let mut grants = HashMap::with_capacity(in_force.len());
        for grant in in_force {
            let id: Arc<str> = grant.id.as_str().into();
            let its_pins = pins.remove(&grant.id).unwrap_or_default();
            grants.insert(id, Arc::new(LiveGrant::new(grant, its_pins)));
        }
        let mut tokens = Tokens::default();
        let mut stmt = conn.prepare(
            "SELECT t.token_hash, t.client_id, t.grant_id, f.rowid, t.issued_at, t.expires_at
             FROM tokens t JOIN token_families f ON f.id = t.family_id
             WHERE t.kind = 'access' AND t.revoked_at IS NULL AND f.revoked_at IS NULL
               AND t.expires_at > ?1",
        )?;
        let mut clients: HashSet<Arc<str>> = HashSet::new();
        let rows = stmt.query_map(params![now], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, UnixMs>(4)?,
                r.get::<_, UnixMs>(5)?,
            ))
        })?;
        for row in rows {
            let (hash, client_id, grant_id, family, issued_at, expires_at) = row?;
            let Some(hash) = token_key(&hash) else {
                continue;
            };
            // Tokens of a grant no longer in force are not live.
            let Some((grant_id, _)) = grants.get_key_value(grant_id.as_str()) else {
                continue;
            };
            let client_id = match clients.get(client_id.as_str()) {
                Some(c) => c.clone(),
                None => {
                    let c: Arc<str> = client_id.into();
                    clients.insert(c.clone());
                    c
                }
            };
            let token = LiveToken {
                client_id,
                grant_id: grant_id.clone(),
                family,
                issued_at,
                expires_at,
            };
            tokens.insert(hash, token);
        }
        let mut clients = HashMap::new();
        let mut stmt = conn.prepare(CLIENT_KEYS)?;
        for row in stmt.query_map([], client_key)? {
            if let (client_id, Some(key)) = row? {
                clients.insert(client_id.into_boxed_str(), key);
            }
        }
        Ok(Snapshot {
            tokens,
            grants,
            clients,
        })
    }
}

/// A token row as the live state holds it (`None` for a row that is gone).
/// A token of a revoked family, or of none, is not live.
/// The access tokens among the `rowids` of `tokens`, in one statement, as
/// they stand now: a refresh token is never live, and a batch of refreshes
/// touches two of them for each access token.
fn read_access_tokens(conn: &Connection, rowids: &[i64]) -> Result<Vec<Change>, StoreError> {
    if rowids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = rowids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut stmt = conn.prepare_cached(
        "SELECT t.token_hash,
                t.revoked_at IS NULL AND f.id IS NOT NULL AND f.revoked_at IS NULL,
                t.client_id, t.grant_id, f.rowid, t.issued_at, t.expires_at
         FROM tokens t LEFT JOIN token_families f ON f.id = t.family_id
         WHERE t.rowid IN (SELECT value FROM json_each(?1)) AND t.kind = 'access'",
    )?;
    let mut rows = stmt.query([format!("[{ids}]")])?;
    let mut out = Vec::with_capacity(rowids.len());
    while let Some(r) = rows.next()? {
        let Some(hash) = token_key(&r.get::<_, String>(0)?) else {
            continue;
        };
        let token = match (r.get::<_, bool>(1)?, r.get::<_, Option<i64>>(4)?) {
            (true, Some(family)) => Some(LiveToken {
                client_id: r.get::<_, String>(2)?.into(),
                grant_id: r.get::<_, String>(3)?.into(),
                family,
                issued_at: r.get(5)?,
                expires_at: r.get(6)?,
            }),
            _ => None,
        };
        out.push(Change::Token(hash, token));
    }
    Ok(out)
}

/// A family revoked in this write (`None` for one that is not).
fn read_family(conn: &Connection, rowid: i64) -> Result<Option<Change>, StoreError> {
    let revoked = conn
        .prepare_cached("SELECT 1 FROM token_families WHERE rowid = ?1 AND revoked_at IS NOT NULL")?
        .exists([rowid])?;
    Ok(revoked.then_some(Change::FamilyRevoked(rowid)))
}

fn read_client(conn: &Connection, rowid: i64) -> Result<Option<Change>, StoreError> {
    let row = conn
        .prepare_cached(&format!("{CLIENT_KEYS} WHERE rowid = ?1"))?
        .query_row([rowid], client_key)
        .optional()?;
    Ok(row.map(|(client_id, key)| Change::Client(client_id.into_boxed_str(), key)))
}

/// A grant with its pins; one that was revoked is dropped (one that expired
/// stays until [`Live::prune`]: requests check `is_active`).
fn read_grant(conn: &Connection, rowid: i64) -> Result<Option<Change>, StoreError> {
    let id: Option<String> = conn
        .prepare_cached("SELECT id FROM grants WHERE rowid = ?1")?
        .query_row([rowid], |r| r.get(0))
        .optional()?;
    let Some(grant) = id.map(|id| grants::get(conn, &id)).transpose()?.flatten() else {
        return Ok(None);
    };
    let id: Arc<str> = grant.id.as_str().into();
    let live = grant
        .revoked_at
        .is_none()
        .then(|| LiveGrant::load(conn, grant))
        .transpose()?;
    Ok(Some(Change::Grant(id, live.map(Arc::new))))
}

/// A stored token hash as a key; one not hashed as Gatehouse hashes is
/// left out (the token then authenticates through the database, which says why).
fn token_key(hash: &str) -> Option<HashKey> {
    let key = HashKey::of(hash);
    if key.is_none() {
        tracing::warn!("a token whose stored hash is not 64 hex digits is not held in memory");
    }
    key
}

/// Each client's id and, unless it was removed, how it authenticates.
const CLIENT_KEYS: &str =
    "SELECT client_id, auth_method, secret_hash, removed_at IS NULL FROM clients";

/// A client whose row cannot be read is left out (it cannot authenticate
/// from here; the database path says why), not the whole state.
fn client_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Option<ClientKey>)> {
    let (client_id, method): (String, String) = (r.get(0)?, r.get(1)?);
    let Some(auth_method) = AuthMethod::parse(&method) else {
        tracing::error!(client = %client_id, "a client with an unknown auth method {method:?}");
        return Ok((client_id, None));
    };
    let key = ClientKey {
        auth_method,
        secret_hash: r.get::<_, Option<String>>(2)?.map(Arc::from),
    };
    Ok((client_id, r.get::<_, bool>(3)?.then_some(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_hash_keys_the_live_state_as_32_bytes() {
        let hash = crate::crypto::hash("a token");
        let key = HashKey::of(&hash).unwrap();
        assert_eq!(key.0[0], u8::from_str_radix(&hash[..2], 16).unwrap());
        assert_eq!(key.0[31], u8::from_str_radix(&hash[62..], 16).unwrap());
        assert_ne!(HashKey::of(&crate::crypto::hash("another")), Some(key));
        for not_a_hash in [
            &hash[..62],
            &hash.to_uppercase(),
            &format!("{}zz", &hash[..62]),
            "",
        ] {
            assert_eq!(HashKey::of(not_a_hash), None, "{not_a_hash:?}");
        }
    }

    #[test]
    fn live_tokens_are_found_by_family_exactly_while_they_are_held() {
        let key = |n: u8| HashKey([n; 32]);
        let token = |family, expires_at| LiveToken {
            client_id: "c".into(),
            grant_id: "g".into(),
            family,
            issued_at: 0,
            expires_at,
        };
        let mut tokens = Tokens::default();
        tokens.insert(key(1), token(1, 10));
        tokens.insert(key(2), token(1, 20));
        tokens.insert(key(2), token(1, 20)); // read again in a later write
        tokens.insert(key(3), token(2, 20));
        tokens.insert(key(4), token(3, 20));
        let held = |t: &Tokens| t.by_family.iter().copied().collect::<Vec<_>>();
        assert_eq!(
            held(&tokens),
            [(1, key(1)), (1, key(2)), (2, key(3)), (3, key(4))]
        );
        tokens.prune(10);
        tokens.remove(&key(4));
        assert_eq!(
            held(&tokens),
            [(1, key(2)), (2, key(3))],
            "expired, removed"
        );
        tokens.end_family(1);
        assert_eq!(tokens.by_hash.keys().collect::<Vec<_>>(), [&key(3)]);
        assert_eq!(held(&tokens), [(2, key(3))]);
    }

    #[test]
    fn a_tool_set_finds_exactly_its_names() {
        let set: ToolSet = ["write", "read", "delete", "read"].iter().collect();
        assert!(["read", "write", "delete"].iter().all(|t| set.contains(t)));
        assert!(!set.contains("rea") && !set.contains("readx") && !set.contains(""));
        let many: ToolSet = (0..1000).map(|i| format!("tool_{i}")).collect();
        assert!(
            many.contains("tool_0") && many.contains("tool_999") && !many.contains("tool_1000")
        );
    }
    use crate::crypto;
    use crate::oauth::agents;
    use crate::store::{pins, Store};
    use crate::testing::*;

    fn hash_of(body: &serde_json::Value, field: &str) -> String {
        crypto::hash(body[field].as_str().unwrap())
    }

    #[test]
    fn a_token_is_live_from_its_issue_until_its_revocation() {
        let auth = auth_server("");
        let (client, body) = tokens(&auth, "agent", T0);
        let access = hash_of(&body, "access_token");
        let live = auth.store.live();
        let holder = live.access(&access, T0 + 1).expect("live once issued");
        assert_eq!(&*holder.client_id, client.client_id);
        assert!(holder.grant.tools.contains("read_note"));
        assert!(
            live.access(&hash_of(&body, "refresh_token"), T0 + 1)
                .is_none(),
            "a refresh token is no bearer token"
        );
        agents::revoke_agent(&auth, &client.client_id, "me", T0 + 2).unwrap();
        assert!(
            live.access(&access, T0 + 3).is_none(),
            "gone when revoke returns"
        );
    }

    #[test]
    fn a_revoked_family_ends_every_token_it_issued_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let auth = auth_server_on(file_store(&dir, T0));
        let (client, first) = tokens(&auth, "agent", T0);
        let refresh = first["refresh_token"].as_str().unwrap();
        let second = refresh_grant(&auth, &client, refresh, T0 + 1).unwrap();
        let (_, other) = tokens(&auth, "another agent", T0);
        let family = |token: &str| {
            let key = crate::store::tokens::TokenKey::of(token);
            let row = auth
                .store
                .read(|c| crate::store::tokens::get_token(c, &key));
            row.unwrap().unwrap().family_id
        };
        let ours = family(refresh);
        assert_eq!(ours, family(second["access_token"].as_str().unwrap()));
        let ended = [&first, &second].map(|b| hash_of(b, "access_token"));
        let kept = hash_of(&other, "access_token");
        let live = auth.store.live();
        assert!(ended.iter().all(|t| live.access(t, T0 + 2).is_some()));
        let n = auth
            .store
            .write(|tx| crate::store::tokens::revoke_family(tx.conn(), &ours, T0 + 2))
            .unwrap();
        assert_eq!(n, 1);
        for token in &ended {
            assert!(live.access(token, T0 + 3).is_none(), "gone when it returns");
        }
        assert!(live.access(&kept, T0 + 3).is_some(), "another family stays");
        // As the database holds it: loaded again on reopening, and read by the token's row.
        let key = crate::audit::chain::Key::new([7; 32]);
        let reopened = Store::open(&dir.path().join("p.db"), key, T0 + 3).unwrap();
        let live = reopened.live();
        assert!(ended.iter().all(|t| live.access(t, T0 + 3).is_none()));
        assert!(live.access(&kept, T0 + 3).is_some());
        drop(reopened);
        let key = crate::store::tokens::TokenKey::of(second["access_token"].as_str().unwrap());
        let row = auth
            .store
            .read(|c| crate::store::tokens::get_token(c, &key));
        assert_eq!(row.unwrap().unwrap().revoked_at, Some(T0 + 2));
        assert!(
            refresh_grant(
                &auth,
                &client,
                second["refresh_token"].as_str().unwrap(),
                T0 + 4
            )
            .is_err(),
            "its refresh token too"
        );
    }

    #[test]
    fn rotation_and_expiry_end_a_token() {
        let auth = auth_server("");
        let (client, body) = tokens(&auth, "agent", T0);
        let first = hash_of(&body, "access_token");
        let ttl = auth.config.get().access_token_ttl_ms;
        let live = auth.store.live();
        assert!(live.access(&first, T0 + ttl).is_none(), "expired");
        let refresh = body["refresh_token"].as_str().unwrap();
        let next = refresh_grant(&auth, &client, refresh, T0 + 5).unwrap();
        assert!(live
            .access(&hash_of(&next, "access_token"), T0 + 6)
            .is_some());
        live.prune(T0 + ttl);
        assert!(live.access(&first, T0 + 6).is_none(), "pruned once expired");
        assert_eq!(live.size(), (1, 1));
    }

    #[test]
    fn a_suspended_pin_is_seen_by_the_next_request() {
        let auth = auth_server("");
        let (_, body) = tokens(&auth, "agent", T0);
        let access = hash_of(&body, "access_token");
        let grant_id = auth
            .store
            .live()
            .access(&access, T0)
            .unwrap()
            .grant
            .grant
            .id
            .clone();
        auth.store
            .write(|tx| {
                pins::pin(
                    tx.conn(),
                    &grant_id,
                    "read_note",
                    "h1",
                    &serde_json::json!({}),
                )
            })
            .unwrap();
        let pinned = auth.store.live().access(&access, T0).unwrap().grant;
        assert_eq!(pinned.pins["read_note"].hash, "h1");
        assert!(pinned.suspended.is_empty());
        auth.store
            .write(|tx| pins::suspend(tx.conn(), &grant_id, "read_note", T0))
            .unwrap();
        let after = auth.store.live().access(&access, T0).unwrap().grant;
        assert!(after.suspended.contains("read_note"));
        assert!(
            pinned.suspended.is_empty(),
            "a request in flight keeps its snapshot"
        );
    }

    #[test]
    fn a_client_can_authenticate_from_its_registration_until_its_removal() {
        let auth = auth_server("");
        let client = public_client(&auth, "agent", T0);
        let live = auth.store.live();
        let key = live
            .client(&client.client_id)
            .expect("known once registered");
        assert_eq!(key.auth_method, AuthMethod::None);
        assert!(key.secret_hash.is_none());
        auth.store
            .write(|tx| crate::store::clients::remove(tx.conn(), &client.client_id, T0))
            .unwrap();
        assert!(
            live.client(&client.client_id).is_none(),
            "gone when the removal returns"
        );
    }

    #[test]
    fn a_rolled_back_write_changes_nothing() {
        let auth = auth_server("");
        let (client, body) = tokens(&auth, "agent", T0);
        let access = hash_of(&body, "access_token");
        let undone: Result<(), StoreError> = auth.store.write(|tx| {
            crate::store::tokens::revoke_for_client(tx.conn(), &client.client_id, T0)?;
            Err(StoreError::Corrupt("refused".into()))
        });
        assert!(undone.is_err());
        assert!(auth.store.live().access(&access, T0 + 1).is_some());
    }

    /// SQLite can roll a transaction back itself (a full disk, an I/O
    /// error); what runs after that commits statement by statement.
    #[test]
    fn a_write_that_sqlite_rolled_back_leaves_nothing_held_that_the_database_ended() {
        let auth = auth_server("");
        let (client, body) = tokens(&auth, "agent", T0);
        let access = hash_of(&body, "access_token");
        let failed: Result<(), StoreError> = auth.store.write(|tx| {
            tx.conn().execute_batch("ROLLBACK")?;
            crate::store::tokens::revoke_for_client(tx.conn(), &client.client_id, T0)?;
            Err(StoreError::Corrupt("the write failed".into()))
        });
        assert!(failed.is_err());
        assert!(auth.store.live().access(&access, T0 + 1).is_none());
        // Upkeep loads it again, from what the database holds.
        auth.store.upkeep_live(T0 + 1).unwrap();
        assert!(auth.store.live().access(&access, T0 + 1).is_none());
        let (other, body) = tokens(&auth, "another agent", T0);
        assert_ne!(other.client_id, client.client_id);
        assert!(auth
            .store
            .live()
            .access(&hash_of(&body, "access_token"), T0 + 1)
            .is_some());
    }

    #[test]
    fn a_reopened_store_loads_what_is_live() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let key = crate::audit::chain::Key::new([7; 32]);
        let hashes = {
            let store = Store::open(&path, key.clone(), T0).unwrap();
            let auth = auth_server_on(store);
            let (a_client, a) = tokens(&auth, "a", T0);
            let (client, b) = tokens(&auth, "b", T0);
            // Pins of both grants, one suspended; b's grant is then revoked.
            let grant = |body| {
                let live = auth.store.live().access(&hash_of(body, "access_token"), T0);
                live.unwrap().grant.grant.id.clone()
            };
            let (a_grant, b_grant) = (grant(&a), grant(&b));
            auth.store
                .write(|tx| {
                    let json = serde_json::json!({});
                    pins::pin(tx.conn(), &a_grant, "read_note", "h1", &json)?;
                    pins::pin(tx.conn(), &a_grant, "list_notes", "h2", &json)?;
                    pins::suspend(tx.conn(), &a_grant, "list_notes", T0)?;
                    pins::pin(tx.conn(), &b_grant, "read_note", "h3", &json)
                })
                .unwrap();
            agents::revoke_agent(&auth, &client.client_id, "me", T0 + 1).unwrap();
            let a_id = a_client.client_id;
            (
                hash_of(&a, "access_token"),
                hash_of(&b, "access_token"),
                a_id,
            )
        };
        let store = Store::open(&path, key, T0 + 2).unwrap();
        assert!(store.live().client(&hashes.2).is_some());
        let a = store.live().access(&hashes.0, T0 + 2).unwrap().grant;
        let stored = store
            .read(|c| pins::heads_for_grant(c, &a.grant.id))
            .unwrap();
        assert_eq!(a.pins.len(), stored.len());
        assert_eq!(a.pins["read_note"].hash, "h1");
        assert!(a.suspended.contains("list_notes") && !a.suspended.contains("read_note"));
        assert!(store.live().access(&hashes.1, T0 + 2).is_none());
        assert_eq!(store.live().size(), (1, 1));
    }
}
