//! Gatehouse gateway benchmark. Every number is set against a baseline measured
//! in the same run (the machine is shared and noisy): medians, p99s and ratios,
//! never assertions on timings. Any failed request fails the run.
//!
//! 1. Latency of sequential MCP requests on one keep-alive connection, through the
//!    gateway vs. straight to the same upstream over stdio: `tools/call` on the demo
//!    server (grants of 1 and 5 tools) and on a 200-tool upstream, `tools/list` of a
//!    1,000-tool upstream (grants of 1,000 and 1). A no-op axum handler shows what
//!    HTTP alone costs. Cases run interleaved in blocks so load changes hit all alike.
//! 2. In-process cost of single steps: bearer check + policy (among the run's
//!    live tokens and among 100,000 more; grants of 5 and 1,000 tools), list
//!    filter, pin hashes, JSON round trip, audit write, a refresh and an
//!    introspection (the store work behind those two endpoints).
//! 3. Requests/s of `/token` (refresh_token grant, one rotation chain per worker)
//!    and `/introspect` (confidential client) vs. a no-op axum handler in the same
//!    process, driven by the same reqwest load loop at the same concurrency,
//!    with the process's CPU time per request (client and server together:
//!    on two saturated cores the ratio of throughputs is about the inverse
//!    ratio of these).
//!
//! Tokens come the real way, one new client per consent: a pre-registered client
//! (`gatehouse clients add`; /register is rate-limited per source), /authorize,
//! `api::Gatehouse::approve` (what the app and CLI call; every tool, none held
//! for the person), the waiting page for the code, /token with PKCE. The
//! in-process steps are timed through `gatehouse::bench`, which runs exactly
//! the code a request runs.
//!
//! Run:   cargo bench --bench gateway      (GATEHOUSE_BENCH_QUICK=1 for a smoke run;
//!        GATEHOUSE_BENCH_CONCURRENCY=n, default 16; GATEHOUSE_BENCH_CALLS=n calls per
//!        latency case, GATEHOUSE_BENCH_LISTS=n listings per tools/list case and
//!        GATEHOUSE_BENCH_LOAD_SECS=n seconds per throughput case, to profile those
//!        paths; each throughput case says on stderr when it starts). The many-tool
//!        upstreams are this binary re-executed with `--bench-upstream <n>`.

// A benchmark measures real time.
#![allow(clippy::disallowed_methods)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use gatehouse::api::Actor;
use gatehouse::bench;
use gatehouse::daemon::Running;
use serde_json::{json, Value};

const GATEHOUSE_BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

struct Settings {
    revocations: usize,
    calls: usize,
    lists: usize,
    warmup: usize,
    load_for: Duration,
    concurrency: usize,
}

mod support;

use support::{client, field, json_ok, register, Agent, Mcp};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--bench-upstream") {
        return fake_upstream(args.get(i + 1).context("tool count")?.parse()?);
    }
    let quick = support::quick();
    let (calls, lists, warmup, secs) = if quick {
        (200, 30, 10, 1)
    } else {
        (2000, 300, 50, 3)
    };
    let concurrency = std::env::var("GATEHOUSE_BENCH_CONCURRENCY").map_or(Ok(16), |c| c.parse())?;
    // More calls per latency case, to hold the gateway on its call path for `perf record -p`.
    let calls = std::env::var("GATEHOUSE_BENCH_CALLS").map_or(Ok(calls), |c| c.parse())?;
    let lists = std::env::var("GATEHOUSE_BENCH_LISTS").map_or(Ok(lists), |c| c.parse())?;
    let secs = std::env::var("GATEHOUSE_BENCH_LOAD_SECS").map_or(Ok(secs), |c| c.parse())?;
    let s = Settings {
        revocations: if quick { 20 } else { 200 },
        calls,
        lists,
        warmup,
        load_for: Duration::from_secs(secs),
        concurrency,
    };
    // Gatehouse and the no-op server get their own runtime, the one `gatehouse
    // serve` builds, so a blocked server worker never stalls the clients (on
    // a runtime of their own, two workers).
    let (server_rt, client_rt) = (gatehouse::daemon::runtime()?, client_runtime()?);
    let dir = tempfile::tempdir()?;
    let me = std::env::current_exe()?.to_string_lossy().into_owned();
    let toml = format!(
        "port = 0\n[servers.demo]\ncommand = {GATEHOUSE_BIN:?}\nargs = [\"demo-server\"]\n\
         [servers.tools200]\ncommand = {me:?}\nargs = [\"--bench-upstream\", \"200\"]\n\
         [servers.tools1000]\ncommand = {me:?}\nargs = [\"--bench-upstream\", \"1000\"]\n"
    );
    let config = gatehouse::Config::parse(&toml, Path::new("bench.toml"))?;
    let gh = server_rt.block_on(gatehouse::daemon::start(config, dir.path()))?;
    let noop = server_rt.block_on(noop_server())?;
    let mode = if quick { "quick" } else { "full" };
    // Cores this process may run on (`taskset` narrows them).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plural = if cores == 1 { "" } else { "s" };
    println!(
        "gateway bench ({mode}, {cores} core{plural}): Gatehouse at {}",
        gh.url()
    );
    if cores == 1 {
        println!(
            "one core: the latency cases read own work without cross-core wake-ups; the \
             throughput cases then share that core with the load (read them on two)"
        );
    }
    let result = client_rt.block_on(async {
        let http = client()?;
        let b = Bench {
            gh: &gh,
            http,
            me,
            noop,
            s,
        };
        b.run().await
    });
    server_rt.block_on(gh.shutdown());
    result
}

