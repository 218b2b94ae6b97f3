//! The `audit_events` table: append-only, sealed, indexed for text search
//! and by agent at idle, cut by retention. Its views (a filter as SQL, pages, counts) are
//! in `query`.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{corrupt, StoreError};
use crate::audit::chain::{self, Key, GENESIS};
use crate::audit::{AuditEvent, EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;

mod query;

#[cfg(test)]
pub use query::count;
pub use query::{count_up_to, export_page, page, Cursor, MAX_PAGE};

fn from_row(row: &Row<'_>) -> rusqlite::Result<AuditEvent> {
    let kind: String = row.get("kind")?;
    let outcome: String = row.get("outcome")?;
    let detail: String = row.get("detail")?;
    Ok(AuditEvent {
        id: row.get("id")?,
        at: row.get("at")?,
        kind: EventKind::parse(&kind).ok_or_else(|| corrupt(StoreError::Corrupt(kind)))?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt(StoreError::Corrupt(outcome)))?,
        client_id: row.get("client_id")?,
        agent: row.get("agent")?,
        server: row.get("server")?,
        tool: row.get("tool")?,
        grant_id: row.get("grant_id")?,
        actor: row.get("actor")?,
        duration_ms: row.get("duration_ms")?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
        prev_seal: row.get("prev_seal")?,
        seal: row.get("seal")?,
    })
}

/// The seal of the newest event (the chain's start when there is none).
fn head(conn: &Connection) -> Result<String, StoreError> {
    let seal: Option<Option<String>> = conn
        .prepare_cached("SELECT seal FROM audit_events ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(seal.flatten().unwrap_or_else(|| GENESIS.to_string()))
}

/// The newest event's id and seal, if any (what the log's head is now).
pub fn last_seal(conn: &Connection) -> Result<Option<(i64, String)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, seal FROM audit_events ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .optional()?
        .map(|(id, seal)| (id, seal.unwrap_or_default())))
}

/// Seals the events written before the log was a chain, oldest first. Runs
/// once, inside the upgrade that made the log a chain: an unsealed event
/// found later was put there by someone else, and stays unsealed (and so
/// reported) for good.
pub fn seal_legacy(conn: &Connection, key: &Key) -> Result<usize, StoreError> {
    let legacy = sealed_page(conn, 0, i64::MAX)?;
    let mut prev = GENESIS.to_string();
    for e in &legacy {
        let sealed = chain::seal(key, &prev, &e.content);
        conn.execute(
            "UPDATE audit_events SET prev_seal = ?2, seal = ?3 WHERE id = ?1",
            params![e.id, prev, sealed],
        )?;
        prev = sealed;
    }
    Ok(legacy.len())
}

