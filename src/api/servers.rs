//! The MCP servers Gatehouse fronts, as the person sees them: where an AI
//! client should point, what runs behind, and what each offers.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Actor, Error, Gatehouse, Result, Tool};
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock;
use crate::config::{Config, ServerConfig, Upstream};
use crate::credentials::CredentialStore;
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
    /// For each tool granted to someone: the agents that hold it now.
    pub holders: Vec<ToolHolders>,
    /// The names of its secrets (values never leave the keychain).
    pub secrets: Vec<String>,
    /// A remote server: whether Gatehouse holds a login there.
    pub logged_in: bool,
    /// Why the last login the person started failed (until the next one).
    pub login_error: Option<String>,
}

/// A server to add, as the person gives it (the app's form, the CLI).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
pub struct NewServer {
    pub name: String,
    /// A stdio server: the command and its arguments.
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// A remote (streamable HTTP) server.
    pub url: Option<String>,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Values kept in the keychain, never in the file.
    #[serde(default)]
    pub secrets: Vec<NewSecret>,
    pub description: Option<String>,
    #[serde(default)]
    pub start_at_launch: bool,
}

/// A secret environment variable or header of a new server.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct NewSecret {
    /// The variable or header name.
    pub key: String,
    pub value: String,
    /// A header (else an environment variable).
    #[serde(default)]
    pub header: bool,
    /// What goes before the value, e.g. "Bearer ".
    #[serde(default)]
    pub prefix: String,
}

impl NewServer {
    /// The entry written to the file (secrets as keychain references).
    pub fn entry(&self) -> Result<crate::config::edit::Entry> {
        use crate::config::{SecretRef, Value};
        if self.command.is_some() == self.url.is_some() {
            return Err(Error::bad_request(
                "give a command (a stdio server) or a URL (a remote one)",
            ));
        }
        let plain = |m: &std::collections::BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| (k.clone(), Value::Plain(v.clone())))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let mut entry = crate::config::edit::Entry {
            command: self.command.clone(),
            args: self.args.iter().cloned().map(Value::Plain).collect(),
            env: plain(&self.env),
            url: self.url.clone(),
            headers: plain(&self.headers),
            description: self.description.clone().filter(|d| !d.trim().is_empty()),
            start_at_launch: self.start_at_launch,
        };
        for s in &self.secrets {
            let reference = Value::Secret(SecretRef {
                secret: secret_name(&s.key),
                prefix: s.prefix.clone(),
            });
            let place = if s.header {
                &mut entry.headers
            } else {
                &mut entry.env
            };
            place.insert(s.key.clone(), reference);
        }
        Ok(entry)
    }
}