/// The agents' runtime: two workers, named for `perf report --sort comm`
/// (Gatehouse's are `gatehouse-worker`).
fn client_runtime() -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .thread_name("client-worker")
        .worker_threads(2)
        .enable_all();
    Ok(builder.build()?)
}

struct Bench<'a> {
    gh: &'a Running,
    http: reqwest::Client,
    me: String,
    noop: String,
    s: Settings,
}

/// Where a latency case sends its requests.
enum To {
    /// Straight to an upstream over stdio: `gatehouse demo-server`, or this binary with n tools.
    Direct(Option<usize>),
    /// Through the gateway to a server, with a grant for this scope ("": every tool; else 1 tool).
    Gateway(&'static str, &'static str),
    /// The no-op axum handler, over HTTP like the gateway.
    Noop,
    /// A no-op handler answering with the 1000-tool upstream's listing: the
    /// HTTP hop alone for that answer's 240 KiB.
    NoopListing,
}

impl To {
    fn label(&self) -> &'static str {
        match self {
            To::Direct(_) => "direct (stdio)",
            To::Gateway(_, "") => "gateway, every tool granted",
            To::Gateway(..) => "gateway, 1 tool granted",
            To::Noop => "no-op axum handler (HTTP alone)",
            To::NoopListing => "no-op handler, the same answer (HTTP alone)",
        }
    }

    fn part(&self) -> Part {
        match self {
            To::Direct(_) => Part::Direct,
            To::Gateway(..) => Part::Gateway,
            To::Noop => Part::Hop,
            // The same answer as the listing, not what the gateway sends on.
            To::NoopListing => Part::Other,
        }
    }
}

/// What a case's time stands for in the gateway's own work: gateway −
/// direct − the HTTP hop alone.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Direct,
    Gateway,
    Hop,
    Other,
}

