//! Gatehouse side by side with what a person would run instead, in one run,
//! on the same machine, against the same upstreams, driven by the same client
//! (reqwest, one MCP session per agent, `tools/call` back to back):
//!
//! - `@modelcontextprotocol/server-everything` over streamable HTTP (`echo`):
//!   straight to it; the official TypeScript SDK's bearer check
//!   (`requireBearerAuth`) in front of a forwarding server
//!   (`tests/interop/peers_front.mjs`); IBM's ContextForge gateway with its JWT
//!   authentication on (`tests/interop/contextforge.sh`); Gatehouse.
//! - the demo server over stdio (`read_note`): straight to it (one process per
//!   agent); `supergateway` (stdio → streamable HTTP, stateful: one process per
//!   session), the plain unauthenticated proxy people use; the SDK's bearer
//!   check in front of supergateway; Gatehouse.
//!
//! At 1, 16 and 64 concurrent agents (1 and 16 with GATEHOUSE_BENCH_QUICK=1):
//! requests/s and p50/p99, each as a ratio to direct and to Gatehouse. Needs
//! `scripts/setup-peers` (the interop set-up plus ContextForge).
//!
//! Run:   cargo bench --bench peers

// A benchmark measures real time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use serde_json::{json, Value};
use support::Mcp;

const GATEHOUSE_BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

fn interop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Where a case's agents connect.
#[derive(Clone)]
enum Target {
    /// An MCP endpoint; each agent's token (none: no auth).
    Http(String, Vec<Option<String>>),
    /// The demo server over stdio, one process per agent.
    Stdio,
    /// A target that calls the tool by another name.
    Renamed(Box<Target>, &'static str),
}

fn main() -> Result<()> {
    let quick = support::quick();
    let (levels, secs): (&[usize], u64) = if quick {
        (&[1, 16], 1)
    } else {
        (&[1, 16, 64], 3)
    };
    let most = *levels.iter().max().unwrap_or(&1);
    let modules = interop().join("node_modules");
    if !modules.join("supergateway").exists() || !interop().join(".venv-contextforge").exists() {
        bail!("run scripts/setup-peers first (it installs server-everything, the SDK, supergateway and ContextForge)");
    }
    let setup = support::Setup::new()?;
    let mut children = Vec::new();
    let everything_port = free_port()?;
    children.push(node(
        &[
            "--require",
            &interop().join("loopback_only.cjs").display().to_string(),
            &modules
                .join("@modelcontextprotocol/server-everything/dist/index.js")
                .display()
                .to_string(),
            "streamableHttp",
        ],
        &[("PORT", everything_port.to_string())],
    )?);
    let everything = format!("http://127.0.0.1:{everything_port}/mcp");
    let sg_port = free_port()?;
    let demo = format!("{GATEHOUSE_BIN} demo-server");
    children.push(node(
        &[
            &modules
                .join("supergateway/dist/index.js")
                .display()
                .to_string(),
            "--stdio",
            &demo,
            "--outputTransport",
            "streamableHttp",
            "--stateful",
            "--port",
            &sg_port.to_string(),
            "--logLevel",
            "none",
        ],
        &[],
    )?);
    let supergateway = format!("http://127.0.0.1:{sg_port}/mcp");
    let toml = format!(
        "port = 0\n[servers.demo]\ncommand = {GATEHOUSE_BIN:?}\nargs = [\"demo-server\"]\n\
         [servers.everything]\nurl = {everything:?}\n"
    );
    let config = gatehouse::Config::parse(&toml, Path::new("peers.toml"))?;
    let rt = &setup.runtime;
    let gh = rt.block_on(gatehouse::daemon::start(config, &setup.data_dir))?;
    let result = rt.block_on(async {
        wait_up(&everything).await?;
        wait_up(&supergateway).await?;
        let http = support::client()?;
        let gh_tokens = |server: &'static str| {
            let (gh, http) = (&gh, &http);
            async move {
                let mut tokens = Vec::new();
                for _ in 0..most {
                    tokens.push(Some(support::authorize(gh, http, server, "").await?.access));
                }
                Ok::<_, anyhow::Error>(tokens)
            }
        };
        let gh_everything = gh_tokens("everything").await?;
        let gh_demo = gh_tokens("demo").await?;
        let static_tokens: Vec<Option<String>> = (0..most)
            .map(|i| Some(format!("peer-bench-token-{i}")))
            .collect();
        let list = static_tokens
            .iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join(",");
        let front = |upstream: &str| -> Result<(Peer, String)> {
            let port = free_port()?;
            let child = node(
                &[
                    &interop().join("peers_front.mjs").display().to_string(),
                    &port.to_string(),
                    upstream,
                    &list,
                ],
                &[],
            )?;
            Ok((child, format!("http://127.0.0.1:{port}/mcp")))
        };
        let contextforge =
            ContextForge::start(&setup.dir.path().join("contextforge"), &everything)?;
        let (front_everything, front_everything_url) = front(&everything)?;
        let (front_sg, front_sg_url) = front(&supergateway)?;
        wait_up(&front_everything_url).await?;
        wait_up(&front_sg_url).await?;
        let none = vec![None; most];
        let groups = [
            (
                "server-everything over streamable HTTP, tools/call echo",
                json!({"name": "echo", "arguments": {"message": "hi"}}),
                vec![
                    ("direct", Target::Http(everything.clone(), none.clone())),
                    (
                        "TS SDK requireBearerAuth + forward",
                        Target::Http(front_everything_url, static_tokens.clone()),
                    ),
                    (
                        // It names an upstream's tools `<gateway>-<tool>`.
                        "ContextForge (JWT auth)",
                        Target::Renamed(
                            Box::new(Target::Http(
                                contextforge.url.clone(),
                                vec![Some(contextforge.token.clone()); most],
                            )),
                            "everything-echo",
                        ),
                    ),
                    (
                        "Gatehouse",
                        Target::Http(format!("{}/mcp/everything", gh.url()), gh_everything),
                    ),
                ],
            ),
            (
                "demo server over stdio, tools/call read_note",
                json!({"name": "read_note", "arguments": {"title": "welcome"}}),
                vec![
                    ("direct (stdio)", Target::Stdio),
                    (
                        "supergateway (no auth)",
                        Target::Http(supergateway.clone(), none),
                    ),
                    (
                        "TS SDK requireBearerAuth + supergateway",
                        Target::Http(front_sg_url, static_tokens),
                    ),
                    (
                        "Gatehouse",
                        Target::Http(format!("{}/mcp/demo", gh.url()), gh_demo),
                    ),
                ],
            ),
        ];
        println!("peer comparison ({} s per case and level)", secs);
        for (title, params, cases) in groups {
            println!("\n{title}");
            println!(
                "{:<42} {:>6} {:>9} {:>10} {:>10} {:>9} {:>11}",
                "", "agents", "req/s", "p50", "p99", "x direct", "x Gatehouse"
            );
            for &c in levels {
                let mut rows = Vec::new();
                for (name, target) in &cases {
                    let (per_sec, p50, p99) =
                        load(target, c, &params, Duration::from_secs(secs)).await?;
                    rows.push((*name, per_sec, p50, p99));
                }
                let direct = rows[0].1;
                let gatehouse = rows.last().map_or(1.0, |r| r.1);
                for (name, per_sec, p50, p99) in rows {
                    println!(
                        "{name:<42} {c:>6} {per_sec:>9.0} {:>10} {:>10} {:>8.2}x {:>10.2}x",
                        fmt(p50),
                        fmt(p99),
                        per_sec / direct,
                        per_sec / gatehouse
                    );
                }
            }
        }
        drop((front_everything, front_sg, contextforge));
        Ok::<_, anyhow::Error>(())
    });
    rt.block_on(gh.shutdown());
    drop(children);
    result
}

