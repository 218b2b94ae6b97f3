//! Configuration in two layers: [`ConfigFile`] is exactly what the TOML file
//! may say (unknown keys are errors that name the file, line and key); it is
//! validated into a [`Config`], where every default lives.

pub mod edit;

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::clock;

/// The documented default port (`http://127.0.0.1:7390`).
pub const DEFAULT_PORT: u16 = 7390;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub port: Option<u16>,
    /// How long a consent request waits for the person, e.g. "5m".
    pub consent_timeout: Option<String>,
    /// How long one MCP request may wait for its upstream, e.g. "60s".
    pub call_timeout: Option<String>,
    /// How long an access token lives (then the agent refreshes it), e.g. "1h".
    pub access_token_ttl: Option<String>,
    /// Where Gatehouse's own Client ID Metadata Document is published (an
    /// https URL), for logins at remote authorization servers that take them.
    pub client_metadata_url: Option<String>,
    /// Where upstream secrets live: "auto" (the OS keychain, else a 0600 file), "keychain" or "file".
    pub secret_store: Option<String>,
    /// Refuse a token presented by another program than the one it was granted to.
    #[serde(default)]
    pub bind_grants_to_program: bool,
    /// What the consent window picks first: "once", "1h", "1d" or "forever".
    pub default_duration: Option<String>,
    /// Which granted tools ask every time by default: "destructive" or "none".
    pub ask_every_time: Option<String>,
    /// The app's look: "system", "light" or "dark".
    pub theme: Option<String>,
    /// Audit events older than this are exported and then deleted, e.g. "90d".
    pub keep_audit_for: Option<String>,
    /// Beyond this many audit events, the oldest are exported and then deleted.
    pub keep_audit_events: Option<u64>,
    #[serde(default)]
    pub servers: BTreeMap<String, ServerFile>,
    #[serde(default)]
    pub clients: BTreeMap<String, ClientFile>,
    #[serde(default)]
    pub testing: TestingFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub command: Option<String>,
    /// Arguments: written out, or a secret from the keychain (`{ secret = "NAME" }`).
    #[serde(default)]
    pub args: Vec<Value>,
    #[serde(default)]
    pub env: BTreeMap<String, Value>,
    pub cwd: Option<PathBuf>,
    pub url: Option<String>,
    /// false: kept in the file, not served (its grants stay).
    pub enabled: Option<bool>,
    /// "on_demand" (default: started with each agent session) or "at_start"
    /// (also started once when Gatehouse starts, to check it and list its tools).
    pub start: Option<String>,
    /// Request headers for an HTTP server (e.g. its API key, from the keychain).
    #[serde(default)]
    pub headers: BTreeMap<String, Value>,
    pub description: Option<String>,
    /// A client registered with the server's authorization server by hand
    /// (when it supports neither metadata documents nor registration).
    pub oauth: Option<OAuthClientFile>,
}

/// `[servers.x.oauth]`: Gatehouse's own client at a remote server's
/// authorization server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClientFile {
    pub client_id: String,
    pub client_secret: Option<Value>,
    /// The scope to ask for (default: what the server's challenge or metadata say).
    pub scope: Option<String>,
}

/// An environment variable or header value: written out, or a secret from
/// the OS keychain (`{ secret = "NAME" }`, optionally with a `prefix` such as
/// `"Bearer "`), so that the file never holds the credential.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Plain(String),
    Secret(SecretRef),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub secret: String,
    #[serde(default)]
    pub prefix: String,
}

/// A pre-registered OAuth client (public, PKCE), e.g. for the conformance suite.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    /// The server this client is for; lets it omit `resource`.
    pub server: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestingFile {
    /// Allow Client ID Metadata Documents from http://127.0.0.1 (tests only).
    #[serde(default)]
    pub allow_loopback_client_metadata: bool,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The port the file asks for.
    pub port: u16,
    /// The port given on the command line, which wins over the file's.
    pub port_override: Option<u16>,
    pub consent_timeout_ms: i64,
    pub call_timeout_ms: i64,
    /// How long an access token lives.
    pub access_token_ttl_ms: i64,
    /// The servers served.
    pub servers: BTreeMap<String, ServerConfig>,
    /// Servers in the file with `enabled = false`: not served, grants kept.
    pub disabled: BTreeMap<String, ServerConfig>,
    pub clients: BTreeMap<String, PreregisteredClient>,
    pub allow_loopback_client_metadata: bool,
    pub secret_store: CredentialStoreChoice,
    /// The file it was read from (none for the built-in demo configuration).
    pub path: Option<PathBuf>,
    /// Where Gatehouse's own client metadata document is published, if the
    /// person publishes it.
    pub client_metadata_url: Option<String>,
    /// A token presented by another executable than the one it was granted
    /// to is refused (401), not only flagged.
    pub bind_grants_to_program: bool,
    /// What the consent window picks first.
    pub default_duration: DefaultDuration,
    pub ask_every_time: AskDefault,
    pub theme: Theme,
    /// How much of the audit log to keep (everything unless set).
    pub keep_audit: Retention,
}