impl Bench<'_> {
    async fn run(&self) -> Result<()> {
        let call = |tool: &str| json!({"jsonrpc": "2.0", "id": 0, "method": "tools/call", "params": {"name": tool, "arguments": {"title": "welcome"}}});
        let list = json!({"jsonrpc": "2.0", "id": 0, "method": "tools/list", "params": {}});
        let (s, read_note) = (&self.s, call("read_note"));
        // Per case: the target, and for tools/list how many tools the reply must hold.
        let groups = [
            (
                "tools/call read_note, demo server (5 tools)",
                read_note,
                s.calls,
                vec![
                    (To::Direct(None), 0),
                    (To::Gateway("demo", "tool:read_note"), 0),
                    (To::Gateway("demo", ""), 0),
                    (To::Noop, 0),
                ],
            ),
            (
                "tools/call, upstream with 200 tools",
                call("tool_0199"),
                s.calls,
                vec![
                    (To::Direct(Some(200)), 0),
                    (To::Gateway("tools200", ""), 0),
                    (To::Noop, 0),
                ],
            ),
            (
                "tools/list, upstream with 1000 tools",
                list,
                s.lists,
                vec![
                    (To::Direct(Some(1000)), 1000),
                    (To::Gateway("tools1000", ""), 1000),
                    (To::Gateway("tools1000", "tool:tool_0000"), 1),
                    (To::NoopListing, 1000),
                ],
            ),
            (
                "tools/call read_note with a progress token (SSE: progress, then the answer)",
                json!({"jsonrpc": "2.0", "id": 0, "method": "tools/call", "params": {"name": "read_note", "arguments": {"title": "welcome"}, "_meta": {"progressToken": "p"}}}),
                s.calls,
                vec![(To::Direct(None), 0), (To::Gateway("demo", ""), 0)],
            ),
        ];
        let mut latency = Vec::new();
        // The gateway cases' access tokens, by server and scope.
        let mut tokens = HashMap::new();
        for (title, msg, n, specs) in groups {
            let mut cases = Vec::new();
            for (to, list_len) in specs {
                let mcp = self.open(&to).await?;
                if let To::Gateway(server, scope) = to {
                    tokens.insert((server, scope), mcp.token().to_string());
                }
                let (label, part, tally) = (to.label(), to.part(), Tally::default());
                cases.push(Case {
                    label,
                    part,
                    mcp,
                    list_len,
                    tally,
                    blocks: Vec::new(),
                    cpu: Cpu::default(),
                });
            }
            time_interleaved(&mut cases, msg, s.warmup.min(n / 10), n).await?;
            latency.push((title, cases));
        }
        // One refresh chain per load worker, and one for the in-process refresh.
        let mut agents = Vec::new();
        for _ in 0..=s.concurrency {
            agents.push(self.authorize("demo", "").await?);
        }
        let own_chain = agents.pop().context("no refresh chain")?;
        let rs = register(self.gh, "client_secret_basic")?;
        let (id, secret) = (field(&rs, "client_id")?, field(&rs, "client_secret")?);
        let demo = tokens.get(&("demo", "")).context("no demo token")?.clone();
        let many = tokens
            .get(&("tools1000", ""))
            .context("no 1000-tool token")?;
        let steps = self.in_process((&demo, many), own_chain, (&id, &secret))?;
        let (base, token) = (self.gh.url(), demo);
        let (token_url, introspect_url) = (format!("{base}/token"), format!("{base}/introspect"));
        let targets = [
            ("no-op axum handler", Load::Noop(self.noop.clone())),
            ("POST /token (refresh_token)", Load::Refresh(token_url)),
            (
                "POST /introspect",
                Load::Introspect(introspect_url, id, secret, token),
            ),
        ];
        // The cases take turns, a slice each per round: a machine that
        // speeds up or slows down during the run moves them alike.
        let slice = s.load_for / LOAD_ROUNDS;
        let mut loads = Vec::new();
        for (name, target) in &targets {
            loads.push((*name, client()?, target, Throughput::default()));
        }
        for round in 1..=LOAD_ROUNDS {
            for (name, http, target, total) in &mut loads {
                let ms = slice.as_millis();
                eprintln!("throughput: {name} for {ms} ms (round {round} of {LOAD_ROUNDS})");
                total.add(load(http, target, &mut agents, slice).await);
            }
        }
        let loads: Vec<(&str, Throughput)> = loads.into_iter().map(|l| (l.0, l.3)).collect();
        let mut audit = Vec::new();
        for writers in [1, 16, 64] {
            let started = Instant::now();
            let events = bench::audit_appends(self.gh.gatehouse(), writers, s.load_for)
                .await
                .map_err(|e| anyhow!(e))?;
            audit.push((writers, events as f64 / started.elapsed().as_secs_f64()));
        }
        let revocation = self.revocation().await?;
        print_tables(&latency, &steps, &loads, s);
        revocation.print();
        println!(
            "\nAudit appends by group commit ({} s each)",
            s.load_for.as_secs()
        );
        println!("{:<30} {:>10}", "concurrent writers", "events/s");
        for (writers, per_sec) in audit {
            println!("{writers:<30} {per_sec:>10.0}");
        }
        let cases = latency
            .iter()
            .flat_map(|g| g.1.iter().map(|c| (c.label, &c.tally)));
        let failures: Vec<String> = cases
            .chain(loads.iter().map(|(name, t)| (*name, &t.tally)))
            .filter(|(_, t)| t.errors > 0)
            .map(|(name, t)| format!("{name}: {} failed; first: {}", t.errors, t.first_error))
            .collect();
        if !failures.is_empty() {
            let failures = failures.join("\n  ");
            bail!("REQUESTS FAILED, the numbers are worthless:\n  {failures}");
        }
        Ok(())
    }

    /// Revocation with calls in flight: per run, a new agent with two
    /// sessions calling `read_note` back to back; the agent is revoked through
    /// the API the CLI and the app call. Counts the calls sent after revoke
    /// returned that succeeded (must be none) and times the first refusal.
    async fn revocation(&self) -> Result<Revocation> {
        let mut out = Revocation::default();
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "read_note", "arguments": {"title": "welcome"}}});
        for _ in 0..self.s.revocations {
            let agent = self.authorize("demo", "").await?;
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut workers = Vec::new();
            for _ in 0..2 {
                let url = format!("{}/mcp/demo", self.gh.url());
                let mut mcp = Mcp::http(url, Some(agent.access.clone()))?;
                mcp.handshake().await?;
                let (stop, call) = (stop.clone(), call.clone());
                workers.push(tokio::spawn(async move {
                    let mut seen = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let sent = Instant::now();
                        let reply = mcp.send(&call).await;
                        let ok = reply.as_ref().is_ok_and(|r| r.get("result").is_some());
                        // Refused: the bearer challenge, or, for a call in flight when
                        // revoke closed its session, the JSON-RPC error that ends it.
                        let refused = match &reply {
                            Ok(r) => r.get("error").is_some(),
                            Err(e) => e.to_string().starts_with("HTTP 401"),
                        };
                        let what = match &reply {
                            Ok(r) => r.to_string(),
                            Err(e) => e.to_string(),
                        };
                        seen.push((sent, Instant::now(), ok, refused, what));
                        if refused {
                            break; // as an agent would: its token no longer works
                        }
                    }
                    seen
                }));
            }
            // The probe: the agent's next request once revoke has returned.
            let url = format!("{}/mcp/demo", self.gh.url());
            let mut probe = Mcp::http(url, Some(agent.access.clone()))?;
            probe.handshake().await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
            let gh = self.gh.gatehouse();
            gh.revoke_agent(&agent.client_id, Actor::Cli)?;
            let returned = Instant::now();
            let refused = probe.send(&call).await;
            let probe_refused = returned.elapsed();
            ensure!(
                matches!(&refused, Err(e) if e.to_string().starts_with("HTTP 401")),
                "the request after revoke was not refused: {refused:?}"
            );
            out.first_refusal.push(probe_refused);
            tokio::time::sleep(Duration::from_millis(10)).await;
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            for w in workers {
                for (sent, answered, ok, refused, what) in w.await? {
                    ensure!(ok || refused, "a call failed other than by refusal: {what}");
                    if ok && sent > returned {
                        out.succeeded_after += 1;
                    }
                    if refused && answered > returned {
                        out.refused_after += 1;
                    }
                    out.calls += 1;
                }
            }
        }
        ensure!(
            out.succeeded_after == 0,
            "{} calls sent after revoke returned went through",
            out.succeeded_after
        );
        Ok(out)
    }

    async fn open(&self, to: &To) -> Result<Mcp> {
        let (url, token) = match to {
            To::Direct(None) => return Mcp::direct(GATEHOUSE_BIN, &["demo-server".into()]).await,
            To::Direct(Some(n)) => {
                return Mcp::direct(&self.me, &["--bench-upstream".into(), n.to_string()]).await
            }
            To::Noop => (self.noop.clone(), None),
            To::NoopListing => (format!("{}-listing", self.noop), None),
            To::Gateway(server, scope) => {
                let url = format!("{}/mcp/{server}", self.gh.url());
                (url, Some(self.authorize(server, scope).await?.access))
            }
        };
        let mut mcp = Mcp::http(url, token)?;
        if !matches!(to, To::Noop | To::NoopListing) {
            mcp.handshake().await?;
        }
        Ok(mcp)
    }

    async fn authorize(&self, server: &str, scope: &str) -> Result<Agent> {
        support::authorize(self.gh, &self.http, server, scope).await
    }

    /// The gateway's and token endpoint's steps, called directly.
    /// `tokens` are two latency cases' access tokens: the 5 demo tools', 1000 tools'.
    fn in_process(&self, tokens: (&str, &str), chain: Agent, rs: (&str, &str)) -> Result<Steps> {
        let (gh, n) = (self.gh.gatehouse().as_ref(), self.s.calls);
        let mut out: Steps = Vec::new();
        // Bearer check + policy: what every request pays before it goes on,
        // among the live tokens the run made, then among 100,000 more.
        let cases = [
            (tokens.0, "demo", 5, "read_note"),
            (tokens.1, "tools1000", 1000, "tool_0999"),
        ];
        for extra in [0, 100_000] {
            if extra > 0 {
                bench::add_live_tokens(gh, tokens.0, extra).map_err(|e| anyhow!(e))?;
            }
            let (live, _) = bench::live_size(gh);
            for (token, server, tools, tool) in cases {
                let params = json!({"name": tool, "arguments": {"title": "welcome"}});
                let authorize = || {
                    bench::authorize_call(gh, token, server, tool, &params)
                        .map_err(|e| anyhow!("refused: {e}"))
                };
                let check = |count: usize| expect(count == tools, "unexpected grant");
                out.push((
                    format!("bearer check + policy, grant of {tools} tools, {live} live tokens"),
                    micro(n, authorize, check)?,
                ));
            }
        }
        let granted: std::collections::HashSet<String> =
            (0..1000).map(|i| format!("tool_{i:04}")).collect();
        let list = json!({"tools": fake_tools(1000)});
        let answer = json!({"jsonrpc": "2.0", "id": 1, "result": list}).to_string();
        let cache = bench::ListedTools::default();
        // Reading the upstream's answer and the grant part of the gateway's
        // listing filter (which also checks each granted tool's pin).
        let filter = || Ok(bench::filter_listing(&cache, &answer, &granted));
        let check = |len: usize| expect(len > answer.len() / 2, "the listing lost its tools");
        let step = micro(self.s.lists, filter, check)?;
        out.push((
            "tools/list read + grant filter, 1000 x 1000 granted".into(),
            step,
        ));
        let hash = || {
            Ok(list["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .map(bench::pin_of)
                .count())
        };
        let check = |count| expect(count == 1000, "not 1000 tools");
        out.push((
            "pin hashes of 1000 tool definitions".into(),
            micro(self.s.lists, hash, check)?,
        ));
        let listed = fake_tools(1000);
        let seen = bench::pinned(&listed);
        let compare = || Ok(bench::unchanged_definitions(&listed, &seen));
        out.push((
            "the same 1000 definitions checked against those seen".into(),
            micro(self.s.lists, compare, check)?,
        ));
        let text = list.to_string();
        let round_trip = || Ok(serde_json::from_str::<Value>(&text)?.to_string());
        let check = |reply: String| expect(reply.len() == text.len(), "JSON changed");
        let kb = text.len() / 1024;
        let step = micro(self.s.lists, round_trip, check)?;
        out.push((
            format!("JSON parse + serialize of that list ({kb} KiB)"),
            step,
        ));
        let write = || bench::audit_write(gh, &chain.client_id, 1).map_err(|e| anyhow!(e));
        out.push((
            "audit write (one tool_call event, sealed and committed)".into(),
            micro(n, write, ok)?,
        ));
        let group = || bench::audit_write(gh, &chain.client_id, 16).map_err(|e| anyhow!(e));
        out.push((
            "audit write, 16 such events in one commit (a group)".into(),
            micro(n / 4, group, ok)?,
        ));
        let prev = RefCell::new("0".repeat(64));
        let seal = || Ok(bench::audit_seal(&prev.borrow()));
        let next = |sealed: String| {
            expect(sealed.len() == 64, "a seal is 64 hex digits")?;
            *prev.borrow_mut() = sealed;
            Ok(())
        };
        out.push((
            "audit seal (the chaining part of that write: content + HMAC)".into(),
            micro(n, seal, next)?,
        ));
        // The peer-process lookup a new HTTP connection pays once (Linux /proc scan).
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let server = listener.local_addr()?;
        let _client = std::net::TcpStream::connect(server)?;
        let (_accepted, peer) = listener.accept()?;
        let processes = std::fs::read_dir("/proc").map_or(0, |d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        });
        let lookup = || Ok(bench::peer_lookup(server, peer));
        let mine = |pid: Option<u32>| expect(pid == Some(std::process::id()), "peer not found");
        out.push((
            format!("peer-process lookup, once per connection ({processes} processes)"),
            micro(n.min(500), lookup, mine)?,
        ));
        let refresh_token = RefCell::new(chain.refresh);
        let refresh = || {
            bench::refresh(gh, &chain.client_id, &refresh_token.borrow()).map_err(|e| anyhow!(e))
        };
        let rotate = |body: Value| {
            *refresh_token.borrow_mut() = field(&body, "refresh_token")?;
            Ok(())
        };
        let step = micro(n.min(1000), refresh, rotate)?;
        out.push(("token endpoint: refresh (write transaction)".into(), step));
        let introspect = || bench::introspect(gh, rs.0, rs.1, tokens.0).map_err(|e| anyhow!(e));
        let check = |active: bool| expect(active, "token not active");
        out.push((
            "introspection (live state: client key + token)".into(),
            micro(n, introspect, check)?,
        ));
        Ok(out)
    }
}

