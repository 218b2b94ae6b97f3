//! The one surface both faces call: the CLI (through the control socket) and
//! the desktop app (through its IPC commands) drive Gatehouse only through
//! [`Gatehouse`]'s methods and see only the view types re-exported here. The
//! store, the authorization server and the gateway are private to the core:
//! a face cannot reach SQL even by accident.
//!
//! The rooms:
//! - [`pending`]: the person's queue (consent requests, step-ups, held calls,
//!   changed tools) and their decisions.
//! - [`agents`]: agents, their grants, revocation.
//! - [`audit`]: the log a page at a time, followed live, exported.
//! - [`servers`]: the fronted servers and their tools.
//! - `protocol`: what the HTTP edge asks of the whole (crate-private).
//!
//! Every method reads the clock itself (the faces are edges, the domain below
//! takes `now`), and every change names who decided it ([`Actor`]).
#![allow(clippy::disallowed_methods)] // an edge: each operation reads the clock once

pub mod agents;
pub mod arguments;
pub mod audit;
pub mod clients;
mod error;
pub mod pending;
pub(crate) mod protocol;
pub mod rules;
pub mod servers;
pub mod settings;
pub mod views;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::audit::chain::{
    Problem as AuditProblem, ProblemKind as AuditProblemKind, Verification as AuditVerification,
};
pub use crate::audit::{AuditEvent, EventKind, ExportFormat, Filter as AuditFilter, Outcome};
pub use crate::config::{AskDefault, DefaultDuration, Theme};
pub use crate::credentials::{CredentialStore, SecretError};
pub use crate::gateway::pause::{PauseState, Paused};
pub use crate::gateway::pinning::INSTRUCTIONS;
pub use crate::oauth::agents::Revoked;
pub use crate::oauth::consent::{AskChoice, DurationChoice, ToolChoice};
pub use crate::oauth::rules::RuleChoice;
pub use crate::peer::{Ancestor, Program};
pub use crate::store::clients::ClientKind;
pub use crate::store::grants::{Duration as GrantDuration, Grant};
pub use crate::store::held_calls::{CallStatus, HeldCall};
pub use crate::store::pins::{ReviewStatus, ToolReview};
pub use crate::store::rules::{Rule, RuleAction, RuleTarget};
pub use crate::tools::Risk;
pub use arguments::ArgumentField;
pub use audit::{verify_export, AuditPage, Follow};
pub use clients::{AddedClient, NewClient, RegisteredClient};
pub use error::{Error, ErrorCode};
pub use pending::{Approval, Decided, PendingId, PendingItem, PendingKind, Target};
pub use rules::NewRule;
pub use servers::{
    ConfigChange, NewSecret, NewServer, Server, ServerState, ToolHolders, Transport,
};
pub use settings::{Settings, SettingsChange, SettingsChanged};
pub use views::{Agent, Lookalike, ServerRef, Status, Tool};

use crate::config::Config;
use crate::gateway::Gateway;
use crate::oauth::AuthServer;
use crate::store::Store;

pub type Result<T> = std::result::Result<T, Error>;

/// Who makes a decision through the API: the person at one of its faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// The `gatehouse` CLI (the control socket).
    Cli,
    /// The desktop app.
    Desktop,
    /// The person, by editing the config file.
    ConfigFile,
}

/// The running Gatehouse: its store, authorization server and gateway, and
/// every operation the faces need.
pub struct Gatehouse {
    auth: AuthServer,
    gateway: Gateway,
    data_dir: PathBuf,
    /// Which pending items each face has listed (see `Gatehouse::pending_shown`).
    shown: pending::Shown,
    /// Why the config file, as it is now, is not in force (a bad edit).
    config_problem: std::sync::Mutex<Option<String>>,
    /// The SHA-256 of the config file's text as last read.
    config_seen: std::sync::Mutex<Option<String>>,
    /// Held while the config file is edited or read back and put in force:
    /// one edit or reload at a time (see `Gatehouse::edit_config`).
    config_edits: std::sync::Mutex<()>,
    /// Where upstream secrets live.
    credentials: Arc<CredentialStore>,
    registrations: crate::limits::Registrations,
}

impl Gatehouse {
    pub(crate) fn new(
        auth: AuthServer,
        gateway: Gateway,
        credentials: Arc<CredentialStore>,
        data_dir: &Path,
    ) -> Gatehouse {
        let gatehouse = Gatehouse {
            auth,
            gateway,
            data_dir: data_dir.to_path_buf(),
            shown: Default::default(),
            registrations: Default::default(),
            config_problem: Default::default(),
            config_seen: Default::default(),
            config_edits: Default::default(),
            credentials,
        };
        if let Some(text) = gatehouse
            .config()
            .path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        {
            gatehouse.config_changed(&text);
        }
        gatehouse
    }

    pub(crate) fn auth(&self) -> &AuthServer {
        &self.auth
    }

    pub(crate) fn credentials(&self) -> &CredentialStore {
        &self.credentials
    }

    pub(crate) fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    pub(crate) fn store(&self) -> &Store {
        &self.auth.store
    }

    /// How fast clients may register (the HTTP edge checks it per source).
    pub(crate) fn registrations(&self) -> &crate::limits::Registrations {
        &self.registrations
    }

    pub(crate) fn store_handle(&self) -> Arc<Store> {
        self.auth.store.clone()
    }

    /// `http://127.0.0.1:<port>`: the issuer, and the base of every MCP URL.
    pub fn url(&self) -> &str {
        &self.auth.issuer
    }

    /// The config in force now.
    pub fn config(&self) -> Arc<Config> {
        self.auth.config.get()
    }

    /// Why the config file is not in force, if it is not (a bad edit: the
    /// config before it keeps running).
    pub fn config_problem(&self) -> Option<String> {
        self.config_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the config file's text differs from what was last read (and
    /// remembers this text).
    pub(crate) fn config_changed(&self, text: &str) -> bool {
        let hash = crate::crypto::hash(text);
        let mut seen = self.config_seen.lock().unwrap_or_else(|p| p.into_inner());
        let changed = seen.as_deref() != Some(hash.as_str());
        *seen = Some(hash);
        changed
    }

    /// The next read of the config file counts as a change.
    pub(crate) fn forget_config_seen(&self) {
        *self.config_seen.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub(crate) fn set_config_problem(&self, problem: Option<String>) {
        *self
            .config_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = problem;
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// How an actor is named in audit events and grants: the OS user and the face.
    pub fn actor_name(&self, actor: Actor) -> String {
        let face = match actor {
            Actor::Cli => "cli",
            Actor::Desktop => "desktop",
            Actor::ConfigFile => "config file",
        };
        format!("{} ({face})", self.auth.user)
    }

    /// What is running, where, and how busy it is.
    pub fn status(&self) -> Result<Status> {
        let config = self.config();
        Ok(Status {
            url: self.url().to_string(),
            port: self.auth.port,
            data_dir: self.data_dir.display().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            consent_timeout_ms: config.consent_timeout_ms,
            servers: config
                .servers
                .keys()
                .map(|name| ServerRef {
                    name: name.clone(),
                    url: self.auth.resource_url(name),
                })
                .collect(),
            sessions: self.gateway.session_count(),
            pending: self.pending()?.len(),
            // Absolute: another process (`gatehouse connect`) compares it
            // with its own paths, from another working directory.
            config_path: config.path.as_ref().map(|p| {
                let p = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                p.display().to_string()
            }),
            config_problem: self.config_problem(),
            paused: self.gateway.pauses().state(),
        })
    }
}
