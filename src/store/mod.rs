//! The SQLite store: one file, WAL, foreign keys on, numbered append-only
//! migrations run at open. One file per table family holds its queries.
//!
//! Writes go through [`Store::write`], whose [`Tx`] records audit events in
//! the same transaction; the events reach live listeners only after COMMIT.

pub mod audit;
pub mod clients;
pub mod consent;
pub mod grants;
pub mod held_calls;
mod journal;
pub mod live;
pub mod pauses;
pub mod pins;
pub mod programs;
pub mod rules;
pub mod tokens;
mod writer;

pub use writer::CallStart;
pub(crate) use writer::INDEX_CHUNK;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::broadcast;

use crate::audit::chain::Key;
use crate::audit::{AuditEvent, NewEvent};
use crate::clock::UnixMs;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot use the calls' journal: {0}")]
    Journal(#[from] std::io::Error),
}

/// Numbered migrations; append only, never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_per_tool.sql"),
    include_str!("migrations/0003_client_fetched_at.sql"),
    include_str!("migrations/0004_audit_chain.sql"),
    include_str!("migrations/0005_client_removed.sql"),
    include_str!("migrations/0006_pauses.sql"),
    include_str!("migrations/0007_programs.sql"),
    include_str!("migrations/0008_may_ask_more.sql"),
    include_str!("migrations/0009_rules.sql"),
    include_str!("migrations/0010_audit_text.sql"),
    include_str!("migrations/0011_call_started.sql"),
    include_str!("migrations/0012_audit_text_deferred.sql"),
    include_str!("migrations/0013_token_ids.sql"),
    include_str!("migrations/0014_audit_client_at.sql"),
    include_str!("migrations/0015_audit_time_blocks.sql"),
    include_str!("migrations/0016_audit_not_allowed.sql"),
    include_str!("migrations/0017_audit_text_grams.sql"),
    include_str!("migrations/0018_audit_server_until.sql"),
    include_str!("migrations/0019_audit_text_no_positions.sql"),
    include_str!("migrations/0020_call_journal.sql"),
    include_str!("migrations/0021_token_family_revoked.sql"),
    include_str!("migrations/0022_audit_agent_index.sql"),
    include_str!("migrations/0023_audit_agents_ahead.sql"),
    include_str!("migrations/0024_audit_agent_outcome.sql"),
    include_str!("migrations/0025_consent_instructions.sql"),
];

/// A WAL this long (in frames, ~4 MiB) gets its checkpoint finished with the
/// writer held, so it can start over.
const WAL_RESTART_FRAMES: i64 = 1000;
/// The most a WAL file keeps of its size once it starts over.
const WAL_KEPT_BYTES: i64 = 64 << 20;

/// Statements each connection keeps parsed (every query the store runs fits).
const STATEMENT_CACHE: usize = 256;

/// The writer's page cache while it loads the live state, in KiB.
const LOAD_CACHE_KIB: i64 = 256;

/// Read connections (WAL readers do not wait for the writer or each other).
const READERS: usize = 4;
static NEXT_READER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub struct Store {
    /// Seals the audit log (`audit::chain`).
    key: Key,
    /// The one writer.
    conn: Mutex<Connection>,
    /// Readers do not wait for writers (WAL); an in-memory store has none.
    readers: Vec<Mutex<Connection>>,
    /// Checkpoints the WAL off the request path ([`Store::checkpoint`]).
    checkpointer: Option<Mutex<Connection>>,
    events: broadcast::Sender<AuditEvent>,
    /// The newest audit event this Gatehouse knows was written (its id and
    /// seal): the log must still hold it, or its end was cut off.
    head: Mutex<Option<(i64, String)>>,
    /// What an agent's request is decided by, kept coherent by [`Store::write`].
    live: live::Live,
    /// A reload of `live` failed: it was emptied and must be loaded again.
    live_stale: std::sync::atomic::AtomicBool,
    /// Writes waiting for the next group commit ([`Store::write_queued`]).
    writer: writer::Writer,
    /// Where calls' starts are made durable (none for a store in memory).
    journal: Option<Arc<journal::Journal>>,
}

