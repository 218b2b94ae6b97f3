//! The audit log is tamper-evident: every event is sealed with a keyed hash
//! (HMAC-SHA256) over the seal of the event before it and its own content, so
//! nobody without the key (kept in the OS keychain, never in the database)
//! can edit, delete, insert or reorder events unnoticed. [`verify`] walks the
//! events in order and names each one that does not hold: its content does
//! not match its seal (it was edited), or its chain does not follow from the
//! event before it (an event was deleted, inserted or moved). An export
//! carries both seals of every event, so an exported file verifies on its own
//! (with the key). A cut-off end of the log is caught by the head Gatehouse
//! remembers outside the database; one found at start is recorded as an
//! `audit_truncated` event, which every later verification reports.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{AuditEvent, EventKind};

/// The seal before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The key that seals the log: 32 random bytes. Its `Debug` never prints it.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl Key {
    pub fn new(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// A fixed key, for tests.
    #[cfg(test)]
    pub fn for_tests() -> Key {
        Key([7; 32])
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key([redacted])")
    }
}

/// The exact text a seal covers: every stored field of the event, the
/// detail as the text that is stored.
#[allow(clippy::too_many_arguments)]
pub fn content(
    id: i64,
    at: i64,
    kind: &str,
    outcome: &str,
    who: [&Option<String>; 6],
    duration_ms: Option<i64>,
    detail: &str,
) -> String {
    serde_json::to_string(&(id, at, kind, outcome, who, duration_ms, detail)).expect("serializable")
}

/// The content of a stored event (its detail re-serialized as it was stored).
pub fn content_of(e: &AuditEvent) -> String {
    content(
        e.id,
        e.at,
        e.kind.as_str(),
        e.outcome.as_str(),
        [
            &e.client_id,
            &e.agent,
            &e.server,
            &e.tool,
            &e.grant_id,
            &e.actor,
        ],
        e.duration_ms,
        &e.detail.to_string(),
    )
}

/// An event as its seal sees it: the exact text sealed, its two seals, and
/// (for an `audit_truncated` event) what it found missing.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub id: i64,
    pub content: String,
    pub prev_seal: Option<String>,
    pub seal: Option<String>,
    pub truncation: Option<String>,
}

impl Sealed {
    /// What an `audit_truncated` event says was cut, from its kind and detail.
    pub fn truncation_of(kind: &str, detail: &serde_json::Value) -> Option<String> {
        (kind == EventKind::AuditTruncated.as_str()).then(|| {
            format!(
                "events #{} to #{} were cut from the end of the log while Gatehouse was stopped (found when it started)",
                detail["from"], detail["to"]
            )
        })
    }
}

impl From<&AuditEvent> for Sealed {
    fn from(e: &AuditEvent) -> Sealed {
        Sealed {
            id: e.id,
            content: content_of(e),
            prev_seal: e.prev_seal.clone(),
            seal: e.seal.clone(),
            truncation: Sealed::truncation_of(e.kind.as_str(), &e.detail),
        }
    }
}

/// The seal of `content` after `prev`: HMAC-SHA256, hex.
pub fn seal(key: &Key, prev: &str, content: &str) -> String {
    seal_parts(key, prev, &[content])
}

/// [`seal`] of the content the `parts` make one after another, without
/// putting them together first.
pub fn seal_parts(key: &Key, prev: &str, parts: &[&str]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("any key length");
    mac.update(prev.as_bytes());
    mac.update(b"\n");
    for part in parts {
        mac.update(part.as_bytes());
    }
    let bytes = mac.finalize().into_bytes();
    crate::crypto::hex(&bytes)
}

/// What verifying found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "AuditVerification")]
pub struct Verification {
    /// Events read.
    #[ts(type = "number")]
    pub events: u64,
    /// The events that do not hold, in order (at most 100 are listed).
    pub problems: Vec<Problem>,
    /// Problems found in all (more than are listed, when over 100).
    #[ts(type = "number")]
    pub problem_count: u64,
    /// For a file: places where the chain skips (a filtered export, or
    /// events removed from the file). Each event was still checked.
    #[ts(type = "number")]
    pub gaps: u64,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.problem_count == 0
    }

    /// Adds a problem found outside the walk (a truncated log).
    pub fn add(&mut self, problem: Problem) {
        self.problem_count += 1;
        if self.problems.len() < LISTED {
            self.problems.push(problem);
        }
    }
}