/// How much of the audit log is kept: older events, and the oldest beyond a
/// count, are exported to the data directory's `audit-archive/` and then
/// deleted. Both unset: everything is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub for_ms: Option<i64>,
    pub events: Option<u64>,
}

/// The duration the consent window picks first (the person can change it).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
pub enum DefaultDuration {
    Once,
    Hour,
    Day,
    #[default]
    Forever,
}

impl DefaultDuration {
    pub const CHOICES: &'static str = "\"once\", \"1h\", \"1d\" or \"forever\"";
    pub fn parse(s: &str) -> Option<DefaultDuration> {
        Some(match s {
            "once" => DefaultDuration::Once,
            "1h" => DefaultDuration::Hour,
            "1d" => DefaultDuration::Day,
            "forever" => DefaultDuration::Forever,
            _ => return None,
        })
    }
    /// As the config file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultDuration::Once => "once",
            DefaultDuration::Hour => "1h",
            DefaultDuration::Day => "1d",
            DefaultDuration::Forever => "forever",
        }
    }
}

/// Which granted tools ask every time unless the person picks otherwise.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
pub enum AskDefault {
    #[default]
    Destructive,
    None,
}

/// The app's look.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

/// The config in force, shared by the authorization server and the gateway,
/// and swapped whole when the person changes it (a reload never leaves half
/// of one config and half of another in use).
#[derive(Debug, Clone)]
pub struct Live(std::sync::Arc<std::sync::RwLock<std::sync::Arc<Config>>>);

impl Live {
    pub fn new(config: Config) -> Live {
        Live(std::sync::Arc::new(std::sync::RwLock::new(
            std::sync::Arc::new(config),
        )))
    }

    /// The config in force now (keep it for the length of one operation).
    pub fn get(&self) -> std::sync::Arc<Config> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `config` in force; returns the one it replaces.
    pub fn replace(&self, config: Config) -> std::sync::Arc<Config> {
        let mut current = self.0.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *current, std::sync::Arc::new(config))
    }
}

/// Where upstream secrets live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialStoreChoice {
    /// The OS keychain when one answers, else the 0600 file (with a warning).
    Auto,
    /// The OS keychain only; starting fails without one.
    Keychain,
    /// The 0600 file in the data directory.
    File,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub name: String,
    pub upstream: Upstream,
    /// For an HTTP server: a hand-registered OAuth client, if any.
    pub oauth: Option<OAuthClientFile>,
    /// Start it (and list its tools) when Gatehouse starts, not only on first use.
    pub start_at_launch: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Upstream {
    Stdio {
        command: String,
        args: Vec<Value>,
        env: BTreeMap<String, Value>,
        cwd: Option<PathBuf>,
    },
    Http {
        url: url::Url,
        headers: BTreeMap<String, Value>,
    },
}

impl Upstream {
    /// The secrets its values name, each once.
    pub fn secret_names(&self) -> std::collections::BTreeSet<&str> {
        let values: Vec<&Value> = match self {
            Upstream::Stdio { args, env, .. } => args.iter().chain(env.values()).collect(),
            Upstream::Http { headers, .. } => headers.values().collect(),
        };
        values
            .into_iter()
            .filter_map(|v| match v {
                Value::Secret(r) => Some(r.secret.as_str()),
                Value::Plain(_) => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct PreregisteredClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub server: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// The port to listen on.
    pub fn listen_port(&self) -> u16 {
        self.port_override.unwrap_or(self.port)
    }

    /// The config at `path`; without one, the default file (see
    /// [`default_config_path`]), written on a first run with the demo server.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match path {
            Some(path) => path.to_path_buf(),
            None => default_config_path(),
        };
        if !path.exists() {
            let write = || -> std::io::Result<()> {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, Config::first_run_text())
            };
            write().map_err(|e| {
                ConfigError(format!(
                    "cannot create the config file {}: {e}",
                    path.display()
                ))
            })?;
        }
        Config::load(&path)
    }