// ---------- HTTP helpers ----------

async fn noop_server() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/noop", listener.local_addr()?);
    let answer = |_body: axum::body::Bytes| async { axum::Json(json!({"result": {}})) };
    // The 1000-tool upstream's answer to the bench's `tools/list`, as JSON text.
    let listing = json!({"jsonrpc": "2.0", "id": 0, "result": {"tools": fake_tools(1000)}});
    let listing = listing.to_string();
    let listed = move |_body: axum::body::Bytes| {
        let listing = listing.clone();
        async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                listing,
            )
        }
    };
    let app = axum::Router::new()
        .route("/noop", axum::routing::post(answer))
        .route("/noop-listing", axum::routing::post(listed));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

// ---------- Timing ----------

/// Successful requests' latencies, and the failures.
#[derive(Default)]
struct Tally {
    times: Vec<Duration>,
    errors: usize,
    first_error: String,
}

impl Tally {
    fn add(&mut self, result: Result<Duration>) {
        match result {
            Ok(t) => self.times.push(t),
            Err(e) if self.errors == 0 => (self.errors, self.first_error) = (1, format!("{e:#}")),
            Err(_) => self.errors += 1,
        }
    }

    /// Takes in another tally (another worker's, another round's).
    fn absorb(&mut self, other: Tally) {
        self.times.extend(other.times);
        if self.errors == 0 {
            self.first_error = other.first_error;
        }
        self.errors += other.errors;
    }
}

