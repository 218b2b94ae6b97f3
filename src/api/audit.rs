//! The audit log as the faces read it: a page at a time (the timeline), the
//! most recent events (`gatehouse log`), followed live ([`Follow`], for both
//! `log --follow` and the app's timeline), or exported to a file.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::{AuditEvent, AuditFilter, Error, ExportFormat, Gatehouse, Result};
use crate::audit::chain::{self, Verification};
use crate::audit::export;
use crate::store::audit::{self as log, Cursor};
use crate::store::Store;
use crate::text;

/// Most events a follower reads back at once after falling behind.
const CATCH_UP_PAGE: u32 = 1_000;

/// A page of the timeline, newest first. `total` is counted for first pages only.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// On a first page: how many events match, counted up to
    /// [`AUDIT_COUNT_CAP`] (`total_more`: there are more than that, or the
    /// count stopped at its bound of rows read: at least that many).
    #[ts(type = "number | null")]
    pub total: Option<i64>,
    pub total_more: bool,
}

/// A first page counts its matches up to this many, so that it costs no more
/// than reading them: a count of a million matches took longer than the page.
pub const AUDIT_COUNT_CAP: i64 = 10_000;
// A full first page's count goes on below it, up to the cap less the page.
const _: () = assert!(log::MAX_PAGE as i64 <= AUDIT_COUNT_CAP);

impl Gatehouse {
    /// Waits until every audit record queued before it is committed: a
    /// call's outcome is written after its answer went back, and a view of
    /// the log shows it. Blocks briefly: call it off the async workers.
    pub fn settle_audit(&self) {
        self.store().settle();
    }

    /// Gatehouse is stopping: audit records still to come (the outcomes of
    /// calls cut short) are committed at once, not held for others.
    pub fn audit_stopping(&self) {
        self.store().stop_lingering();
    }

    /// Checks the whole audit log: every event's seal, every link, and that
    /// the newest event Gatehouse knows of is still there. Reads every event:
    /// call it off the async workers.
    pub fn verify_audit(&self) -> Result<Verification> {
        let store = self.store();
        let mut found = store.read(|c| verify_log(c, store.key(), None))?;
        if let Some((id, seal)) = store.head() {
            if !head_kept(store, id, &seal)? {
                found.add(cut_off(id));
            }
        }
        Ok(found)
    }

