//! The local control channel that the CLI drives: a Unix socket in the data
//! directory (mode 0600, in a 0700 directory), answering only peers with our
//! own user id. No web page can reach it, nor another OS user. One JSON
//! [`Request`] per line, one JSON [`Answer`] per line (a followed log streams
//! one event per line). Each request is one `api` operation.

pub mod client;
pub(crate) mod server;

use serde::{Deserialize, Serialize};

use crate::api::Outcome;
use crate::api::{Approval, Error, Target};
use crate::clock::UnixMs;

/// The socket's file name in the data directory.
pub const SOCKET_FILE: &str = "control.sock";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    Pending,
    Approve {
        target: Target,
        approval: Approval,
    },
    Deny {
        target: Target,
    },
    Agents,
    Grants {
        /// An agent's name or client id.
        client: Option<String>,
        include_ended: bool,
    },
    RevokeAgent {
        agent: String,
    },
    RevokeGrant {
        grant: String,
    },
    RevokeAll,
    Rules {
        agent: Option<String>,
    },
    AddRule {
        rule: crate::api::NewRule,
    },
    /// Changes what a rule decides, or removes it (`None`).
    ChangeRule {
        id: String,
        action: Option<crate::api::RuleAction>,
    },
    Settings,
    ChangeSettings {
        change: crate::api::SettingsChange,
    },
    /// Lets a grant's agent ask for more tools, or stops that.
    SetMayAskMore {
        grant: String,
        on: bool,
    },
    /// Pauses every agent, or one (name or client id).
    Pause {
        agent: Option<String>,
    },
    /// Resumes every agent, or one.
    Resume {
        agent: Option<String>,
    },
    /// Named apart from the request of earlier versions ("log", which took
    /// an agent only): a CLI and a running Gatehouse from either side of
    /// that change refuse each other's request instead of showing an
    /// unfiltered log as if it were filtered.
    #[serde(rename = "audit_log")]
    Log {
        limit: u32,
        follow: bool,
        /// Which events (every one when it is empty).
        #[serde(default)]
        filter: LogFilter,
    },
    /// Adds a pre-registered client (its secret, if any, is in the answer once).
    AddClient {
        client: crate::api::NewClient,
    },
    /// The pre-registered clients.
    Clients,
    /// Removes a client added with `AddClient` (exact name or client id).
    RemoveClient {
        client: String,
    },
    /// The servers with their state.
    Servers,
    /// A server's tools, from the server itself.
    ServerTools {
        server: String,
    },
    /// Reads the config file again and puts it in force.
    ReloadConfig,
    /// Replaces the config file's text if it is still the text whose
    /// `config::fingerprint` is `was` (`gatehouse connect`), and puts it in force.
    ReplaceConfig {
        was: Option<String>,
        text: String,
    },
    /// Adds a server (to the config file; its secrets to the keychain).
    AddServer {
        server: crate::api::NewServer,
    },
    /// Removes a server from the config file.
    RemoveServer {
        server: String,
    },
    /// Starts Gatehouse's login at a remote server: the URL for the browser.
    StartLogin {
        server: String,
    },
    /// Forgets Gatehouse's login at a remote server.
    Logout {
        server: String,
    },
    /// Serves a server again, or stops serving it.
    SetServerEnabled {
        server: String,
        enabled: bool,
    },
    /// Starts a server afresh (its sessions end).
    RestartServer {
        server: String,
    },
    /// The last lines a server wrote to stderr.
    ServerLogs {
        server: String,
        lines: usize,
    },
    /// Checks the audit log's chain.
    VerifyAudit,
    /// Writes the whole audit log, with its seals, to a file (an absolute path).
    ExportAudit {
        format: crate::api::ExportFormat,
        path: std::path::PathBuf,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Ok(serde_json::Value),
    Error(Error),
}

/// Which events `gatehouse log` shows: those that meet every condition given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogFilter {
    /// An agent's name or client id.
    pub agent: Option<String>,
    pub server: Option<String>,
    pub outcome: Option<Outcome>,
    /// Events at or after this time (Unix ms).
    pub since: Option<UnixMs>,
    /// A case-insensitive substring of the agent, server, tool, kind, actor or detail.
    pub text: Option<String>,
}

impl LogFilter {
    /// True when it lets every event through.
    pub fn is_empty(&self) -> bool {
        *self == LogFilter::default()
    }
}
