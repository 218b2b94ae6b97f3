//! Views of the audit log: a filter as SQL (each part served by an index),
//! the text search through the trigram index, pages and counts.

use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{params, Connection, Row};

use super::{from_row, reach, SEARCHED, TIME_BLOCK};
use crate::audit::{AuditEvent, Filter, Outcome};
use crate::clock::UnixMs;
use crate::store::StoreError;

/// The most events one page holds, whatever it asks for.
pub const MAX_PAGE: u32 = 10_000;

/// A call's start is shown only while it has no outcome (running, or its
/// end was never recorded); its outcome's event stands for it after.
const UNFINISHED_STARTS_ONLY: &str = "NOT (audit_events.kind = 'call_started' AND EXISTS \
     (SELECT 1 FROM audit_events AS outcome WHERE outcome.started_id = audit_events.id))";

/// What `audit_events_not_allowed` holds: the few events that were not allowed.
const NOT_ALLOWED: &str = "audit_events.outcome <> 'allowed'";

/// A filter as SQL: the WHERE clause over `audit_events` (columns
/// qualified, parameters numbered from 1) and, for a text search the trigram
/// index can serve, how to ask it. Such a search, and a view of one agent,
/// read the indexes up to where they reach and scan the events above (the
/// clause then holds the scan, for that part only). The clause holds the
/// search too, so what the index gives is only where to look: it may give
/// more, never less.
struct FilterSql {
    clause: String,
    args: Vec<Value>,
    text_match: Option<TextMatch>,
    /// For a view of one agent, and for a text search with more in the
    /// filter: the part of the clause that an index serves ("1" when none
    /// does), which picks the events a walk of the filter's events reads
    /// (each one a step), from `walk`'s source.
    walked: Option<String>,
    walk: Walk,
    /// At most how many rows a read through two ways ([`FilterSql::race`])
    /// reads, both together, before it stops with what the one further along
    /// has found (`None`: no bound).
    reads: Option<usize>,
    /// The ids' floor and ceiling (from `since` and `until`): no event
    /// outside them matches.
    ids: (i64, i64),
}

/// A text search through the trigram index.
struct TextMatch {
    /// The MATCH expression; `None` when no indexed event can match.
    expr: Option<String>,
    /// How far it may be read: fixed for a search found through
    /// `audit_text_grams` (one or two characters), as far as both it and
    /// the index reached before the grams were read (they only grow, so
    /// those read hold every event up to there); else wherever the index
    /// reaches when it is read.
    reach: Option<i64>,
}

/// The most trigrams a search of one or two characters asks the index for;
/// a search found in more scans instead (it is common: a page fills fast).
const MAX_GRAMS: usize = 500;

/// Which of the calls' start events a read wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Starts {
    /// Only those with no outcome yet: a view, where the outcome stands for its call.
    Unfinished,
    /// Every one: an export, the log as it was recorded.
    All,
}

fn filter_sql(conn: &Connection, f: &Filter) -> Result<FilterSql, StoreError> {
    filter_sql_of(conn, f, Starts::Unfinished)
}

fn filter_sql_of(conn: &Connection, f: &Filter, starts: Starts) -> Result<FilterSql, StoreError> {
    // The first clause is always there: what follows it is the filter's.
    let mut clauses: Vec<String> = match starts {
        Starts::Unfinished => vec![UNFINISHED_STARTS_ONLY.to_string()],
        Starts::All => vec!["1".to_string()],
    };
    // Those one index serves: a walk of the events they pick reads no
    // others (the agent's index, else the server's, else that of the
    // outcomes other than allowed; SQLite reads one; the ids' floor and
    // ceiling bound each). The agent's is `audit_by_agent`, walked up to
    // where it reaches; it holds each event's outcome, so an outcome is
    // tested there, before the event is read.
    let by_agent = f.client_id.is_some();
    let walk = if by_agent { Walk::Agent } else { Walk::Log };
    let mut served: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let mut arg = |value: Value| {
        args.push(value);
        args.len()
    };
    if let Some(c) = &f.client_id {
        let n = arg(Value::Text(c.clone()));
        clauses.push(format!("audit_events.client_id = ?{n}"));
        served.push(format!("audit_by_agent.client_id = ?{n}"));
    }
    if let Some(s) = &f.server {
        let n = arg(Value::Text(s.clone()));
        clauses.push(format!("audit_events.server = ?{n}"));
        if !by_agent {
            served.push(format!("audit_events.server = ?{n}"));
        }
    }
    let rare_outcome = f.outcome.is_some_and(|o| o != Outcome::Allowed);
    let by_outcome = rare_outcome && !by_agent && f.server.is_none();
    if let Some(o) = f.outcome {
        let n = arg(Value::Text(o.as_str().into()));
        clauses.push(format!("audit_events.outcome = ?{n}"));
        if by_outcome {
            served.push(format!("audit_events.outcome = ?{n}"));
        }
        if by_agent {
            // The index by agent holds each event's outcome too.
            served.push(format!("audit_by_agent.outcome = ?{n}"));
        }
    }
    if let Some(t) = f.since {
        let n = arg(Value::Integer(t));
        clauses.push(format!("audit_events.at >= ?{n}"));
    }
    let floor = since_floor(conn, f)?;
    if let Some(floor) = floor {
        let n = arg(Value::Integer(floor));
        clauses.push(format!("audit_events.id >= ?{n}"));
        served.push(format!("{} >= ?{n}", walk.id()));
    }
    if let Some(t) = f.until {
        let n = arg(Value::Integer(t));
        clauses.push(format!("audit_events.at < ?{n}"));
    }
    let ceiling = until_ceiling(conn, f)?;
    if let Some(ceiling) = ceiling {
        let n = arg(Value::Integer(ceiling));
        clauses.push(format!("audit_events.id <= ?{n}"));
        served.push(format!("{} <= ?{n}", walk.id()));
    }
    if rare_outcome {
        // The index of those outcomes says this of every event it holds;
        // SQLite uses it only when the query says it too, word for word.
        clauses.push(NOT_ALLOWED.to_string());
        if by_outcome {
            served.push(NOT_ALLOWED.to_string());
        }
    }
    let mut text_match = None;
    // A walk of the events the served clauses pick, below the indexes'
    // reach: for an agent's events, and for a text search with more in
    // the filter.
    let filtered = clauses.len() > 1;
    if let Some(text) = f.search_text() {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        args.push(Value::Text(format!("%{escaped}%")));
        let n = args.len();
        let any: Vec<String> = SEARCHED
            .iter()
            .map(|column| format!("audit_events.{column} LIKE ?{n} ESCAPE '\\'"))
            .collect();
        clauses.push(format!("({})", any.join(" OR ")));
        text_match = if text.contains('\0') {
            // The index's query syntax ends at a NUL: a scan.
            None
        } else if text.chars().count() >= 3 {
            // Events holding every trigram of it, through the index (the
            // clause's LIKE keeps those holding the text itself).
            Some(TextMatch {
                expr: Some(every_trigram(text)),
                reach: None,
            })
        } else {
            short_match(conn, text)?
        };
    }
    let walked = (by_agent || (f.search_text().is_some() && filtered)).then(|| {
        served.push("1".into());
        served.join(" AND ")
    });
    Ok(FilterSql {
        clause: clauses.join(" AND "),
        args,
        text_match,
        walked,
        walk,
        reads: None,
        ids: (floor.unwrap_or(i64::MIN), ceiling.unwrap_or(i64::MAX)),
    })
}

