//! The local control channel that the CLI and the desktop app drive: a Unix
//! socket in the data directory (mode 0600, in a 0700 directory), answering
//! only peers with our own user id. No web page can reach it, nor another OS
//! user. One JSON request per line; one JSON answer per line (a followed log
//! streams one event per line).

pub mod client;
pub mod server;

use serde::{Deserialize, Serialize};

use crate::oauth::consent::{AskChoice, DurationChoice, ToolChoice};

/// Which pending request(s) a decision is about.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// One request by its id (`cr_…`).
    Id(String),
    /// Every pending request of the agent with this name or client id.
    Client(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    Pending,
    Approve {
        target: Target,
        tools: ToolChoice,
        /// Which granted tools are held for a decision on every call (default: the destructive ones).
        #[serde(default)]
        ask: AskChoice,
        duration: DurationChoice,
    },
    Deny {
        target: Target,
    },
    Agents,
    Grants {
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
    Log {
        limit: u32,
        client: Option<String>,
        follow: bool,
    },
}

/// A stable error code the CLI and UI branch on (never on message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    BadRequest,
    Ambiguous,
    Internal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Ok(serde_json::Value),
    Error(ControlError),
}

pub use crate::pending::{PendingKindView, PendingView};
