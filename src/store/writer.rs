//! The store's one writer, by group commit. Writes queued from async
//! handlers (audit events, token exchanges) go to one writer thread, which
//! takes every write queued since its last commit and runs them in one
//! transaction, each in its own savepoint ([`Tx::job`]): one that fails is
//! undone alone, and the others commit. Each caller's future resolves when
//! its write is committed. Callers wait on a channel, never on the database
//! lock, and a burst of N concurrent writes pays about one commit instead of
//! N. Each write follows everything queued before it. Writes from async
//! handlers (token exchanges, revocations, consent decisions) always go to
//! the writer: run inline under concurrent load, each paid a commit of its
//! own on an async worker while the writer waited for the lock (`/token`
//! did ~20% fewer refreshes a second).
//!
//! When its queue has been empty for a while (or once a second under steady
//! writes), the writer brings the log's indexes by text and by agent up to
//! date (`store::audit::index_log`), a chunk at a time.
//!
//! A record that nothing waits on is queued, and the caller goes on at
//! once: a call's start, made durable in the calls' journal first
//! ([`Store::append_start`], `journal.rs`), and its outcome
//! ([`Store::append_outcome`]). The writer holds a batch of only such
//! records up to [`LINGER`] for more to join it. A view of the log first waits for such records
//! ([`Store::settle`], which ends the linger), so it shows what was done
//! before it was asked for.
//!
//! The writer holds the store weakly: it ends when the store is dropped,
//! and only then: a write that panics fails its batch, and a panic between
//! batches starts the writer over on the same queue.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

use tokio::sync::oneshot;

use super::journal::{self, Journal};
use super::{Store, StoreError, Tx};
use crate::audit::NewEvent;
use crate::clock::UnixMs;