/// What a walk of the filter's events reads them from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// The log (through the index SQLite picks for the served clauses).
    Log,
    /// One agent's events in `audit_by_agent`, as far as it reaches.
    Agent,
}

impl Walk {
    /// The tables the walk reads, for a query's FROM.
    fn source(self) -> &'static str {
        match self {
            Walk::Log => "audit_events",
            Walk::Agent => {
                "audit_by_agent CROSS JOIN audit_events ON audit_events.id = audit_by_agent.id"
            }
        }
    }

    /// The id the walk goes by (in its index's order).
    fn id(self) -> &'static str {
        match self {
            Walk::Log => "audit_events.id",
            Walk::Agent => "audit_by_agent.id",
        }
    }
}

/// `text` as one term of the index's query syntax (a quote in it is text).
fn phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The most trigrams of a search's text the index is asked for: more narrow
/// its candidates little, and cost a doclist each.
const MAX_TRIGRAMS: usize = 12;

/// The events that may hold `text` (three characters or more), in the
/// index's query syntax: those holding each of its distinct trigrams, or
/// of [`MAX_TRIGRAMS`] spread over it. The index keeps no positions
/// (schema 19), so it cannot ask for them in a row; any event holding the
/// text holds them all.
fn every_trigram(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut seen = std::collections::HashSet::new();
    let trigrams: Vec<String> = chars
        .windows(3)
        .map(|w| w.iter().collect::<String>())
        .filter(|t| seen.insert(t.clone()))
        .collect();
    let n = trigrams.len();
    let picked = (0..n.min(MAX_TRIGRAMS)).map(|i| &trigrams[i * n / n.min(MAX_TRIGRAMS)]);
    picked.map(|t| phrase(t)).collect::<Vec<_>>().join(" AND ")
}