/// The keychain name of a variable or header: letters, digits, '_' and '-'.
pub fn secret_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Which agents hold grants on one tool of a server.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct ToolHolders {
    pub tool: String,
    pub agents: Vec<String>,
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
        let holders = self.tool_holders().unwrap_or_default();
        let secrets = self.credentials().names().unwrap_or_default();
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
                    holders: holders.get(name).cloned().unwrap_or_default(),
                    secrets: secrets.get(name).cloned().unwrap_or_default(),
                    logged_in: self.gateway().login().logged_in(name),
                    login_error: self.gateway().login().login_error(name),
                }
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Per server, the tools granted now and the agents holding each.
    fn tool_holders(&self) -> Result<std::collections::BTreeMap<String, Vec<ToolHolders>>> {
        let now = clock::now();
        let (grants, clients) = self.store().read(|c| {
            Ok::<_, crate::store::StoreError>((
                grants::list(c, None, false, now)?,
                crate::store::clients::list(c)?,
            ))
        })?;
        let name_of = |id: &str| {
            clients
                .iter()
                .find(|c| c.client_id == id)
                .map_or_else(|| id.to_string(), |c| c.name.clone())
        };
        let mut by_server: std::collections::BTreeMap<
            String,
            std::collections::BTreeMap<String, Vec<String>>,
        > = Default::default();
        for g in &grants {
            for tool in &g.tools {
                let agents = by_server
                    .entry(g.server.clone())
                    .or_default()
                    .entry(tool.clone())
                    .or_default();
                let agent = name_of(&g.client_id);
                if !agents.contains(&agent) {
                    agents.push(agent);
                }
            }
        }
        Ok(by_server
            .into_iter()
            .map(|(server, tools)| {
                let holders = tools
                    .into_iter()
                    .map(|(tool, agents)| ToolHolders { tool, agents })
                    .collect();
                (server, holders)
            })
            .collect())
    }

    /// The config file changes are written to (none with the built-in demo configuration).
    pub(super) fn config_file(&self) -> Result<std::path::PathBuf> {
        self.config().path.clone().ok_or_else(|| {
            Error::bad_request("Gatehouse runs on its built-in configuration (no config file): start it with a config file to change it from here")
        })
    }

    /// Edits the config file and puts it in force as one step: no other
    /// edit and no reload (the sweep's, which looks for hand edits) comes in
    /// between, so the change returned is this edit's, and it is in force
    /// when this returns.
    pub(super) fn edit_config(
        &self,
        actor: Actor,
        edit: impl FnOnce(&std::path::Path) -> Result<()>,
    ) -> Result<ConfigChange> {
        let _one_at_a_time = self.config_edits.lock().unwrap_or_else(|p| p.into_inner());
        edit(&self.config_file()?)?;
        self.reload_from_file_now(actor)
            .map(Option::unwrap_or_default)
    }

    /// Replaces the config file's text, if it still is the text whose
    /// [`crate::config::fingerprint`] is `was` (`None`: there is no file), and puts it in
    /// force: how another process (`gatehouse connect`) edits the file this
    /// one serves without losing an edit made here in between.
    pub fn replace_config(
        &self,
        was: Option<&str>,
        text: &str,
        actor: Actor,
    ) -> Result<ConfigChange> {
        self.edit_config(actor, |path| {
            let now = match std::fs::read_to_string(path) {
                Ok(now) => Some(crate::config::fingerprint(&now)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::internal(format!("{}: {e}", path.display()))),
            };
            if now.as_deref() != was {
                return Err(Error::bad_request(crate::connect::changed_since_read(path)));
            }
            Config::parse(text, path).map_err(|e| Error::bad_request(e.to_string()))?;
            crate::config::edit::write_atomic(path, text).map_err(Error::internal)
        })
    }

    /// Adds a server: its secrets to the keychain, the rest to the config
    /// file; in force at once.
    pub fn add_server(&self, new: NewServer, actor: Actor) -> Result<ConfigChange> {
        self.edit_config(actor, |path| add_server_to(path, self.credentials(), &new))
    }

    /// Removes a server from the config file (its sessions end, its grants are revoked).
    pub fn remove_server(&self, name: &str, actor: Actor) -> Result<ConfigChange> {
        self.edit_config(actor, |path| {
            crate::config::edit::change_in_file(path, name, crate::config::edit::remove_server)
                .map_err(Error::bad_request)
        })
    }

    /// Serves a server again, or stops serving it (keeping it and its grants).
    pub fn set_server_enabled(
        &self,
        name: &str,
        enabled: bool,
        actor: Actor,
    ) -> Result<ConfigChange> {
        self.edit_config(actor, |path| {
            crate::config::edit::change_in_file(path, name, |doc, name| {
                crate::config::edit::set_enabled(doc, name, enabled)
            })
            .map_err(Error::bad_request)
        })
    }

    /// Sets (or replaces) one secret of a server; its next session uses it.
    pub fn set_server_secret(&self, server: &str, name: &str, value: &str) -> Result<()> {
        if value.is_empty() {
            return Err(Error::bad_request("a secret needs a value"));
        }
        self.credentials()
            .set(server, name, value)
            .map_err(|e| Error::bad_request(e.to_string()))
    }

    /// Removes one secret of a server.
    pub fn remove_server_secret(&self, server: &str, name: &str) -> Result<()> {
        match self.credentials().remove(server, name) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::not_found(format!(
                "{server} has no secret named {name:?}"
            ))),
            Err(e) => Err(Error::internal(e.to_string())),
        }
    }

    /// Starts the person's login at a remote server: the URL to open in the
    /// browser. The browser comes back to Gatehouse (`finish_login`).
    pub async fn start_login(&self, name: &str) -> Result<String> {
        let config = self.config();
        let server = config.servers.get(name).ok_or_else(|| unknown(name))?;
        let headers: Vec<(String, String)> = match &server.upstream {
            Upstream::Http { headers, .. } => headers
                .iter()
                .filter_map(|(k, v)| match v {
                    crate::config::Value::Plain(p) => Some((k.clone(), p.clone())),
                    crate::config::Value::Secret(_) => None,
                })
                .collect(),
            Upstream::Stdio { .. } => Vec::new(),
        };
        self.gateway()
            .login()
            .start(server, &headers)
            .await
            .map_err(Error::bad_request)
    }

    /// The browser came back from a login: the server logged in to. Its
    /// sessions start afresh with the new login.
    pub async fn finish_login(
        &self,
        query: &std::collections::HashMap<String, String>,
    ) -> Result<String> {
        let server = self
            .gateway()
            .login()
            .finish(query)
            .await
            .map_err(Error::bad_request)?;
        self.gateway().reset_server(&server);
        Ok(server)
    }

    /// The metadata document Gatehouse serves about itself as a client.
    pub fn upstream_client_metadata(&self) -> serde_json::Value {
        self.gateway().login().client_metadata()
    }

    /// Calls a tool of a server as Gatehouse itself, outside any grant: only
    /// for `gatehouse conformance-client`, which checks Gatehouse's login at
    /// a remote server against the MCP conformance suite. No face uses it.
    #[doc(hidden)]
    pub async fn call_as_gatehouse(&self, server: &str, tool: &str) -> Result<serde_json::Value> {
        self.gateway()
            .call_as_gatehouse(server, tool, json!({}))
            .await
            .map_err(Error::bad_request)
    }

    /// Forgets Gatehouse's login at a server.
    pub fn logout(&self, name: &str) -> Result<()> {
        if !self.config().servers.contains_key(name) {
            return Err(unknown(name));
        }
        self.gateway().login().logout(name);
        self.gateway().reset_server(name);
        Ok(())
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
        let _one_at_a_time = self.config_edits.lock().unwrap_or_else(|p| p.into_inner());
        self.reload_from_file_now(actor)
    }

    /// `reload_from_file`, its caller holding `config_edits`.
    fn reload_from_file_now(&self, actor: Actor) -> Result<Option<ConfigChange>> {
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
                match self.reload(new, actor) {
                    Ok(change) => {
                        self.note_config_problem(None);
                        tracing::info!(?change, "the config file changed; in force now");
                        Ok(Some(change))
                    }
                    Err(e) => {
                        // Not in force: the next sweep tries this text again.
                        self.forget_config_seen();
                        self.note_config_problem(Some(format!(
                            "the config file could not be put in force ({}); the config before it runs on, and it is tried again in a moment",
                            e.message
                        )));
                        Err(e)
                    }
                }
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
        let now = clock::now();
        let actor = self.actor_name(actor);
        self.store().write(|tx| {
            for name in &change.removed {
                for grant in grants::revoke_for_server(tx.conn(), name, now)? {
                    let families = tokens::revoke_for_grant(tx.conn(), &grant.id, now)?;
                    tx.record(
                        NewEvent::new(EventKind::GrantRevoked, Outcome::Revoked)
                            .client(&grant.client_id)
                            .server(name)
                            .grant(&grant.id)
                            .actor(&actor)
                            .detail(json!({
                                "reason": "server removed",
                                "token_families_revoked": families,
                            })),
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
        // In force only once its revocations are: a store that fails leaves
        // the config before it wholly in force, to be tried again.
        self.auth().config.replace(new);
        for name in change
            .changed
            .iter()
            .chain(&change.removed)
            .chain(&change.disabled)
        {
            self.gateway().reset_server(name);
        }
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

impl Gatehouse {
    /// Makes a planned `connect` from this process (the app's Connect):
    /// through this Gatehouse when it serves that config file (the edit and
    /// its reload one step, in force when it returns; secrets moved to its
    /// own store), else to the file. Files and the keychain: call it off the
    /// async workers.
    pub fn connect(
        &self,
        plan: &crate::connect::Plan,
        opts: &crate::connect::Options,
        actor: Actor,
    ) -> Result<crate::connect::Connected> {
        use crate::connect::{apply, same_file, secret_store, LocalFile};
        let config = self.config();
        let served = (config.path.as_deref()).is_some_and(|p| same_file(p, &opts.gatehouse_config));
        let connected = if served {
            let own = || Ok(self.credentials().clone());
            apply(plan, opts, &own, &ServedConfig(self, actor))
        } else {
            let named = || secret_store(plan, opts);
            apply(plan, opts, &named, &LocalFile(&opts.gatehouse_config))
        };
        connected.map_err(Error::bad_request)
    }
}

/// The config file this Gatehouse serves, as `connect` changes it from
/// this process (the app): by [`Gatehouse::replace_config`], so the edit and
/// its reload are one step with every other edit, in force when it returns.
pub(crate) struct ServedConfig<'a>(pub &'a Gatehouse, pub Actor);

impl crate::connect::ConfigFile for ServedConfig<'_> {
    fn replace(&self, was: Option<&str>, text: Option<&str>) -> std::result::Result<(), String> {
        let text = text.ok_or("the config file Gatehouse serves stays")?;
        let was = was.map(crate::config::fingerprint);
        self.0
            .replace_config(was.as_deref(), text, self.1)
            .map(drop)
            .map_err(|e| e.message)
    }

    fn served(&self) -> bool {
        true
    }
}

/// Writes a new server's entry to the config file at `path` and its secrets
/// to `credentials`. A server without its secrets would fail at every
/// start: when one cannot be stored, the entry just written goes again, and
/// so do the secrets this add stored that were not there before it. How the
/// running Gatehouse adds a server, and the CLI when Gatehouse is not running.
pub fn add_server_to(
    path: &std::path::Path,
    credentials: &CredentialStore,
    new: &NewServer,
) -> Result<()> {
    let entry = new.entry()?;
    let added =
        crate::config::edit::add_to_file(path, &new.name, &entry).map_err(Error::bad_request)?;
    let mut failed = None;
    let had = match credentials.names() {
        Ok(mut names) => names.remove(&new.name).unwrap_or_default(),
        Err(e) => {
            failed = (!new.secrets.is_empty()).then_some(e);
            Vec::new()
        }
    };
    // Each key this add wrote, or may have half written (a failed
    // `set` can have stored the value but not its name).
    let mut stored = Vec::new();
    for s in &new.secrets {
        if failed.is_some() {
            break;
        }
        let key = secret_name(&s.key);
        let result = credentials.set(&new.name, &key, &s.value);
        stored.push(key);
        failed = result.err();
    }
    let Some(e) = failed else {
        return Ok(());
    };
    let name = crate::text::inert(&new.name);
    if added == crate::config::edit::Added::AlreadyThere {
        return Err(Error::internal(format!(
            "{e}; the server {name:?} was there already, and not all its secrets were stored"
        )));
    }
    crate::config::edit::change_in_file(path, &new.name, crate::config::edit::remove_server)
        .map_err(|e| Error::internal(format!("{e} (undoing the add)")))?;
    for key in stored.iter().filter(|k| !had.contains(k)) {
        let _ = credentials.remove(&new.name, key);
    }
    Err(Error::internal(format!(
        "{e}; the server {name:?} was not added"
    )))
}