/// Most writes in one commit (a bound on how long the writer holds the lock).
const MAX_BATCH: usize = 1024;
/// Events added to the log's indexes per transaction while the writer is idle.
pub(crate) const INDEX_CHUNK: usize = 256;
/// How long the writer waits for more writes before it indexes.
const IDLE_BEFORE_INDEXING: std::time::Duration = std::time::Duration::from_millis(50);
/// Under steady writes, the writer still indexes (a chunk at least) this often.
const INDEX_AT_LEAST_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How long the writer holds records that nothing waits on (calls' starts
/// and outcomes) before it commits them, gathering more for the same commit:
/// one agent's calls in a row then share one commit among several calls,
/// and the writer is not woken for each. A write that is waited on ends the
/// wait at once.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);
/// The longest [`Store::settle`] waits (a writer stuck longer is logged).
const SETTLE_AT_MOST: std::time::Duration = std::time::Duration::from_secs(2);

/// One queued write: run inside the batch's transaction, it gives back how
/// to answer its caller once the commit is known (`Some` = why it failed).
type Job = Box<dyn FnOnce(&mut Tx<'_>) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A queued write, and whether anything waits on it.
struct Queued {
    job: Job,
    /// Nothing waits on it (a call's outcome): it may linger.
    soon: bool,
}

/// The queue to the writer thread, started on first use.
#[derive(Default)]
pub(super) struct Writer {
    queue: OnceLock<(mpsc::Sender<Queued>, std::thread::Thread)>,
    /// What the callers and the writer thread both keep count of.
    progress: Arc<Progress>,
}

#[derive(Default)]
struct Progress {
    /// Writes queued and not yet committed.
    waiting: AtomicUsize,
    /// Of those, the ones something waits on.
    awaited: AtomicUsize,
    /// Writes ever queued, and ever answered (committed or failed), for
    /// [`Store::settle`]. Answers come in queue order.
    queued: AtomicU64,
    answered: Mutex<u64>,
    answer: Condvar,
    /// The most writes a view waits to see answered ([`Store::settle`]).
    wanted: AtomicU64,
    /// Gatehouse is stopping: nothing lingers any more.
    closing: AtomicBool,
    /// A test's way to make the writer panic between batches.
    #[cfg(test)]
    panic_when_indexing: AtomicBool,
    #[cfg(test)]
    panics: AtomicUsize,
    /// A test's way to make the writer linger until something waits.
    #[cfg(test)]
    linger_long: AtomicBool,
}

impl Progress {
    fn answered(&self, n: u64) {
        *self.answered.lock().unwrap_or_else(|p| p.into_inner()) += n;
        self.answer.notify_all();
    }
}

impl Writer {
    fn queue(&self, store: &Arc<Store>) -> &(mpsc::Sender<Queued>, std::thread::Thread) {
        self.queue.get_or_init(|| {
            let progress = self.progress.clone();
            let (tx, rx) = mpsc::channel();
            let store = Arc::downgrade(store);
            let thread = std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || {
                    // A job taken from the queue and not yet run.
                    let mut next = None;
                    // A panic outside a batch (in the text indexing) must not
                    // end the writer: every write after it would fail, and
                    // every view wait for them. It starts over on the same queue.
                    loop {
                        let writer = std::panic::AssertUnwindSafe(|| {
                            write_batches(&store, &rx, &progress, &mut next)
                        });
                        match std::panic::catch_unwind(writer) {
                            Ok(()) => return,
                            Err(_) => tracing::error!("the store's writer panicked; it goes on"),
                        }
                    }
                })
                .expect("a thread for the store's writer");
            (tx, thread.thread().clone())
        })
    }

    /// Queues `job` (`soon`: nothing waits on it); false when the writer has stopped.
    fn send(&self, store: &Arc<Store>, job: Job, soon: bool) -> bool {
        let (queue, thread) = self.queue(store);
        self.progress.waiting.fetch_add(1, Ordering::SeqCst);
        if !soon {
            self.progress.awaited.fetch_add(1, Ordering::SeqCst);
        }
        self.progress.queued.fetch_add(1, Ordering::SeqCst);
        if queue.send(Queued { job, soon }).is_err() {
            self.progress.waiting.fetch_sub(1, Ordering::SeqCst);
            if !soon {
                self.progress.awaited.fetch_sub(1, Ordering::SeqCst);
            }
            self.progress.answered(1);
            return false;
        }
        if !soon {
            // Something waits on it: the writer stops lingering.
            thread.unpark();
        }
        true
    }

    /// Wakes the writer if it lingers, to look again whether it should.
    fn nudge(&self) {
        if let Some((_, thread)) = self.queue.get() {
            thread.unpark();
        }
    }
}

impl Store {
    /// Writes an audit event in the writer's next group commit; resolves,
    /// with the event's id, once it is committed (in WAL, it survives the
    /// process being killed).
    pub async fn append(self: &Arc<Self>, event: NewEvent, now: UnixMs) -> Result<i64, StoreError> {
        self.write_queued(move |tx| tx.record_returning(event, now).map(|e| e.id))
            .await
    }

    /// Makes a call's start durable before the call is sent: appended to
    /// the calls' journal (one `write`), and recorded in the log by the
    /// writer's next group commit, with what follows it. A store in memory
    /// has no journal: there the start is committed before this returns.
    /// Fails (and the call must not be sent) when the start cannot be kept.
    pub async fn append_start(
        self: &Arc<Self>,
        event: NewEvent,
        now: UnixMs,
    ) -> Result<CallStart, StoreError> {
        let start = CallStart::default();
        let Some(journal) = &self.journal else {
            let id = self.append(event, now).await?;
            start.id.store(id, Ordering::SeqCst);
            return Ok(start);
        };
        let entry = journal::Entry { at: now, event };
        let mut queued = true;
        journal.append(&self.key, entry, |seq, entry| {
            let job = record_start(journal.clone(), seq, entry, start.clone());
            queued = self.writer.send(self, job, true);
        })?;
        if !queued {
            // In the journal: recorded at the next open. Not sent.
            return Err(stopped());
        }
        Ok(start)
    }

    /// [`Store::write`] for async callers: `f` runs on the writer, in the
    /// next group commit, in its own savepoint (its refusal kept only if it
    /// called [`Tx::keep`]); resolves with its result once that is committed.
    pub async fn write_queued<T, E, F>(self: &Arc<Self>, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (done, committed) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |tx| {
            let result = tx.job(f);
            Box::new(move |failed| {
                let answer = match failed {
                    None => result,
                    Some(e) => Err(not_committed(e).into()),
                };
                let _ = done.send(answer);
            })
        });
        if !self.writer.send(self, job, false) {
            return Err(stopped().into());
        }
        committed.await.map_err(|_| stopped())?
    }

    /// Queues a call's outcome for the writer's next group commit and
    /// returns at once: nothing waits on it, its start being durable. It
    /// names its start (`call_started`), recorded before it. It may linger
    /// up to [`LINGER`]. A failure is logged; a crash before the commit
    /// leaves the start without an outcome.
    pub fn append_outcome(self: &Arc<Self>, start: &CallStart, event: NewEvent, now: UnixMs) {
        let start = start.clone();
        self.append_soon(
            move || {
                let mut event = event;
                if let Some(id) = start.id() {
                    event.detail["call_started"] = serde_json::json!(id);
                }
                event
            },
            now,
        );
    }

    /// Queues the event `make` gives for the writer's next group commit
    /// and returns at once, for a record that nothing waits on.
    pub fn append_soon(
        self: &Arc<Self>,
        make: impl FnOnce() -> NewEvent + Send + 'static,
        now: UnixMs,
    ) {
        let job: Job = Box::new(move |tx| {
            let result: Result<(), StoreError> = tx.job(|tx| tx.record(make(), now));
            Box::new(move |failed| {
                let why = match (&result, failed) {
                    (Err(e), _) | (Ok(()), Some(e)) => e.to_string(),
                    (Ok(()), None) => return,
                };
                tracing::error!(error = %why, "could not write an audit event");
            })
        });
        if !self.writer.send(self, job, true) {
            tracing::error!(error = %stopped(), "could not write an audit event");
        }
    }

    /// Gatehouse is stopping: from now on nothing lingers, so the outcomes
    /// of the last calls are committed before it exits.
    pub fn stop_lingering(&self) {
        self.writer.progress.closing.store(true, Ordering::SeqCst);
        self.writer.nudge();
    }

    /// [`Store::settle`] when writes are queued; at once when none are.
    pub(super) fn after_queued(&self) {
        if self.writer.progress.waiting.load(Ordering::SeqCst) > 0 {
            self.settle();
        }
    }

    /// Waits until every write queued before it is committed (or failed), so
    /// that a view of the log shows what was done before it was asked for.
    /// Blocks (call it off the async workers); gives up after a while.
    pub fn settle(&self) {
        let progress = &self.writer.progress;
        let target = progress.queued.load(Ordering::SeqCst);
        progress.wanted.fetch_max(target, Ordering::SeqCst);
        self.writer.nudge();
        let answered = progress.answered.lock().unwrap_or_else(|p| p.into_inner());
        let waited = progress
            .answer
            .wait_timeout_while(answered, SETTLE_AT_MOST, |n| *n < target);
        if waited.is_ok_and(|(_, w)| w.timed_out()) {
            tracing::warn!(
                "the store's writer is behind; a view of the log may miss its last writes"
            );
        }
    }
}