impl Store {
    /// Opens (and migrates) the database; `now` decides which tokens and
    /// grants are still live.
    pub fn open(path: &Path, key: Key, now: UnixMs) -> Result<Store, StoreError> {
        let mut store = Store::init(Connection::open(path)?, key)?;
        // The live state is read once, each table in order: a small page
        // cache reads it as fast, and the pages a full one would keep, left
        // between the live state's allocations, were never given back (1.7 MB
        // of a 10,000-grant start).
        let conn = store.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        let cache: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
        conn.pragma_update(None, "cache_size", -LOAD_CACHE_KIB)?;
        store.live.load(conn, Some(now))?;
        conn.pragma_update(None, "cache_size", cache)?;
        // Starts a stopped Gatehouse left only in the journal are recorded first.
        store.journal = Some(Arc::new(journal::Journal::open(path, conn, &store.key)?));
        *store.head.get_mut().unwrap_or_else(|p| p.into_inner()) = audit::last_seal(conn)?;
        // Commits never checkpoint (that stalled requests for milliseconds);
        // the daemon's upkeep calls `checkpoint` on its own connection.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let side = || -> Result<Mutex<Connection>, StoreError> {
            let c = Connection::open(path)?;
            c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            c.pragma_update(None, "foreign_keys", "ON")?;
            Ok(Mutex::new(c))
        };
        // Only the writer writes (its lock orders every write and keeps the
        // live state coherent): a reader that tried would fail, not write.
        let reader = || -> Result<Mutex<Connection>, StoreError> {
            let c = side()?;
            c.lock()
                .unwrap_or_else(|p| p.into_inner())
                .pragma_update(None, "query_only", "ON")?;
            Ok(c)
        };
        store.readers = (0..READERS).map(|_| reader()).collect::<Result<_, _>>()?;
        store.checkpointer = Some(side()?);
        Ok(store)
    }

    /// A store in memory (tests and fuzzing), sealed with a fixed key.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?, Key::new([7; 32]))
    }

    fn init(mut conn: Connection, key: Key) -> Result<Store, StoreError> {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A WAL that a burst grew is cut back to this when it starts over.
        conn.pragma_update(None, "journal_size_limit", WAL_KEPT_BYTES)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // The writer's statement journals (a savepoint per queued write) stay
        // in memory: spilled, they were a temp file per group commit.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        migrate(&mut conn, &key)?;
        let head = audit::last_seal(&conn)?;
        let (events, _) = broadcast::channel(4096);
        let live = live::Live::default();
        live.watch(&conn);
        Ok(Store {
            live,
            live_stale: Default::default(),
            writer: Default::default(),
            journal: None,
            head: Mutex::new(head),
            key,
            conn: Mutex::new(conn),
            readers: Vec::new(),
            checkpointer: None,
            events,
        })
    }

    /// Moves committed pages from the WAL into the database. Call it from
    /// upkeep, off the request path. The bulk is copied beside the writer
    /// (a PASSIVE checkpoint); for a long WAL, the writer is then held while
    /// the frames committed meanwhile are copied (none: nothing to do), so
    /// the checkpoint reaches the end and the next write starts
    /// the WAL over (once no reader still holds an older snapshot). Without
    /// that second step, steady writes kept every checkpoint short of the end
    /// and the WAL grew without bound.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let Some(c) = &self.checkpointer else {
            return Ok(());
        };
        let c = c.lock().unwrap_or_else(|p| p.into_inner());
        let passive = "PRAGMA wal_checkpoint(PASSIVE)";
        let log: i64 = c.query_row(passive, [], |r| r.get(1))?;
        // Writes stall while the writer is held: only for a WAL worth it.
        // (What was written during the first pass is not in `log`.)
        if log >= WAL_RESTART_FRAMES {
            let _writer = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            c.query_row(passive, [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Adds up to `limit` events to the log's indexes by text and by agent;
    /// how many it added (0: they are up to date). The audit writer calls it when idle, upkeep
    /// for what other writes recorded.
    pub fn index_log(&self, limit: usize) -> Result<usize, StoreError> {
        self.write_unordered(|tx| audit::index_log(tx.conn(), limit))
    }

    /// What an agent's request is decided by (live tokens and grants).
    pub fn live(&self) -> &live::Live {
        &self.live
    }

    /// Upkeep of the live state: forgets what expired by `now`, and loads it
    /// again if a reload failed.
    pub fn upkeep_live(&self, now: UnixMs) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.live_stale.swap(false, Ordering::SeqCst) {
            let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = self.live.load(&conn, Some(now)) {
                self.live_stale.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        self.live.prune(now);
        Ok(())
    }

    /// The key that seals the audit log.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The newest audit event this Gatehouse knows of (written since it
    /// started, or remembered from before).
    pub fn head(&self) -> Option<(i64, String)> {
        self.head.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Remembers a head from before this start (kept outside the database),
    /// unless the log already goes further.
    pub fn remember_head(&self, id: i64, seal: String) {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        if head.as_ref().is_none_or(|(known, _)| *known < id) {
            *head = Some((id, seal));
        }
    }

    /// Live audit events, after they are committed.
    pub fn subscribe(&self) -> broadcast::Receiver<AuditEvent> {
        self.events.subscribe()
    }

    /// Runs `f` in one transaction. It commits when `f` returns `Ok`, or when
    /// `f` called [`Tx::keep`] (a refusal that is itself worth recording, such
    /// as a replayed code); otherwise it rolls back and records nothing.
    /// Writes queued before it (a call's outcome) are committed first, so the
    /// log keeps the order things happened in: an outcome the agent already
    /// had never follows the revocation that came after it.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.after_queued();
        self.write_unordered(f)
    }

    /// [`Store::write`] without waiting for queued writes: for the writer's
    /// own batches and upkeep that records nothing.
    fn write_unordered<T, E>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.write_on(self.conn.lock().unwrap_or_else(|p| p.into_inner()), f)
    }

    /// [`Store::write`] on the writer's connection, already locked.
    fn write_on<T, E>(
        &self,
        mut conn: std::sync::MutexGuard<'_, Connection>,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let (result, recorded) = {
            let (result, committed) = Self::transact(&mut conn, &self.key, &self.live, f);
            let recorded = match committed {
                // Before this write returns: the next request sees it.
                Ok((recorded, Ok(changes))) => {
                    self.live.install(changes);
                    Ok(recorded)
                }
                Ok((recorded, Err(e))) => {
                    self.live_unknown(&e);
                    Ok(recorded)
                }
                // Not a clean commit (nor a clean rollback).
                Err(e) => {
                    self.live_unknown(&e);
                    Err(e)
                }
            };
            let recorded = recorded.map_err(E::from)?;
            if let Some(last) = recorded.last() {
                let seal = last.seal.clone().unwrap_or_default();
                *self.head.lock().unwrap_or_else(|p| p.into_inner()) = Some((last.id, seal));
            }
            drop(conn);
            (result, recorded)
        };
        for event in recorded.into_iter().filter(|e| e.kind.shown_live()) {
            let _ = self.events.send(event);
        }
        result
    }

    /// The live state may no longer be what the database holds: it is
    /// emptied (requests read the database) until upkeep loads it again.
    fn live_unknown(&self, why: &StoreError) {
        tracing::error!(error = %why, "the live authorization state is reloaded; requests read the database until it is");
        self.live.discard();
        self.live.forget();
        self.live_stale
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Runs `f` in a transaction on `conn`: its result, and the audit events
    /// committed (none when it rolled back) with what the commit changes in
    /// the live state (read just before COMMIT), or why the commit failed.
    fn transact<T, E>(
        conn: &mut Connection,
        key: &Key,
        live: &live::Live,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> (Result<T, E>, Committed)
    where
        E: From<StoreError>,
    {
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => return (Err(StoreError::from(e).into()), Ok(nothing())),
        };
        let mut w = Tx {
            tx,
            key,
            recorded: Vec::new(),
            keep: false,
        };
        let result = f(&mut w);
        let Tx {
            tx, recorded, keep, ..
        } = w;
        if tx.is_autocommit() {
            // SQLite rolled the transaction back itself (a full disk, an I/O
            // error); whatever ran after that committed statement by
            // statement, so what the live state should hold is not known.
            drop(tx);
            let why = StoreError::Corrupt("the database rolled the transaction back".into());
            return (result, Err(why));
        }
        if result.is_ok() || keep {
            // Read inside the transaction: no read transaction of its own.
            let changes = live.changes(&tx);
            match tx.commit() {
                Ok(()) => (result, Ok((recorded, changes))),
                Err(e) => (result, Err(e.into())),
            }
        } else {
            drop(tx);
            live.discard();
            (result, Ok(nothing()))
        }
    }

    /// Runs a read-only query.
    pub fn read<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        // A free reader if there is one, else wait for one (the in-memory
        // store has none: it reads on its one connection).
        let free = self.readers.iter().find_map(|r| r.try_lock().ok());
        let conn = match free {
            Some(c) => c,
            None => {
                let n = self.readers.len();
                let any = NEXT_READER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n.max(1);
                self.readers
                    .get(any)
                    .unwrap_or(&self.conn)
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
            }
        };
        f(&conn)
    }
}

/// What a transaction committed: its audit events, and its changes to the
/// live state (or why they could not be read).
type Committed = Result<(Vec<AuditEvent>, Result<live::Changes, StoreError>), StoreError>;

/// A transaction that committed nothing.
fn nothing() -> (Vec<AuditEvent>, Result<live::Changes, StoreError>) {
    (Vec::new(), Ok(live::Changes::default()))
}

/// A write transaction that can record audit events.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    key: &'a Key,
    recorded: Vec<AuditEvent>,
    keep: bool,
}

