//! Time from `gatehouse servers add` to the new server's tools listed.
//!
//! A person types `gatehouse servers add NAME -- COMMAND…` while Gatehouse runs;
//! the command returns once the server is in the config, in force and has
//! listed its tools (it prints them). This bench times that whole command, as
//! the person waits for it, and sets it against two baselines measured in the
//! same run, interleaved round by round (the machine is shared and noisy):
//!
//! - `gatehouse servers list`: the CLI process and one control-socket request,
//!   the least any `servers` command can take;
//! - the server alone: start the same command over stdio, `initialize`,
//!   `tools/list`, what any MCP client pays to see the tools.
//!
//! Servers: `gatehouse demo-server` (5 tools) and, when `tests/interop` has
//! been installed (`npm ci` there), `@modelcontextprotocol/server-filesystem`.
//! Each round adds the server under a new name and removes it afterwards
//! (untimed). Any failed command fails the run.
//!
//! Run:   cargo bench --bench servers      (GATEHOUSE_BENCH_QUICK=1 for a smoke run)

// A benchmark measures real time.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

const GATEHOUSE_BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// An MCP server to add: its name prefix, command line, and a tool it must list.
struct Upstream {
    name: &'static str,
    command: Vec<String>,
    tool: &'static str,
}

mod support;

fn main() -> Result<()> {
    let rounds = if support::quick() { 3 } else { 30 };
    let setup = support::Setup::new()?;
    let (dir, data_dir, runtime) = (&setup.dir, &setup.data_dir, &setup.runtime);
    let config = setup.config()?;
    let gh = runtime.block_on(gatehouse::daemon::start(config, data_dir))?;
    println!("servers bench ({rounds} rounds): Gatehouse at {}", gh.url());
    let result = run(data_dir, dir.path(), rounds);
    runtime.block_on(gh.shutdown());
    result
}

fn upstreams(notes: &Path) -> Result<Vec<Upstream>> {
    let mut all = vec![Upstream {
        name: "demo",
        command: vec![GATEHOUSE_BIN.into(), "demo-server".into()],
        tool: "read_note",
    }];
    let filesystem = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    if filesystem.exists() {
        std::fs::create_dir_all(notes)?;
        all.push(Upstream {
            name: "files",
            command: vec![
                "node".into(),
                filesystem.to_string_lossy().into_owned(),
                notes.to_string_lossy().into_owned(),
            ],
            tool: "read_text_file",
        });
    } else {
        println!("(server-filesystem not installed: `cd tests/interop && npm ci` to include it)");
    }
    Ok(all)
}

fn run(data_dir: &Path, tmp: &Path, rounds: usize) -> Result<()> {
    let upstreams = upstreams(&tmp.join("notes"))?;
    let mut list = Vec::new();
    let mut rows: Vec<(Vec<Duration>, Vec<Duration>)> =
        upstreams.iter().map(|_| Default::default()).collect();
    for round in 0..=rounds {
        let listed = timed(|| cli(data_dir, &["servers", "list"]).map(drop))?;
        for (upstream, (direct, added)) in upstreams.iter().zip(rows.iter_mut()) {
            let alone = timed(|| list_directly(upstream))?;
            let name = format!("{}{round}", upstream.name);
            let mut args = vec!["servers", "add", name.as_str(), "--"];
            args.extend(upstream.command.iter().map(String::as_str));
            let mut said = String::new();
            let add = timed(|| {
                said = cli(data_dir, &args)?;
                Ok(())
            })?;
            ensure!(
                said.contains(upstream.tool),
                "servers add did not list {}: {said}",
                upstream.tool
            );
            cli(data_dir, &["servers", "rm", &name])?;
            // Round 0 warms the caches (binaries, node's modules) and is not counted.
            if round > 0 {
                direct.push(alone);
                added.push(add);
            }
        }
        if round > 0 {
            list.push(listed);
        }
    }
    let base = median(&mut list);
    println!("\n{:<58} {:>9} {:>9} {:>7}", "", "median", "p90", "×list");
    println!(
        "{:<58} {:>9} {:>9} {:>7}",
        "gatehouse servers list (the CLI alone)",
        ms(base),
        ms(p90(&mut list)),
        "1.00"
    );
    for (upstream, (direct, added)) in upstreams.iter().zip(rows.iter_mut()) {
        let (d, a) = (median(direct), median(added));
        let line = |label: String, m: Duration, p: Duration| {
            let x = m.as_secs_f64() / base.as_secs_f64();
            println!("{label:<58} {:>9} {:>9} {x:>7.2}", ms(m), ms(p));
        };
        line(
            format!(
                "{}: server alone, start + initialize + tools/list",
                upstream.name
            ),
            d,
            p90(direct),
        );
        line(
            format!("{}: gatehouse servers add → tools listed", upstream.name),
            a,
            p90(added),
        );
        let over = a.saturating_sub(d);
        println!(
            "{:<58} {:>9}   ({:.2}× the server alone)",
            format!("{}: Gatehouse's part (add − alone)", upstream.name),
            ms(over),
            a.as_secs_f64() / d.as_secs_f64()
        );
    }
    Ok(())
}

fn timed(mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

/// Runs the CLI against the running Gatehouse; its stdout, or the failure.
fn cli(data_dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(GATEHOUSE_BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "gatehouse {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// Starts the server, initializes, lists its tools and checks the one expected is there.
fn list_directly(upstream: &Upstream) -> Result<()> {
    let mut child = Command::new(&upstream.command[0])
        .args(&upstream.command[1..])
        // The environment Gatehouse gives a stdio server (a fresh one), so both
        // start alike: node reads NODE_EXTRA_CA_CERTS, when set, at every start.
        .env_clear()
        .envs(
            ["PATH", "HOME"]
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut ask = |msg: Value| -> Result<Value> {
        writeln!(stdin, "{msg}")?;
        stdin.flush()?;
        if msg.get("id").is_none() {
            return Ok(Value::Null);
        }
        loop {
            let line = lines.next().context("the server exited")??;
            let reply: Value = serde_json::from_str(&line)?;
            if reply.get("id") == msg.get("id") {
                return Ok(reply);
            }
        }
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}});
    ensure!(ask(init)?.get("result").is_some(), "initialize failed");
    ask(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
    let tools = ask(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}))?;
    let listed = tools["result"]["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["name"] == upstream.tool));
    let _ = child.kill();
    let _ = child.wait();
    ensure!(
        listed,
        "{} did not list {}: {tools}",
        upstream.name,
        upstream.tool
    );
    Ok(())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn p90(times: &mut [Duration]) -> Duration {
    times.sort();
    times[(times.len() * 9 / 10).min(times.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
