//! Audit appends by group commit. One writer thread takes every audit event
//! queued since its last commit and writes them in one transaction (each in
//! its own savepoint, so one bad event fails alone); each caller's future
//! resolves when its event is committed. Callers in async handlers wait on a
//! channel, never on the database lock, and a burst of N concurrent calls
//! pays about one commit instead of N. When nothing is queued and the
//! connection is free (one agent's calls in a row), the caller commits its
//! event itself: it takes the lock only if no one holds it, and saves two
//! hand-offs between threads.
//!
//! When its queue is empty, the writer brings the text index up to date
//! (`store::audit::index_text`), a chunk at a time between batches.
//!
//! The writer holds the store weakly: it ends when the store is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock, Weak};

use tokio::sync::oneshot;

use super::{Store, StoreError};
use crate::audit::{AuditEvent, NewEvent};
use crate::clock::UnixMs;

/// Most events in one commit (a bound on how long the writer holds the lock).
const MAX_BATCH: usize = 1024;
/// Events added to the text index per transaction while the writer is idle.
const INDEX_CHUNK: usize = 256;

struct Append {
    event: NewEvent,
    now: UnixMs,
    done: oneshot::Sender<Result<AuditEvent, StoreError>>,
}

/// The queue to the writer thread, started on first use.
#[derive(Default)]
pub(super) struct Appender {
    queue: OnceLock<mpsc::Sender<Append>>,
    /// Events queued and not yet committed.
    waiting: Arc<AtomicUsize>,
}

impl Appender {
    fn queue(&self, store: &Arc<Store>) -> &mpsc::Sender<Append> {
        self.queue.get_or_init(|| {
            let waiting = self.waiting.clone();
            let (tx, rx) = mpsc::channel();
            let store = Arc::downgrade(store);
            std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || write_batches(&store, &rx, &waiting))
                .expect("a thread for the audit writer");
            tx
        })
    }
}

impl Store {
    /// Writes an audit event in the writer's next group commit; resolves once
    /// it is committed (in WAL, it survives the process being killed).
    pub async fn append(
        self: &Arc<Self>,
        event: NewEvent,
        now: UnixMs,
    ) -> Result<AuditEvent, StoreError> {
        // Nothing queued and the connection free: commit here, with no hand-off
        // to the writer and back (what one agent's calls in a row meet).
        if self.appender.waiting.load(Ordering::SeqCst) == 0 {
            if let Ok(conn) = self.conn.try_lock() {
                return self.write_on(conn, |tx| tx.record_returning(event, now));
            }
        }
        let (done, committed) = oneshot::channel();
        let gone = || StoreError::Corrupt("the audit writer stopped".into());
        self.appender.waiting.fetch_add(1, Ordering::SeqCst);
        let queued = self.appender.queue(self).send(Append { event, now, done });
        if queued.is_err() {
            self.appender.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(gone());
        }
        committed.await.map_err(|_| gone())?
    }
}

fn write_batches(store: &Weak<Store>, rx: &mpsc::Receiver<Append>, waiting: &AtomicUsize) {
    let mut next = None;
    loop {
        let first = match next.take() {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let Some(store) = store.upgrade() else {
            return;
        };
        let n = batch.len();
        commit(&store, batch);
        waiting.fetch_sub(n, Ordering::SeqCst);
        // Idle: bring the text index up to date, a little at a time.
        loop {
            match rx.try_recv() {
                Ok(job) => {
                    next = Some(job);
                    break;
                }
                Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => {}
            }
            match store.index_text(INDEX_CHUNK) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not index audit events for search");
                    break;
                }
            }
        }
    }
}

/// Writes one batch in one transaction and tells each caller how it went.
fn commit(store: &Store, batch: Vec<Append>) {
    let mut waiting = Vec::with_capacity(batch.len());
    let written: Result<Vec<Result<AuditEvent, StoreError>>, StoreError> = store.write(|tx| {
        let mut results = Vec::with_capacity(batch.len());
        for Append { event, now, done } in batch {
            waiting.push(done);
            results.push(tx.attempt(|tx| tx.record_returning(event, now)));
        }
        Ok(results)
    });
    match written {
        Ok(results) => {
            for (done, result) in waiting.into_iter().zip(results) {
                let _ = done.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "an audit group commit failed");
            let why = e.to_string();
            for done in waiting {
                let _ = done.send(Err(StoreError::Corrupt(why.clone())));
            }
        }
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
            ids.push(t.await.unwrap().unwrap().id);
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
            call(EventKind::ToolCall, "read").detail(serde_json::json!({"call_started": start.id}));
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
        assert!(other.id > start.id);
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
        let key = crate::audit::chain::Key::new([7; 32]);
        let store = Arc::new(Store::open(&dir.path().join("p.db"), key, 0).unwrap());
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