/// Median and p99 (nearest rank).
type Stats = (Duration, Duration);

#[derive(Default)]
struct Revocation {
    calls: usize,
    succeeded_after: usize,
    refused_after: usize,
    first_refusal: Vec<Duration>,
}

impl Revocation {
    fn print(&self) {
        let (p50, p99) = stats(&self.first_refusal);
        println!(
            "\nRevocation with calls in flight ({} runs, 2 sessions calling back to back, {} calls)",
            self.first_refusal.len(),
            self.calls
        );
        let (ok, refused) = (self.succeeded_after, self.refused_after);
        println!("  calls sent after revoke returned that succeeded: {ok} (refused: {refused})");
        println!(
            "  the agent's next request after revoke returned, refused in: median {}, p99 {}",
            fmt(p50),
            fmt(p99)
        );
    }
}
type Steps = Vec<(String, (Stats, Duration))>;

fn stats(times: &[Duration]) -> Stats {
    let mut v = times.to_vec();
    v.sort();
    let rank = |p: f64| ((p * v.len() as f64).ceil() as usize).max(1) - 1;
    let at = |p| v.get(rank(p)).copied().unwrap_or_default();
    (at(0.5), at(0.99))
}

/// A `check` that fails with `what` unless `ok`.
fn expect(ok: bool, what: &str) -> Result<()> {
    ensure!(ok, "{what}");
    Ok(())
}

/// A `check` for steps whose result needs no checking.
fn ok<T>(_: T) -> Result<()> {
    Ok(())
}

/// Median, p99 and mean of `n` timed runs of `step`; `check` validates each result, untimed.
fn micro<T>(
    n: usize,
    mut step: impl FnMut() -> Result<T>,
    mut check: impl FnMut(T) -> Result<()>,
) -> Result<(Stats, Duration)> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let result = step();
        times.push(started.elapsed());
        check(result?)?;
    }
    let mean = times.iter().sum::<Duration>() / n.max(1) as u32;
    Ok((stats(&times), mean))
}

