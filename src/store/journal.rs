//! The calls' journal: where a tool call's start is made durable before the
//! call goes upstream, for the price of one `write` to a file instead of a
//! commit of its own. Each start is a line appended to the active one of two
//! files beside the database (`<db>-calls-a`, `<db>-calls-b`), numbered
//! (`seq`) and keyed with the log's seal key, so a line nobody with the key
//! wrote is never recorded. The writer moves each start into the log in its
//! next group commit and records the highest `seq` it moved there
//! (`audit_journal.upto`); at open, every line above it that the log does
//! not hold is recorded first (a start whose process was killed, or whose
//! record the database refused). A killed process loses nothing that
//! `write` returned (the file's pages are the kernel's), which is the
//! durability the database's WAL has with `synchronous=NORMAL`.
//!
//! The files take turns: once the active one passes [`ROTATE_BYTES`] and
//! every line of the other is in the log, the other is emptied and becomes
//! the active one. So the journal stays under about twice that.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rusqlite::{params, Connection};

use super::Key;
use super::StoreError;
use crate::audit::{chain, NewEvent};
use crate::clock::UnixMs;

/// The active file is swapped once it holds this much (tests turn them often).
const ROTATE_BYTES: u64 = if cfg!(test) { 4 << 10 } else { 1 << 20 };

/// One started call, as the journal holds it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Entry {
    pub at: UnixMs,
    pub event: NewEvent,
}

pub(super) struct Journal {
    files: Mutex<Files>,
    /// A start the database refused: nothing is emptied, and `upto` does
    /// not move, until a restart records it.
    gap: AtomicBool,
    /// What a line's keyed hash is taken after (no event's seal is): the
    /// database's own journal id.
    context: String,
}

struct Files {
    file: [File; 2],
    /// Which file takes new lines.
    active: usize,
    /// The highest `seq` each file holds (0: none).
    last: [u64; 2],
    /// The bytes in the active file (emptied at open and when it takes its turn).
    len: u64,
    next: u64,
    /// The highest `seq` the log is known to hold, every one below it too.
    recorded: u64,
}

/// Where the journal's files are, beside the database at `db`.
pub fn paths(db: &Path) -> [PathBuf; 2] {
    let name = |end: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(end);
        PathBuf::from(p)
    };
    [name("-calls-a"), name("-calls-b")]
}

impl Journal {
    /// Opens the journal beside `db` and records in the log (on `conn`)
    /// every start it holds that the log does not.
    pub fn open(db: &Path, conn: &mut Connection, key: &Key) -> Result<Journal, StoreError> {
        let paths = paths(db);
        let open = |p: &PathBuf| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .mode(0o600)
                // Like every file of the data directory: never through a link.
                .custom_flags(libc::O_NOFOLLOW)
                .open(p)
        };
        let file = [open(&paths[0]).map_err(io)?, open(&paths[1]).map_err(io)?];
        let (id, upto, upto_event): (String, i64, i64) = conn.query_row(
            "SELECT journal_id, upto, upto_event FROM audit_journal",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let context = format!("gatehouse call journal {id}");
        let upto = upto as u64;
        let mut pending = Vec::new();
        let mut highest = upto;
        for f in &file {
            for line in io::BufReader::new(f).split(b'\n') {
                let line = line.map_err(io)?;
                // The seq comes first: lines already in the log are skipped unread.
                let Some((seq, rest)) = split_seq(&line) else {
                    continue;
                };
                if seq <= upto {
                    continue;
                }
                // Only a line whose key holds moves the numbering on.
                match read_line(key, &context, seq, rest) {
                    Some(entry) => {
                        highest = highest.max(seq);
                        pending.push((seq, entry));
                    }
                    None => tracing::warn!(
                        seq,
                        "a line of the calls' journal was not written for this database; ignored"
                    ),
                }
            }
        }
        pending.sort_by_key(|(seq, _)| *seq);
        if !pending.is_empty() {
            recover(conn, key, pending, upto_event, highest)?;
        }
        for f in &file {
            f.set_len(0).map_err(io)?;
        }
        Ok(Journal {
            files: Mutex::new(Files {
                file,
                active: 0,
                last: [0, 0],
                len: 0,
                next: highest + 1,
                recorded: highest,
            }),
            gap: AtomicBool::new(false),
            context,
        })
    }