/// Up to `limit` events after id `after`, oldest first, as their seals see
/// them: read from the columns as stored, so an event with a kind or detail
/// no Gatehouse would write is still checked (and named), not a read error.
pub fn sealed_page(
    conn: &Connection,
    after: i64,
    limit: i64,
) -> Result<Vec<chain::Sealed>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, kind, outcome, client_id, agent, server, tool, grant_id, actor, duration_ms, detail, prev_seal, seal
         FROM audit_events WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit], |r| {
        let id: i64 = r.get(0)?;
        let kind: String = r.get(2)?;
        let outcome: String = r.get(3)?;
        let who: [Option<String>; 6] = [
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
        ];
        let detail: String = r.get(11)?;
        let [a, b, c, d, e, f] = &who;
        Ok(chain::Sealed {
            id,
            content: chain::content(
                id,
                r.get(1)?,
                &kind,
                &outcome,
                [a, b, c, d, e, f],
                r.get(10)?,
                &detail,
            ),
            prev_seal: r.get(12)?,
            seal: r.get(13)?,
            truncation: chain::Sealed::truncation_of(
                &kind,
                &serde_json::from_str(&detail).unwrap_or_default(),
            ),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The columns the timeline's text search reads (also those of `audit_text`).
const SEARCHED: [&str; 6] = ["agent", "server", "tool", "kind", "actor", "detail"];

/// The log's ids in blocks of this many, each with its newest and oldest
/// time (`audit_time_blocks`, written when a block's last event is).
const TIME_BLOCK: i64 = 4_096;

/// Inserts an event, sealed to the one before it; the agent's name is copied
/// in so the log stays readable. `after` is the newest event's id and seal
/// when the caller knows them (it wrote that event in this transaction);
/// otherwise they are read.
pub fn insert(
    conn: &Connection,
    key: &Key,
    e: NewEvent,
    after: Option<(i64, &str)>,
    now: UnixMs,
) -> Result<AuditEvent, StoreError> {
    let agent = match &e.client_id {
        Some(id) => super::clients::name_of(conn, id)?,
        None => None,
    };
    let (id, prev) = match after {
        Some((id, seal)) => (id + 1, seal.to_string()),
        None => {
            let id: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(MAX(id), 0) + 1 FROM (SELECT MAX(id) AS id FROM audit_events
                       UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'audit_events')",
                )?
                .query_row([], |r| r.get(0))?;
            (id, head(conn)?)
        }
    };
    let detail = e.detail.to_string();
    let who = [
        &e.client_id,
        &agent,
        &e.server,
        &e.tool,
        &e.grant_id,
        &e.actor,
    ];
    let content = chain::content(
        id,
        now,
        e.kind.as_str(),
        e.outcome.as_str(),
        who,
        e.duration_ms,
        &detail,
    );
    let seal = chain::seal(key, &prev, &content);
    conn.prepare_cached(
        "INSERT INTO audit_events (id, at, kind, outcome, client_id, agent, server, tool, grant_id, actor, duration_ms, detail, prev_seal, seal)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(
        params![
            id,
            now,
            e.kind.as_str(),
            e.outcome.as_str(),
            e.client_id,
            agent,
            e.server,
            e.tool,
            e.grant_id,
            e.actor,
            e.duration_ms,
            detail,
            prev,
            seal
        ],
    )?;
    if (id + 1) % TIME_BLOCK == 0 {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO audit_time_blocks (block, newest, oldest)
             SELECT ?1, MAX(at), MIN(at) FROM audit_events WHERE id BETWEEN ?2 AND ?3",
        )?
        .execute(params![id / TIME_BLOCK, id + 1 - TIME_BLOCK, id])?;
    }
    Ok(AuditEvent {
        id,
        at: now,
        kind: e.kind,
        outcome: e.outcome,
        client_id: e.client_id,
        agent,
        server: e.server,
        tool: e.tool,
        grant_id: e.grant_id,
        actor: e.actor,
        duration_ms: e.duration_ms,
        detail: e.detail,
        prev_seal: Some(prev),
        seal: Some(seal),
    })
}

/// The id of the newest event (0 when the log is empty).
pub fn last_id(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(id), 0) FROM audit_events", [], |r| {
            r.get(0)
        })?,
    )
}

/// Brings the log's indexes (by agent, by text) and the grams of short
/// searches up to date by at most `limit` events each (the index by agent
/// by [`AGENT_CHUNKS`] times as many), oldest first; the most events any
/// of them took (0: all are up to date). Run in a write transaction.
pub fn index_log(conn: &Connection, limit: usize) -> Result<usize, StoreError> {
    let agents = index_agents(conn, limit.saturating_mul(AGENT_CHUNKS))?;
    let added = index_trigrams(conn, limit)?;
    Ok(agents
        .max(added)
        .max(index_grams(conn, limit, MAX_GRAMS_HELD)?))
}

/// How many times as many events a pass adds to the index by agent as to
/// the text index: an entry costs a small fraction of an event's text, so
/// under steady writes it keeps up where the text index falls behind.
const AGENT_CHUNKS: usize = 16;

/// Brings the index by agent (`audit_by_agent`) up to date by at most
/// `limit` events (oldest first); how many it added.
fn index_agents(conn: &Connection, limit: usize) -> Result<usize, StoreError> {
    let upto = reach(conn)?.agents;
    let Some((newest, events)) = next_events(conn, upto, limit)? else {
        return Ok(0);
    };
    // The triggers write no entry above the index's reach, so none is
    // there; were one, the pass would go on without it.
    conn.prepare_cached(
        "INSERT OR IGNORE INTO audit_by_agent (client_id, id, outcome)
         SELECT client_id, id, outcome FROM audit_events
         WHERE id > ?1 AND id <= ?2 AND client_id IS NOT NULL",
    )?
    .execute(params![upto, newest])?;
    conn.prepare_cached("UPDATE audit_text_indexed SET agents_upto = ?1")?
        .execute([newest])?;
    Ok(events)
}