struct Case {
    label: &'static str,
    part: Part,
    mcp: Mcp,
    /// `tools/list`: how many tools the reply must hold; 0: a successful `tools/call`.
    list_len: usize,
    tally: Tally,
    /// Each block's median, in the order the blocks ran ([`time_interleaved`]).
    blocks: Vec<Duration>,
    /// Gatehouse's CPU time over the case's requests ([`gatehouse_cpu`]).
    cpu: Cpu,
}

impl Case {
    async fn once(&mut self, msg: &Value) -> Result<Duration> {
        let started = Instant::now();
        let reply = self.mcp.send(msg).await?;
        let elapsed = started.elapsed();
        let result = reply
            .get("result")
            .with_context(|| format!("error: {reply}"))?;
        if self.list_len > 0 {
            let (got, want) = (
                result["tools"].as_array().map_or(0, Vec::len),
                self.list_len,
            );
            ensure!(got == want, "tools/list returned {got} tools, not {want}");
        } else {
            ensure!(result["isError"] != json!(true), "tool error: {reply}");
        }
        Ok(elapsed)
    }
}

/// How many blocks [`time_interleaved`] cuts a case's calls into, each of
/// at least [`BLOCK_AT_LEAST`] calls (so each block has a median).
const BLOCKS: usize = 40;
const BLOCK_AT_LEAST: usize = 10;

/// `n` sequential requests per case, in interleaved blocks after a warm-up;
/// every other round of blocks runs the cases in reverse order, so a load
/// that rises or falls over a round weighs on each case alike.
async fn time_interleaved(
    cases: &mut [Case],
    mut msg: Value,
    warmup: usize,
    n: usize,
) -> Result<()> {
    for case in cases.iter_mut() {
        for _ in 0..warmup {
            case.once(&msg).await?;
        }
    }
    let (block, mut id) = ((n / BLOCKS).max(BLOCK_AT_LEAST), 1);
    for (round, start) in (0..n).step_by(block).enumerate() {
        let mut order: Vec<usize> = (0..cases.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let case = &mut cases[i];
            let (cpu, from) = (gatehouse_cpu(), case.tally.times.len());
            for _ in start..(start + block).min(n) {
                id += 1;
                msg["id"] = json!(id);
                let result = case.once(&msg).await;
                case.tally.add(result);
            }
            case.cpu.add(gatehouse_cpu(), cpu);
            case.blocks.push(stats(&case.tally.times[from..]).0);
        }
    }
    Ok(())
}

#[derive(Clone)]
enum Load {
    Noop(String),
    /// Token endpoint URL.
    Refresh(String),
    /// Introspection URL, client id, client secret, the token to introspect.
    Introspect(String, String, String, String),
}

/// One request; the worker's refresh token is replaced on each rotation.
async fn hit(http: &reqwest::Client, target: &Load, agent: &mut Agent) -> Result<Duration> {
    let started = Instant::now();
    match target {
        Load::Noop(url) => {
            let form = [("token", agent.refresh.as_str())];
            json_ok(http.post(url).form(&form).send().await?).await?;
        }
        Load::Refresh(url) => {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", &agent.refresh),
                ("client_id", &agent.client_id),
            ];
            let body = json_ok(http.post(url).form(&form).send().await?).await?;
            field(&body, "access_token")?;
            agent.refresh = field(&body, "refresh_token")?;
        }
        Load::Introspect(url, id, secret, token) => {
            let req = http.post(url).basic_auth(id, Some(secret));
            let req = req.form(&[("token", token)]);
            let body = json_ok(req.send().await?).await?;
            ensure!(body["active"] == json!(true), "token not active: {body}");
        }
    }
    Ok(started.elapsed())
}

/// CPU time of Gatehouse's threads in this process: its runtime's (named
/// `gatehouse-worker`) and the store's writer.
#[derive(Clone, Copy, Default)]
struct Cpu {
    workers: Duration,
    writer: Duration,
    /// Times the threads were put on a core (each a wake-up or a turn).
    workers_runs: u64,
    writer_runs: u64,
}

impl Cpu {
    /// Adds what was spent from `before` to `after`.
    fn add(&mut self, after: Cpu, before: Cpu) {
        self.workers += after.workers.saturating_sub(before.workers);
        self.writer += after.writer.saturating_sub(before.writer);
        self.workers_runs += after.workers_runs.saturating_sub(before.workers_runs);
        self.writer_runs += after.writer_runs.saturating_sub(before.writer_runs);
    }

    /// Times a request the threads were put on a core, (workers, writer).
    fn runs_per_request(&self, n: usize) -> (f64, f64) {
        let per = |r: u64| r as f64 / n.max(1) as f64;
        (per(self.workers_runs), per(self.writer_runs))
    }

    /// Microseconds a request, (workers, writer).
    fn per_request(&self, n: usize) -> (f64, f64) {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n.max(1) as f64;
        (per(self.workers), per(self.writer))
    }
}