impl Tx<'_> {
    pub fn conn(&self) -> &Connection {
        &self.tx
    }

    /// Writes an audit event in this transaction.
    pub fn record(&mut self, event: NewEvent, now: UnixMs) -> Result<(), StoreError> {
        self.record_returning(event, now).map(drop)
    }

    /// Writes an audit event in this transaction; the event as stored (kept
    /// for the live timeline once committed: clone it to keep it longer).
    fn record_returning(
        &mut self,
        event: NewEvent,
        now: UnixMs,
    ) -> Result<&AuditEvent, StoreError> {
        let after = self
            .recorded
            .last()
            .and_then(|e| Some((e.id, e.seal.as_deref()?)));
        let stored = audit::insert(&self.tx, self.key, event, after, now)?;
        self.recorded.push(stored);
        Ok(&self.recorded[self.recorded.len() - 1])
    }

    /// Commit even though the operation ends in a refusal.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Runs `f` inside a savepoint: if it fails, what it wrote (and the audit
    /// events it recorded) is undone and the rest of the transaction stands.
    /// With [`Tx::keep`] this commits a refusal's own record, and nothing of
    /// the work that was refused.
    pub fn attempt<T, E>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.run("SAVEPOINT attempt")?;
        let recorded = self.recorded.len();
        let result = f(self);
        if result.is_err() {
            self.recorded.truncate(recorded);
            self.run("ROLLBACK TO attempt")?;
        }
        self.run("RELEASE attempt")?;
        result
    }

    /// Runs `f` as one write of a group commit ([`Store::write_queued`]): in
    /// a savepoint, kept when it succeeds or called [`Tx::keep`], undone
    /// otherwise; what it did leaves the rest of the transaction as it was.
    fn job<T, E>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let outer = std::mem::replace(&mut self.keep, false);
        self.run("SAVEPOINT job")?;
        let recorded = self.recorded.len();
        let result = f(self);
        if result.is_err() && !self.keep {
            self.recorded.truncate(recorded);
            self.run("ROLLBACK TO job")?;
        }
        self.run("RELEASE job")?;
        self.keep = outer;
        result
    }

    /// Runs one statement, parsed once per connection.
    fn run(&self, sql: &str) -> Result<(), StoreError> {
        self.tx.prepare_cached(sql)?.execute([])?;
        Ok(())
    }
}

