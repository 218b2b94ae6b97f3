//! The MCP servers Gatehouse fronts, as the person sees them: where an AI
//! client should point, what runs behind, and what each offers.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Actor, Error, Gatehouse, Result, Tool};
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock;
use crate::config::{Config, ServerConfig, Upstream};
pub use crate::gateway::ServerState;
use crate::store::{grants, tokens};

/// How Gatehouse reaches a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A command Gatehouse starts, speaking MCP on stdio.
    Stdio,
    /// A remote streamable-HTTP MCP server.
    Http,
}

/// A fronted MCP server.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Server {
    pub name: String,
    /// The URL to give to an AI client.
    pub url: String,
    pub transport: Transport,
    /// The command line, or the upstream URL.
    pub target: String,
    pub description: Option<String>,
    /// The tools, when the gateway has listed them recently.
    pub tools: Option<Vec<Tool>>,
    pub state: ServerState,
}

/// What a change of the config did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct ConfigChange {
    pub added: Vec<String>,
    /// Gone from the file: sessions ended, grants revoked (still listed as such).
    pub removed: Vec<String>,
    /// Command, URL, environment or headers changed: sessions restarted.
    pub changed: Vec<String>,
    /// `enabled = false` now: sessions ended, grants kept.
    pub disabled: Vec<String>,
    /// Settings that apply only when Gatehouse starts again (the port, where secrets live).
    pub after_restart: Vec<String>,
}

impl ConfigChange {
    pub fn is_empty(&self) -> bool {
        *self == ConfigChange::default()
    }
}