/// One event that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "AuditProblem")]
pub struct Problem {
    #[ts(type = "number")]
    pub id: i64,
    pub what: ProblemKind,
    /// One sentence for the person.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Its content does not match its seal.
    Edited,
    /// Its chain does not follow from the event before it in the log.
    OutOfChain,
    /// It carries no seal at all.
    Unsealed,
    /// The newest events are gone: the log ends before the head Gatehouse
    /// remembers (or an `audit_truncated` event says they went while it was stopped).
    Truncated,
}

const LISTED: usize = 100;

/// Where the events given to [`verify`] start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A part of the log (an export): its first event may follow any other.
    Part,
    /// The whole log: it starts at the first event ever written, or right
    /// after the last one retention cut (its id and seal, from the sealed
    /// `audit_pruned` event that says so). Missing oldest events are a problem.
    Whole(Option<(i64, String)>),
}

/// Walks `events` (oldest first, whole or a consecutive part of the log)
/// and checks each seal and each link. `chained` says whether consecutive
/// events must link (false for an export of a filtered view, where each event
/// is still checked on its own).
pub fn verify(
    key: &Key,
    events: impl IntoIterator<Item = Sealed>,
    chained: bool,
    start: &Start,
) -> Verification {
    let mut out = Verification {
        events: 0,
        problems: Vec::new(),
        problem_count: 0,
        gaps: 0,
    };
    let mut before: Option<(i64, String)> = match start {
        Start::Whole(Some(cut)) => Some(cut.clone()),
        Start::Whole(None) => Some((0, GENESIS.to_string())),
        Start::Part => None,
    };
    for e in events {
        out.events += 1;
        if let Some((_, seal)) = &before {
            if e.prev_seal.as_deref() != Some(seal.as_str()) {
                out.gaps += 1;
            }
        }
        let problem = check_one(key, &e, before.as_ref().filter(|_| chained));
        if let Some(problem) = problem {
            out.problem_count += 1;
            if out.problems.len() < LISTED {
                out.problems.push(problem);
            }
        }
        before = Some((e.id, e.seal.clone().unwrap_or_default()));
    }
    out
}