/// Gatehouse's CPU time so far, from the scheduler's count per thread in
/// nanoseconds, and how often each thread was put on a core
/// (`/proc/self/task/*/schedstat`: time on a core, time waiting for one, turns).
fn gatehouse_cpu() -> Cpu {
    let mut cpu = Cpu::default();
    let Ok(threads) = std::fs::read_dir("/proc/self/task") else {
        return cpu;
    };
    let read = |dir: &Path, file| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    for thread in threads.flatten().map(|t| t.path()) {
        let name = read(&thread, "comm");
        let (time, runs) = if name.starts_with("gatehouse-work") {
            (&mut cpu.workers, &mut cpu.workers_runs)
        } else if name.starts_with("store-writer") {
            (&mut cpu.writer, &mut cpu.writer_runs)
        } else {
            continue;
        };
        let schedstat = read(&thread, "schedstat");
        let mut fields = schedstat.split_whitespace().map(|n| n.parse().unwrap_or(0));
        let (ns, turns) = (fields.next(), fields.nth(1));
        *time += Duration::from_nanos(ns.unwrap_or(0));
        *runs += turns.unwrap_or(0);
    }
    cpu
}

/// This process's CPU time so far (user and system, every thread).
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// How many turns the throughput cases take (`load_for` split among them).
const LOAD_ROUNDS: u32 = 3;

/// A throughput case over its rounds: the requests, the time they took, and
/// this process's CPU time meanwhile (it runs both Gatehouse and the load's
/// client, so it is both sides' work).
#[derive(Default)]
struct Throughput {
    tally: Tally,
    elapsed: Duration,
    cpu: Duration,
    /// Of which Gatehouse's threads (the rest is the load's client).
    gatehouse: Cpu,
}

impl Throughput {
    fn add(&mut self, round: Throughput) {
        self.tally.absorb(round.tally);
        self.elapsed += round.elapsed;
        self.cpu += round.cpu;
        self.gatehouse.add(round.gatehouse, Cpu::default());
    }

    fn per_sec(&self) -> f64 {
        self.tally.times.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_per_request(&self) -> Duration {
        self.cpu / self.tally.times.len().max(1) as u32
    }

    /// Gatehouse's share of [`Self::cpu_per_request`], in µs (workers + writer).
    fn gatehouse_per_request(&self) -> f64 {
        let (workers, writer) = self.gatehouse.per_request(self.tally.times.len());
        workers + writer
    }
}

/// One worker per refresh chain, each sending requests back to back for
/// `load_for`.
async fn load(
    http: &reqwest::Client,
    target: &Load,
    chains: &mut [Agent],
    load_for: Duration,
) -> Throughput {
    let (started, cpu, gatehouse) = (Instant::now(), cpu_time(), gatehouse_cpu());
    let deadline = started + load_for;
    let workers: Vec<_> = chains
        .iter()
        .map(|chain| {
            let (http, target, mut chain) = (http.clone(), target.clone(), chain.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    tally.add(hit(&http, &target, &mut chain).await);
                }
                (chain, tally)
            })
        })
        .collect();
    let mut total = Throughput::default();
    for (worker, slot) in workers.into_iter().zip(chains.iter_mut()) {
        let (chain, tally) = worker.await.expect("load worker panicked");
        *slot = chain;
        total.tally.absorb(tally);
    }
    total.elapsed = started.elapsed();
    total.cpu = cpu_time() - cpu;
    total.gatehouse.add(gatehouse_cpu(), gatehouse);
    total
}

// ---------- Report ----------

fn fmt(d: Duration) -> String {
    match d.as_secs_f64() {
        s if s < 1e-3 => format!("{:.1} µs", s * 1e6),
        s => format!("{:.2} ms", s * 1e3),
    }
}

fn print_tables(
    latency: &[(&str, Vec<Case>)],
    steps: &Steps,
    loads: &[(&str, Throughput)],
    s: &Settings,
) {
    println!("\nLatency of sequential requests, one keep-alive connection (x = vs. direct)");
    println!(
        "{:<36} {:>5} {:>10} {:>10} {:>8} {:>8} {:>11}",
        "", "n", "median", "p99", "x med", "x p99", "+ median"
    );
    for (title, cases) in latency {
        println!("{title}");
        let all: Vec<Stats> = cases.iter().map(|c| stats(&c.tally.times)).collect();
        for (c, (p50, p99)) in cases.iter().zip(&all) {
            let x = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
            let (xm, xp) = (x(*p50, all[0].0), x(*p99, all[0].1));
            let (n, m, p) = (c.tally.times.len(), fmt(*p50), fmt(*p99));
            let (label, plus) = (c.label, (p50.as_secs_f64() - all[0].0.as_secs_f64()) * 1e6);
            println!("  {label:<34} {n:>5} {m:>10} {p:>10} {xm:>7.2}x {xp:>7.2}x {plus:>+8.0} µs");
        }
        print_own_work(cases, &all);
    }
    println!("\nIn-process cost of single steps (no HTTP)");
    println!(
        "{:<46} {:>10} {:>10} {:>10}",
        "step", "median", "p99", "mean"
    );
    for (name, ((p50, p99), mean)) in steps {
        let (m, p, avg) = (fmt(*p50), fmt(*p99), fmt(*mean));
        println!("{name:<46} {m:>10} {p:>10} {avg:>10}");
    }
    let base = loads
        .iter()
        .find(|l| l.0.starts_with("no-op"))
        .map_or(f64::NAN, |l| l.1.per_sec());
    let (c, secs) = (s.concurrency, s.load_for.as_secs());
    println!("\nThroughput, {c} concurrent workers, {secs} s each in {LOAD_ROUNDS} rounds taken in turn (x = vs. the no-op)");
    println!(
        "{:<30} {:>8} {:>8} {:>10} {:>10} {:>7} {:>10} {:>10}",
        "", "requests", "req/s", "p50", "p99", "x no-op", "CPU/req", "Gatehouse"
    );
    for (name, load) in loads {
        let ((p50, p99), n) = (stats(&load.tally.times), load.tally.times.len());
        let per_sec = load.per_sec();
        let (m, p, x, c) = (
            fmt(p50),
            fmt(p99),
            per_sec / base,
            fmt(load.cpu_per_request()),
        );
        let mine = format!("{:.1} µs", load.gatehouse_per_request());
        println!("{name:<30} {n:>8} {per_sec:>8.0} {m:>10} {p:>10} {x:>7.3} {c:>10} {mine:>10}");
    }
}