/// A call's start on its way to the log: its event's id once the writer
/// recorded it (the outcome, queued after it, reads it in the same order).
#[derive(Clone, Default)]
pub struct CallStart {
    id: Arc<AtomicI64>,
}

impl CallStart {
    /// The start's event, once recorded (`None` if the database refused it:
    /// it stays in the journal, for the next open).
    pub fn id(&self) -> Option<i64> {
        Some(self.id.load(Ordering::SeqCst)).filter(|id| *id > 0)
    }
}

/// The writer's job for a journaled start: its event, and its place in the
/// journal (`upto` moves only while no start before it was refused).
fn record_start(journal: Arc<Journal>, seq: u64, entry: journal::Entry, start: CallStart) -> Job {
    Box::new(move |tx| {
        let result: Result<(), StoreError> = tx.job(|tx| {
            let id = tx.record_returning(entry.event, entry.at)?.id;
            journal::mark(tx.conn(), seq, id, !journal.has_gap())?;
            start.id.store(id, Ordering::SeqCst);
            Ok(())
        });
        if result.is_err() {
            journal.refused();
        }
        Box::new(move |failed| {
            let why = match (&result, failed) {
                (Ok(()), None) => return journal.recorded(seq),
                (Err(e), _) | (Ok(()), Some(e)) => e.to_string(),
            };
            journal.refused();
            tracing::error!(error = %why, seq, "could not record a call's start; it stays in the calls' journal until the next start");
        })
    })
}

