//! The running Gatehouse: the store, the authorization server and the
//! gateway, with the operations the HTTP edge, the control channel (CLI) and
//! the desktop app call. It runs the same way in-process and as `gatehouse serve`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::clock::{self, UnixMs};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::oauth::authorize::{self, AuthorizeError, Waiting};
use crate::oauth::consent::{self, AskChoice, DecisionError, DurationChoice, ToolChoice};
use crate::oauth::{agents, cimd, AuthServer, OAuthError};
use crate::scope;
use crate::store::clients::{self, Client, ClientKind};
use crate::store::grants::Grant;
use crate::store::Store;

pub const DB_FILE: &str = "gatehouse.db";
pub const SOCKET_FILE: &str = "control.sock";
pub const SERVER_INFO_FILE: &str = "server.json";

/// What a pending id names, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingKind {
    Consent,
    HeldCall,
    ToolReview,
}

impl PendingKind {
    pub fn of(id: &str) -> PendingKind {
        if id.starts_with("hc_") {
            PendingKind::HeldCall
        } else if id.starts_with("tr_") {
            PendingKind::ToolReview
        } else {
            PendingKind::Consent
        }
    }
}

/// What an approval produced.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Decided {
    Grant(Grant),
    Call(crate::store::held_calls::HeldCall),
    Review(crate::store::pins::ToolReview),
}

pub struct Gatehouse {
    pub auth: AuthServer,
    pub gateway: Gateway,
    pub data_dir: PathBuf,
}

impl Gatehouse {
    pub fn store(&self) -> &Store {
        &self.auth.store
    }

    pub fn config(&self) -> &Config {
        &self.auth.config
    }

    /// `GET /authorize`: checks the request and records a pending consent request.
    pub async fn authorize(&self, query: &str, now: UnixMs) -> Result<Waiting, AuthorizeError> {
        let params = authorize::parse(query).map_err(AuthorizeError::Page)?;
        let client = self
            .resolve_client(&params.client_id, now)
            .await
            .map_err(AuthorizeError::Page)?;
        let validated = authorize::validate(&self.auth, client, params)?;
        let tools = match self.gateway.catalog(&validated.server).await {
            Ok(tools) => tools,
            Err(reason) => {
                tracing::warn!(server = %validated.server, %reason, "cannot list the tools for a consent request");
                let error = OAuthError::new(
                    crate::oauth::ErrorCode::TemporarilyUnavailable,
                    format!(
                        "the MCP server {:?} could not be reached to list its tools",
                        validated.server
                    ),
                );
                return Err(AuthorizeError::Redirect(authorize::error_redirect(
                    &self.auth,
                    &validated.redirect_uri,
                    validated.state.as_deref(),
                    &error,
                )));
            }
        };
        authorize::create_request(&self.auth, validated, tools, now)
    }

    /// A registered client, or a Client ID Metadata Document fetched (and cached) now.
    pub async fn resolve_client(&self, client_id: &str, now: UnixMs) -> Result<Client, OAuthError> {
        let stored = self.store().read(|c| clients::get(c, client_id))?;
        let allow_loopback = self.config().allow_loopback_client_metadata;
        let is_document = cimd::is_document_url(client_id, allow_loopback);
        match stored {
            Some(c)
                if c.kind != ClientKind::MetadataDocument
                    || c.fetched_at.unwrap_or(0) + cimd::CACHE_MS > now =>
            {
                Ok(c)
            }
            _ if is_document => {
                let client = cimd::fetch(client_id, allow_loopback, now).await?;
                self.store()
                    .write(|tx| clients::insert(tx.conn(), &client))?;
                Ok(client)
            }
            _ => Err(OAuthError::invalid_client(format!(
                "unknown client_id {client_id:?}: register first"
            ))),
        }
    }

