//! The composition root: opens the data directory and the store, binds
//! 127.0.0.1, and starts the HTTP server (authorization server and MCP
//! gateway), the control socket for the CLI, and upkeep. `gatehouse serve` and
//! the desktop app both start Gatehouse here; nothing else in the core imports
//! the edges.
#![allow(clippy::disallowed_methods)] // an edge: upkeep runs on the wall clock

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::api::Gatehouse;
use crate::clock;
use crate::config::Config;
use crate::credentials::CredentialStore;
use crate::gateway::Gateway;
use crate::oauth::{consent, AuthServer};
use crate::store::{Store, StoreError};

/// The SQLite file in the data directory.
pub const DB_FILE: &str = "gatehouse.db";
/// Where a running Gatehouse says where it listens (`{"url": …, "pid": …}`).
pub const SERVER_INFO_FILE: &str = "server.json";
/// How often upkeep sweeps (expiry, idle sessions, the audit head…).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// How often the WAL is checkpointed: under steady writes it grows by this
/// much time's worth of commits before it starts over.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// A started Gatehouse: HTTP on loopback, the control socket, upkeep.
pub struct Running {
    gatehouse: Arc<Gatehouse>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn gatehouse(&self) -> &Arc<Gatehouse> {
        &self.gatehouse
    }

    pub fn url(&self) -> String {
        self.gatehouse.url().to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, ends sessions and upstreams, removes the socket.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        // Open streams (an agent's GET) would hold a graceful shutdown forever: give it 3 s.
        for mut task in self.tasks {
            if tokio::time::timeout(std::time::Duration::from_secs(3), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        self.gatehouse.audit_stopping();
        self.gatehouse.gateway().close_all().await;
        // Outcomes of the last calls may still be queued for the writer.
        let g = self.gatehouse.clone();
        let _ = tokio::task::spawn_blocking(move || g.settle_audit()).await;
        let dir = self.gatehouse.data_dir();
        let _ = std::fs::remove_file(dir.join(crate::control::SOCKET_FILE));
        let _ = std::fs::remove_file(dir.join(SERVER_INFO_FILE));
    }

    /// Runs until the shutdown signal resolves.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

/// Prepares the data directory: created if missing (0700); an existing one,
/// and every file Gatehouse keeps in it, must be this user's and writable by
/// nobody else (`private`), or Gatehouse refuses to use it.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    crate::private::check_data_dir(dir)?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("the data directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// The runtime `gatehouse serve` (and the gateway bench) runs on:
/// `GATEHOUSE_WORKERS` async workers, by default half the cores (at least
/// one). Gatehouse shares the machine with the agents and the servers it
/// fronts; its async work per request is small and its writes run on the
/// store's writer thread, so more workers mostly add hand-offs between
/// threads. On two cores one worker took a quarter off a `tools/call`'s own
/// work (docs/BENCHMARKS.md). Not yet everywhere off the workers: a
/// session's start and the app's secret commands read the keychain on one
/// (a locked keyring's prompt would hold it). The app keeps Tauri's runtime:
/// Tauri's window and tray calls block the calling worker until the main
/// thread answers, and the main thread waits on the runtime at quit.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let workers = match std::env::var("GATEHOUSE_WORKERS") {
        Ok(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .with_context(|| {
                format!("GATEHOUSE_WORKERS={n:?}: give a whole number of at least 1")
            })?,
        Err(_) => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("gatehouse-worker")
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Starts Gatehouse: opens the store, binds 127.0.0.1 (port 0 picks one),
/// starts the HTTP server, the control socket and upkeep.
pub async fn start(config: Config, data_dir: &Path) -> anyhow::Result<Running> {
    prepare_data_dir(data_dir)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.listen_port())).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("port {} on 127.0.0.1 is in use (is Gatehouse already running?); choose another with --port or `port` in the config", config.listen_port())
        } else {
            anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e}", config.listen_port())
        }
    })?;
    let addr = listener.local_addr()?;
    let control = crate::control::server::bind(data_dir)?;
    let credentials = Arc::new(CredentialStore::open(data_dir, config.secret_store)?);
    if credentials.is_keychain() {
        tracing::info!("{}", credentials.describe());
    } else {
        tracing::warn!(
            "{} (and so is the key that seals the audit log)",
            credentials.describe()
        );
    }
    let audit_key = credentials
        .audit_key()
        .context("cannot read or make the key that seals the audit log")?;
    let db_path = data_dir.join(DB_FILE);
    let store = Arc::new(
        Store::open(&db_path, audit_key, clock::now())
            .with_context(|| format!("cannot open the database {}", db_path.display()))?,
    );
    // The database and its WAL files SQLite just created: 0600.
    crate::private::check_data_dir(data_dir)?;
    if let Some((from, to)) =
        crate::api::audit::resume_chain(&store, credentials.audit_head()?, clock::now())?
    {
        tracing::error!(
            "the audit log was cut: events #{from} to #{to}, written before Gatehouse last stopped, are gone (recorded in the log; `gatehouse log verify` reports it)"
        );
    }
    register_preconfigured_clients(&store, &config, clock::now())?;
    let config = crate::config::Live::new(config);
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "local user".into());
    let auth = AuthServer {
        store: store.clone(),
        config: config.clone(),
        issuer: format!("http://127.0.0.1:{}", addr.port()).into(),
        port: addr.port(),
        user: user.into(),
    };
    let gateway = Gateway::new(config.clone(), store, credentials.clone())?;
    gateway
        .login()
        .set_base(&format!("http://127.0.0.1:{}", addr.port()));
    gateway
        .login()
        .set_client_metadata_url(gatehouse_config_metadata_url(&config));
    let gatehouse = Arc::new(Gatehouse::new(auth, gateway, credentials.clone(), data_dir));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let app = crate::http::router(gatehouse.clone());
    let mut rx = shutdown_rx.clone();
    tasks.push(tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<crate::peer::Peer>();
        let listener = crate::peer::Listener(listener);
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }));
    tasks.push(tokio::spawn(crate::control::server::run(
        control,
        gatehouse.clone(),
        shutdown_rx.clone(),
    )));
    tasks.push(tokio::spawn(upkeep(
        gatehouse.clone(),
        credentials,
        shutdown_rx.clone(),
    )));
    start_at_launch(&gatehouse);
    let info = serde_json::json!({"url": gatehouse.url(), "pid": std::process::id()});
    let _ = std::fs::write(data_dir.join(SERVER_INFO_FILE), info.to_string());
    tracing::info!(url = %gatehouse.url(), data_dir = %data_dir.display(), "Gatehouse is listening");
    Ok(Running {
        gatehouse,
        addr,
        shutdown,
        tasks,
    })
}