    /// The configuration with no file: the built-in demo server only.
    pub fn demo() -> Config {
        let mut config = Config::from_file(ConfigFile::default(), Path::new("(built-in)"))
            .expect("the built-in configuration is valid");
        config.servers.insert("demo".to_string(), demo_server());
        config
    }

    /// What a first run writes to the default config file: the demo server,
    /// as an example the person can remove.
    pub fn first_run_text() -> String {
        let command = match &demo_server().upstream {
            Upstream::Stdio { command, .. } => command.clone(),
            Upstream::Http { .. } => unreachable!("the demo server runs on stdio"),
        };
        format!(
            "# Gatehouse: the MCP servers it fronts for the AI agents on this computer.\n\
             # Gatehouse notices changes to this file while it runs. `gatehouse servers`\n\
             # (or the app's Servers view) edits it for you and keeps your comments.\n\
             \n\
             # The built-in demo server, a small notes store: an example to try Gatehouse\n\
             # with. Remove it when you have added your own servers.\n\
             [servers.demo]\n\
             command = {command:?}\n\
             args = [\"demo-server\"]\n\
             description = \"Built-in demo notes server\"\n"
        )
    }

    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        let mut config = Config::parse(&text, path)?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text)
            .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
        Config::from_file(file, path)
    }

    fn from_file(file: ConfigFile, path: &Path) -> Result<Config, ConfigError> {
        let err = |key: &str, msg: &str| {
            ConfigError(format!(
                "config file {}: key `{key}`: {msg}",
                path.display()
            ))
        };
        let duration = |key: &str, value: &Option<String>, default: i64| match value {
            None => Ok(default),
            Some(v) => clock::parse_duration(v)
                .ok_or_else(|| err(key, "expected a duration such as \"30s\", \"5m\" or \"1h\"")),
        };
        let mut servers = BTreeMap::new();
        let mut disabled = BTreeMap::new();
        for (name, server) in file.servers {
            let key = format!("servers.{name}");
            if !is_valid_name(&name) {
                return Err(err(
                    &key,
                    "server names use a-z, 0-9, '-' and '_' (at most 64)",
                ));
            }
            let args = server
                .args
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("args[{i}]"), v));
            let named = server
                .env
                .iter()
                .chain(&server.headers)
                .map(|(k, v)| (k.clone(), v));
            for (var, value) in named.chain(args) {
                if let Value::Secret(r) = value {
                    if r.secret.is_empty()
                        || r.secret.len() > 64
                        || !r
                            .secret
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        return Err(err(
                            &format!("{key}.{var}.secret"),
                            "secret names use letters, digits, '_' and '-' (at most 64)",
                        ));
                    }
                }
            }
            let upstream = match (server.command, server.url) {
                (Some(_), None) if !server.headers.is_empty() => {
                    return Err(err(
                        &format!("{key}.headers"),
                        "`headers` are for HTTP servers (with `url`); stdio servers take `env`",
                    ));
                }
                (Some(command), None) => Upstream::Stdio {
                    command,
                    args: server.args,
                    env: server.env,
                    cwd: server.cwd,
                },
                (None, Some(url)) => {
                    let url = url::Url::parse(&url)
                        .map_err(|e| err(&format!("{key}.url"), &e.to_string()))?;
                    if !matches!(url.scheme(), "http" | "https") {
                        return Err(err(&format!("{key}.url"), "must be an http or https URL"));
                    }
                    let loopback = url
                        .host_str()
                        .is_some_and(crate::oauth::redirect::is_loopback_host);
                    if url.scheme() == "http" && !loopback {
                        return Err(err(
                            &format!("{key}.url"),
                            "plain http only for this machine (127.0.0.1, localhost); use https",
                        ));
                    }
                    if !server.args.is_empty() || !server.env.is_empty() || server.cwd.is_some() {
                        return Err(err(
                            &key,
                            "`args`, `env` and `cwd` are for stdio servers (with `command`)",
                        ));
                    }
                    Upstream::Http {
                        url,
                        headers: server.headers,
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(err(
                        &key,
                        "give either `command` (stdio) or `url` (HTTP), not both",
                    ))
                }
                (None, None) => {
                    return Err(err(
                        &key,
                        "give `command` (a stdio server) or `url` (an HTTP server)",
                    ))
                }
            };
            let start_at_launch = match server.start.as_deref() {
                None | Some("on_demand") => false,
                Some("at_start") => true,
                Some(_) => {
                    return Err(err(
                        &format!("{key}.start"),
                        "expected \"on_demand\" or \"at_start\"",
                    ))
                }
            };
            if server.oauth.is_some() && !matches!(upstream, Upstream::Http { .. }) {
                return Err(err(
                    &format!("{key}.oauth"),
                    "`oauth` is for HTTP servers (with `url`)",
                ));
            }
            let config = ServerConfig {
                name: name.clone(),
                oauth: server.oauth,
                upstream,
                start_at_launch,
                description: server.description,
            };
            if server.enabled == Some(false) {
                disabled.insert(name, config);
            } else {
                servers.insert(name, config);
            }
        }
        let mut clients = BTreeMap::new();
        for (client_id, client) in file.clients {
            let key = format!("clients.{client_id}");
            if client.redirect_uris.is_empty() {
                return Err(err(
                    &format!("{key}.redirect_uris"),
                    "list at least one redirect URI",
                ));
            }
            for uri in &client.redirect_uris {
                crate::oauth::redirect::validate_registered(uri)
                    .map_err(|e| err(&format!("{key}.redirect_uris"), &e))?;
            }
            if let Some(server) = &client.server {
                if !servers.contains_key(server) {
                    return Err(err(
                        &format!("{key}.server"),
                        &format!("no server named `{server}`"),
                    ));
                }
            }
            clients.insert(
                client_id.clone(),
                PreregisteredClient {
                    name: client.name.unwrap_or_else(|| client_id.clone()),
                    client_id,
                    redirect_uris: client.redirect_uris,
                    server: client.server,
                },
            );
        }
        Ok(Config {
            port: file.port.unwrap_or(DEFAULT_PORT),
            port_override: None,
            consent_timeout_ms: duration(
                "consent_timeout",
                &file.consent_timeout,
                5 * clock::MINUTE,
            )?,
            call_timeout_ms: duration("call_timeout", &file.call_timeout, 60 * clock::SECOND)?,
            access_token_ttl_ms: match duration(
                "access_token_ttl",
                &file.access_token_ttl,
                clock::HOUR,
            )? {
                ttl if (clock::SECOND..=24 * clock::HOUR).contains(&ttl) => ttl,
                _ => return Err(err("access_token_ttl", "between 1s and 24h")),
            },
            servers,
            disabled,
            clients,
            allow_loopback_client_metadata: file.testing.allow_loopback_client_metadata,
            bind_grants_to_program: file.bind_grants_to_program,
            path: None,
            client_metadata_url: match file.client_metadata_url {
                Some(u)
                    if url::Url::parse(&u)
                        .map(|u| u.scheme() == "https")
                        .unwrap_or(false) =>
                {
                    Some(u)
                }
                Some(_) => return Err(err("client_metadata_url", "an https URL")),
                None => None,
            },
            default_duration: match file.default_duration.as_deref() {
                None => DefaultDuration::default(),
                Some(d) => DefaultDuration::parse(d).ok_or_else(|| {
                    err(
                        "default_duration",
                        &format!("expected {}", DefaultDuration::CHOICES),
                    )
                })?,
            },
            ask_every_time: match file.ask_every_time.as_deref() {
                None | Some("destructive") => AskDefault::Destructive,
                Some("none") => AskDefault::None,
                Some(_) => {
                    return Err(err(
                        "ask_every_time",
                        "expected \"destructive\" or \"none\"",
                    ))
                }
            },
            keep_audit: Retention {
                for_ms: match &file.keep_audit_for {
                    None => None,
                    Some(_) => Some(duration("keep_audit_for", &file.keep_audit_for, 0)?),
                },
                events: match file.keep_audit_events {
                    Some(0) => {
                        return Err(err(
                            "keep_audit_events",
                            "at least 1 (leave it out to keep every event)",
                        ))
                    }
                    n => n,
                },
            },
            theme: match file.theme.as_deref() {
                None | Some("system") => Theme::System,
                Some("light") => Theme::Light,
                Some("dark") => Theme::Dark,
                Some(_) => return Err(err("theme", "expected \"system\", \"light\" or \"dark\"")),
            },
            secret_store: match file.secret_store.as_deref() {
                None | Some("auto") => CredentialStoreChoice::Auto,
                Some("keychain") => CredentialStoreChoice::Keychain,
                Some("file") => CredentialStoreChoice::File,
                Some(_) => {
                    return Err(err(
                        "secret_store",
                        "expected \"auto\", \"keychain\" or \"file\"",
                    ))
                }
            },
        })
    }
}

