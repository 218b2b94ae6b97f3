//! Gatehouse with a big database: 10,000 grants (each with a live access
//! token) and 1,000,000 audit events (100,000 with GATEHOUSE_BENCH_QUICK=1).
//!
//! 1. Start-up: `gatehouse serve` on that data directory, from spawn to the
//!    line that says where it listens (median of 5), and its memory once idle
//!    (RSS and PSS after 3 s).
//! 2. The timeline: the first page (200 events, and the count of all matches,
//!    as the app asks for it) for each filter the app has, and text search,
//!    through `api::Gatehouse::audit_page` (median of 5).
//! 3. The database's size per million events.
//!
//! The events are written straight into SQLite (unsealed: this is about
//! reading them), the text index brought up to date as the audit writer
//! keeps it. Nothing here asserts a time.
//!
//! Run:   cargo bench --bench scale      (GATEHOUSE_BENCH_QUICK=1 for a smoke run)

// A benchmark measures real time.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use gatehouse::api::{AuditFilter, Outcome};
use rusqlite::params;

const GATEHOUSE_BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
const GRANTS: usize = 10_000;
const AGENTS: usize = 8;

mod support;

fn main() -> Result<()> {
    let events = if support::quick() { 100_000 } else { 1_000_000 };
    let setup = support::Setup::new()?;
    let (config_path, data_dir, runtime) = (&setup.config_path, &setup.data_dir, &setup.runtime);
    // Gatehouse makes the schema and its keys; the rows come after it stops.
    let config = setup.config()?;
    let gh = runtime.block_on(gatehouse::daemon::start(config.clone(), data_dir))?;
    runtime.block_on(gh.shutdown());
    let now = gatehouse::clock::now();
    let seeding = Instant::now();
    let indexing = seed(&data_dir.join("gatehouse.db"), events, now)?;
    let seeded = seeding.elapsed();
    let db_bytes: u64 = ["gatehouse.db", "gatehouse.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data_dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "scale bench: {GRANTS} grants, {events} events (seeded in {:.1} s)",
        seeded.as_secs_f64()
    );
    let mb = db_bytes as f64 / 1e6;
    let per_million = mb * 1e6 / events as f64;
    println!("database: {mb:.0} MB ({per_million:.0} MB per million events)");
    println!(
        "text index brought up to date as the writer does, {} events a transaction: {:.1} s, {:.1} µs an event\n",
        gatehouse::bench::INDEX_CHUNK,
        indexing.as_secs_f64(),
        indexing.as_secs_f64() * 1e6 / events as f64
    );

    let mut starts = Vec::new();
    let mut memory = (0, 0);
    for run in 0..5 {
        let (took, child) = start_serve(config_path, data_dir)?;
        starts.push(took);
        if run == 4 {
            std::thread::sleep(Duration::from_secs(3));
            memory = idle_memory_kb(child.id())?;
        }
        stop(child);
    }
    starts.sort();
    println!(
        "gatehouse serve, start to listening: median {} (of 5: {})",
        ms(starts[2]),
        list(&starts)
    );
    println!(
        "gatehouse serve, idle after 3 s: RSS {:.1} MB, PSS {:.1} MB\n",
        memory.0 as f64 / 1024.0,
        memory.1 as f64 / 1024.0
    );

    let gh = runtime.block_on(gatehouse::daemon::start(config, data_dir))?;
    let api = gh.gatehouse();
    let hour_ago = now - 3_600_000;
    let cases: Vec<(&str, AuditFilter)> = vec![
        ("no filter", AuditFilter::default()),
        ("one agent", filter(|f| f.client_id = Some("c3".into()))),
        ("one server", filter(|f| f.server = Some("files".into()))),
        (
            "one server, rare (10 in the log)",
            filter(|f| f.server = Some("mail".into())),
        ),
        ("until an hour ago", filter(|f| f.until = Some(hour_ago))),
        (
            "outcome: error",
            filter(|f| f.outcome = Some(Outcome::Error)),
        ),
        (
            "outcome: revoked (10 in the log)",
            filter(|f| f.outcome = Some(Outcome::Revoked)),
        ),
        ("the last hour", filter(|f| f.since = Some(hour_ago))),
        (
            "the last minute, denied",
            filter(|f| {
                f.outcome = Some(Outcome::Denied);
                f.since = Some(now - 60_000);
            }),
        ),
        (
            "nothing since (a quiet hour)",
            filter(|f| f.since = Some(now + 1)),
        ),
        (
            "one agent, denied, last hour",
            filter(|f| {
                f.client_id = Some("c5".into());
                f.outcome = Some(Outcome::Denied);
                f.since = Some(hour_ago);
            }),
        ),
        (
            "one agent, denied, last minute",
            filter(|f| {
                f.client_id = Some("c5".into());
                f.outcome = Some(Outcome::Denied);
                f.since = Some(now - 60_000);
            }),
        ),
        (
            "text: \"note 4242\"",
            filter(|f| f.text = Some("note 4242".into())),
        ),
        (
            "text: \"delete\"",
            filter(|f| f.text = Some("delete".into())),
        ),
        (
            "text: \"no such thing\"",
            filter(|f| f.text = Some("no such thing".into())),
        ),
        (
            "text: \"c7\" (2 chars, no match)",
            filter(|f| f.text = Some("c7".into())),
        ),
        (
            "text: \"q\" (1 char, no match)",
            filter(|f| f.text = Some("q".into())),
        ),
        (
            "text: \"42\" (2 chars)",
            filter(|f| f.text = Some("42".into())),
        ),
        (
            "text: \"42\" and one agent",
            filter(|f| {
                f.text = Some("42".into());
                f.client_id = Some("c5".into());
            }),
        ),
        (
            "text: \"42\" and one server",
            filter(|f| {
                f.text = Some("42".into());
                f.server = Some("files".into());
            }),
        ),
        (
            "text: \"delete\" and one agent",
            filter(|f| {
                f.text = Some("delete".into());
                f.client_id = Some("c5".into());
            }),
        ),
        (
            "text: \"delete\" and one server",
            filter(|f| {
                f.text = Some("delete".into());
                f.server = Some("files".into());
            }),
        ),
        (
            "text: \"_n\" and one agent",
            filter(|f| {
                f.text = Some("_n".into());
                f.client_id = Some("c5".into());
            }),
        ),
    ];
    println!("Timeline first page (200 events + the count of all matches), median of 5");
    println!("{:<34} {:>10} {:>10}", "filter", "time", "matches");
    for (name, f) in cases {
        let mut times = Vec::new();
        let mut total = String::new();
        for _ in 0..5 {
            let started = Instant::now();
            let page = api.audit_page(&f, None, 200)?;
            times.push(started.elapsed());
            let more = if page.total_more { "+" } else { "" };
            total = format!("{}{more}", page.total.unwrap_or_default());
        }
        times.sort();
        println!("{name:<34} {:>10} {total:>10}", ms(times[2]));
    }
    runtime.block_on(gh.shutdown());
    Ok(())
}