    /// The scopes a server offers: its classes (with resources and prompts)
    /// and each tool, from its catalog (listed now if nobody has yet); the
    /// three tool classes if the server cannot be reached.
    pub async fn scopes_for(&self, server: &str) -> Vec<String> {
        match self.gateway.catalog(server).await {
            Ok(tools) if !tools.is_empty() => scope::scopes_supported(&tools),
            _ => crate::oauth::metadata::class_scopes()
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }

    /// The scope to ask for in a challenge: every class the server has, so a
    /// first consent can grant all the client will need.
    pub async fn challenge_scope(&self, server: &str) -> String {
        match self.gateway.catalog(server).await {
            Ok(tools) if !tools.is_empty() => scope::class_scopes(&tools).join(" "),
            _ => crate::oauth::metadata::class_scopes().join(" "),
        }
    }

    /// The person says yes to something pending: a consent request (`cr_…`,
    /// with the tools, ask-every-time set and duration), a held call (`hc_…`,
    /// allowed once) or a changed tool (`tr_…`, re-approved).
    pub fn approve(
        &self,
        id: &str,
        tools: &ToolChoice,
        ask: &AskChoice,
        duration: DurationChoice,
        actor: &str,
    ) -> Result<Decided, DecisionError> {
        let now = clock::now();
        match PendingKind::of(id) {
            PendingKind::Consent => {
                consent::approve(&self.auth, id, tools, ask, duration, actor, now)
                    .map(Decided::Grant)
            }
            PendingKind::HeldCall => {
                let call = consent::decide_call(&self.auth, id, true, actor, now)?;
                self.gateway.holds.resolve(id, true);
                Ok(Decided::Call(call))
            }
            PendingKind::ToolReview => {
                consent::decide_review(&self.auth, id, true, actor, now).map(Decided::Review)
            }
        }
    }

    /// The person says no. Nothing is granted; a held call gets an error.
    pub fn deny(&self, id: &str, actor: &str) -> Result<(), DecisionError> {
        let now = clock::now();
        match PendingKind::of(id) {
            PendingKind::Consent => consent::deny(&self.auth, id, actor, now).map(|_| ()),
            PendingKind::HeldCall => {
                consent::decide_call(&self.auth, id, false, actor, now)?;
                self.gateway.holds.resolve(id, false);
                Ok(())
            }
            PendingKind::ToolReview => {
                consent::decide_review(&self.auth, id, false, actor, now).map(|_| ())
            }
        }
    }

    /// Revokes an agent and closes its open sessions.
    pub fn revoke_agent(
        &self,
        name_or_id: &str,
        actor: &str,
    ) -> Result<agents::Revoked, agents::RevokeError> {
        let client = agents::find(&self.auth, name_or_id)?;
        let revoked = agents::revoke_agent(&self.auth, &client.client_id, actor, clock::now())?;
        self.gateway.end_sessions_of(&client.client_id);
        Ok(revoked)
    }

    pub fn revoke_grant(
        &self,
        grant_id: &str,
        actor: &str,
    ) -> Result<agents::Revoked, agents::RevokeError> {
        let revoked = agents::revoke_grant(&self.auth, grant_id, actor, clock::now())?;
        for id in &revoked.client_ids {
            self.gateway.end_sessions_of(id);
        }
        Ok(revoked)
    }

    pub fn revoke_all(&self, actor: &str) -> Result<agents::Revoked, agents::RevokeError> {
        let revoked = agents::revoke_all(&self.auth, actor, clock::now())?;
        for id in &revoked.client_ids {
            self.gateway.end_sessions_of(id);
        }
        Ok(revoked)
    }

    /// Periodic upkeep: expire unanswered consent requests, close idle
    /// sessions, checkpoint the database's write-ahead log.
    fn sweep(&self) {
        if let Err(e) = self.store().checkpoint() {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
        if let Err(e) = consent::expire_overdue(&self.auth, clock::now()) {
            tracing::error!(error = %e, "expiring consent requests failed");
        }
        self.gateway.close_idle();
    }
}

/// A started Gatehouse: HTTP on loopback, the control socket, upkeep.
pub struct RunningServer {
    pub gatehouse: Arc<Gatehouse>,
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    pub fn url(&self) -> String {
        self.gatehouse.auth.issuer.clone()
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
        self.gatehouse.gateway.close_all().await;
        let _ = std::fs::remove_file(self.gatehouse.data_dir.join(SOCKET_FILE));
        let _ = std::fs::remove_file(self.gatehouse.data_dir.join(SERVER_INFO_FILE));
    }

    /// Runs until the shutdown signal resolves.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

/// Prepares the data directory: created if missing, private to this user.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make the data directory {} private", dir.display()))?;
    }
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("the data directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Starts Gatehouse: opens the store, binds 127.0.0.1 (port 0 picks one),
/// starts the HTTP server, the control socket and upkeep.
pub async fn start(config: Config, data_dir: &Path) -> anyhow::Result<RunningServer> {
    prepare_data_dir(data_dir)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("port {} on 127.0.0.1 is in use (is Gatehouse already running?); choose another with --port or `port` in the config", config.port)
        } else {
            anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e}", config.port)
        }
    })?;
    let addr = listener.local_addr()?;
    let control = crate::control::server::bind(data_dir)?;
    let db_path = data_dir.join(DB_FILE);
    let store = Arc::new(
        Store::open(&db_path)
            .with_context(|| format!("cannot open the database {}", db_path.display()))?,
    );
    let config = Arc::new(config);
    let now = clock::now();
    store.write(|tx| {
        for c in config.clients.values() {
            clients::insert(
                tx.conn(),
                &Client {
                    client_id: c.client_id.clone(),
                    name: c.name.clone(),
                    kind: ClientKind::Preconfigured,
                    redirect_uris: c.redirect_uris.clone(),
                    auth_method: clients::AuthMethod::None,
                    secret_hash: None,
                    bound_server: c.server.clone(),
                    metadata: serde_json::json!({"preconfigured": true}),
                    created_at: now,
                    last_seen_at: None,
                    fetched_at: None,
                },
            )?;
        }
        Ok::<_, crate::store::StoreError>(())
    })?;
    let secrets = Arc::new(crate::secrets::SecretStore::open(
        data_dir,
        config.secret_store,
    )?);
    if secrets.is_keychain() {
        tracing::info!("{}", secrets.describe());
    } else {
        tracing::warn!("{}", secrets.describe());
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "local user".into());
    let gatehouse = Arc::new(Gatehouse {
        auth: AuthServer {
            store: store.clone(),
            config: config.clone(),
            issuer: format!("http://127.0.0.1:{}", addr.port()),
            port: addr.port(),
            user,
        },
        gateway: Gateway::new(config.clone(), store.clone(), secrets),
        data_dir: data_dir.to_path_buf(),
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let app = crate::http::router(gatehouse.clone());
    let mut rx = shutdown_rx.clone();
    tasks.push(tokio::spawn(async move {
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
    let (g, mut rx) = (gatehouse.clone(), shutdown_rx.clone());
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Upkeep touches the disk: keep it off the async workers.
                    let g = g.clone();
                    let _ = tokio::task::spawn_blocking(move || g.sweep()).await;
                }
                _ = stopped(&mut rx) => break,
            }
        }
    }));
    for server in gatehouse
        .config()
        .servers
        .values()
        .filter(|s| s.start_at_launch)
    {
        let (g, name) = (gatehouse.clone(), server.name.clone());
        tokio::spawn(async move {
            match g.gateway.catalog(&name).await {
                Ok(tools) => {
                    tracing::info!(server = %name, tools = tools.len(), "upstream started and listed its tools")
                }
                Err(reason) => tracing::error!(server = %name, %reason, "upstream failed to start"),
            }
        });
    }
    let info = serde_json::json!({"url": gatehouse.auth.issuer, "pid": std::process::id()});
    let _ = std::fs::write(data_dir.join(SERVER_INFO_FILE), info.to_string());
    tracing::info!(url = %gatehouse.auth.issuer, data_dir = %data_dir.display(), "Gatehouse is listening");
    Ok(RunningServer {
        gatehouse,
        addr,
        shutdown,
        tasks,
    })
}

/// Resolves once shutdown was asked for.
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