/// The schema version at which the audit log became a chain.
const CHAIN_VERSION: usize = 4;

fn migrate(conn: &mut Connection, key: &Key) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database is at schema version {version}, newer than this Gatehouse knows ({}); upgrade Gatehouse",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if i + 1 == CHAIN_VERSION {
            audit::seal_legacy(&tx, key)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// JSON column helpers.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Maps a decoding failure inside a row mapper to a rusqlite error.
pub(crate) fn corrupt(e: StoreError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventKind, NewEvent, Outcome};

    #[test]
    fn a_read_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testing::file_store(&dir, 1);
        store
            .write(|tx| tx.record(NewEvent::new(EventKind::ToolCall, Outcome::Allowed), 1))
            .unwrap();
        let wrote = store.read(|c| Ok::<_, StoreError>(c.execute("DELETE FROM audit_events", [])?));
        let refused = matches!(&wrote, Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)))
            if e.code == rusqlite::ErrorCode::ReadOnly);
        assert!(refused, "a reader wrote, or failed otherwise: {wrote:?}");
        let left: i64 = store
            .read(|c| {
                Ok::<_, StoreError>(
                    c.query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))?,
                )
            })
            .unwrap();
        assert_eq!(left, 1);
    }

    /// Under steady writes a checkpoint never reached the WAL's end, so the
    /// WAL never started over and grew without bound (1.2 GB in a minute of
    /// the gateway bench), every write extending the file.
    #[test]
    fn the_wal_starts_over_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(crate::testing::file_store(&dir, 1));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut commits = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store
                        .write(|tx| {
                            tx.record(NewEvent::new(EventKind::ToolCall, Outcome::Allowed), 1)
                        })
                        .unwrap();
                    commits += 1;
                }
                commits
            })
        };
        for _ in 0..16 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            store.checkpoint().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let commits = writer.join().unwrap();
        // The WAL header's checkpoint sequence counts the times it started over.
        let wal = std::fs::read(dir.path().join("p.db-wal")).unwrap();
        let restarts = u32::from_be_bytes(wal[12..16].try_into().unwrap());
        // A checkpoint holds the writer only for a WAL over WAL_RESTART_FRAMES,
        // so a slow machine restarts every other time or so.
        assert!(
            restarts >= 4,
            "the WAL started over {restarts} times in 16 checkpoints ({commits} commits; {} bytes)",
            wal.len()
        );
    }

    #[test]
    fn a_failed_attempt_undoes_only_itself() {
        let store = Store::open_in_memory().unwrap();
        let mut live = store.subscribe();
        let result: Result<(), StoreError> = store.write(|tx| {
            tx.record(NewEvent::new(EventKind::CodeReplayed, Outcome::Denied), 1)?;
            tx.keep();
            tx.attempt(|tx| {
                tx.record(NewEvent::new(EventKind::TokenIssued, Outcome::Allowed), 2)?;
                Err(StoreError::Corrupt("refused".into()))
            })
        });
        assert!(result.is_err());
        let kinds: Vec<String> = store
            .read(|c| {
                let mut stmt = c.prepare("SELECT kind FROM audit_events")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok::<_, StoreError>(rows.collect::<Result<Vec<String>, _>>()?)
            })
            .unwrap();
        assert_eq!(
            kinds,
            ["code_replayed"],
            "kept: the refusal's record; undone: the attempt"
        );
        assert_eq!(live.try_recv().unwrap().kind, EventKind::CodeReplayed);
        assert!(
            live.try_recv().is_err(),
            "the undone event was never published"
        );
    }
}