fn filter(set: impl FnOnce(&mut AuditFilter)) -> AuditFilter {
    let mut f = AuditFilter::default();
    set(&mut f);
    f
}

/// 10,000 grants with a live access token each, and `n` tool-call events
/// spread over the last `n` × 10 ms; how long the text index took.
fn seed(path: &Path, n: usize, now: i64) -> Result<Duration> {
    let mut db = rusqlite::Connection::open(path)?;
    let tx = db.transaction()?;
    for i in 0..GRANTS {
        let (client, grant) = (format!("bench_client_{i}"), format!("gr_bench_{i}"));
        tx.execute(
            "INSERT INTO clients (client_id, name, kind, redirect_uris, auth_method, metadata, created_at)
             VALUES (?1, ?2, 'registered', '[\"http://127.0.0.1:9/cb\"]', 'none', '{}', ?3)",
            params![client, format!("Agent {i}"), now],
        )?;
        tx.execute(
            "INSERT INTO grants (id, client_id, server, tools, scope, duration, created_at, decided_by, ask_tools, may_ask_more)
             VALUES (?1, ?2, 'demo', '[\"read_note\",\"list_notes\"]', 'tool:read_note tool:list_notes', 'forever', ?3, 'me', '[]', 0)",
            params![grant, client, now],
        )?;
        let family = format!("fam_{i}");
        tx.execute(
            "INSERT INTO token_families (id, client_id, grant_id) VALUES (?1, ?2, ?3)",
            params![family, client, grant],
        )?;
        tx.execute(
            "INSERT INTO tokens (token_hash, kind, client_id, grant_id, family_id, issued_at, expires_at)
             VALUES (?1, 'access', ?2, ?3, ?4, ?5, ?6)",
            params![format!("{i:064x}"), client, grant, family, now, now + 3_600_000],
        )?;
    }
    for i in 0..AGENTS {
        tx.execute(
            "INSERT INTO clients (client_id, name, kind, redirect_uris, auth_method, metadata, created_at)
             VALUES (?1, ?2, 'registered', '[]', 'none', '{}', ?3)",
            params![format!("c{i}"), format!("Agent {i}"), now],
        )?;
    }
    {
        let tools = [
            "list_notes",
            "read_note",
            "write_note",
            "delete_note",
            "wait",
        ];
        // Denied and error one event in 20 each (as before: i % 20 = 17, 18);
        // revoked rare (10 in a million).
        let outcomes = ["allowed"; 18]
            .iter()
            .chain(&["denied", "error"])
            .copied()
            .collect::<Vec<_>>();
        let mut insert = tx.prepare(
            "INSERT INTO audit_events (at, kind, outcome, client_id, agent, server, tool, grant_id, duration_ms, detail)
             VALUES (?1, 'tool_call', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for i in 0..n {
            let agent = i % AGENTS;
            let detail = format!("{{\"arguments\":{{\"title\":\"note {i}\"}}}}");
            insert.execute(params![
                now - ((n - i) as i64) * 10,
                if i % 100_000 == 99_999 {
                    "revoked"
                } else {
                    outcomes[(i + 1) % 20]
                },
                format!("c{agent}"),
                format!("Agent {agent}"),
                if i % 100_000 == 49_999 {
                    "mail"
                } else if i % 3 == 0 {
                    "files"
                } else {
                    "demo"
                },
                tools[i % 5],
                format!("gr_{agent}"),
                (i % 97) as i64,
                detail,
            ])?;
        }
    }
    // The blocks' newest and oldest times as the audit writer keeps them: up to date.
    tx.execute_batch(
        "INSERT OR REPLACE INTO audit_time_blocks (block, newest, oldest)
           SELECT id / 4096, MAX(at), MIN(at) FROM audit_events
           WHERE id < (SELECT (MAX(id) + 1) / 4096 * 4096 FROM audit_events)
           GROUP BY id / 4096;",
    )?;
    tx.commit()?;
    // The text index, by the audit writer's own code.
    let indexing = Instant::now();
    gatehouse::bench::index_audit_log(path).map_err(anyhow::Error::msg)?;
    let indexing = indexing.elapsed();
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(indexing)
}

/// Spawns `gatehouse serve` and waits for it to say where it listens.
fn start_serve(config: &Path, data_dir: &Path) -> Result<(Duration, std::process::Child)> {
    let started = Instant::now();
    let mut child = Command::new(GATEHOUSE_BIN)
        .args(["serve", "--port", "0", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .context("gatehouse serve ended before listening")??;
        if line.starts_with("Gatehouse is running at ") {
            break;
        }
    }
    let took = started.elapsed();
    // Keep reading its output so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((took, child))
}

fn stop(mut child: std::process::Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

/// RSS and PSS of a process, in KiB.
fn idle_memory_kb(pid: u32) -> Result<(u64, u64)> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    let field = |name: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("Rss:"), field("Pss:")))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn list(times: &[Duration]) -> String {
    times.iter().map(|t| ms(*t)).collect::<Vec<_>>().join(", ")
}