    /// The newest events matching `filter` with an id below `before_id`
    /// (`None`: the newest of all), newest first. A first page also counts
    /// every match. This reads SQLite: call it off the async workers.
    pub fn audit_page(
        &self,
        filter: &AuditFilter,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<AuditPage> {
        self.settle_audit();
        let store = self.store();
        let events = store.read(|c| log::page(c, filter, Cursor::Before(before_id), limit))?;
        let (total, total_more) = match before_id {
            // A first page that is not full holds every match: no need to look again.
            None if events.len() < limit.min(log::MAX_PAGE) as usize => {
                (Some(events.len() as i64), false)
            }
            None => {
                // The count goes on below the page: the page's matches are not read twice.
                let (shown, below) = (events.len() as i64, events.last().map(|e| e.id));
                let (n, more) =
                    store.read(|c| log::count_up_to(c, filter, below, AUDIT_COUNT_CAP - shown))?;
                (Some(shown + n), more)
            }
            Some(_) => (None, false),
        };
        Ok(AuditPage {
            events,
            total,
            total_more,
        })
    }

    /// The most recent `limit` events matching `filter`, oldest first.
    pub fn recent_events(&self, filter: &AuditFilter, limit: u32) -> Result<Vec<AuditEvent>> {
        self.settle_audit();
        let mut events = self
            .store()
            .read(|c| log::page(c, filter, Cursor::Before(None), limit))?;
        events.reverse();
        Ok(events)
    }

    /// Follows the log: the most recent `backlog` events matching `filter`
    /// (oldest first), then each new one as it commits. A follower that falls
    /// behind catches up from the store: it misses nothing and sees nothing twice.
    pub fn follow(&self, filter: AuditFilter, backlog: u32) -> Result<(Vec<AuditEvent>, Follow)> {
        // Subscribe first, so nothing committed after the backlog read is lost.
        let live = self.store().subscribe();
        let recent = if backlog == 0 {
            Vec::new()
        } else {
            self.recent_events(&filter, backlog)?
        };
        let last = match recent.last() {
            Some(e) => e.id,
            None => self.store().read(log::last_id)?,
        };
        let follow = Follow {
            live,
            store: self.store_handle(),
            filter,
            last,
            missed: VecDeque::new(),
            catching_up: false,
        };
        Ok((recent, follow))
    }

    /// Writes every event matching `filter` (a finished call's start too),
    /// newest first, with their seals
    /// to a new file at `path` that only this user can read (a symlink there
    /// is refused); returns how many. The store is read a page at a time,
    /// never held for the whole export. This reads SQLite and writes a file:
    /// call it off the async workers.
    pub fn export_audit(
        &self,
        filter: &AuditFilter,
        format: ExportFormat,
        path: &std::path::Path,
    ) -> Result<usize> {
        let cannot = |e: std::io::Error| {
            Error::bad_request(format!(
                "cannot write {}: {e}",
                text::inert(&path.display().to_string())
            ))
        };
        let mut out = std::io::BufWriter::new(crate::private::create_file(path).map_err(cannot)?);
        self.settle_audit();
        let store = self.store();
        export::export(format, &mut out, |before| {
            store.read(|c| log::export_page(c, filter, before, 2_000))
        })
        .map_err(|e| match e {
            export::ExportError::Read(e) => Error::from(e),
            export::ExportError::Io(e) => Error::internal(format!("cannot write the export: {e}")),
        })
    }
}

/// Verifies the log from where it starts up to event `through` (all of it
/// when `None`), on one snapshot of the database: a cut committed meanwhile
/// is not mistaken for missing events.
fn verify_log(
    c: &rusqlite::Connection,
    key: &crate::audit::chain::Key,
    through: Option<i64>,
) -> std::result::Result<Verification, crate::store::StoreError> {
    let snapshot = c.unchecked_transaction()?;
    let start = chain::Start::Whole(log::pruned_through(&snapshot)?);
    let through = through.unwrap_or(i64::MAX);
    let (mut failed, mut after) = (None, 0);
    let mut page = Vec::<chain::Sealed>::new().into_iter();
    let events = std::iter::from_fn(|| loop {
        if let Some(e) = page.next() {
            after = e.id;
            return (e.id <= through).then_some(e);
        }
        match log::sealed_page(&snapshot, after, 2_000) {
            Ok(next) if !next.is_empty() => page = next.into_iter(),
            Ok(_) => return None,
            Err(e) => {
                failed = Some(e);
                return None;
            }
        }
    });
    let found = chain::verify(key, events, true, &start);
    match failed {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

/// Events retention exports and deletes at most per upkeep (a short write).
const PRUNE_CHUNK: i64 = 5_000;

impl Gatehouse {
    /// What the retention setting no longer keeps is exported (JSON Lines,
    /// sealed: `gatehouse log verify --file` checks it) to the data
    /// directory's `audit-archive/`, then deleted, with an `audit_pruned`
    /// event saying up to where, so `log verify` knows where the log now
    /// starts. At most [`PRUNE_CHUNK`] events a call (upkeep calls it).
    /// Returns how many were cut.
    pub fn prune_audit(&self, now: crate::clock::UnixMs) -> Result<usize> {
        let keep = self.config().keep_audit;
        if keep == crate::config::Retention::default() {
            return Ok(0);
        }
        let store = self.store();
        let Some(through) = store.read(|c| log::prune_through(c, keep, now, PRUNE_CHUNK))? else {
            return Ok(0);
        };
        // Only a log that holds is cut: cutting a tampered stretch would put
        // a sealed record of a clean cut over the tampering.
        let found = store.read(|c| verify_log(c, store.key(), Some(through)))?;
        if !found.intact() {
            return Err(Error::internal(format!(
                "the audit log does not verify up to event #{through}, so retention cuts nothing until it does (`gatehouse log verify` names the events)"
            )));
        }
        let previous = store.read(log::pruned_through)?;
        let archive = self.data_dir().join("audit-archive");
        crate::private::ensure_dir(&archive).map_err(|e| Error::internal(e.to_string()))?;
        let first = store.read(|c| log::range(c, 0, through, 1))?;
        let first = first.first().map_or(through, |e| e.id);
        let path = archive.join(format!("audit-{first:010}-{through:010}.jsonl"));
        let cannot =
            |e: std::io::Error| Error::internal(format!("cannot write {}: {e}", path.display()));
        let file = crate::private::create_file(&path).map_err(cannot)?;
        let mut out = std::io::BufWriter::new(file);
        let written = export::export(ExportFormat::Jsonl, &mut out, |after| {
            store.read(|c| log::range(c, after.unwrap_or(0), through, 2_000))
        })
        .map_err(|e| Error::internal(e.to_string()))?;
        let file = out.into_inner().map_err(|e| cannot(e.into_error()))?;
        file.sync_all().map_err(cannot)?;
        let shown = path.display().to_string();
        store.write(|tx| {
            let through_seal = log::delete_through(tx.conn(), through)?;
            let event = crate::audit::NewEvent::new(
                crate::audit::EventKind::AuditPruned,
                crate::audit::Outcome::Allowed,
            )
            .actor("retention")
            .detail(serde_json::json!({
                "through": through, "through_seal": through_seal,
                "count": written, "exported_to": shown,
                // The cut before this one: the archives chain, file to file.
                "after": previous.as_ref().map(|p| p.0),
                "after_seal": previous.map(|p| p.1),
            }));
            tx.record(event, now)
        })?;
        tracing::info!(
            count = written,
            through,
            "audit events exported to {shown} and deleted (retention)"
        );
        Ok(written)
    }
}

/// A live view of the log (see [`Gatehouse::follow`]).
pub struct Follow {
    live: broadcast::Receiver<AuditEvent>,
    store: Arc<Store>,
    filter: AuditFilter,
    /// The id of the last event delivered, or known not to need delivering.
    last: i64,
    /// Events read back from the store after falling behind, oldest first.
    missed: VecDeque<AuditEvent>,
    /// Fell behind: read the store until it has nothing newer, then go live.
    catching_up: bool,
}

impl Follow {
    /// The next matching event, as it commits; `None` when Gatehouse stops.
    pub async fn next(&mut self) -> Option<AuditEvent> {
        loop {
            if let Some(event) = self.missed.pop_front() {
                self.last = event.id;
                return Some(event);
            }
            if self.catching_up {
                // A read of the store, off the async workers.
                let (store, filter) = (self.store.clone(), self.filter.clone());
                let after = Cursor::After(self.last);
                let read = tokio::task::spawn_blocking(move || {
                    store.read(|c| log::page(c, &filter, after, CATCH_UP_PAGE))
                });
                let read = read.await.map_err(|e| e.to_string());
                match read.and_then(|events| events.map_err(|e| e.to_string())) {
                    Ok(events) => {
                        self.catching_up = events.len() as u32 == CATCH_UP_PAGE;
                        self.missed.extend(events);
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "a log follower could not catch up");
                        return None;
                    }
                }
            }
            match self.live.recv().await {
                // Already delivered from the store while catching up.
                Ok(event) if event.id <= self.last => {}
                Ok(event) => {
                    self.last = event.id;
                    if self.filter.matches(&event) {
                        return Some(event);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.catching_up = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// Whether the event `id` with this seal is still in the log.
fn head_kept(store: &Store, id: i64, seal: &str) -> Result<bool> {
    let kept = store.read(|c| log::sealed_page(c, id - 1, 1))?;
    Ok(kept
        .first()
        .is_some_and(|e| e.id == id && e.seal.as_deref() == Some(seal)))
}

fn cut_off(id: i64) -> chain::Problem {
    chain::Problem {
        id,
        what: chain::ProblemKind::Truncated,
        message: format!(
            "event #{id}, the newest one Gatehouse wrote, is gone: the end of the log was cut off"
        ),
    }
}

/// At start: checks the head Gatehouse remembered (outside the database)
/// against the log. If the log still reaches it, it is remembered; if the
/// end was cut off while Gatehouse was stopped, that is recorded as an
/// `audit_truncated` event, sealed into the chain, so every later check
/// reports it. Returns the ids that went missing.
pub(crate) fn resume_chain(
    store: &Store,
    remembered: Option<(i64, String)>,
    now: crate::clock::UnixMs,
) -> Result<Option<(i64, i64)>> {
    let Some((id, seal)) = remembered else {
        return Ok(None);
    };
    if head_kept(store, id, &seal)? {
        store.remember_head(id, seal);
        return Ok(None);
    }
    let last = store.read(log::last_id)?;
    if last > id {
        // The log goes on past the remembered head (it was not noted before a
        // crash): the walk checks those events.
        return Ok(None);
    }
    let missing = (last + 1, id);
    store.write(|tx| {
        tx.record(
            crate::audit::NewEvent::new(
                crate::audit::EventKind::AuditTruncated,
                crate::audit::Outcome::Error,
            )
            .detail(serde_json::json!({"from": missing.0, "to": missing.1})),
            now,
        )
    })?;
    Ok(Some(missing))
}

/// Verifies an exported JSON Lines file of the log with this Gatehouse's
/// key (read from where it keeps secrets): every event's seal, and where
/// consecutive events are in the file, their links; gaps (a filtered export)
/// are counted, not hidden.
pub fn verify_export(
    credentials: &crate::credentials::CredentialStore,
    file: impl std::io::BufRead,
) -> Result<Verification> {
    let key = credentials
        .audit_key()
        .map_err(|e| Error::internal(e.to_string()))?;
    let mut events = Vec::new();
    for (n, line) in file.lines().enumerate() {
        let line = line.map_err(|e| Error::internal(format!("cannot read the file: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: AuditEvent = serde_json::from_str(&line).map_err(|e| {
            Error::bad_request(format!(
                "line {} is not an exported audit event: {e}",
                n + 1
            ))
        })?;
        events.push(event);
    }
    events.sort_by_key(|e| e.id);
    let sealed = events.iter().map(chain::Sealed::from);
    let mut found = chain::verify(&key, sealed, false, &chain::Start::Part);
    // Consecutive ids must link; a missing id is a gap, counted above.
    for pair in events.windows(2) {
        let linked = pair[1].prev_seal.as_deref() == pair[0].seal.as_deref();
        if pair[1].id == pair[0].id + 1 && !linked {
            found.add(chain::Problem {
                id: pair[1].id,
                what: chain::ProblemKind::OutOfChain,
                message: format!(
                    "event #{} does not follow #{} in the chain: events were moved or replaced",
                    pair[1].id, pair[0].id
                ),
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventKind, NewEvent, Outcome};

    fn follower(store: &Arc<Store>, filter: AuditFilter) -> Follow {
        Follow {
            live: store.subscribe(),
            store: store.clone(),
            filter,
            last: store.read(log::last_id).unwrap(),
            missed: VecDeque::new(),
            catching_up: false,
        }
    }

    fn record(store: &Store, n: i64) {
        store
            .write(|tx| {
                for i in 0..n {
                    let server = if i % 2 == 0 { "demo" } else { "other" };
                    tx.record(
                        NewEvent::new(EventKind::ToolCall, Outcome::Allowed).server(server),
                        i,
                    )?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .unwrap();
    }

    async fn ids(follow: &mut Follow, n: usize) -> Vec<i64> {
        let mut out = Vec::new();
        for _ in 0..n {
            let next = tokio::time::timeout(std::time::Duration::from_secs(5), follow.next());
            out.push(
                next.await
                    .expect("an event in time")
                    .expect("not closed")
                    .id,
            );
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_first_page_counts_its_matches_on_below_itself_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("gatehouse.toml");
        std::fs::write(&config_path, "port = 0\n").unwrap();
        let config = crate::Config::load(&config_path).unwrap();
        let running = crate::daemon::start(config, &dir.path().join("data"))
            .await
            .unwrap();
        let g = running.gatehouse().clone();
        let demo = AuditFilter {
            server: Some("demo".into()),
            ..Default::default()
        };
        let pages = tokio::task::spawn_blocking(move || {
            record(g.store(), 500);
            let some = g.audit_page(&demo, None, 100).unwrap();
            let next = g.audit_page(&demo, Some(some.events[99].id), 100).unwrap();
            record(g.store(), 20_000);
            let capped = g.audit_page(&demo, None, 100).unwrap();
            (some, next, capped)
        })
        .await
        .unwrap();
        let (some, next, capped) = pages;
        assert_eq!(
            (some.events.len(), some.total, some.total_more),
            (100, Some(250), false)
        );
        assert_eq!(
            (next.total, next.total_more),
            (None, false),
            "only a first page counts"
        );
        assert_eq!(
            (capped.total, capped.total_more),
            (Some(AUDIT_COUNT_CAP), true)
        );
        running.shutdown().await;
    }

    #[tokio::test]
    async fn a_follower_that_falls_behind_misses_nothing_and_sees_nothing_twice() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        record(&store, 3);
        let mut all = follower(&store, AuditFilter::default());
        let demo = AuditFilter {
            server: Some("demo".into()),
            ..AuditFilter::default()
        };
        let mut only_demo = follower(&store, demo);
        // More than the live channel holds (4,096) commit before anyone reads.
        record(&store, 10_000);
        assert_eq!(
            ids(&mut all, 10_000).await,
            (4..=10_003).collect::<Vec<_>>()
        );
        let demo_ids: Vec<i64> = (4..=10_003).filter(|id| (id - 4) % 2 == 0).collect();
        assert_eq!(ids(&mut only_demo, 5_000).await, demo_ids);
        // Then it goes on live.
        record(&store, 2);
        assert_eq!(ids(&mut all, 2).await, [10_004, 10_005]);
        assert_eq!(ids(&mut only_demo, 1).await, [10_004]);
    }
}