impl Gatehouse {
    /// Every fronted server, by name. Never starts an upstream: `tools` is
    /// what was listed recently, if anything.
    pub fn servers(&self) -> Vec<Server> {
        let config = self.config();
        let enabled = config.servers.iter().map(|(n, s)| (n, s, true));
        let disabled = config.disabled.iter().map(|(n, s)| (n, s, false));
        let mut all: Vec<Server> = enabled
            .chain(disabled)
            .map(|(name, s, on)| {
                let tools = self.gateway().cached_catalog(name);
                Server {
                    name: name.clone(),
                    url: self.auth().resource_url(name),
                    transport: transport_of(s),
                    target: target_of(s),
                    description: s.description.clone(),
                    tools: tools.map(|t| t.iter().map(Tool::from).collect()),
                    state: if on {
                        self.gateway().server_state(name)
                    } else {
                        ServerState::Disabled
                    },
                }
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Starts a server afresh: its sessions end (agents reconnect), its tool
    /// list is fetched again, a crash record is forgotten.
    pub fn restart_server(&self, name: &str) -> Result<usize> {
        if !self.config().servers.contains_key(name) {
            return Err(unknown(name));
        }
        Ok(self.gateway().reset_server(name))
    }

    /// The last `lines` lines a server wrote to stderr (inert, secrets redacted).
    pub fn server_logs(&self, name: &str, lines: usize) -> Result<Vec<String>> {
        let config = self.config();
        if !config.servers.contains_key(name) && !config.disabled.contains_key(name) {
            return Err(unknown(name));
        }
        Ok(self.gateway().server_logs(name, lines))
    }

    /// Reads the config file again if it changed since it was last read, and
    /// puts it in force (see [`Gatehouse::reload`]). A file that does not
    /// parse changes nothing: the config before it runs on, and the problem
    /// is kept for the status (and logged once). `None`: nothing changed.
    /// Reads a file: call it off the async workers.
    pub fn reload_from_file(&self, actor: Actor) -> Result<Option<ConfigChange>> {
        let Some(path) = self.config().path.clone() else {
            return Ok(None);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                let problem = format!("cannot read the config file {}: {e}", path.display());
                self.note_config_problem(Some(problem.clone()));
                return Err(Error::bad_request(problem));
            }
        };
        if !self.config_changed(&text) {
            return Ok(None);
        }
        match Config::parse(&text, &path) {
            Ok(mut new) => {
                new.path = Some(path);
                self.note_config_problem(None);
                let change = self.reload(new, actor)?;
                tracing::info!(?change, "the config file changed; in force now");
                Ok(Some(change))
            }
            Err(e) => {
                let problem = format!("{e}; the config before this edit runs on");
                self.note_config_problem(Some(problem.clone()));
                Err(Error::bad_request(problem))
            }
        }
    }

    fn note_config_problem(&self, problem: Option<String>) {
        if problem.is_some() && problem != self.config_problem() {
            tracing::error!("{}", problem.as_deref().unwrap_or_default());
        }
        self.set_config_problem(problem);
    }

    /// Puts a changed config in force without a restart. A removed server's
    /// sessions end and its grants are revoked (they stay listed, revoked);
    /// a changed one's sessions restart; a disabled one's end, its grants
    /// kept. The port and where secrets live apply at the next start.
    pub fn reload(&self, mut new: Config, actor: Actor) -> Result<ConfigChange> {
        let old = self.config();
        let mut change = ConfigChange::default();
        new.port_override = old.port_override;
        if new.port != old.port {
            change.after_restart.push(format!("port {}", new.port));
        }
        if new.secret_store != old.secret_store {
            change.after_restart.push("secret_store".into());
            new.secret_store = old.secret_store;
        }
        for (name, server) in &new.servers {
            match old.servers.get(name) {
                None => change.added.push(name.clone()),
                Some(before) if before != server => change.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        for name in old.servers.keys().filter(|n| !new.servers.contains_key(*n)) {
            if new.disabled.contains_key(name) {
                change.disabled.push(name.clone());
            } else {
                change.removed.push(name.clone());
            }
        }
        let clients = new.clients.clone();
        self.auth().config.replace(new);
        for name in change
            .changed
            .iter()
            .chain(&change.removed)
            .chain(&change.disabled)
        {
            self.gateway().reset_server(name);
        }
        let now = clock::now();
        let actor = self.actor_name(actor);
        self.store().write(|tx| {
            for name in &change.removed {
                for grant in grants::revoke_for_server(tx.conn(), name, now)? {
                    let tokens = tokens::revoke_for_grant(tx.conn(), &grant.id, now)?;
                    tx.record(
                        NewEvent::new(EventKind::GrantRevoked, Outcome::Revoked)
                            .client(&grant.client_id)
                            .server(name)
                            .grant(&grant.id)
                            .actor(&actor)
                            .detail(json!({"reason": "server removed", "tokens_revoked": tokens})),
                        now,
                    )?;
                }
            }
            crate::oauth::register::preconfigured(tx, &clients, now)?;
            if !change.is_empty() {
                tx.record(
                    NewEvent::new(EventKind::ConfigChanged, Outcome::Allowed)
                        .actor(&actor)
                        .detail(serde_json::to_value(&change).unwrap_or_default()),
                    now,
                )?;
            }
            Ok::<_, crate::store::StoreError>(())
        })?;
        Ok(change)
    }

    /// A server's tools, from the server itself (started for this if needed).
    pub async fn server_tools(&self, server: &str) -> Result<Vec<Tool>> {
        let tools = self
            .gateway()
            .catalog(server)
            .await
            .map_err(Error::not_found)?;
        Ok(tools.iter().map(Tool::from).collect())
    }
}

fn unknown(name: &str) -> Error {
    Error::not_found(format!(
        "no server named {name:?}; see `gatehouse servers list`"
    ))
}

fn transport_of(s: &ServerConfig) -> Transport {
    match &s.upstream {
        Upstream::Stdio { .. } => Transport::Stdio,
        Upstream::Http { .. } => Transport::Http,
    }
}

/// The command line (secrets named, never shown), or the upstream URL.
fn target_of(s: &ServerConfig) -> String {
    match &s.upstream {
        Upstream::Stdio { command, args, .. } => {
            let mut line = vec![command.clone()];
            line.extend(args.iter().map(|a| match a {
                crate::config::Value::Plain(p) => p.clone(),
                crate::config::Value::Secret(r) => format!("[secret {}]", r.secret),
            }));
            line.join(" ")
        }
        Upstream::Http { url, .. } => url.to_string(),
    }
}