/// The `[clients.*]` of the config, as public clients (pre-registered).
fn register_preconfigured_clients(
    store: &Store,
    config: &Config,
    now: clock::UnixMs,
) -> Result<(), StoreError> {
    store.write(|tx| crate::oauth::register::preconfigured(tx, &config.clients, now))
}

fn gatehouse_config_metadata_url(config: &crate::config::Live) -> Option<String> {
    config.get().client_metadata_url.clone()
}

/// Servers with `start = "at_start"` are started (and list their tools) now.
fn start_at_launch(gatehouse: &Arc<Gatehouse>) {
    let config = gatehouse.config();
    for server in config.servers.values().filter(|s| s.start_at_launch) {
        let (g, name) = (gatehouse.clone(), server.name.clone());
        tokio::spawn(async move {
            match g.gateway().catalog(&name).await {
                Ok(tools) => {
                    tracing::info!(server = %name, tools = tools.len(), "upstream started and listed its tools")
                }
                Err(reason) => tracing::error!(server = %name, %reason, "upstream failed to start"),
            }
        });
    }
}

/// Periodic upkeep until shutdown: checkpoint the database's write-ahead
/// log (every [`CHECKPOINT_EVERY`]), expire unanswered consent requests,
/// close idle sessions, and note the audit log's head outside the database
/// (every [`UPKEEP_EVERY`], and once more at shutdown).
async fn upkeep(
    gatehouse: Arc<Gatehouse>,
    credentials: Arc<CredentialStore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    // A slow sweep is not followed by a burst of checkpoints.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sweep_every = (UPKEEP_EVERY.as_millis() / CHECKPOINT_EVERY.as_millis()) as u64;
    let mut noted = gatehouse.store().head();
    for n in 0u64.. {
        let stop = tokio::select! {
            _ = tick.tick() => false,
            _ = stopped(&mut shutdown) => true,
        };
        let swept_now = stop || n % sweep_every == 0;
        // Upkeep touches the disk: keep it off the async workers.
        let (g, c, before) = (gatehouse.clone(), credentials.clone(), noted.clone());
        let swept = tokio::task::spawn_blocking(move || {
            if let Err(e) = g.store().checkpoint() {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
            if !swept_now {
                return before;
            }
            if !stop {
                sweep(&g, clock::now());
            }
            note_audit_head(&g, &c, before)
        });
        noted = swept.await.unwrap_or(noted);
        if stop {
            break;
        }
    }
}

/// Notes the audit log's head where secrets are kept, if it moved.
fn note_audit_head(
    g: &Gatehouse,
    credentials: &CredentialStore,
    noted: Option<(i64, String)>,
) -> Option<(i64, String)> {
    let head = g.store().head();
    if head == noted {
        return noted;
    }
    if let Some((id, seal)) = &head {
        if let Err(e) = credentials.set_audit_head(*id, seal) {
            tracing::warn!(error = %e, "cannot note the audit log's head");
            return noted;
        }
    }
    head
}

fn sweep(g: &Gatehouse, now: clock::UnixMs) {
    if let Err(e) = g.store().upkeep_live(now) {
        tracing::error!(error = %e, "loading the live authorization state failed");
    }
    if let Err(e) = g.prune_audit(now) {
        tracing::error!(error = %e, "could not cut the audit log to what retention keeps");
    }
    // What writes outside the audit writer recorded, indexed (text, agent):
    // a transaction per 500 events of text (8,000 by agent; the writer's lock
    // is short each time), 100 ms at most.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(100);
    while std::time::Instant::now() < until {
        match g.store().index_log(500) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not index audit events");
                break;
            }
        }
    }
    if let Err(e) = consent::expire_overdue(g.auth(), now) {
        tracing::error!(error = %e, "expiring consent requests failed");
    }
    g.gateway().close_idle();
    // A hand edit of the config file takes effect (or is reported) here.
    let _ = g.reload_from_file(crate::api::Actor::ConfigFile);
}

/// Resolves once shutdown was asked for.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