/// How far the log's indexes reach: the newest event each has taken in
/// (the index by agent is never behind the text index).
#[derive(Debug, Clone, Copy)]
struct Reach {
    /// The text index's (`audit_text`).
    text: i64,
    /// The index by agent's (`audit_by_agent`).
    agents: i64,
}

fn reach(conn: &Connection) -> Result<Reach, StoreError> {
    Ok(conn
        .prepare_cached("SELECT upto, agents_upto FROM audit_text_indexed")?
        .query_row([], |r| {
            Ok(Reach {
                text: r.get(0)?,
                agents: r.get(1)?,
            })
        })?)
}

/// The newest of the next `limit` events above `upto`, and how many there
/// are (`None`: none).
fn next_events(
    conn: &Connection,
    upto: i64,
    limit: usize,
) -> Result<Option<(i64, usize)>, StoreError> {
    let (newest, events): (Option<i64>, i64) = conn
        .prepare_cached(
            "SELECT MAX(id), COUNT(*) FROM (SELECT id FROM audit_events WHERE id > ?1 ORDER BY id LIMIT ?2)",
        )?
        .query_row(params![upto, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(newest.map(|n| (n, events as usize)))
}

/// The most grams `audit_text_grams` holds. Retention cuts events, not the
/// grams their text had, so a log of very varied text (or an agent that
/// sends it) would grow the table without end; at this size (48–65 MB) it
/// takes no more, and short searches scan the events after it stopped.
const MAX_GRAMS_HELD: i64 = 1_000_000;

/// The longest value (in characters) whose grams are kept: the grams stop
/// before the first event with a longer one (no real tool name or argument
/// summary is that long), and short searches scan from there.
const MAX_GRAMMED_CHARS: usize = 8_192;
/// The grams one pass gathers before it ends (at an event's end): a bound
/// on the memory and the time it takes on the writer.
const PASS_GRAMS: usize = 50_000;

/// Adds the grams of at most `limit` events (oldest first) to
/// `audit_text_grams` while it holds fewer than `cap`; how many events.
fn index_grams(conn: &Connection, limit: usize, cap: i64) -> Result<usize, StoreError> {
    let (upto, held): (i64, i64) = conn
        .prepare_cached("SELECT grams_upto, grams_held FROM audit_text_indexed")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if held >= cap {
        return Ok(0);
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, {} FROM audit_events WHERE id > ?1 ORDER BY id LIMIT ?2",
        SEARCHED.join(", ")
    ))?;
    let mut rows = stmt.query(params![upto, limit as i64])?;
    let (mut grams, mut newest, mut events) = (HashSet::new(), upto, 0);
    while let Some(row) = rows.next()? {
        if grams.len() >= PASS_GRAMS || held + grams.len() as i64 >= cap {
            break;
        }
        let values = (1..=SEARCHED.len())
            .map(|column| row.get::<_, Option<String>>(column))
            .collect::<Result<Vec<_>, _>>()?;
        // LIKE reads a value up to its first NUL, if any.
        let values: Vec<&str> = values
            .iter()
            .flatten()
            .map(|v| v.split('\0').next().unwrap_or_default())
            .collect();
        if values.iter().any(|v| v.chars().count() > MAX_GRAMMED_CHARS) {
            break;
        }
        for value in values {
            add_grams(value, &mut grams);
        }
        newest = row.get(0)?;
        events += 1;
    }
    if events > 0 {
        let mut insert =
            conn.prepare_cached("INSERT OR IGNORE INTO audit_text_grams (gram) VALUES (?1)")?;
        let mut added = 0;
        for gram in &grams {
            added += insert.execute([gram])?;
        }
        conn.prepare_cached(
            "UPDATE audit_text_indexed SET grams_upto = ?1, grams_held = grams_held + ?2",
        )?
        .execute(params![newest, added as i64])?;
    }
    Ok(events)
}

/// The grams of one value, ASCII letters lowercased: its trigrams, or the
/// whole value when it is shorter.
fn add_grams(value: &str, grams: &mut HashSet<String>) {
    let chars: Vec<char> = value.chars().map(|c| c.to_ascii_lowercase()).collect();
    if chars.len() < 3 {
        if !chars.is_empty() {
            grams.insert(chars.iter().collect());
        }
        return;
    }
    let mut gram = String::new();
    for window in chars.windows(3) {
        gram.clear();
        gram.extend(window);
        if !grams.contains(&gram) {
            grams.insert(gram.clone());
        }
    }
}

/// Brings the trigram index up to date by at most `limit` events (oldest
/// first), never past the index by agent; how many it added.
fn index_trigrams(conn: &Connection, limit: usize) -> Result<usize, StoreError> {
    let Reach { text: upto, agents } = reach(conn)?;
    let Some((newest, _)) = next_events(conn, upto, limit)? else {
        return Ok(0);
    };
    let newest = newest.min(agents);
    if newest <= upto {
        return Ok(0);
    }
    let added = conn
        .prepare_cached(
            "INSERT INTO audit_text (rowid, agent, server, tool, kind, actor, detail)
             SELECT id, agent, server, tool, kind, actor, detail FROM audit_events
             WHERE id > ?1 AND id <= ?2",
        )?
        .execute(params![upto, newest])?;
    conn.prepare_cached("UPDATE audit_text_indexed SET upto = ?1")?
        .execute([newest])?;
    Ok(added)
}

/// Up to which event the log may be cut, as `keep` asks at `now`: the
/// oldest events, up to the first one younger than it keeps or beyond the
/// count it keeps, whichever reaches further; at most `chunk` events from the
/// oldest. A young event stops the cut by age even when later ones look
/// older (ids follow time only as far as the clock did); one dated after
/// `now` does not. `None`: nothing to cut.
pub fn prune_through(
    conn: &Connection,
    keep: crate::config::Retention,
    now: UnixMs,
    chunk: i64,
) -> Result<Option<i64>, StoreError> {
    let first: Option<i64> = conn
        .prepare_cached("SELECT MIN(id) FROM audit_events")?
        .query_row([], |r| r.get(0))?;
    let Some(first) = first else {
        return Ok(None);
    };
    let last_of_chunk = first + chunk - 1;
    let by_age: Option<i64> = match keep.for_ms {
        Some(ms) => {
            // An event dated after `now` (a clock that jumped ahead) does
            // not hold the cut back until that date.
            let kept: i64 = conn
                .prepare_cached(
                    "SELECT id FROM audit_events WHERE id BETWEEN ?1 AND ?2
                       AND at >= ?3 AND at <= ?4
                     ORDER BY id LIMIT 1",
                )?
                .query_row(params![first, last_of_chunk, now - ms, now], |r| r.get(0))
                .optional()?
                .unwrap_or(last_of_chunk + 1);
            conn.prepare_cached("SELECT MAX(id) FROM audit_events WHERE id < ?1")?
                .query_row([kept], |r| r.get(0))?
        }
        None => None,
    };
    let by_count: Option<i64> = match keep.events {
        Some(n) => conn
            .prepare_cached("SELECT id FROM audit_events ORDER BY id DESC LIMIT 1 OFFSET ?1")?
            .query_row([n as i64], |r| r.get(0))
            .optional()?,
        None => None,
    };
    let through = by_age.max(by_count).map(|t| t.min(last_of_chunk));
    Ok(through.filter(|t| *t >= first))
}

/// Every event (a call's start too) with an id in `(after, through]`, oldest
/// first, at most `limit`.
pub fn range(
    conn: &Connection,
    after: i64,
    through: i64,
    limit: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM audit_events WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![after, through, limit], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Deletes every event up to `through`; the seal of the last one deleted.
pub fn delete_through(conn: &Connection, through: i64) -> Result<String, StoreError> {
    let seal: Option<String> = conn
        .query_row(
            "SELECT seal FROM audit_events WHERE id = ?1",
            [through],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    conn.execute("DELETE FROM audit_events WHERE id <= ?1", [through])?;
    conn.execute(
        "DELETE FROM audit_time_blocks WHERE (block + 1) * ?1 - 1 <= ?2",
        params![TIME_BLOCK, through],
    )?;
    Ok(seal.unwrap_or_default())
}

/// Where the log starts: the last event an `audit_pruned` event says was cut
/// (its id and seal), or `None` if the log was never cut.
pub fn pruned_through(conn: &Connection) -> Result<Option<(i64, String)>, StoreError> {
    let detail: Option<String> = conn
        .query_row(
            "SELECT detail FROM audit_events WHERE kind = 'audit_pruned' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(detail.and_then(|d| {
        let d: serde_json::Value = serde_json::from_str(&d).ok()?;
        Some((
            d["through"].as_i64()?,
            d["through_seal"].as_str()?.to_string(),
        ))
    }))
}

/// Takes a database back to schema 23: what the later migrations added is
/// gone (for tests of an upgrade; each later migration adds its undoing here).
#[cfg(test)]
pub(crate) const BACK_TO_SCHEMA_23: &str = "
    DROP TRIGGER audit_by_agent_update; ALTER TABLE audit_by_agent DROP COLUMN outcome;
    ALTER TABLE consent_requests DROP COLUMN instructions;
    PRAGMA user_version = 23;";

/// Takes a log back to schema 21: an index by agent written with each
/// event, no `audit_by_agent` (for tests of an upgrade).
#[cfg(test)]
pub(crate) const BACK_TO_SCHEMA_21: &str = "
    ALTER TABLE consent_requests DROP COLUMN instructions;
    DROP TRIGGER audit_by_agent_delete; DROP TRIGGER audit_by_agent_update;
    DROP TABLE audit_by_agent; CREATE INDEX audit_events_client ON audit_events(client_id);
    ALTER TABLE audit_text_indexed DROP COLUMN agents_upto;
    PRAGMA user_version = 21;";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventKind, Filter, NewEvent, Outcome};
    use crate::store::Store;

    pub(super) fn seed(store: &Store) {
        store
            .write(|tx| {
                for i in 0..50i64 {
                    let outcome = if i % 5 == 0 {
                        Outcome::Denied
                    } else {
                        Outcome::Allowed
                    };
                    let server = if i % 2 == 0 { "demo" } else { "files" };
                    let tool = format!("tool_{}", i % 3);
                    tx.record(
                        NewEvent::new(EventKind::ToolCall, outcome)
                            .server(server)
                            .tool(&tool)
                            .detail(serde_json::json!({"arguments": {"path": format!("notes/100%_{i}")}})),
                        1_000 + i,
                    )?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }

    #[test]
    fn grams_stop_before_a_value_too_long_and_read_a_value_up_to_a_nul() {
        let store = Store::open_in_memory().unwrap();
        let long = "é".repeat(MAX_GRAMMED_CHARS + 1);
        store
            .write(|tx| {
                for (tool, detail) in [("xa\0bcd", ""), ("abc", ""), ("", &long), ("xyz", "")] {
                    let event = NewEvent::new(EventKind::ToolCall, Outcome::Allowed)
                        .tool(tool)
                        .detail(serde_json::json!(detail));
                    tx.record(event, 1_000)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        while store.index_log(100).unwrap() > 0 {}
        let (upto, grams) = store
            .read(|c| {
                let upto: i64 =
                    c.query_row("SELECT grams_upto FROM audit_text_indexed", [], |r| {
                        r.get(0)
                    })?;
                let mut stmt = c.prepare("SELECT gram FROM audit_text_grams ORDER BY gram")?;
                let grams = stmt
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, StoreError>((upto, grams))
            })
            .unwrap();
        assert_eq!(upto, 2, "the grams stop before the long value");
        assert!(grams.contains(&"xa".to_string()) && grams.contains(&"abc".to_string()));
        assert!(
            !grams
                .iter()
                .any(|g| g.contains('\0') || g == "bcd" || g.contains('é')),
            "{grams:?}"
        );
        let found = |text: &str| {
            let f = Filter {
                text: Some(text.into()),
                ..Default::default()
            };
            let page = store.read(|c| page(c, &f, Cursor::Before(None), 10));
            page.unwrap().iter().map(|e| e.id).collect::<Vec<_>>()
        };
        assert_eq!(found("bc"), [2], "through the index");
        assert_eq!(found("xy"), [4], "scanned above the grams");
        assert_eq!(found("éé"), [3]);
        // A NUL in the search is no index query syntax: a scan, no error
        // (LIKE reads the pattern, too, up to the NUL: "%xa" ends "xa").
        assert_eq!(found("a\0"), [1]);
        assert_eq!(found("xa\0bcd"), [1]);
    }

    #[test]
    fn retention_by_age_cuts_the_oldest_events_up_to_the_first_it_keeps() {
        let store = Store::open_in_memory().unwrap();
        // The clock stepped back after event 3: event 4 looks older than it.
        store
            .write(|tx| {
                for at in [100, 101, 500, 102, 600, 601, 900, 5_000, 902] {
                    tx.record(NewEvent::new(EventKind::ToolCall, Outcome::Allowed), at)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let through = |for_ms: i64, events: Option<u64>, chunk: i64| {
            let keep = crate::config::Retention {
                for_ms: Some(for_ms),
                events,
            };
            store
                .read(|c| prune_through(c, keep, 1_000, chunk))
                .unwrap()
        };
        assert_eq!(
            through(800, None, 10),
            Some(2),
            "stops at the young event 3"
        );
        assert_eq!(through(800, None, 1), Some(1), "at most a chunk");
        assert_eq!(through(950, None, 10), None, "nothing is that old");
        assert_eq!(through(450, None, 10), Some(4), "up to event 5 (at 600)");
        assert_eq!(through(1, None, 4), Some(4), "all old: the chunk");
        assert_eq!(through(1, None, 100), Some(9), "all old: every event");
        assert_eq!(
            through(50, None, 100),
            Some(9),
            "event 8, dated after now, does not hold the cut back"
        );
        assert_eq!(through(99, None, 100), Some(8), "event 9 (902) is kept");
        assert_eq!(
            through(950, Some(2), 10),
            Some(7),
            "the count reaches further"
        );
        assert_eq!(
            through(800, Some(2), 3),
            Some(3),
            "the count, within the chunk"
        );
    }

    /// The ids of the first page of each agent's events (of an outcome, when given).
    fn pages_by_agent(store: &Store, views: &[(&str, Option<Outcome>)]) -> Vec<Vec<i64>> {
        let ids = |&(agent, outcome): &(&str, Option<Outcome>)| {
            let f = Filter {
                client_id: Some(agent.into()),
                outcome,
                ..Default::default()
            };
            let page = store.read(|conn| page(conn, &f, Cursor::Before(None), 100));
            page.unwrap().iter().map(|e| e.id).collect()
        };
        views.iter().map(ids).collect()
    }

    #[test]
    fn a_log_from_before_schema_22_is_read_by_agent_the_same_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testing::file_store(&dir, 1);
        store
            .write(|tx| {
                for i in 0..40i64 {
                    let e = NewEvent::new(EventKind::ToolCall, Outcome::Allowed).tool("t");
                    let e = if i % 4 == 0 {
                        e
                    } else {
                        e.client(&format!("c{}", i % 3))
                    };
                    tx.record(e, 1_000 + i)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        // The text index holds 2 events, the index by agent 32 of the 40.
        assert_eq!(store.index_log(2).unwrap(), 32, "part indexed, part not");
        let views =
            |store: &Store| pages_by_agent(store, &[("c0", None), ("c1", None), ("c2", None)]);
        let before = views(&store);
        assert!(before.iter().all(|ids| ids.len() == 10), "{before:?}");
        drop(store);
        // The log as schema 21 had it: an index by agent, written with each event.
        let conn = Connection::open(dir.path().join("p.db")).unwrap();
        conn.execute_batch(BACK_TO_SCHEMA_21).unwrap();
        drop(conn);
        let store = crate::testing::file_store(&dir, 2);
        assert_eq!(views(&store), before);
        let held: Vec<i64> = store
            .read(|c| {
                let mut stmt = c.prepare("SELECT id FROM audit_by_agent ORDER BY id")?;
                let ids = stmt.query_map([], |r| r.get(0))?;
                Ok::<_, StoreError>(ids.collect::<Result<_, _>>()?)
            })
            .unwrap();
        let indexed: Vec<i64> = (1..=2).filter(|id| (id - 1) % 4 != 0).collect();
        assert_eq!(held, indexed, "the agents' events the text index held");
        while store.index_log(10).unwrap() > 0 {}
        assert_eq!(views(&store), before);
    }

    #[test]
    fn a_log_from_schema_23_has_each_outcome_in_the_index_by_agent_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testing::file_store(&dir, 1);
        store
            .write(|tx| {
                for i in 0..30i64 {
                    let outcome =
                        [Outcome::Allowed, Outcome::Denied, Outcome::Error][i as usize % 3];
                    let e =
                        NewEvent::new(EventKind::ToolCall, outcome).client(&format!("c{}", i % 2));
                    tx.record(e, 1_000 + i)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        while store.index_log(100).unwrap() > 0 {}
        let views = |store: &Store| {
            let of = [
                ("c0", Outcome::Denied),
                ("c1", Outcome::Error),
                ("c1", Outcome::Allowed),
            ];
            pages_by_agent(store, &of.map(|(c, o)| (c, Some(o))))
        };
        let before = views(&store);
        assert!(before.iter().all(|ids| ids.len() == 5), "{before:?}");
        drop(store);
        // The index by agent as schema 23 had it: no outcomes.
        let conn = Connection::open(dir.path().join("p.db")).unwrap();
        conn.execute_batch(BACK_TO_SCHEMA_23).unwrap();
        drop(conn);
        let store = crate::testing::file_store(&dir, 2);
        assert_eq!(views(&store), before);
    }

    #[test]
    fn an_event_whose_agent_or_outcome_is_changed_is_found_as_it_is_now() {
        let store = Store::open_in_memory().unwrap();
        store
            .write(|tx| {
                for agent in ["c1", "c2", "c1"] {
                    let e = NewEvent::new(EventKind::ToolCall, Outcome::Allowed).client(agent);
                    tx.record(e, 1_000)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        while store.index_log(100).unwrap() > 0 {}
        // Not something Gatehouse does (the seal then fails): someone with the file.
        store
            .write(|tx| {
                let q = "UPDATE audit_events SET client_id = 'c2' WHERE id = 1";
                tx.conn().execute(q, [])?;
                let q = "UPDATE audit_events SET outcome = 'denied' WHERE id = 3";
                tx.conn().execute(q, [])?;
                // Moved above the index's reach, then changed there.
                let q = "UPDATE audit_events SET id = 50 WHERE id = 2";
                tx.conn().execute(q, [])?;
                let q = "UPDATE audit_events SET outcome = 'denied' WHERE id = 50";
                tx.conn().execute(q, [])?;
                // One not indexed yet, moved below the reach.
                let e = NewEvent::new(EventKind::ToolCall, Outcome::Allowed).client("c1");
                tx.record(e, 1_000)?;
                tx.conn()
                    .execute("UPDATE audit_events SET id = 0 WHERE id = 51", [])?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        while store.index_log(100).unwrap() > 0 {}
        let ids = |agent, outcome| pages_by_agent(&store, &[(agent, outcome)]).remove(0);
        assert_eq!(
            (ids("c1", None), ids("c2", None)),
            (vec![3, 0], vec![50, 1])
        );
        let denied = Some(Outcome::Denied);
        assert_eq!((ids("c1", denied), ids("c2", denied)), (vec![3], vec![50]));
        let allowed = Some(Outcome::Allowed);
        assert_eq!((ids("c1", allowed), ids("c2", allowed)), (vec![0], vec![1]));
    }

    #[test]
    fn deleting_indexed_and_unindexed_events_keeps_the_index_whole() {
        let store = Store::open_in_memory().unwrap();
        seed(&store);
        // The text index takes 30; the index by agent all 50 (none has an agent).
        assert_eq!(store.index_log(30).unwrap(), 50);
        store
            .write(|tx| {
                tx.conn()
                    .execute("DELETE FROM audit_events WHERE id IN (5, 40)", [])?;
                tx.conn().execute(
                    "INSERT INTO audit_text (audit_text) VALUES ('integrity-check')",
                    [],
                )?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(
            store.index_log(1_000).unwrap(),
            19,
            "the rest, less the one deleted"
        );
        assert_eq!(store.index_log(1_000).unwrap(), 0, "up to date");
        // All indexed now: the index must match the log row for row (rank 1
        // compares it with the content table, so a stray entry of event 40
        // or a missing one would fail here).
        store
            .write(|tx| {
                tx.conn().execute(
                    "INSERT INTO audit_text (audit_text, rank) VALUES ('integrity-check', 1)",
                    [],
                )?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        // Event 5 holds "100%_4" (as do 41..50): its text left the index with it.
        let f = Filter {
            text: Some("100%_4".into()),
            ..Default::default()
        };
        assert_eq!(store.read(|c| count(c, &f)).unwrap(), 10);
    }
}