/// The gateway's own work in a group that has the direct case, the hop
/// alone and gateway cases: each gateway median − direct − hop, over the
/// whole case and block by block (the blocks' differences are paired in
/// time, so a slow minute moves all three terms of one; their median and
/// quartiles show how far the whole-case figure can be trusted); and the
/// CPU time Gatehouse's threads spent on a call, against the hop's on a
/// request.
fn print_own_work(cases: &[Case], all: &[Stats]) {
    let find = |part| cases.iter().zip(all).find(|(c, _)| c.part == part);
    let (Some((direct, (direct_p50, _))), Some((hop, (hop_p50, _)))) =
        (find(Part::Direct), find(Part::Hop))
    else {
        return;
    };
    let micros = |d: &Duration| d.as_secs_f64() * 1e6;
    let cpu = |c: &Case| c.cpu.per_request(c.tally.times.len());
    let (hop_workers, hop_writer) = cpu(hop);
    for (c, (p50, _)) in cases.iter().zip(all) {
        if c.part != Part::Gateway {
            continue;
        }
        let own = micros(p50) - micros(direct_p50) - micros(hop_p50);
        let mut paired: Vec<f64> = (c.blocks.iter().zip(&direct.blocks).zip(&hop.blocks))
            .map(|((g, d), h)| micros(g) - micros(d) - micros(h))
            .collect();
        paired.sort_by(f64::total_cmp);
        let quartile = |q: f64| paired[((paired.len() - 1) as f64 * q).round() as usize];
        let (workers, writer) = cpu(c);
        let more = workers + writer - hop_workers - hop_writer;
        println!("  own work, {:<24} {own:>10.1} µs", c.label);
        if !paired.is_empty() {
            println!(
                "    block by block ({} blocks): median {:.1} µs, quartiles {:.1} to {:.1} µs",
                paired.len(),
                quartile(0.5),
                quartile(0.25),
                quartile(0.75)
            );
        }
        println!(
            "    Gatehouse's CPU a call {workers:.1} µs on its workers + {writer:.1} µs on the \
             store's writer, {more:.1} µs more than the hop's"
        );
        let (runs, writer_runs) = c.cpu.runs_per_request(c.tally.times.len());
        let (hop_runs, _) = hop.cpu.runs_per_request(hop.tally.times.len());
        println!(
            "    put on a core {runs:.2} times a call on its workers (the hop {hop_runs:.2}) + \
             {writer_runs:.2} on the store's writer"
        );
    }
}

// ---------- The many-tool upstream (this binary with --bench-upstream <n>) ----------

fn fake_tools(n: usize) -> Vec<Value> {
    let tool = |i| {
        json!({"name": format!("tool_{i:04}"), "title": format!("Tool {i}"),
        "description": format!("Reads record {i} of the benchmark data set."),
        "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        "annotations": {"readOnlyHint": true, "openWorldHint": false}})
    };
    (0..n).map(tool).collect()
}

/// A stdio MCP server with `n` read-only tools; `tools/call` answers at once.
fn fake_upstream(n: usize) -> Result<()> {
    let list = json!({"tools": fake_tools(n)}).to_string();
    let info = json!({"name": "bench-upstream", "version": "0"});
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let msg: Value = serde_json::from_str(&line?)?;
        let (Some(id), Some(method)) = (msg.get("id"), msg["method"].as_str()) else {
            continue;
        };
        let version = &msg["params"]["protocolVersion"];
        let result = match method {
            "tools/list" => list.clone(),
            "initialize" => json!({"protocolVersion": version, "capabilities": {"tools": {}}, "serverInfo": info})
                .to_string(),
            "tools/call" => json!({"content": [{"type": "text", "text": "done"}]}).to_string(),
            _ => "{}".to_string(),
        };
        let reply = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{result}}}");
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}