fn check_one(key: &Key, e: &Sealed, before: Option<&(i64, String)>) -> Option<Problem> {
    let problem = |what, message: String| {
        Some(Problem {
            id: e.id,
            what,
            message,
        })
    };
    let (Some(prev), Some(sealed)) = (&e.prev_seal, &e.seal) else {
        return problem(
            ProblemKind::Unsealed,
            format!("event #{} has no seal", e.id),
        );
    };
    if seal(key, prev, &e.content) != *sealed {
        return problem(
            ProblemKind::Edited,
            format!(
                "event #{} was changed after it was written (its content does not match its seal)",
                e.id
            ),
        );
    }
    let expected_prev = match before {
        Some((_, seal)) => seal.as_str(),
        None if e.id == 1 => GENESIS,
        None => return None,
    };
    if prev != expected_prev {
        let message = match before {
            Some((0, _)) => format!(
                "the log starts at #{}: the events before it are missing (deleted without a record that retention cut them)",
                e.id
            ),
            Some((id, _)) if e.id > id + 1 => format!(
                "the events between #{id} and #{} are missing (deleted)",
                e.id
            ),
            Some((id, _)) => format!(
                "event #{} does not follow #{id} in the chain: events were inserted, deleted or moved",
                e.id
            ),
            None => format!("event #{} should be the first of the log", e.id),
        };
        return problem(ProblemKind::OutOfChain, message);
    }
    e.truncation
        .clone()
        .and_then(|message| problem(ProblemKind::Truncated, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventKind, Outcome};

    fn sealed(events: Vec<AuditEvent>) -> Vec<Sealed> {
        events.iter().map(Sealed::from).collect()
    }

    fn chain(n: i64) -> Vec<AuditEvent> {
        let key = Key::for_tests();
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|id| {
                let mut e = AuditEvent {
                    id,
                    at: id * 10,
                    kind: EventKind::ToolCall,
                    outcome: Outcome::Allowed,
                    client_id: Some("c".into()),
                    agent: Some("Agent".into()),
                    server: Some("demo".into()),
                    tool: Some(format!("tool_{id}")),
                    grant_id: None,
                    actor: None,
                    duration_ms: Some(1),
                    detail: serde_json::json!({"n": id}),
                    prev_seal: Some(prev.clone()),
                    seal: None,
                };
                let sealed = seal(&key, &prev, &content_of(&e));
                e.seal = Some(sealed.clone());
                prev = sealed;
                e
            })
            .collect()
    }

    #[test]
    fn an_untouched_log_verifies() {
        let v = verify(
            &Key::for_tests(),
            sealed(chain(5)),
            true,
            &Start::Whole(None),
        );
        assert_eq!((v.events, v.intact()), (5, true));
    }

    #[test]
    fn each_kind_of_tampering_is_named_at_its_row() {
        let key = Key::for_tests();
        let mut edited = chain(5);
        edited[2].tool = Some("delete_everything".into());
        let v = verify(&key, sealed(edited), true, &Start::Whole(None));
        assert_eq!(
            (v.problem_count, v.problems[0].id, v.problems[0].what),
            (1, 3, ProblemKind::Edited)
        );

        let mut deleted = chain(5);
        deleted.remove(2);
        let v = verify(&key, sealed(deleted), true, &Start::Whole(None));
        assert_eq!(
            (v.problems[0].id, v.problems[0].what),
            (4, ProblemKind::OutOfChain)
        );
        assert!(
            v.problems[0].message.contains("between #2 and #4"),
            "{:?}",
            v.problems
        );

        let mut reordered = chain(5);
        reordered.swap(1, 3);
        let v = verify(&key, sealed(reordered), true, &Start::Whole(None));
        assert!(v.problem_count >= 2, "{v:?}");
        assert_eq!(v.problems[0].what, ProblemKind::OutOfChain);

        let mut inserted = chain(5);
        let mut forged = inserted[4].clone();
        forged.id = 6;
        forged.seal = Some("f".repeat(64));
        inserted.push(forged);
        let v = verify(&key, sealed(inserted), true, &Start::Whole(None));
        assert_eq!(
            (v.problems[0].id, v.problems[0].what),
            (6, ProblemKind::Edited)
        );

        let v = verify(
            &Key::new([8; 32]),
            sealed(chain(2)),
            true,
            &Start::Whole(None),
        );
        assert_eq!(v.problem_count, 2, "another key seals nothing of this log");
    }

    #[test]
    fn a_recorded_truncation_is_reported_for_good() {
        let key = Key::for_tests();
        let mut events = chain(3);
        let prev = events[2].seal.clone().unwrap();
        let mut cut = events[2].clone();
        cut.id = 4;
        cut.kind = EventKind::AuditTruncated;
        cut.detail = serde_json::json!({"from": 4, "to": 9});
        cut.prev_seal = Some(prev.clone());
        cut.seal = Some(seal(&key, &prev, &content_of(&cut)));
        events.push(cut);
        let v = verify(&key, sealed(events), true, &Start::Whole(None));
        assert_eq!(
            (v.problem_count, v.problems[0].id, v.problems[0].what),
            (1, 4, ProblemKind::Truncated)
        );
        assert!(v.problems[0].message.contains("#4 to #9"), "{v:?}");
    }

    #[test]
    fn the_log_starts_at_its_first_event_or_where_retention_cut_it() {
        let key = Key::for_tests();
        let events = chain(6);
        let cut = Some((3, events[2].seal.clone().unwrap()));
        let rest: Vec<AuditEvent> = events[3..].to_vec();
        assert!(verify(&key, sealed(rest.clone()), true, &Start::Whole(cut)).intact());
        let v = verify(&key, sealed(rest.clone()), true, &Start::Whole(None));
        assert_eq!(
            (v.problem_count, v.problems[0].id),
            (1, 4),
            "cut with no record: {v:?}"
        );
        assert!(v.problems[0].message.contains("starts at #4"), "{v:?}");
        let told = Some((2, events[1].seal.clone().unwrap()));
        let v = verify(&key, sealed(rest), true, &Start::Whole(told));
        assert!(!v.intact(), "more was cut than the record says");
    }

    #[test]
    fn a_filtered_export_checks_each_event_on_its_own() {
        let key = Key::for_tests();
        let some: Vec<AuditEvent> = chain(6).into_iter().filter(|e| e.id % 2 == 0).collect();
        let v = verify(&key, sealed(some.clone()), false, &Start::Part);
        assert!(v.intact());
        assert_eq!(v.gaps, 2, "said, not hidden");
        assert!(
            !verify(&key, sealed(some), true, &Start::Part).intact(),
            "not consecutive"
        );
    }
}