    /// Appends a start and, once its line is written, queues its record
    /// with `queue` (under the same lock, so the writer gets starts in `seq`
    /// order).
    pub fn append(
        &self,
        key: &Key,
        entry: Entry,
        queue: impl FnOnce(u64, Entry),
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(&entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut f = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let seq = f.next;
        let number = seq.to_string();
        let mac = line_mac(key, &self.context, &number, &json);
        let mut line = String::with_capacity(number.len() + mac.len() + json.len() + 3);
        for part in [&number, " ", &mac, " ", &json, "\n"] {
            line.push_str(part);
        }
        let active = f.active;
        if let Err(e) = f.file[active].write_all(line.as_bytes()) {
            // A line cut short would spoil the next one: cut it off.
            let _ = f.file[active].set_len(f.len);
            return Err(io(e));
        }
        f.next += 1;
        f.last[active] = seq;
        f.len += line.len() as u64;
        queue(seq, entry);
        Ok(())
    }

    /// The log holds every start up to `seq` (committed in order); the
    /// files may take turns.
    pub fn recorded(&self, seq: u64) {
        if self.has_gap() {
            return;
        }
        let mut f = self.files.lock().unwrap_or_else(|p| p.into_inner());
        f.recorded = f.recorded.max(seq);
        let other = 1 - f.active;
        if f.len >= ROTATE_BYTES && f.last[other] <= f.recorded {
            match f.file[other].set_len(0) {
                Ok(()) => {
                    f.active = other;
                    f.last[other] = 0;
                    f.len = 0;
                }
                Err(e) => tracing::warn!(error = %e, "could not empty the calls' journal"),
            }
        }
    }

    /// A start could not be recorded: it stays in the journal (and so does
    /// every later one) until the next open records it.
    pub fn refused(&self) {
        self.gap.store(true, Ordering::SeqCst);
    }

    /// Whether a start was refused since the journal opened.
    pub fn has_gap(&self) -> bool {
        self.gap.load(Ordering::SeqCst)
    }
}

/// Notes, in a start's transaction, which journal line it was recorded
/// from; `upto` moves only while no start was refused before it.
pub(super) fn mark(
    conn: &Connection,
    seq: u64,
    event_id: i64,
    upto: bool,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE audit_events SET journal_seq = ?1 WHERE id = ?2")?
        .execute(params![seq as i64, event_id])?;
    if upto {
        set_upto(conn, seq, event_id)?;
    }
    Ok(())
}

/// The log holds every start up to `seq`, and `event_id` is the last of them.
fn set_upto(conn: &Connection, seq: u64, event_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE audit_journal SET upto = ?1, upto_event = ?2")?
        .execute(params![seq as i64, event_id])?;
    Ok(())
}

fn split_seq(line: &[u8]) -> Option<(u64, &[u8])> {
    let space = line.iter().position(|b| *b == b' ')?;
    let seq = std::str::from_utf8(&line[..space]).ok()?.parse().ok()?;
    Some((seq, &line[space + 1..]))
}

/// A line's keyed hash: over its number and its JSON, after the journal's context.
fn line_mac(key: &Key, context: &str, seq: &str, json: &str) -> String {
    chain::seal_parts(key, context, &[seq, " ", json])
}

/// A line's entry, if its keyed hash holds.
fn read_line(key: &Key, context: &str, seq: u64, rest: &[u8]) -> Option<Entry> {
    let rest = std::str::from_utf8(rest).ok()?;
    let (mac, json) = rest.split_once(' ')?;
    let expected = line_mac(key, context, &seq.to_string(), json);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        mac.as_bytes(),
        expected.as_bytes(),
    )) {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// Records the starts the log does not hold (one refused by the database
/// may have been followed by starts that were recorded: those are found by
/// their `journal_seq` among the events after the last `upto`).
fn recover(
    conn: &mut Connection,
    key: &Key,
    pending: Vec<(u64, Entry)>,
    upto_event: i64,
    highest: u64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let held: std::collections::HashSet<i64> = tx
        .prepare("SELECT journal_seq FROM audit_events WHERE id > ?1 AND journal_seq IS NOT NULL")?
        .query_map([upto_event], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut last = super::audit::last_seal(&tx)?;
    let mut recorded = 0;
    for (seq, entry) in pending {
        if held.contains(&(seq as i64)) {
            continue;
        }
        let after = last.as_ref().map(|(id, seal)| (*id, seal.as_str()));
        let stored = super::audit::insert(&tx, key, entry.event, after, entry.at)?;
        mark(&tx, seq, stored.id, false)?;
        last = Some((stored.id, stored.seal.clone().unwrap_or_default()));
        recorded += 1;
    }
    let upto_event = last.map_or(upto_event, |(id, _)| id);
    set_upto(&tx, highest, upto_event)?;
    tx.commit()?;
    if recorded > 0 {
        tracing::warn!(
            recorded,
            "recorded calls' starts from the journal that the log did not hold (Gatehouse stopped, or the database refused them, before they were written)"
        );
    }
    Ok(())
}

fn io(e: io::Error) -> StoreError {
    StoreError::Journal(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventKind, Outcome};

    fn start(tool: &str) -> Entry {
        let event = NewEvent::new(EventKind::CallStarted, Outcome::Allowed).tool(tool);
        Entry { at: 1, event }
    }

    /// A journal of its own (at `j.db`) beside a store's database.
    fn beside_a_store() -> (tempfile::TempDir, crate::store::Store, PathBuf, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testing::file_store(&dir, 0);
        let mut conn = Connection::open(dir.path().join("p.db")).unwrap();
        let db = dir.path().join("j.db");
        let journal = Journal::open(&db, &mut conn, store.key()).unwrap();
        (dir, store, db, journal)
    }

    /// More starts than one group commit takes: the writer may record the
    /// first file's early lines only after the second file has filled. The
    /// first must then keep its later lines until they are recorded.
    #[test]
    fn a_file_is_emptied_only_once_the_log_holds_all_its_lines() {
        let (_dir, store, db, journal) = beside_a_store();
        let mut seqs = Vec::new();
        let mut append = |tool: &str| {
            journal
                .append(store.key(), start(tool), |seq, _| seqs.push(seq))
                .unwrap()
        };
        let fill = |append: &mut dyn FnMut(&str), name: &str| {
            for n in 0..40 {
                append(&format!("{name}_{n:02}"));
            }
        };
        fill(&mut append, "first");
        journal.recorded(1);
        // The second file takes new lines; the first still holds 2..=40 unrecorded.
        fill(&mut append, "second");
        let [a, b] = paths(&db);
        let text = |p: &PathBuf| std::fs::read_to_string(p).unwrap();
        assert!(text(&b).contains("second_39"), "the second file took over");
        journal.recorded(2);
        assert!(
            text(&a).contains("first_39"),
            "the first file's unrecorded lines are kept"
        );
        journal.recorded(40);
        assert_eq!(text(&a), "", "emptied once the log holds them all");
        assert_eq!(seqs, (1..=80).collect::<Vec<u64>>());
    }

    /// After a refused start, whose line only the next open records, no
    /// file is emptied.
    #[test]
    fn after_a_refused_start_no_file_is_emptied() {
        let (_dir, store, db, journal) = beside_a_store();
        for n in 0..120 {
            let tool = format!("call_{n:03}");
            journal
                .append(store.key(), start(&tool), |_, _| {})
                .unwrap();
            if n == 0 {
                journal.refused();
            }
            // Both files past their size, every line after the refused one recorded.
            if n % 40 == 39 {
                journal.recorded(n + 1);
            }
        }
        let [a, _] = paths(&db);
        let kept = std::fs::read_to_string(a).unwrap();
        assert!(kept.contains("call_000"), "the refused start is kept");
    }
}