/// The built-in demo server: this same binary, `gatehouse demo-server`, over stdio.
fn demo_server() -> ServerConfig {
    let command = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "gatehouse".to_string());
    ServerConfig {
        name: "demo".to_string(),
        oauth: None,
        start_at_launch: false,
        upstream: Upstream::Stdio {
            command,
            args: vec![Value::Plain("demo-server".to_string())],
            env: BTreeMap::new(),
            cwd: None,
        },
        description: Some("Built-in demo notes server".to_string()),
    }
}

pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// What a config file's text is known by when another process changes
/// it from what it read (`Request::ReplaceConfig`): its SHA-256.
pub fn fingerprint(text: &str) -> String {
    crate::crypto::hash(text)
}

/// The config file Gatehouse reads when none is given (and `gatehouse
/// connect` writes): `gatehouse.toml` in the platform config directory
/// (`~/.config/gatehouse/gatehouse.toml` on Linux).
pub fn default_config_path() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("gatehouse/gatehouse.toml")
}

/// The platform data directory for Gatehouse (e.g. `~/.local/share/gatehouse`).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("gatehouse")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_name_file_line_and_key() {
        let e = Config::parse(
            "port = 1\n[servers.a]\ncommand = \"x\"\ncomand = \"y\"\n",
            Path::new("/etc/g.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/etc/g.toml"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(e.contains("comand"), "{e}");
    }

    #[test]
    fn server_needs_exactly_one_transport() {
        let e = Config::parse(
            "[servers.a]\ncommand = \"x\"\nurl = \"http://h\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("servers.a"));
        let e = Config::parse("[servers.a]\n", Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().contains("give `command`"));
    }

    #[test]
    fn an_empty_file_fronts_nothing_and_the_first_run_file_the_demo() {
        let c = Config::parse("", Path::new("c.toml")).unwrap();
        assert_eq!(c.port, DEFAULT_PORT);
        assert!(
            c.servers.is_empty(),
            "a server removed from the file stays removed"
        );
        let first = Config::parse(&Config::first_run_text(), Path::new("c.toml")).unwrap();
        assert_eq!(first.servers.keys().collect::<Vec<_>>(), ["demo"]);
        assert!(Config::demo().servers.contains_key("demo"));
    }

    #[test]
    fn disabled_servers_and_plain_http_urls() {
        let c = Config::parse(
            "[servers.a]\ncommand = \"x\"\nenabled = false\n[servers.b]\nurl = \"http://127.0.0.1:9/mcp\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(c.disabled.contains_key("a") && !c.servers.contains_key("a"));
        assert!(c.servers.contains_key("b"));
        let e = Config::parse(
            "[servers.c]\nurl = \"http://mcp.example/mcp\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("plain http only for this machine"),
            "{e}"
        );
    }

    #[test]
    fn env_and_headers_take_secrets_by_name() {
        let c = Config::parse(
            "[servers.gh]\ncommand = \"x\"\nenv = { A = \"plain\", TOKEN = { secret = \"GITHUB_TOKEN\" } }\n\
             [servers.remote]\nurl = \"https://mcp.example/mcp\"\nheaders = { Authorization = { secret = \"KEY\", prefix = \"Bearer \" } }\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let Upstream::Stdio { env, .. } = &c.servers["gh"].upstream else {
            panic!()
        };
        assert_eq!(
            env["TOKEN"],
            Value::Secret(SecretRef {
                secret: "GITHUB_TOKEN".into(),
                prefix: String::new()
            })
        );
        let Upstream::Http { headers, .. } = &c.servers["remote"].upstream else {
            panic!()
        };
        assert_eq!(
            headers["Authorization"],
            Value::Secret(SecretRef {
                secret: "KEY".into(),
                prefix: "Bearer ".into()
            })
        );
        assert!(Config::parse(
            "[servers.a]\ncommand = \"x\"\nenv = { T = { secret = \"../etc\" } }\n",
            Path::new("c")
        )
        .is_err());
        assert!(Config::parse(
            "[servers.a]\ncommand = \"x\"\nenv = { T = { secrt = \"X\" } }\n",
            Path::new("c")
        )
        .is_err());
        assert!(Config::parse(
            "[servers.a]\ncommand = \"x\"\nheaders = { H = \"v\" }\n",
            Path::new("c")
        )
        .is_err());
    }

    #[test]
    fn bad_names_and_durations_are_refused() {
        assert!(Config::parse("[servers.\"Bad Name\"]\ncommand=\"x\"\n", Path::new("c")).is_err());
        assert!(Config::parse("call_timeout = \"soon\"\n", Path::new("c")).is_err());
    }
}