#[cfg(test)]
impl Store {
    /// Holds the writer's connection, so queued writes wait and share a commit.
    pub fn hold_writer(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes queued and not yet committed.
    pub fn queued(&self) -> usize {
        self.writer.progress.waiting.load(Ordering::SeqCst)
    }
}

fn stopped() -> StoreError {
    StoreError::Corrupt("the store's writer stopped before this write was committed".into())
}

fn not_committed(e: &StoreError) -> StoreError {
    StoreError::Corrupt(format!("the write was not committed: {e}"))
}

#[allow(clippy::disallowed_methods)] // when to index is a matter of real time
fn write_batches(
    store: &Weak<Store>,
    rx: &mpsc::Receiver<Queued>,
    progress: &Progress,
    next: &mut Option<Queued>,
) {
    let mut indexed = std::time::Instant::now();
    loop {
        let first = match next.take() {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut batch = vec![first];
        let mut lingered = false;
        loop {
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            // Only outcomes: wait a little for more (a write waited on ends it).
            if lingered || batch.len() >= MAX_BATCH || batch.iter().any(|q| !q.soon) {
                break;
            }
            linger(progress);
            lingered = true;
        }
        let Some(strong) = store.upgrade() else {
            return;
        };
        let n = batch.len();
        let awaited = batch.iter().filter(|q| !q.soon).count();
        // A write that panics loses its batch (each caller is told), not the writer.
        let run = std::panic::AssertUnwindSafe(|| commit(&strong, batch));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!("a write panicked on the store's writer; its batch was rolled back");
        }
        drop(strong);
        progress.waiting.fetch_sub(n, Ordering::SeqCst);
        progress.awaited.fetch_sub(awaited, Ordering::SeqCst);
        progress.answered(n as u64);
        // Idle a while, or busy for a second since the last indexing: bring
        // the log's indexes up to date, a little at a time. (Indexing after every
        // batch made one agent's calls in a row wait on it.)
        let overdue = indexed.elapsed() >= INDEX_AT_LEAST_EVERY;
        if !overdue {
            match rx.recv_timeout(IDLE_BEFORE_INDEXING) {
                Ok(job) => {
                    *next = Some(job);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        indexed = std::time::Instant::now();
        let Some(store) = store.upgrade() else {
            return;
        };
        // Overdue: one chunk even with writes waiting.
        let mut regardless = overdue;
        loop {
            if !std::mem::take(&mut regardless) {
                match rx.try_recv() {
                    Ok(job) => {
                        *next = Some(job);
                        break;
                    }
                    Err(mpsc::TryRecvError::Disconnected) => return,
                    Err(mpsc::TryRecvError::Empty) => {}
                }
            }
            #[cfg(test)]
            if progress.panic_when_indexing.load(Ordering::SeqCst) {
                progress.panics.fetch_add(1, Ordering::SeqCst);
                panic!("indexing failed, as the test asked");
            }
            match store.index_log(INDEX_CHUNK) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not index audit events");
                    break;
                }
            }
        }
    }
}

/// SQLite rolls a whole transaction back on some errors (a full disk, an I/O
/// error): the batch is over then; a write run after it would commit alone.
fn rolled_back(tx: &Tx<'_>) -> Result<(), StoreError> {
    if tx.conn().is_autocommit() {
        return Err(StoreError::Corrupt(
            "the database rolled the group commit back".into(),
        ));
    }
    Ok(())
}

/// Holds a batch of records nothing waits on for [`LINGER`]; less when a
/// write something waits on is queued, when a view waits for what is not
/// yet committed, or when Gatehouse is stopping. Each of those wakes it.
#[allow(clippy::disallowed_methods)] // how long to linger is a matter of real time
fn linger(progress: &Progress) {
    #[allow(unused_mut)]
    let mut linger = LINGER;
    #[cfg(test)]
    if progress.linger_long.load(Ordering::SeqCst) {
        linger = std::time::Duration::from_secs(600);
    }
    let until = std::time::Instant::now() + linger;
    loop {
        let answered = *progress.answered.lock().unwrap_or_else(|p| p.into_inner());
        if progress.awaited.load(Ordering::SeqCst) > 0
            || progress.wanted.load(Ordering::SeqCst) > answered
            || progress.closing.load(Ordering::SeqCst)
        {
            return;
        }
        let now = std::time::Instant::now();
        if now >= until {
            return;
        }
        std::thread::park_timeout(until - now);
    }
}

/// Runs one batch in one transaction and tells each caller how it went.
fn commit(store: &Store, batch: Vec<Queued>) {
    let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
    let written: Result<(), StoreError> = store.write_unordered(|tx| {
        for queued in batch {
            rolled_back(tx)?;
            replies.push((queued.job)(tx));
        }
        rolled_back(tx)
    });
    let failed = written.err();
    if let Some(e) = &failed {
        tracing::error!(error = %e, "a group commit failed");
    }
    for reply in replies {
        reply(failed.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventKind, Filter, Outcome};
    use crate::store::audit::{self, Cursor};

    fn call(kind: EventKind, tool: &str) -> NewEvent {
        NewEvent::new(kind, Outcome::Allowed)
            .server("demo")
            .tool(tool)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_commits_and_all_land_in_the_chain() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .append(call(EventKind::ToolCall, &format!("t{i}")), 1_000 + i)
                    .await
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap().unwrap());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 200, "each append is its own event");
        let stored = store.read(audit::last_id).unwrap();
        assert_eq!(stored, 200);
        let sealed = store.read(|c| audit::sealed_page(c, 0, 1_000)).unwrap();
        let whole = crate::audit::chain::Start::Whole(None);
        let found = crate::audit::chain::verify(store.key(), sealed, true, &whole);
        assert!(found.intact(), "the group commits kept the chain");
    }

    #[test]
    fn a_view_settles_on_records_queued_before_it() {
        // On a file, so that reading does not wait for the writer's lock.
        let dir = tempfile::tempdir().unwrap();
        let key = crate::audit::chain::Key::new([7; 32]);
        let store = Arc::new(Store::open(&dir.path().join("g.db"), key, 0).unwrap());
        let held = store.hold_writer();
        store.append_soon(|| call(EventKind::ToolCall, "outcome"), 1_000);
        assert_eq!(store.queued(), 1, "queued, and the caller went on");
        let settled = std::thread::scope(|s| {
            let view = s.spawn(|| {
                store.settle();
                crate::testing::audit_kinds(&store)
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert!(!view.is_finished(), "the view waits for the writer");
            drop(held);
            view.join().unwrap()
        });
        assert_eq!(settled, ["tool_call"], "the view shows the queued record");
        assert_eq!(store.queued(), 0);
    }

    #[test]
    fn the_writer_goes_on_after_a_panic_between_batches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::testing::file_store(&dir, 0));
        let progress = &store.writer.progress;
        progress.panic_when_indexing.store(true, Ordering::SeqCst);
        store.append_soon(|| call(EventKind::ToolCall, "before"), 1_000);
        // Idle after that batch, the writer indexes, and panics.
        let waited = std::time::Duration::from_millis(10);
        for _ in 0..1_000 {
            if progress.panics.load(Ordering::SeqCst) > 0 {
                break;
            }
            std::thread::sleep(waited);
        }
        assert!(progress.panics.load(Ordering::SeqCst) > 0, "it panicked");
        store.append_soon(|| call(EventKind::ToolCall, "after"), 1_001);
        store.settle();
        let tools: Vec<String> = store
            .read(|c| audit::page(c, &Filter::default(), Cursor::Before(None), 10))
            .unwrap()
            .into_iter()
            .filter_map(|e| e.tool)
            .collect();
        assert_eq!(
            tools,
            ["after", "before"],
            "the write after the panic landed"
        );
        assert_eq!(store.queued(), 0, "and nothing is left waiting");
    }

    /// The events in the log, in id order: (kind, tool, its start if an outcome).
    fn logged(store: &Store) -> Vec<(String, String, Option<i64>)> {
        store
            .read(|c| {
                let mut stmt = c.prepare(
                    "SELECT kind, tool, json_extract(detail, '$.call_started') FROM audit_events ORDER BY id",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok::<_, StoreError>(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap()
    }

    fn journal_text(dir: &tempfile::TempDir) -> String {
        let [a, b] = journal::paths(&dir.path().join("p.db"));
        std::fs::read_to_string(a).unwrap() + &std::fs::read_to_string(b).unwrap()
    }

    /// A Gatehouse killed with its writer stuck: nothing queued is committed.
    fn crash(store: Arc<Store>) {
        std::mem::forget(store.hold_writer());
        std::mem::forget(store);
    }

    /// A store on a file whose writer lingers until something waits.
    fn lingering_file_store(dir: &tempfile::TempDir) -> Arc<Store> {
        let store = Arc::new(crate::testing::file_store(dir, 0));
        store
            .writer
            .progress
            .linger_long
            .store(true, Ordering::SeqCst);
        store
    }

    fn started(tool: &str) -> (String, String, Option<i64>) {
        ("call_started".into(), tool.into(), None)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_start_is_in_the_journal_before_the_log_and_its_outcome_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = lingering_file_store(&dir);
        let start = store
            .append_start(call(EventKind::CallStarted, "read"), 1)
            .await
            .unwrap();
        assert!(
            journal_text(&dir).contains(r#""tool":"read""#),
            "durable in the journal"
        );
        assert_eq!(
            logged(&store),
            [],
            "and not yet in the log (the writer lingers)"
        );
        store.append_outcome(&start, call(EventKind::ToolCall, "read"), 2);
        store.settle();
        assert_eq!(
            logged(&store),
            [
                started("read"),
                ("tool_call".into(), "read".into(), Some(1))
            ],
            "the start, then its outcome naming it"
        );
        assert_eq!(start.id(), Some(1));
        let upto = store.read(|c| {
            let upto: i64 = c.query_row("SELECT upto FROM audit_journal", [], |r| r.get(0))?;
            Ok::<_, StoreError>(upto)
        });
        let upto = upto.unwrap();
        assert_eq!(upto, 1, "the log holds the journal's first line");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starts_only_in_the_journal_are_recorded_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::testing::file_store(&dir, 0));
        let first = store
            .append_start(call(EventKind::CallStarted, "recorded"), 1)
            .await
            .unwrap();
        store.append_outcome(&first, call(EventKind::ToolCall, "recorded"), 2);
        store.settle();
        store
            .writer
            .progress
            .linger_long
            .store(true, Ordering::SeqCst);
        for tool in ["purge", "wipe"] {
            store
                .append_start(call(EventKind::CallStarted, tool), 3)
                .await
                .unwrap();
        }
        crash(store);
        // A line nobody with the key wrote is not recorded, nor does its number count.
        let [active, _] = journal::paths(&dir.path().join("p.db"));
        let forged = r#"18446744073709551614 0000 {"at":4,"event":{"kind":"call_started","outcome":"allowed","client_id":null,"server":"demo","tool":"forged","grant_id":null,"actor":null,"duration_ms":null,"detail":{}}}"#;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(active)
            .unwrap();
        std::io::Write::write_all(&mut file, format!("{forged}\n").as_bytes()).unwrap();

        let store = Arc::new(crate::testing::file_store(&dir, 0));
        assert_eq!(
            logged(&store),
            [
                started("recorded"),
                ("tool_call".into(), "recorded".into(), Some(1)),
                started("purge"),
                started("wipe"),
            ],
            "each start once, in order; the forged line left out"
        );
        assert_eq!(journal_text(&dir), "", "the journal starts over");
        let sealed = store.read(|c| audit::sealed_page(c, 0, 1_000)).unwrap();
        let whole = crate::audit::chain::Start::Whole(None);
        assert!(crate::audit::chain::verify(store.key(), sealed, true, &whole).intact());
        // Numbering goes on from where the journal was.
        let next = store
            .append_start(call(EventKind::CallStarted, "next"), 5)
            .await
            .unwrap();
        store.settle();
        assert_eq!(next.id(), Some(5));
        crash(store);
        let store = crate::testing::file_store(&dir, 0);
        assert_eq!(logged(&store).len(), 5, "nothing recorded twice");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_journal_files_take_turns_and_lose_no_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::testing::file_store(&dir, 0));
        let tool = |n: usize| format!("tool_{n:03}");
        for n in 0..300 {
            store
                .append_start(call(EventKind::CallStarted, &tool(n)), 1)
                .await
                .unwrap();
            if n % 7 == 0 {
                store.settle();
            }
        }
        store.settle();
        let kept = journal_text(&dir).len();
        assert!(
            kept < 3 * 4096,
            "the files were emptied in turn: {kept} bytes"
        );
        // Some starts only in the journal when Gatehouse dies.
        store
            .writer
            .progress
            .linger_long
            .store(true, Ordering::SeqCst);
        for n in 300..310 {
            store
                .append_start(call(EventKind::CallStarted, &tool(n)), 1)
                .await
                .unwrap();
        }
        crash(store);
        let store = crate::testing::file_store(&dir, 0);
        let logged: Vec<String> = logged(&store).into_iter().map(|(_, t, _)| t).collect();
        let expected: Vec<String> = (0..310).map(tool).collect();
        assert_eq!(logged, expected, "every start once, in order");
    }

    /// [`the_journal_files_take_turns_and_lose_no_start`] with the starts
    /// appended from several tasks at once, so the files take turns while
    /// lines are being written and recorded.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_files_take_turns_under_concurrent_starts_and_lose_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::testing::file_store(&dir, 0));
        let tool = |task: usize, n: usize| format!("t{task}_{n:03}");
        let (tasks, each) = (8, 80);
        let appending: Vec<_> = (0..tasks)
            .map(|task| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in 0..each {
                        let start = store
                            .append_start(call(EventKind::CallStarted, &tool(task, n)), 1)
                            .await
                            .unwrap();
                        if n % 3 == 0 {
                            store.append_outcome(&start, call(EventKind::ToolCall, "done"), 2);
                        }
                        if n % 11 == task {
                            tokio::task::yield_now().await;
                            store.settle();
                        }
                    }
                })
            })
            .collect();
        for t in appending {
            t.await.unwrap();
        }
        store.settle();
        assert!(
            journal_text(&dir).len() < 3 * 4096,
            "the files were emptied in turn"
        );
        crash(store);
        let store = crate::testing::file_store(&dir, 0);
        let starts: Vec<String> = logged(&store)
            .into_iter()
            .filter(|(kind, _, _)| kind == "call_started")
            .map(|(_, t, _)| t)
            .collect();
        assert_eq!(
            starts.len(),
            tasks * each,
            "no start lost or recorded twice"
        );
        for task in 0..tasks {
            let mine: Vec<&String> = starts
                .iter()
                .filter(|t| t.starts_with(&format!("t{task}_")))
                .collect();
            let expected: Vec<String> = (0..each).map(|n| tool(task, n)).collect();
            assert_eq!(
                mine,
                expected.iter().collect::<Vec<_>>(),
                "task {task}'s in order"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_journal_of_a_database_made_anew_beside_it_is_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = lingering_file_store(&dir);
        store
            .append_start(call(EventKind::CallStarted, "old"), 1)
            .await
            .unwrap();
        crash(store);
        for end in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("p.db{end}")));
        }
        let store = crate::testing::file_store(&dir, 0);
        assert_eq!(
            logged(&store),
            [],
            "the old database's start is not this one's"
        );
        assert_eq!(journal_text(&dir), "");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_start_the_database_refused_is_recorded_at_the_next_open_and_no_other_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::testing::file_store(&dir, 0));
        store
            .hold_writer()
            .execute_batch(
                "CREATE TEMP TRIGGER refuse BEFORE INSERT ON audit_events WHEN NEW.kind = 'call_started' AND NEW.tool = 'refused'
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END",
            )
            .unwrap();
        for tool in ["before", "refused", "after"] {
            let start = store
                .append_start(call(EventKind::CallStarted, tool), 1)
                .await
                .expect("durable in the journal, so the call may go");
            store.append_outcome(&start, call(EventKind::ToolCall, tool), 2);
        }
        store.settle();
        let outcome = |tool: &str, start| ("tool_call".to_string(), tool.to_string(), start);
        let before = [started("before"), outcome("before", Some(1))];
        let mut expected = before.to_vec();
        expected.extend([
            outcome("refused", None),
            started("after"),
            outcome("after", Some(4)),
        ]);
        assert_eq!(
            logged(&store),
            expected,
            "the refused start is missing from the log"
        );
        crash(store);
        let store = crate::testing::file_store(&dir, 0);
        expected.push(started("refused"));
        assert_eq!(
            logged(&store),
            expected,
            "recorded at the next open; nothing twice"
        );
    }

    #[test]
    fn an_outcome_lingers_only_while_nothing_waits_for_it() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let progress = &store.writer.progress;
        progress.linger_long.store(true, Ordering::SeqCst);
        let tools = |store: &Store| crate::testing::audit_kinds(store).len();
        // A view waits for it: the writer stops lingering (settle gives up after 2 s).
        store.append_soon(|| call(EventKind::ToolCall, "viewed"), 1);
        store.settle();
        assert_eq!(tools(&store), 1, "the view ended the linger");
        // Stopping: nothing lingers, with nobody waiting.
        store.stop_lingering();
        store.append_soon(|| call(EventKind::ToolCall, "last"), 2);
        for _ in 0..1_000 {
            if store.queued() == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(store.queued(), 0, "committed without lingering");
        assert_eq!(tools(&store), 2);
    }

    #[test]
    fn a_direct_write_follows_the_records_queued_before_it() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        for _ in 0..20 {
            store.append_soon(|| call(EventKind::ToolCall, "outcome"), 1_000);
            let revoked = NewEvent::new(EventKind::AgentRevoked, Outcome::Allowed);
            store.write(|tx| tx.record(revoked, 1_001)).unwrap();
        }
        let kinds = crate::testing::audit_kinds(&store);
        let expected = ["tool_call", "agent_revoked"].repeat(20);
        assert_eq!(
            kinds, expected,
            "each outcome before the revocation after it"
        );
    }

    #[allow(clippy::await_holding_lock)] // it holds the writer's lock on purpose
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_writes_succeed_fail_or_keep_their_refusal_alone() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let kinds = |store: &Store| -> Vec<String> {
            store
                .read(|c| {
                    let mut stmt = c.prepare("SELECT kind FROM audit_events ORDER BY id")?;
                    let rows = stmt.query_map([], |r| r.get(0))?;
                    Ok::<_, StoreError>(rows.collect::<Result<Vec<String>, _>>()?)
                })
                .unwrap()
        };
        // Hold the connection so the writes queue up: the writer takes the
        // first alone or with the others, and the last two share a commit.
        let held = store.conn.lock().unwrap();
        let queue = |kind: EventKind, fail: bool, keep: bool| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write_queued(move |tx| {
                        tx.record(NewEvent::new(kind, Outcome::Denied), 1)?;
                        if keep {
                            tx.keep();
                        }
                        if fail {
                            return Err(StoreError::Corrupt("refused".into()));
                        }
                        Ok(kind)
                    })
                    .await
            })
        };
        let mut jobs = Vec::new();
        for (n, (kind, fail, keep)) in [
            (EventKind::RefreshReused, true, true),
            (EventKind::TokenRefreshed, false, false),
            (EventKind::TokenIssued, true, false),
        ]
        .into_iter()
        .enumerate()
        {
            jobs.push(queue(kind, fail, keep));
            while store.writer.progress.waiting.load(Ordering::SeqCst) <= n {
                tokio::task::yield_now().await;
            }
        }
        let [kept, ok, undone] = <[_; 3]>::try_from(jobs).unwrap();
        drop(held);
        assert_eq!(ok.await.unwrap().unwrap(), EventKind::TokenRefreshed);
        assert!(undone.await.unwrap().is_err());
        assert!(kept.await.unwrap().is_err());
        let mut stored = kinds(&store);
        stored.sort();
        assert_eq!(
            stored,
            ["refresh_reused", "token_refreshed"],
            "the refusal that kept its record stands; the other failure is undone"
        );
    }

    #[tokio::test]
    async fn a_start_is_listed_only_until_its_outcome_is_written() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let start = store
            .append(call(EventKind::CallStarted, "read"), 1)
            .await
            .unwrap();
        let other = store
            .append(call(EventKind::CallStarted, "write"), 2)
            .await
            .unwrap();
        let listed = |store: &Store| -> Vec<(EventKind, Option<String>)> {
            let page = store.read(|c| audit::page(c, &Filter::default(), Cursor::Before(None), 10));
            page.unwrap()
                .into_iter()
                .map(|e| (e.kind, e.tool))
                .collect()
        };
        assert_eq!(listed(&store).len(), 2, "both running");
        let outcome =
            call(EventKind::ToolCall, "read").detail(serde_json::json!({"call_started": start}));
        store.append(outcome, 3).await.unwrap();
        assert_eq!(
            listed(&store),
            vec![
                (EventKind::ToolCall, Some("read".into())),
                (EventKind::CallStarted, Some("write".into())),
            ],
            "the outcome stands for its start; the other start has none"
        );
        let count = store.read(|c| audit::count(c, &Filter::default())).unwrap();
        assert_eq!(count, 2);
        assert!(other > start);
    }
}

#[cfg(test)]
mod profile {
    use super::*;
    use crate::audit::{EventKind, Outcome};

    /// For `perf record`: 64 writers append 20,000 events to a file store.
    #[allow(clippy::disallowed_methods)] // it times itself
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn appends_for_a_profile() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::testing::file_store(&dir, 0));
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in 0..312 {
                        let e = NewEvent::new(EventKind::ToolCall, Outcome::Allowed)
                            .server("demo")
                            .tool("read_note")
                            .detail(serde_json::json!({"arguments": {"title": format!("note {i}-{n}")}}));
                        store.append(e, 1).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let s = started.elapsed().as_secs_f64();
        eprintln!("{:.0} events/s", 64.0 * 312.0 / s);
    }
}