/// A search of one or two characters, through the index: in a value of three
/// characters or more, such text lies within one of its trigrams, so the
/// events that hold it are among those whose index holds any trigram that
/// holds it (`audit_text_grams` lists them; ASCII letters lowercased, as
/// LIKE compares them). `None` (a scan) when a whole value shorter than three
/// characters holds it (the index has no trigram of such a value), or too
/// many trigrams do.
fn short_match(conn: &Connection, text: &str) -> Result<Option<TextMatch>, StoreError> {
    let reach: i64 = conn
        .prepare_cached("SELECT MIN(upto, grams_upto) FROM audit_text_indexed")?
        .query_row([], |r| r.get(0))?;
    // The grams that hold it from their first, second or third character:
    // those from there on between it and it followed by the last characters.
    let grams = conn
        .prepare_cached(
            "WITH q(lo, hi) AS (SELECT ?1, ?1 || char(1114111, 1114111))
             SELECT gram FROM audit_text_grams, q WHERE gram BETWEEN lo AND hi
             UNION SELECT gram FROM audit_text_grams, q WHERE substr(gram, 2) BETWEEN lo AND hi
             UNION SELECT gram FROM audit_text_grams, q WHERE substr(gram, 3) BETWEEN lo AND hi
             LIMIT ?2",
        )?
        .query_map(
            params![text.to_ascii_lowercase(), MAX_GRAMS as i64 + 1],
            |r| r.get::<_, String>(0),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    if grams.len() > MAX_GRAMS || grams.iter().any(|g| g.chars().count() < 3) {
        return Ok(None);
    }
    let expr = (!grams.is_empty()).then(|| {
        let phrases: Vec<String> = grams.iter().map(|g| phrase(g)).collect();
        phrases.join(" OR ")
    });
    Ok(Some(TextMatch {
        expr,
        reach: Some(reach),
    }))
}

/// For a view of the events since a moment: the lowest id any of them can
/// have. That is the first id of the first block, from the log's oldest,
/// whose newest time reaches the moment, or that has no newest time on
/// record (the block still being written, or one whose events were written
/// some other way): every event in the blocks before it is older. Ids
/// follow time only as far as the clock did (and a call's outcome may be
/// committed after the next call's start), so this is read, not assumed;
/// with it a walk of the log, newest first, stops where the range begins.
fn since_floor(conn: &Connection, f: &Filter) -> Result<Option<i64>, StoreError> {
    let Some(since) = f.since else {
        return Ok(None);
    };
    let oldest: Option<i64> = conn
        .prepare_cached("SELECT MIN(id) FROM audit_events")?
        .query_row([], |r| r.get(0))?;
    let mut block = oldest.unwrap_or(0) / TIME_BLOCK;
    let mut stmt = conn.prepare_cached(
        "SELECT block, newest FROM audit_time_blocks WHERE block >= ?1 ORDER BY block",
    )?;
    let mut rows = stmt.query([block])?;
    while let Some(row) = rows.next()? {
        let (recorded, newest): (i64, UnixMs) = (row.get(0)?, row.get(1)?);
        if recorded != block || newest >= since {
            break;
        }
        block += 1;
    }
    Ok(Some(block * TIME_BLOCK))
}

/// For a view of the events until a moment: the highest id any of them can
/// have. That is the last id of the newest block whose oldest time is before
/// the moment, or that has no oldest time on record (one whose events were
/// written some other way, or that retention cut out): every event in the
/// blocks after it is at the moment or later. The newest block's events are
/// read for its oldest time (the block still being written has none on
/// record). With this, a walk of the log, newest first, begins where the
/// range ends.
fn until_ceiling(conn: &Connection, f: &Filter) -> Result<Option<i64>, StoreError> {
    let Some(until) = f.until else {
        return Ok(None);
    };
    let newest: Option<i64> = conn
        .prepare_cached("SELECT MAX(id) FROM audit_events")?
        .query_row([], |r| r.get(0))?;
    let Some(newest) = newest else {
        return Ok(None);
    };
    let mut block = newest / TIME_BLOCK;
    let oldest_written: Option<UnixMs> = conn
        .prepare_cached("SELECT MIN(at) FROM audit_events WHERE id >= ?1")?
        .query_row([block * TIME_BLOCK], |r| r.get(0))?;
    if oldest_written.is_some_and(|oldest| oldest >= until) {
        block -= 1;
        let mut stmt = conn.prepare_cached(
            "SELECT block, oldest FROM audit_time_blocks WHERE block <= ?1 ORDER BY block DESC",
        )?;
        let mut rows = stmt.query([block])?;
        while let Some(row) = rows.next()? {
            let (recorded, oldest): (i64, Option<UnixMs>) = (row.get(0)?, row.get(1)?);
            if recorded != block || oldest.is_none_or(|oldest| oldest < until) {
                break;
            }
            block -= 1;
        }
    }
    Ok(Some((block + 1) * TIME_BLOCK - 1))
}

impl FilterSql {
    /// The ids the text index is read between, for those `op` `bound` (the
    /// cursor: `<` or `>`), at most `upto`, and within the ids' floor and
    /// ceiling, as one lower and one upper bound: FTS5 seeks by the first
    /// of each it is given and only tests any other on every candidate.
    fn index_range(&self, op: &str, bound: i64, upto: i64) -> (i64, i64) {
        let (floor, ceiling) = self.ids;
        let hi = upto.min(ceiling);
        match op {
            "<" => (floor, hi.min(bound.saturating_sub(1))),
            _ => (floor.max(bound.saturating_add(1)), hi),
        }
    }

    /// The events matching, with an id `op` `bound`, in id `order`, at most
    /// `limit`: one query; or, for an indexed text search or one agent's
    /// events, the events above the indexes' reach scanned, those of the
    /// agent the text index does not reach yet walked through the index by
    /// agent, and those below read through the indexes, each in that order;
    /// and whether a read through two ways stopped at the bound of its reads
    /// (then more may match).
    #[allow(clippy::too_many_arguments)]
    fn select<T>(
        &self,
        conn: &Connection,
        (columns, row): (&str, fn(&Row<'_>) -> rusqlite::Result<T>),
        op: &str,
        bound: i64,
        order: &str,
        limit: i64,
    ) -> Result<(Vec<T>, bool), StoreError> {
        let run = |sql: String, extra: Vec<Value>| -> Result<Vec<T>, StoreError> {
            let mut args = self.args.clone();
            args.extend(extra);
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        };
        let n = self.args.len();
        if self.text_match.is_none() && self.walk == Walk::Log {
            let sql = format!(
                "SELECT {columns} FROM audit_events WHERE {} AND audit_events.id {op} ?{} \
                 ORDER BY audit_events.id {order} LIMIT ?{}",
                self.clause,
                n + 1,
                n + 2
            );
            return Ok((
                run(sql, vec![Value::Integer(bound), Value::Integer(limit)])?,
                false,
            ));
        }
        // Where the indexes read reach: the text index's, for a search; the
        // index by agent's, for one agent's events (it is never behind the
        // text index, so with a search too, it holds those the text index
        // does not reach yet).
        let reach = reach(conn)?;
        let upto = match &self.text_match {
            Some(TextMatch {
                reach: Some(reach), ..
            }) => *reach,
            Some(_) => reach.text,
            None => reach.agents,
        };
        let scanned_above = match self.walk {
            Walk::Agent => reach.agents,
            Walk::Log => upto,
        };
        // Above the indexes: its scan (the clause holds it).
        let above = format!(
            "SELECT {columns} FROM audit_events WHERE {} AND audit_events.id > ?{} \
             AND audit_events.id {op} ?{} ORDER BY audit_events.id {order} LIMIT ?{}",
            self.clause,
            n + 1,
            n + 2,
            n + 3
        );
        let above = run(
            above,
            vec![
                Value::Integer(scanned_above),
                Value::Integer(bound),
                Value::Integer(limit),
            ],
        )?;
        // Newest first, the events above come first: those below need the rest.
        let needed = |above: &[T]| match order {
            "DESC" => limit - above.len() as i64,
            _ => limit,
        };
        // The events a walk of the filter's finds above `lo`, at most `hi`.
        let walk = |walked: &str, lo: i64, hi: i64, needed: i64| {
            let sql = self.walk_below(columns, walked, op, order);
            run(sql, [bound, lo, hi, needed].map(Value::Integer).to_vec())
        };
        // One agent's events between the text index's reach and its own:
        // walked, the search tested on each.
        let above = match self.walked.as_deref() {
            Some(walked) if scanned_above > upto && needed(&above) > 0 => {
                let between = walk(walked, upto, scanned_above, needed(&above))?;
                merge(above, between, order, limit)
            }
            _ => above,
        };
        // Below: driven by an index in id order, so it stops at `limit`.
        // The clause's scan is true of every match; SQLite checks it on those only.
        let expr = match &self.text_match {
            Some(text) => match &text.expr {
                Some(expr) => Some(expr),
                None => return Ok((above, false)),
            },
            None => None,
        };
        if let Some(walked) = &self.walked {
            let needed = needed(&above);
            if needed <= 0 {
                return Ok((above, false));
            }
            let (below, cut) = match expr {
                Some(expr) => self.race(
                    conn,
                    (columns, row),
                    walked,
                    expr,
                    (op, order),
                    bound,
                    upto,
                    needed,
                )?,
                // One agent's events, through its index.
                None => (walk(walked, i64::MIN, upto, needed)?, false),
            };
            return Ok((merge(above, below, order, limit), cut));
        }
        let Some(expr) = expr else {
            // A walk or a text search is what reads below the reach.
            return Ok((above, false));
        };
        // Nothing but the text: the index first, in id order. (Left to
        // SQLite, a filter an index serves had it drive from those events
        // and ask the text index about each: 23 s for trigrams in OR and one
        // agent at 100,000 events, 14.7 s for "delete" and one server.)
        let below = format!(
            "SELECT {columns} FROM audit_text CROSS JOIN audit_events ON audit_events.id = audit_text.rowid \
             WHERE audit_text MATCH ?{} AND audit_text.rowid BETWEEN ?{} AND ?{} \
             AND {} ORDER BY audit_text.rowid {order} LIMIT ?{}",
            n + 1,
            n + 2,
            n + 3,
            self.clause,
            n + 4
        );
        let (lo, hi) = self.index_range(op, bound, upto);
        let below = run(
            below,
            vec![
                Value::Text(expr.clone()),
                Value::Integer(lo),
                Value::Integer(hi),
                Value::Integer(limit),
            ],
        )?;
        Ok((merge(above, below, order, limit), false))
    }

    /// The query of the events matching that a walk finds, with an id `op`
    /// its first parameter after the filter's, above its second and at most
    /// its third (within the indexes' reach), in id `order`, at most its
    /// fourth.
    fn walk_below(&self, columns: &str, walked: &str, op: &str, order: &str) -> String {
        let n = self.args.len();
        let (source, id) = (self.walk.source(), self.walk.id());
        format!(
            "SELECT {columns} FROM {source} WHERE {walked} AND {} \
             AND {id} {op} ?{} AND {id} > ?{} AND {id} <= ?{} ORDER BY {id} {order} LIMIT ?{}",
            self.clause,
            n + 1,
            n + 2,
            n + 3,
            n + 4
        )
    }

    /// The events matching at or below the index's reach, for a text search
    /// with more in the filter. Two ways read them: the
    /// events one index picks for the filter (`walked`: an agent's, say;
    /// all of them when no index serves it), testing the rest on each (quick when the
    /// search is common), or the text index's candidates, testing the whole
    /// filter on each (quick when the search is rare). Which is quicker
    /// depends on how often each holds, which nothing cheap tells, so both
    /// read, a few rows at a turn, and the first to find `limit` or reach the
    /// end gives the answer. Both need as many matches, so the quicker is the
    /// one that finds more for its time: it gets three quarters of the time
    /// (the answer then takes a third longer than it alone would), and were
    /// its lead a fluke, the other's quarter bounds the loss to about four
    /// times. Either way holds every match in the part it has read, so the
    /// events are the same whichever answers; a count cut short by
    /// [`FilterSql::reads`] gives what the way further along found, which
    /// may differ from one run to the next.
    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::disallowed_methods)] // it times its reads to choose; the events found do not depend on it
    fn race<T>(
        &self,
        conn: &Connection,
        (columns, row): (&str, fn(&Row<'_>) -> rusqlite::Result<T>),
        walked: &str,
        expr: &str,
        (op, order): (&str, &str),
        bound: i64,
        upto: i64,
        limit: i64,
    ) -> Result<(Vec<T>, bool), StoreError> {
        /// The rows a way reads in a turn.
        const TURN: usize = 32;
        let n = self.args.len();
        // Each gives every row it reads from its index (so a row is a
        // bounded step), with whether the whole filter holds of it.
        let filter_first = format!(
            "SELECT {columns}, COALESCE({clause}, 0) AS hit FROM {source} \
             WHERE {walked} AND {id} {op} ?{bound} AND {id} <= ?{upto} \
             ORDER BY {id} {order}",
            clause = self.clause,
            source = self.walk.source(),
            id = self.walk.id(),
            bound = n + 1,
            upto = n + 2,
        );
        let index_first = format!(
            "SELECT {columns}, COALESCE(audit_events.id IS NOT NULL AND {clause}, 0) AS hit \
             FROM audit_text LEFT JOIN audit_events ON audit_events.id = audit_text.rowid \
             WHERE audit_text MATCH ?{expr} AND audit_text.rowid BETWEEN ?{lo} AND ?{hi} \
             ORDER BY audit_text.rowid {order}",
            clause = self.clause,
            expr = n + 1,
            lo = n + 2,
            hi = n + 3,
        );
        let (lo, hi) = self.index_range(op, bound, upto);
        // The filter's arguments, then each way's own.
        let args = |own: &[Value]| {
            rusqlite::params_from_iter(self.args.iter().chain(own).cloned().collect::<Vec<_>>())
        };
        let filter_args = [Value::Integer(bound), Value::Integer(upto)];
        let index_args = [
            Value::Text(expr.to_string()),
            Value::Integer(lo),
            Value::Integer(hi),
        ];
        let mut filter_first = conn.prepare_cached(&filter_first)?;
        let mut index_first = conn.prepare_cached(&index_first)?;
        let mut ways = [
            (filter_first.query(args(&filter_args))?, Vec::new()),
            (index_first.query(args(&index_args))?, Vec::new()),
        ];
        let limit = limit.max(0) as usize;
        let mut spent = [Duration::ZERO; 2];
        let (mut read, reads) = (0, self.reads.unwrap_or(usize::MAX));
        let (answer, cut) = 'race: loop {
            // The way that has found more for its time reads on; the other
            // still gets a third as much time, in case it was unlucky so far.
            let cost = |way: usize| spent[way].as_secs_f64() / (ways[way].1.len() + 1) as f64;
            let lead = usize::from(cost(1) < cost(0));
            let way = if spent[1 - lead] * 3 < spent[lead] {
                1 - lead
            } else {
                lead
            };
            let started = Instant::now();
            let (rows, found) = &mut ways[way];
            for _ in 0..TURN {
                if found.len() >= limit {
                    break 'race (way, false);
                }
                let Some(r) = rows.next()? else {
                    break 'race (way, false);
                };
                if r.get("hit")? {
                    found.push(row(r)?);
                }
                read += 1;
                if read >= reads {
                    // What either found is all there is in what it read.
                    break 'race (usize::from(ways[1].1.len() > ways[0].1.len()), true);
                }
            }
            spent[way] += started.elapsed();
        };
        #[cfg(test)]
        ANSWERED.with(|a| {
            let mut n = a.get();
            n[answer] += 1;
            a.set(n);
        });
        Ok((std::mem::take(&mut ways[answer].1), cut))
    }
}

#[cfg(test)]
thread_local! {
    /// How often each way of [`FilterSql::race`] answered: the filter's
    /// events first, the index's candidates first.
    static ANSWERED: std::cell::Cell<[usize; 2]> = const { std::cell::Cell::new([0; 2]) };
}

/// The scanned events above the index and the index's below it, in `order`,
/// at most `limit`.
fn merge<T>(above: Vec<T>, below: Vec<T>, order: &str, limit: i64) -> Vec<T> {
    let (mut all, rest) = if order == "DESC" {
        (above, below)
    } else {
        (below, above)
    };
    all.extend(rest);
    all.truncate(limit.max(0) as usize);
    all
}

/// Where a page of the log starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The newest events with an id below this one (`None`: the newest of
    /// all), newest first: the timeline, scrolling back.
    Before(Option<i64>),
    /// The oldest events with an id above this one, oldest first: catching up
    /// on what a follower missed.
    After(i64),
}

/// One page of the events matching `f`, at most `limit` (capped at 10,000),
/// as views show them: a finished call's start left out (its outcome
/// stands for the call).
pub fn page(
    conn: &Connection,
    f: &Filter,
    cursor: Cursor,
    limit: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    page_of(conn, f, cursor, limit, Starts::Unfinished)
}

/// One page of an export of the events matching `f`, newest first below
/// `before`: every event, a finished call's start included, so that an
/// export of the whole log holds each seal's link.
pub fn export_page(
    conn: &Connection,
    f: &Filter,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    page_of(conn, f, Cursor::Before(before), limit, Starts::All)
}

fn page_of(
    conn: &Connection,
    f: &Filter,
    cursor: Cursor,
    limit: u32,
    starts: Starts,
) -> Result<Vec<AuditEvent>, StoreError> {
    let (op, order, id) = match cursor {
        Cursor::Before(id) => ("<", "DESC", id.unwrap_or(i64::MAX)),
        Cursor::After(id) => (">", "ASC", id),
    };
    let rows = (
        "audit_events.*",
        from_row as fn(&Row<'_>) -> rusqlite::Result<AuditEvent>,
    );
    let limit = limit.min(MAX_PAGE);
    let sql = filter_sql_of(conn, f, starts)?;
    let (events, _) = sql.select(conn, rows, op, id, order, limit as i64)?;
    Ok(events)
}

/// How many events match `f`, all counted.
#[cfg(test)]
pub fn count(conn: &Connection, f: &Filter) -> Result<i64, StoreError> {
    Ok(counted(conn, f, None, i64::MAX - 1, None)?.0)
}

/// The most rows a count reads in the two ways a text search with a filter
/// is read at once, both together (besides the events newer than the
/// index's reach, scanned as any search scans them, and for one agent's
/// search those the index by agent holds beyond it, walked): matches that are few and far between
/// would otherwise be read to the end of the log (140 ms at 1,000,000 events
/// for "42" and one agent), for a count that says "at least" just as truly.
/// (So a count of a common search may stop short of 10,000 too: "4,990+".)
/// At 16,384 the count took most of that search's first page: 48–67 ms.
const COUNT_READS: usize = 8_192;

/// How many events match `f` (with an id below `before`, when given: a
/// page's count goes on where the page ended), counted up to `cap`: `(n,
/// true)` when there are more than `cap`, or when a count read two ways at
/// once (a text search with a filter) stopped after [`COUNT_READS`] rows:
/// then at least `n` match.
pub fn count_up_to(
    conn: &Connection,
    f: &Filter,
    before: Option<i64>,
    cap: i64,
) -> Result<(i64, bool), StoreError> {
    counted(conn, f, before, cap, Some(COUNT_READS))
}

fn counted(
    conn: &Connection,
    f: &Filter,
    before: Option<i64>,
    cap: i64,
    reads: Option<usize>,
) -> Result<(i64, bool), StoreError> {
    let id: fn(&Row<'_>) -> rusqlite::Result<i64> = |r| r.get(0);
    let mut sql = filter_sql(conn, f)?;
    sql.reads = reads;
    let (ids, cut) = sql.select(
        conn,
        ("audit_events.id", id),
        "<",
        before.unwrap_or(i64::MAX),
        "DESC",
        cap + 1,
    )?;
    let counted = ids.len() as i64;
    Ok((counted.min(cap), counted > cap || cut))
}

#[cfg(test)]
mod tests {
    use super::super::index_grams;
    use super::super::tests::seed;
    use super::*;
    use crate::audit::{EventKind, NewEvent};
    use crate::store::Store;

    #[test]
    fn pages_are_newest_first_and_continue_below_the_cursor() {
        let store = Store::open_in_memory().unwrap();
        seed(&store);
        let f = Filter::default();
        let first = store
            .read(|c| page(c, &f, Cursor::Before(None), 20))
            .unwrap();
        assert_eq!(first.len(), 20);
        assert!(first.windows(2).all(|w| w[0].id > w[1].id));
        let next = store
            .read(|c| page(c, &f, Cursor::Before(Some(first.last().unwrap().id)), 20))
            .unwrap();
        assert_eq!(next[0].id, first.last().unwrap().id - 1);
        assert_eq!(store.read(|c| count(c, &f)).unwrap(), 50);
    }

    #[test]
    fn a_view_hides_a_finished_start_and_an_export_keeps_it_under_any_filter() {
        let store = Store::open_in_memory().unwrap();
        let start = NewEvent::new(EventKind::CallStarted, Outcome::Allowed)
            .server("demo")
            .tool("read_note");
        let started = store
            .write(|tx| tx.record_returning(start, 1).cloned())
            .unwrap();
        let outcome = NewEvent::new(EventKind::ToolCall, Outcome::Allowed)
            .server("demo")
            .tool("read_note")
            .detail(serde_json::json!({"call_started": started.id}));
        store.write(|tx| tx.record(outcome, 2)).unwrap();
        let filters = [
            Filter::default(),
            Filter {
                server: Some("demo".into()),
                ..Default::default()
            },
            Filter {
                text: Some("read_note".into()),
                ..Default::default()
            },
            Filter {
                server: Some("demo".into()),
                text: Some("read_n".into()),
                ..Default::default()
            },
        ];
        for f in filters {
            let kinds = |events: Vec<AuditEvent>| -> Vec<&'static str> {
                events.iter().map(|e| e.kind.as_str()).collect()
            };
            let shown = store
                .read(|c| page(c, &f, Cursor::Before(None), 10))
                .unwrap();
            assert_eq!(kinds(shown), ["tool_call"], "{f:?}");
            let exported = store.read(|c| export_page(c, &f, None, 10)).unwrap();
            assert_eq!(kinds(exported), ["tool_call", "call_started"], "{f:?}");
        }
    }

    #[test]
    fn a_follower_catches_up_oldest_first_above_the_cursor() {
        let store = Store::open_in_memory().unwrap();
        seed(&store);
        let f = Filter {
            server: Some("demo".into()),
            ..Default::default()
        };
        let missed = store.read(|c| page(c, &f, Cursor::After(40), 3)).unwrap();
        let ids: Vec<i64> = missed.iter().map(|e| e.id).collect();
        assert_eq!(ids, [41, 43, 45], "ascending, above the cursor, filtered");
    }

    #[test]
    fn a_search_of_one_or_two_characters_reads_the_index_unless_a_short_value_holds_it() {
        let store = Store::open_in_memory().unwrap();
        seed(&store);
        store
            .write(|tx| {
                let short = NewEvent::new(EventKind::ToolCall, Outcome::Allowed)
                    .server("FS")
                    .tool("ls")
                    .detail(serde_json::json!({}));
                tx.record(short, 2_000)?;
                // "z" stands only third in a gram ("xyz").
                let last = NewEvent::new(EventKind::ToolCall, Outcome::Allowed).tool("xyZ");
                tx.record(last, 2_001)?;
                // LIKE and the live view both take only ASCII letters in any case.
                let other = NewEvent::new(EventKind::ToolCall, Outcome::Allowed).tool("ÜBER");
                tx.record(other, 2_002)
            })
            .unwrap();
        let all = store
            .read(|c| page(c, &Filter::default(), Cursor::Before(None), 100))
            .unwrap();
        let search = |text: &str| Filter {
            text: Some(text.into()),
            ..Default::default()
        };
        // How each is served once all is indexed: by the index (and what it
        // asks), or by a scan.
        let plan = |text: &str| {
            let sql = store.read(|c| filter_sql(c, &search(text))).unwrap();
            sql.text_match.map(|m| (m.reach.is_some(), m.expr))
        };
        let agree = |why: &str| {
            for text in [
                "qz", "_2", "fi", "7", "s", "fs", "L", "{}", "\"", "%", "z", "Y", "üb", "Üb",
                "über", "ÜBER",
            ] {
                let f = search(text);
                let sql = store
                    .read(|c| page(c, &f, Cursor::Before(None), 100))
                    .unwrap();
                let ids =
                    |events: Vec<&AuditEvent>| events.iter().map(|e| e.id).collect::<Vec<_>>();
                let live = ids(all.iter().filter(|e| f.matches(e)).collect());
                assert_eq!(ids(sql.iter().collect()), live, "{text:?}, {why}");
            }
        };
        agree("nothing indexed");
        while store.index_log(7).unwrap() > 0 {}
        agree("all indexed");
        assert_eq!(plan("qz"), Some((true, None)), "in no trigram: no event");
        let Some((true, Some(expr))) = plan("_2") else {
            panic!("{:?}", plan("_2"));
        };
        assert!(expr.contains("\"l_2\"") && expr.contains(" OR "), "{expr}");
        assert_eq!(plan("z"), Some((true, Some("\"xyz\"".into()))));
        assert_eq!(plan("s"), None, "the whole value \"FS\" holds it: a scan");
        assert_eq!(plan("fs"), None);
        // A database from before the grams: its index is whole, its grams not yet.
        store
            .write(|tx| {
                tx.conn().execute_batch(
                    "DELETE FROM audit_text_grams;\
                     UPDATE audit_text_indexed SET grams_upto = 0, grams_held = 0;",
                )?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        agree("the index whole, no grams");
        assert_eq!(store.index_log(10).unwrap(), 10, "the grams catch up");
        agree("the index whole, grams for 10 events");
        while store.index_log(7).unwrap() > 0 {}
        agree("both whole again");
        // A full table takes no more grams; what comes after it is scanned.
        let held =
            || {
                store
                    .read(|c| {
                        Ok::<_, StoreError>(c.query_row(
                        "SELECT grams_upto, grams_held, (SELECT count(*) FROM audit_text_grams) \
                         FROM audit_text_indexed",
                        [],
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
                    )?)
                    })
                    .unwrap()
            };
        let (upto, n, count) = held();
        assert_eq!((upto, n), (53, count), "every event, every gram counted");
        store
            .write(|tx| {
                let more = NewEvent::new(EventKind::ToolCall, Outcome::Allowed).tool("qqq");
                tx.record(more, 2_003)
            })
            .unwrap();
        let f = search("qq");
        let all = store
            .read(|c| page(c, &Filter::default(), Cursor::Before(None), 100))
            .unwrap();
        let full = store.write(|tx| index_grams(tx.conn(), 10, n)).unwrap();
        assert_eq!((full, held()), (0, (53, n, count)), "full: nothing added");
        store.index_log(10).unwrap();
        let found = store
            .read(|c| page(c, &f, Cursor::Before(None), 100))
            .unwrap();
        assert_eq!(found, vec![all[0].clone()], "scanned above the grams");
    }

    #[test]
    fn filters_agree_between_sql_and_live_matching() {
        let store = Store::open_in_memory().unwrap();
        seed(&store);
        let all = store
            .read(|c| page(c, &Filter::default(), Cursor::Before(None), 100))
            .unwrap();
        let filters = [
            Filter {
                server: Some("demo".into()),
                ..Default::default()
            },
            Filter {
                outcome: Some(Outcome::Denied),
                since: Some(1_010),
                until: Some(1_040),
                ..Default::default()
            },
            Filter {
                text: Some("TOOL_2".into()),
                ..Default::default()
            },
            // `%` and `_` are literal characters, not LIKE wildcards.
            Filter {
                text: Some("100%_4".into()),
                ..Default::default()
            },
            Filter {
                text: Some("0%x".into()),
                ..Default::default()
            },
            // Under three characters: through the trigrams that hold it.
            Filter {
                text: Some("_2".into()),
                ..Default::default()
            },
            Filter {
                text: Some("Fi".into()),
                ..Default::default()
            },
            Filter {
                text: Some("7".into()),
                ..Default::default()
            },
            Filter {
                text: Some("%".into()),
                ..Default::default()
            },
            Filter {
                text: Some("\"".into()),
                ..Default::default()
            },
            Filter {
                text: Some("qz".into()),
                ..Default::default()
            },
            // A quote in the search is text, not index query syntax.
            Filter {
                text: Some("l_2\" OR x".into()),
                ..Default::default()
            },
            Filter {
                text: Some("OOL".into()),
                ..Default::default()
            },
        ];
        // The same answers with none, part and all of the log in the text index.
        for more in [0, 20, 1_000] {
            store.index_log(more).unwrap();
            for f in &filters {
                let sql = store
                    .read(|c| page(c, f, Cursor::Before(None), 100))
                    .unwrap();
                let live: Vec<_> = all.iter().filter(|e| f.matches(e)).cloned().collect();
                assert_eq!(sql, live, "{f:?}, {more} more indexed");
                assert_eq!(store.read(|c| count(c, f)).unwrap(), sql.len() as i64);
            }
        }
        let f = Filter {
            text: Some("100%_4".into()),
            ..Default::default()
        };
        assert_eq!(store.read(|c| count(c, &f)).unwrap(), 11); // 4, 40..49
        let capped = store.read(|c| count_up_to(c, &f, None, 5)).unwrap();
        assert_eq!(capped, (5, true), "counted up to the cap, and more");
        assert_eq!(
            store.read(|c| count_up_to(c, &f, None, 11)).unwrap(),
            (11, false)
        );
        let upper = Filter {
            text: Some("OOL".into()),
            ..Default::default()
        };
        assert!(store.read(|c| count(c, &upper)).unwrap() > 0, "any case");
    }

    #[test]
    fn a_search_asks_the_index_for_its_distinct_trigrams_a_dozen_at_most() {
        assert_eq!(every_trigram("abc"), r#""abc""#);
        assert_eq!(every_trigram("aaaa"), r#""aaa""#);
        assert_eq!(
            every_trigram(r#"a"bé"#),
            r#""a""b" AND """bé""#,
            "a quote is text"
        );
        let long = "abcdefghijklmnopqrstuvwxyz";
        let asked = every_trigram(long);
        assert_eq!(asked.matches(" AND ").count(), MAX_TRIGRAMS - 1, "{asked}");
        assert!(
            asked.starts_with(r#""abc" AND "cde""#),
            "spread over it: {asked}"
        );
    }

    #[test]
    fn a_view_since_or_until_a_moment_finds_every_event_when_the_clock_stepped() {
        let store = Store::open_in_memory().unwrap();
        // Three full blocks and part of a fourth. The clock jumps ahead for
        // one event in block 1 (id 5,001, denied), then back; it is far
        // behind for one in block 2 (id 9,000, denied).
        let at = |id: i64| match id {
            5_001 => 90_000,
            9_000 => 5_000,
            12_288.. => 100_000 + id,
            _ => 10_000 + id,
        };
        store
            .write(|tx| {
                for id in 1..=12_400 {
                    let agent = if id % 2 == 0 { "c_even" } else { "c_odd" };
                    let outcome = if id % 3 == 0 {
                        Outcome::Denied
                    } else {
                        Outcome::Allowed
                    };
                    let tool = if id % 7 == 0 { "read_note" } else { "list" };
                    tx.record(
                        NewEvent::new(EventKind::ToolCall, outcome)
                            .client(agent)
                            .tool(tool),
                        at(id),
                    )?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        // Searches read the text index (bounded by the ids' floor and ceiling) and race.
        while store.index_log(1_000).unwrap() > 0 {}
        let blocks = |c: &Connection| -> rusqlite::Result<Vec<(i64, i64, i64)>> {
            c.prepare("SELECT block, newest, oldest FROM audit_time_blocks ORDER BY block")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        };
        let written = store.read(|c| Ok::<_, StoreError>(blocks(c)?)).unwrap();
        assert_eq!(
            written,
            [(0, 14_095, 10_001), (1, 90_000, 14_096), (2, 22_287, 5_000)]
        );
        let all = store
            .read(|c| page(c, &Filter::default(), Cursor::Before(None), 10_000))
            .unwrap();
        let all: Vec<_> = all
            .into_iter()
            .chain(
                store
                    .read(|c| page(c, &Filter::default(), Cursor::Before(Some(2_401)), 10_000))
                    .unwrap(),
            )
            .collect();
        assert_eq!(all.len(), 12_400);
        let moments = [
            0, 5_001, 14_000, 14_096, 20_000, 22_287, 90_000, 90_001, 112_288, 112_350, 200_000,
        ];
        let check = |store: &Store| {
            for (since, until) in moments.iter().flat_map(|&m| {
                [
                    (Some(m), None),
                    (None, Some(m)),
                    (Some(m), Some(m + 20_000)),
                ]
            }) {
                for (client_id, text) in [None, Some("c_even")]
                    .into_iter()
                    .flat_map(|c| [(c, None), (c, Some("note"))])
                {
                    let f = Filter {
                        client_id: client_id.map(str::to_string),
                        outcome: Some(Outcome::Denied),
                        since,
                        until,
                        text: text.map(str::to_string),
                        ..Default::default()
                    };
                    let live: Vec<_> = all.iter().filter(|e| f.matches(e)).cloned().collect();
                    let sql = store
                        .read(|c| page(c, &f, Cursor::Before(None), 10_000))
                        .unwrap();
                    assert_eq!(sql, live, "{since:?} to {until:?}, {client_id:?}, {text:?}");
                    let counted = store.read(|c| count(c, &f)).unwrap();
                    assert_eq!(counted, live.len() as i64);
                }
            }
        };
        check(&store);
        let floor = |since| {
            let f = Filter {
                since: Some(since),
                ..Default::default()
            };
            store.read(|c| since_floor(c, &f)).unwrap()
        };
        assert_eq!(floor(14_000), Some(0));
        assert_eq!(floor(20_000), Some(4_096), "block 1 reaches it (id 5,001)");
        assert_eq!(floor(90_001), Some(12_288), "only the block being written");
        let ceiling = |until| {
            let f = Filter {
                until: Some(until),
                ..Default::default()
            };
            store.read(|c| until_ceiling(c, &f)).unwrap()
        };
        assert_eq!(ceiling(200_000), Some(16_383), "the block being written");
        assert_eq!(
            ceiling(112_288),
            Some(12_287),
            "not the block being written"
        );
        assert_eq!(
            ceiling(20_000),
            Some(12_287),
            "block 2 has id 9,000 (5,000)"
        );
        assert_eq!(ceiling(5_001), Some(12_287));
        assert_eq!(ceiling(5_000), Some(-1), "none is older");
        // A block with no newest time on record could hold anything.
        store
            .write(|tx| {
                tx.conn()
                    .execute("DELETE FROM audit_time_blocks WHERE block = 0", [])?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(floor(90_001), Some(0));
        assert_eq!(ceiling(5_000), Some(4_095), "block 0 could hold anything");
        check(&store);
    }

    #[test]
    fn a_view_of_one_server_or_of_an_outcome_other_than_allowed_reads_an_index() {
        let store = Store::open_in_memory().unwrap();
        seed(&store);
        // How SQLite reads `query`, with the filter's arguments and `more`.
        let explain = |query: &str, sql: &FilterSql, more: &[i64]| {
            let mut args = sql.args.clone();
            args.extend(more.iter().map(|v| Value::Integer(*v)));
            store
                .read(|c| {
                    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {query}"))?;
                    let rows = stmt
                        .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))?;
                    Ok::<_, StoreError>(rows.collect::<Result<Vec<_>, _>>()?.join("; "))
                })
                .unwrap()
        };
        let plan = |f: Filter| {
            let sql = store.read(|c| filter_sql(c, &f)).unwrap();
            let query = format!(
                "SELECT audit_events.id FROM audit_events WHERE {} \
                 AND audit_events.id < ?{} ORDER BY audit_events.id DESC LIMIT ?{}",
                sql.clause,
                sql.args.len() + 1,
                sql.args.len() + 2
            );
            explain(&query, &sql, &[i64::MAX, 200])
        };
        let outcome = |o: Outcome| Filter {
            outcome: Some(o),
            ..Default::default()
        };
        for o in [Outcome::Denied, Outcome::Error, Outcome::Revoked] {
            let plan = plan(outcome(o));
            assert!(
                plan.contains("USING INDEX audit_events_not_allowed"),
                "{o:?}: {plan}"
            );
        }
        assert!(!plan(outcome(Outcome::Allowed)).contains("audit_events_not_allowed"));
        let server = plan(Filter {
            server: Some("files".into()),
            ..Default::default()
        });
        assert!(
            server.contains("USING INDEX audit_events_server"),
            "{server}"
        );
        // One agent's: its index, in id order (no sort), whatever else the filter holds.
        for f in [
            Filter {
                client_id: Some("c1".into()),
                ..Default::default()
            },
            Filter {
                client_id: Some("c1".into()),
                server: Some("files".into()),
                outcome: Some(Outcome::Denied),
                since: Some(1_010),
                ..Default::default()
            },
        ] {
            let sql = store.read(|c| filter_sql(c, &f)).unwrap();
            let walked = sql.walked.as_deref().unwrap();
            let query = sql.walk_below("audit_events.id", walked, "<", "DESC");
            let plan = explain(&query, &sql, &[i64::MAX, i64::MIN, i64::MAX, 200]);
            assert!(
                plan.contains("SEARCH audit_by_agent USING PRIMARY KEY (client_id=? AND id")
                    && !plan.contains("TEMP B-TREE"),
                "{f:?}: {plan}"
            );
        }
    }

    #[test]
    fn a_search_with_a_filter_finds_the_same_events_whichever_way_reads_them() {
        let store = Store::open_in_memory().unwrap();
        store
            .write(|tx| {
                for i in 0..3_000i64 {
                    // "_n" in a third of the events, "zq" in one in 500.
                    let tool = match i {
                        _ if i % 500 == 7 => "zq_x",
                        _ if i % 3 == 0 => "read_note",
                        _ => "list_files",
                    };
                    let outcome = if i % 5 == 0 {
                        Outcome::Denied
                    } else {
                        Outcome::Allowed
                    };
                    let mut event = NewEvent::new(EventKind::ToolCall, outcome).tool(tool);
                    // One in 11 with no agent and no server; five of a rare agent.
                    if i % 11 != 0 {
                        let client = if i % 600 == 1 {
                            "rare".into()
                        } else {
                            format!("c{}", i % 7)
                        };
                        event =
                            event
                                .client(&client)
                                .server(if i % 2 == 0 { "demo" } else { "files" });
                    }
                    tx.record(event, 1_000 + i)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let mut filters = Vec::new();
        for text in ["_n", "zq", "_f", "q", "_no", "zq_"] {
            let text = Some(text.to_string());
            for client in ["c3", "rare"] {
                filters.push(Filter {
                    client_id: Some(client.into()),
                    text: text.clone(),
                    ..Default::default()
                });
            }
            // The server's index, tested against an outcome.
            filters.push(Filter {
                server: Some("files".into()),
                outcome: Some(Outcome::Allowed),
                text: text.clone(),
                ..Default::default()
            });
            // The index of outcomes other than allowed, and the id floor.
            filters.push(Filter {
                outcome: Some(Outcome::Denied),
                since: Some(1_100),
                until: Some(3_900),
                text: text.clone(),
                ..Default::default()
            });
            // One agent's denied events: the agent's index alone.
            filters.push(Filter {
                client_id: Some("c3".into()),
                outcome: Some(Outcome::Denied),
                text,
                ..Default::default()
            });
        }
        // One agent's events, and more with it, without a search: its
        // index below the reach, a scan above.
        for client in ["c3", "rare", "nobody"] {
            filters.push(Filter {
                client_id: Some(client.into()),
                ..Default::default()
            });
            filters.push(Filter {
                client_id: Some(client.into()),
                server: Some("files".into()),
                outcome: Some(Outcome::Denied),
                since: Some(1_100),
                until: Some(3_900),
                ..Default::default()
            });
        }
        let ids = |events: &[AuditEvent]| events.iter().map(|e| e.id).collect::<Vec<_>>();
        let cut = std::cell::Cell::new(0);
        let check = |why: &str| {
            let all = store
                .read(|c| page(c, &Filter::default(), Cursor::Before(None), MAX_PAGE))
                .unwrap();
            for f in &filters {
                let raced = store.read(|c| filter_sql(c, f)).unwrap();
                let raced =
                    raced.walked.is_some() && raced.text_match.is_some_and(|m| m.expr.is_some());
                let live: Vec<i64> = all.iter().filter(|e| f.matches(e)).map(|e| e.id).collect();
                // Newest first, page by page (some pages end mid-way).
                let mut paged = Vec::new();
                let mut cursor = None;
                loop {
                    let p = store
                        .read(|c| page(c, f, Cursor::Before(cursor), 97))
                        .unwrap();
                    paged.extend(ids(&p));
                    match p.last() {
                        Some(last) if p.len() == 97 => cursor = Some(last.id),
                        _ => break,
                    }
                }
                assert_eq!(paged, live, "{f:?}, {why}");
                // Oldest first, above a cursor.
                let after = store
                    .read(|c| page(c, f, Cursor::After(1_200), 300))
                    .unwrap();
                let mut expected: Vec<i64> = live
                    .iter()
                    .rev()
                    .copied()
                    .filter(|id| *id > 1_200)
                    .collect();
                expected.truncate(300);
                assert_eq!(ids(&after), expected, "{f:?} after, {why}");
                let n = live.len() as i64;
                assert_eq!(store.read(|c| count(c, f)).unwrap(), n, "{f:?}, {why}");
                let capped = store.read(|c| count_up_to(c, f, None, 10)).unwrap();
                assert_eq!(capped, (n.min(10), n > 10), "{f:?}, {why}");
                // Below an event, as a page's count goes on.
                if let Some(&middle) = live.get(live.len() / 2) {
                    let below = live.iter().filter(|id| **id < middle).count() as i64;
                    let counted = store.read(|c| count_up_to(c, f, Some(middle), 10_000));
                    assert_eq!(counted.unwrap().0, below, "{f:?} below {middle}, {why}");
                }
                // A count that may read only 100 rows: at most as many, and "more".
                let (some, more) = store
                    .read(|c| counted(c, f, None, 10_000, Some(100)))
                    .unwrap();
                if raced {
                    assert!(
                        some <= n && (more || some == n),
                        "{some} of {n}, {f:?}, {why}"
                    );
                    cut.set(cut.get() + usize::from(some < n));
                } else {
                    assert_eq!((some, more), (n, false), "{f:?}, {why}");
                }
            }
        };
        check("nothing indexed");
        // The index by agent to 1,600, the text index to 100.
        store.index_log(100).unwrap();
        let reach = |c: &Connection| {
            let q = "SELECT upto, agents_upto FROM audit_text_indexed";
            Ok::<_, StoreError>(c.query_row(q, [], |r| Ok((r.get(0)?, r.get(1)?)))?)
        };
        assert_eq!(store.read(reach).unwrap(), (100i64, 1_600i64));
        check("part indexed");
        store.index_log(100).unwrap();
        check("more indexed by agent than by text");
        while store.index_log(1_000).unwrap() > 0 {}
        ANSWERED.with(|a| a.set([0; 2]));
        check("all indexed");
        // SQLite reads one index, so the events first are picked by one.
        let walk = |f: &Filter| store.read(|c| filter_sql(c, f)).unwrap().walked.unwrap();
        let agent_denied = walk(&filters[4]);
        assert!(
            agent_denied.contains("audit_by_agent.client_id")
                && agent_denied.contains("audit_by_agent.outcome")
                && !agent_denied.contains("audit_events"),
            "{agent_denied}"
        );
        assert!(walk(&filters[3]).contains(NOT_ALLOWED));
        let server = walk(&filters[2]);
        assert!(server.contains("server") && !server.contains("outcome"));
        // The rare agent's five events end the events first in one turn;
        // "zq" ends the index's candidates first in one.
        let [events_first, index_first] = ANSWERED.with(|a| a.get());
        assert!(
            events_first > 0 && index_first > 0,
            "{events_first}, {index_first}"
        );
        assert!(cut.get() > 0, "some counts stopped at their reads");
        // Retention cuts the oldest; the index forgets them.
        store
            .write(|tx| super::super::delete_through(tx.conn(), 1_000))
            .unwrap();
        check("the oldest thousand cut");
        // The agents' index forgets them too: it holds every agent's event, and no other.
        let held = store
            .read(|c| {
                let q = "SELECT (SELECT COUNT(*) FROM audit_by_agent),
                     (SELECT COUNT(*) FROM audit_events WHERE client_id IS NOT NULL)";
                Ok::<_, StoreError>(c.query_row(q, [], |r| Ok((r.get(0)?, r.get(1)?)))?)
            })
            .unwrap();
        let (entries, events): (i64, i64) = held;
        assert_eq!(entries, events);
    }

    /// A search of one agent's events while the text index lags 180,000
    /// events behind the index by agent (steady writes outrun it): how long
    /// its first page and its count take, the lag walked through the index
    /// by agent.
    #[test]
    #[ignore]
    #[allow(clippy::disallowed_methods)] // it times what it reads
    fn a_search_of_one_agent_while_the_text_index_lags() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testing::file_store(&dir, 1_000);
        for chunk in 0..20i64 {
            store
                .write(|tx| {
                    for i in chunk * 10_000..(chunk + 1) * 10_000 {
                        // One agent's in 50 calls `zq_note`.
                        let tool = match i {
                            _ if i % 1_000 == 3 => "zq_note",
                            _ if i % 3 == 0 => "read_note",
                            _ => "list_files",
                        };
                        let event = NewEvent::new(EventKind::ToolCall, Outcome::Allowed)
                            .tool(tool)
                            .client(&format!("c{}", i % 20));
                        tx.record(event, 1_000 + i)?;
                    }
                    Ok::<_, StoreError>(())
                })
                .unwrap();
        }
        // The index by agent to 192,000, the text index to 12,000.
        for _ in 0..12 {
            store.index_log(1_000).unwrap();
        }
        for text in ["read_note", "zq_note"] {
            let f = Filter {
                client_id: Some("c3".into()),
                text: Some(text.into()),
                ..Default::default()
            };
            for _ in 0..3 {
                let started = Instant::now();
                let p = store
                    .read(|c| page(c, &f, Cursor::Before(None), 200))
                    .unwrap();
                let paged = started.elapsed();
                let started = Instant::now();
                let n = store.read(|c| count_up_to(c, &f, None, 10_000)).unwrap();
                eprintln!(
                    "{text}: first page ({} events) {paged:?}, count {n:?} {:?}",
                    p.len(),
                    started.elapsed()
                );
            }
        }
    }
}
