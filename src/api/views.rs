//! View types the faces show that are not the core's own types: a tool as
//! the person sees it, an agent with its grants, the running Gatehouse.
//! (Types that already are what a view needs, such as `Grant` or `AuditEvent`,
//! are re-exported from `api` as they are.) The app's TypeScript bindings are
//! generated from these definitions (`src-tauri/src/bindings.rs`).

use serde::{Deserialize, Serialize};

use crate::gateway::pause::{PauseState, Paused};
use crate::store::clients::{Client, ClientKind};
use crate::store::grants::Grant;
use crate::tools::{Risk, ToolInfo};

/// A tool (or a server's resources or prompts) as the person sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Tool {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub risk: Risk,
}

impl From<&ToolInfo> for Tool {
    fn from(t: &ToolInfo) -> Tool {
        Tool {
            name: t.name.clone(),
            title: t.title.clone(),
            description: t.description.clone(),
            risk: t.risk,
        }
    }
}

/// An agent (an OAuth client) with the grants in force.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Agent {
    pub client_id: String,
    /// What the agent calls itself (a claim unless `verified`).
    pub name: String,
    pub kind: ClientKind,
    pub verified: bool,
    /// The https domain of a verified (metadata document) client.
    pub verified_domain: Option<String>,
    /// Another agent, registered earlier, whose name looks like this one's.
    pub lookalike_of: Option<Lookalike>,
    pub redirect_uris: Vec<String>,
    #[ts(type = "number")]
    pub first_seen: i64,
    #[ts(type = "number | null")]
    pub last_seen: Option<i64>,
    pub grants: Vec<Grant>,
    /// Paused on its own (see also `Status::paused` for every agent).
    pub paused: Option<Paused>,
    /// The program that registered it, as the kernel saw it (none when unknown).
    pub program: Option<crate::peer::Program>,
}

impl Agent {
    pub(crate) fn new(
        client: Client,
        grants: Vec<Grant>,
        all: &[Client],
        pauses: &PauseState,
    ) -> Agent {
        Agent {
            paused: pauses.agents.get(&client.client_id).cloned(),
            program: None,
            lookalike_of: Lookalike::of(&client, all),
            verified: client.is_verified(),
            verified_domain: client.verified_domain(),
            client_id: client.client_id,
            name: client.name,
            kind: client.kind,
            redirect_uris: client.redirect_uris,
            first_seen: client.created_at,
            last_seen: client.last_seen_at,
            grants,
        }
    }
}

/// An agent whose name looks like another's: the person should know which is which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Lookalike {
    /// The other (earlier) agent's name and client id.
    pub name: String,
    pub client_id: String,
}

impl Lookalike {
    /// The earliest other agent whose name has the same skeleton as `client`'s
    /// (`text::skeleton`): same letters to the eye, whatever the characters.
    pub(crate) fn of(client: &Client, all: &[Client]) -> Option<Lookalike> {
        let mine = crate::text::skeleton(&client.name);
        all.iter()
            .filter(|other| other.client_id != client.client_id)
            .filter(|other| {
                (other.created_at, &other.client_id) < (client.created_at, &client.client_id)
            })
            .find(|other| crate::text::skeleton(&other.name) == mine)
            .map(|other| Lookalike {
                name: other.name.clone(),
                client_id: other.client_id.clone(),
            })
    }
}

/// A fronted server's name and the URL to give an AI client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct ServerRef {
    pub name: String,
    pub url: String,
}

/// The running Gatehouse (`gatehouse status`, the app's Settings).
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Status {
    pub url: String,
    pub port: u16,
    pub data_dir: String,
    pub version: String,
    #[ts(type = "number")]
    pub consent_timeout_ms: i64,
    pub servers: Vec<ServerRef>,
    /// Open agent sessions.
    #[ts(type = "number")]
    pub sessions: usize,
    /// Items waiting for the person.
    #[ts(type = "number")]
    pub pending: usize,
    /// The config file in force (none: the built-in demo configuration).
    pub config_path: Option<String>,
    /// Why the config file as it is now is not in force (the one before runs on).
    pub config_problem: Option<String>,
    /// Every agent, or which agents, the person paused.
    pub paused: PauseState,
}
