//! The MCP gateway: every message from an agent passes the bearer check
//! (done by the HTTP edge with `oauth::bearer::authenticate`) and the
//! [`policy`] before it reaches the upstream, and every tool call is audited
//! with the grant that allowed or refused it.
//!
//! Following one request: [`request`] parses it, opens a [`session`] on
//! `initialize` or finds the agent's own session, and asks the [`policy`]
//! (pure) what to do; a call to a granted tool has its pin checked
//! ([`pinning`]), an ask-every-time call waits for the person ([`holds`]), a
//! tool never granted gets a step-up challenge; what passes is sent by
//! [`forward`] to the session's [`upstream`] connection, whose answer is
//! relayed (a `tools/list` filtered to the grant) and audited; a session
//! reaches only the [`tasks`] its own requests created. Refusals are
//! [`McpError`]s. What a server offers comes from its [`catalog`].

pub mod catalog;
pub mod error;
mod forward;
pub mod holds;
pub mod jsonrpc;
pub mod listing;
mod own_session;
pub mod pause;
pub mod pinning;
pub mod policy;
mod request;
pub mod session;
pub mod tasks;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::config::ServerConfig;
use crate::credentials::CredentialStore;
use crate::store::Store;
use crate::tools::ToolInfo;
pub use error::McpError;
pub use request::Incoming;
use session::{Session, Sessions};
use upstream::{MessageStream, ServerStream, UpstreamHeaders};

/// Most sessions (each with its own upstream process or connection) one
/// agent may have open on one server at once.
pub const MAX_SESSIONS_PER_AGENT: usize = 10;
/// Most requests one session may have waiting on its upstream at once.
pub const MAX_WAITING_PER_SESSION: usize = 32;
/// Room beyond it for the requests that end a wait or check on one
/// (`tasks/cancel`, `tasks/get`, `tasks/list`, `ping`): a session whose
/// slots are all taken by waits can still cancel them.
pub const MORE_WAITING_TO_CONTROL: usize = 8;
/// A session unused this long is closed and its upstream stopped.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

pub struct Gateway {
    config: crate::config::Live,
    store: Arc<Store>,
    sessions: Sessions,
    catalogs: catalog::Catalogs,
    holds: holds::Holds,
    pauses: pause::Pauses,
    launcher: upstream::Launcher,
}

/// How a server is doing, as the person sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ServerState {
    /// Nothing has started it yet (it starts with the first agent session).
    NotStarted,
    /// It ran (it listed its tools) and has no session now.
    Idle,
    /// Agents have sessions on it.
    Running {
        #[ts(type = "number")]
        sessions: usize,
    },
    /// It exited on its own recently; the last lines it wrote.
    Crashed { stderr: Vec<String> },
    /// It crashed again and again: the next start waits.
    HeldBack {
        #[ts(type = "number")]
        seconds: u64,
        stderr: Vec<String>,
    },
    /// Not served (`enabled = false`).
    Disabled,
    /// A remote server that needs the person to log in (`gatehouse servers login`).
    NeedsLogin { reason: String },
}

/// What the HTTP edge sends back for one POST.
pub enum Reply {
    /// Messages for one request: zero or more server messages, then the response.
    Messages {
        session_id: Option<String>,
        messages: MessageStream,
    },
    /// A notification or response was accepted (202).
    Accepted,
    /// Refused or failed; the error knows its status and JSON-RPC body.
    Refused(McpError),
}

impl From<McpError> for Reply {
    fn from(e: McpError) -> Reply {
        Reply::Refused(e)
    }
}

impl Gateway {
    pub fn new(
        config: crate::config::Live,
        store: Arc<Store>,
        credentials: Arc<CredentialStore>,
    ) -> Result<Gateway, crate::store::StoreError> {
        Ok(Gateway {
            config,
            pauses: pause::Pauses::load(&store)?,
            store,
            sessions: Sessions::default(),
            catalogs: Default::default(),
            holds: Default::default(),
            launcher: upstream::Launcher::new(credentials),
        })
    }

    pub fn holds(&self) -> &holds::Holds {
        &self.holds
    }

    pub fn pauses(&self) -> &pause::Pauses {
        &self.pauses
    }

    /// Server messages outside any request, for the agent's GET stream.
    pub async fn open_stream(
        &self,
        id: &str,
        client_id: &str,
        server: &str,
        headers: &UpstreamHeaders,
    ) -> Result<ServerStream, McpError> {
        let session = self
            .sessions
            .get(id, client_id, server)
            .ok_or(McpError::SessionNotFound)?;
        let stream = session
            .upstream
            .open_stream(headers)
            .await
            .ok_or(McpError::StreamUnavailable)?;
        // Not the session itself: the stream ends when the session does.
        let (store, asks) = (self.store.clone(), session.server_asks.clone());
        let tasks = session.tasks.clone();
        let stream = stream.filter(move |m| std::future::ready(tasks.shows(m)));
        Ok(Box::pin(stream.then(move |m| {
            let (store, asks) = (store.clone(), asks.clone());
            async move {
                forward::record_server_request(&store, &asks, &m).await;
                m
            }
        })))
    }