/// `c` agents, each with its own session, calling back to back for `time`:
/// requests/s, p50, p99. Any failed call fails the run.
async fn load(
    target: &Target,
    c: usize,
    params: &Value,
    time: Duration,
) -> Result<(f64, Duration, Duration)> {
    let mut sessions = Vec::new();
    for i in 0..c {
        sessions.push(open(target, i).await?);
    }
    let mut params = params.clone();
    if let Target::Renamed(_, tool) = target {
        params["name"] = json!(tool);
    }
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let started = Instant::now();
    let deadline = started + time;
    let workers: Vec<_> = sessions
        .into_iter()
        .map(|mut s| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut times = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let reply = s.send(&call).await?;
                    ensure!(reply.get("result").is_some(), "call failed: {reply}");
                    times.push(t.elapsed());
                }
                s.close().await;
                Ok::<_, anyhow::Error>(times)
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await??);
    }
    let per_sec = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    let at = |p: f64| {
        all.get(((p * all.len() as f64).ceil() as usize).max(1) - 1)
            .copied()
            .unwrap_or_default()
    };
    Ok((per_sec, at(0.5), at(0.99)))
}

/// One agent's session: straight to the demo server, or over HTTP.
async fn open(target: &Target, agent: usize) -> Result<Mcp> {
    let mut mcp = match target {
        Target::Http(url, tokens) => Mcp::http(url.clone(), tokens[agent].clone())?,
        Target::Stdio => return Mcp::direct(GATEHOUSE_BIN, &["demo-server".into()]).await,
        Target::Renamed(target, _) => return Box::pin(open(target, agent)).await,
    };
    mcp.handshake().await?;
    Ok(mcp)
}

/// IBM's ContextForge in front of an upstream, with its JWT auth on: its
/// virtual server's MCP endpoint and a token for it. Stopped when dropped.
struct ContextForge {
    url: String,
    token: String,
    pid: String,
}

impl ContextForge {
    fn start(work: &Path, upstream: &str) -> Result<ContextForge> {
        let out = Command::new("bash")
            .arg(interop().join("contextforge.sh"))
            .args([
                &work.display().to_string(),
                &free_port()?.to_string(),
                upstream,
            ])
            .stderr(Stdio::inherit())
            .output()?;
        ensure!(out.status.success(), "ContextForge did not start");
        let text = String::from_utf8(out.stdout)?;
        let mut lines = text.lines();
        let (Some(url), Some(token)) = (lines.next(), lines.next()) else {
            bail!("contextforge.sh printed {text:?}");
        };
        let pid = std::fs::read_to_string(work.join("cf.pid"))?
            .trim()
            .to_string();
        Ok(ContextForge {
            url: url.to_string(),
            token: token.to_string(),
            pid,
        })
    }
}

impl Drop for ContextForge {
    fn drop(&mut self) {
        // It leads its own process group (setsid): end the group.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.pid)])
            .status();
    }
}

/// A peer's process, ended when it is dropped (a dropped `Child` runs on:
/// the bench's fronts were left running after it).
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node(args: &[&str], env: &[(&str, String)]) -> Result<Peer> {
    Ok(Peer(
        Command::new("node")
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(interop())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    ))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something answers HTTP at `url` (any status).
async fn wait_up(url: &str) -> Result<()> {
    let http = support::client()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(url).send().await.is_err() {
        ensure!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn fmt(d: Duration) -> String {
    match d.as_secs_f64() {
        s if s < 1e-3 => format!("{:.0} µs", s * 1e6),
        s => format!("{:.2} ms", s * 1e3),
    }
}