    /// Ends a session (its upstream died, or it was idle too long).
    fn end_session(&self, id: &str) -> bool {
        let removed = self.sessions.remove(id);
        if let Some(s) = &removed {
            close_later(s.clone());
        }
        removed.is_some()
    }

    /// Ends one of the agent's own sessions (a DELETE from the client).
    pub fn end_own_session(&self, id: &str, client_id: &str, server: &str) -> bool {
        self.sessions.get(id, client_id, server).is_some() && self.end_session(id)
    }

    /// Ends every session of an agent (after revocation).
    pub fn end_sessions_of(&self, client_id: &str) -> usize {
        let ended = self.sessions.remove_agent(client_id);
        for s in &ended {
            close_later(s.clone());
        }
        ended.len()
    }

    /// Starts a server afresh: its sessions end (agents open new ones), what
    /// was listed of it is dropped, its crash record is forgotten. Used when
    /// the person restarts it, changes or removes it.
    pub fn reset_server(&self, server: &str) -> usize {
        let ended = self.sessions.remove_server(server);
        for s in &ended {
            close_later(s.clone());
        }
        self.catalogs.forget(server);
        self.launcher.health().reset(server);
        ended.len()
    }

    /// How a server is doing now.
    pub fn server_state(&self, server: &str) -> ServerState {
        if let Some(needs) = self.launcher.login().needs_login(server) {
            return ServerState::NeedsLogin {
                reason: needs.reason,
            };
        }
        let health = self.launcher.health();
        let sessions = self.sessions.count_on(server);
        let stderr = health.stderr_tail(server, 5);
        if let Some(wait) = health.backoff(server) {
            return ServerState::HeldBack {
                seconds: wait.as_secs() + 1,
                stderr,
            };
        }
        match (sessions, health.recent_crashes(server)) {
            (0, 0) if self.catalogs.cached(server).is_none() => ServerState::NotStarted,
            (0, 0) => ServerState::Idle,
            (0, _) => ServerState::Crashed { stderr },
            (n, _) => ServerState::Running { sessions: n },
        }
    }

    /// Gatehouse's own logins at the remote servers.
    pub fn login(&self) -> &Arc<crate::upstream_oauth::UpstreamAuth> {
        self.launcher.login()
    }

    /// The last `n` lines a server wrote to stderr.
    pub fn server_logs(&self, server: &str, n: usize) -> Vec<String> {
        self.launcher.health().stderr_tail(server, n)
    }

    /// Closes sessions idle longer than [`SESSION_IDLE`].
    pub fn close_idle(&self) -> usize {
        let idle = self.sessions.remove_idle(SESSION_IDLE, self.longest_wait());
        for s in &idle {
            close_later(s.clone());
        }
        idle.len()
    }

    pub async fn close_all(&self) {
        for s in self.sessions.drain() {
            s.upstream.close().await;
        }
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The server's tools with their risk classes (and its resources and
    /// prompts items), from the upstream itself, reused for a minute.
    pub async fn catalog(&self, server: &str) -> Result<Vec<ToolInfo>, String> {
        let server = self.server_config(server)?;
        self.catalogs.get(&server, &self.launcher).await
    }

    /// [`Gateway::catalog`], with the server's instructions (for consent).
    pub async fn offer(&self, server: &str) -> Result<catalog::Offer, String> {
        let server = self.server_config(server)?;
        self.catalogs.offer(&server, &self.launcher).await
    }

    /// The server's last tool list however old, listed now only if there is
    /// none (for hints that must not wait for an upstream to start again).
    pub async fn catalog_hint(&self, server: &str) -> Result<Vec<ToolInfo>, String> {
        let server = self.server_config(server)?;
        self.catalogs.last_or_get(&server, &self.launcher).await
    }

    /// Calls a tool as Gatehouse itself (see `catalog::call_as_gatehouse`).
    pub async fn call_as_gatehouse(
        &self,
        server: &str,
        tool: &str,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let server = self.server_config(server)?;
        catalog::call_as_gatehouse(&server, &self.launcher, tool, arguments).await
    }

    fn server_config(&self, server: &str) -> Result<ServerConfig, String> {
        let config = self.config.get();
        let found = config.servers.get(server).cloned();
        found.ok_or_else(|| format!("no server {server:?}"))
    }

    /// The cached tool list, if any (never starts an upstream or waits for one).
    pub fn cached_catalog(&self, server: &str) -> Option<Vec<ToolInfo>> {
        self.catalogs.cached(server)
    }
}

pub(super) fn close_later(session: Arc<Session>) {
    tokio::spawn(async move { session.upstream.close().await });
}
