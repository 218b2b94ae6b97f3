//! `gatehouse connect <client>`: puts the MCP servers an AI client already
//! has behind Gatehouse. It reads the client's file, adds its servers to
//! Gatehouse's config (moving plaintext secrets into the keychain when asked),
//! and rewrites the client's entries to go through Gatehouse: the gateway URL,
//! or `gatehouse bridge` for clients that only launch stdio servers. Nothing
//! else in the file changes, comments included. A dry run shows the change
//! as a diff; `apply` keeps a backup that `disconnect` restores byte for
//! byte. Every write is a temp file and a rename, after checking that the
//! file did not change since it was read.

#![allow(clippy::disallowed_methods)] // an edge: it notes when it connected a file

pub mod apps;
pub mod jsonc;
pub mod secrets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

pub use apps::{App, Dirs, Entry, Upstream};

use crate::config::edit::{self, write_atomic};
use crate::credentials::CredentialStore;

/// Where the `gatehouse` command is, for the bridge entries of stdio-only
/// clients: next to this program, else on the PATH.
pub fn gatehouse_command() -> PathBuf {
    let name = if cfg!(windows) {
        "gatehouse.exe"
    } else {
        "gatehouse"
    };
    let here = std::env::current_exe().ok();
    if let Some(exe) = &here {
        if exe.file_stem().is_some_and(|s| s == "gatehouse") {
            return exe.clone();
        }
        let sibling = exe.with_file_name(name);
        if sibling.exists() {
            return sibling;
        }
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

/// What to connect, and where things are.
#[derive(Debug, Clone)]
pub struct Options {
    pub app: App,
    /// The project (workspace) directory, for a per-project file.
    pub project: Option<PathBuf>,
    pub dirs: Dirs,
    /// Gatehouse's config file (created if missing).
    pub gatehouse_config: PathBuf,
    pub data_dir: PathBuf,
    /// Where Gatehouse's gateway is (`http://127.0.0.1:7390`).
    pub gateway: String,
    /// The command line that runs `gatehouse` (and its `--data-dir`), for bridges.
    pub gatehouse_command: Vec<String>,
    /// Move the secrets found into the keychain (else they are copied as they are).
    pub move_secrets: bool,
}

impl Options {
    /// The options for `client` (its id, as `App::parse` reads it) with the
    /// home directories from the environment.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: &str,
        project: Option<PathBuf>,
        gatehouse_config: PathBuf,
        data_dir: PathBuf,
        gateway: String,
        gatehouse_command: Vec<String>,
        move_secrets: bool,
    ) -> Result<Options, String> {
        let app = App::parse(client).ok_or_else(|| {
            let ids: Vec<&str> = App::ALL.iter().map(|a| a.id()).collect();
            format!("unknown client {client:?}; use one of: {}", ids.join(", "))
        })?;
        let project = match project {
            Some(p) => Some(std::path::absolute(p).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(Options {
            app,
            project,
            dirs: Dirs::from_env().ok_or("cannot find the home directory")?,
            gatehouse_config,
            data_dir,
            gateway,
            gatehouse_command,
            move_secrets,
        })
    }
}

/// A server the change puts behind Gatehouse.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    /// Its name in the client's file.
    pub name: String,
    /// Its name in Gatehouse (`/mcp/<name>`).
    pub gatehouse_name: String,
    pub upstream: Upstream,
    /// The secrets found in it (keychain names), moved or copied.
    pub secrets: Vec<String>,
    /// Gatehouse already fronts this very server under that name.
    pub reused: bool,
}

/// The change, computed and not yet made.
#[derive(Debug, Clone)]
pub struct Plan {
    pub app: App,
    pub file: PathBuf,
    pub before: String,
    pub after: String,
    pub config_before: Option<String>,
    pub config_after: String,
    pub servers: Vec<Planned>,
    /// Entries left as they are, and why.
    pub skipped: Vec<(String, String)>,
    /// Entries that already go through Gatehouse.
    pub connected: Vec<String>,
    secrets: Vec<(String, secrets::Found)>,
}

/// What `connect` remembers, to undo it.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    app: App,
    file: PathBuf,
    at: crate::clock::UnixMs,
    /// SHA-256 of what connect wrote: unchanged means nobody edited it since.
    written_sha256: String,
    servers: Vec<String>,
}

fn sha256(text: &[u8]) -> String {
    crate::crypto::hex(&sha2::Sha256::digest(text))
}

fn read(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// A server name Gatehouse accepts: a-z, 0-9, '-' and '_'.
fn gatehouse_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '-',
        })
        .collect();
    out.truncate(64);
    if out.trim_matches('-').is_empty() {
        "server".into()
    } else {
        out
    }
}

/// Where connect keeps what it needs to undo a connection.
fn records_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("connections")
}

fn record_id(app: App, project: Option<&Path>) -> String {
    match project {
        None => app.id().to_string(),
        Some(dir) => format!(
            "{}-{}",
            app.id(),
            &sha256(dir.to_string_lossy().as_bytes())[..12]
        ),
    }
}

/// Computes the change for `opts.app` (nothing is written).
pub fn plan(opts: &Options) -> Result<Plan, String> {
    let app = opts.app;
    let file = app.file(&opts.dirs, opts.project.as_deref())?;
    let before = read(&file)?.ok_or_else(|| {
        format!(
            "{} has no MCP configuration at {} (nothing to connect)",
            app.title(),
            file.display()
        )
    })?;
    let id = record_id(app, opts.project.as_deref());
    if records_dir(&opts.data_dir)
        .join(format!("{id}.json"))
        .exists()
    {
        return Err(format!(
            "{} is already connected ({}); `gatehouse disconnect {}` first to connect it again",
            app.title(),
            file.display(),
            app.id()
        ));
    }
    let entries = read_entries(app, &file, &before)?;
    let config_before = read(&opts.gatehouse_config)?;
    let mut config = config_before
        .as_deref()
        .unwrap_or("")
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| format!("{}: {e}", opts.gatehouse_config.display()))?;
    let mut servers = Vec::new();
    let mut skipped = Vec::new();
    let mut connected = Vec::new();
    let mut found_secrets = Vec::new();
    let mut new_entries = BTreeMap::new();
    for (name, entry) in &entries {
        let upstream = match app.read_entry(entry, &opts.gateway) {
            Entry::Server(u) => u,
            Entry::Connected => {
                connected.push(name.clone());
                continue;
            }
            Entry::Unsupported(why) => {
                skipped.push((name.clone(), why));
                continue;
            }
        };
        let mut gname = gatehouse_name(name);
        let taken = |n: &str| servers.iter().any(|s: &Planned| s.gatehouse_name == n);
        let mut n = 2;
        while taken(&gname) {
            gname = format!("{}-{n}", gatehouse_name(name));
            n += 1;
        }
        let secrets = secrets::find(&upstream);
        let reused = add_server(
            &mut config,
            &gname,
            &upstream,
            &secrets,
            opts,
            &opts.gatehouse_config,
        )?;
        new_entries.insert(
            name.clone(),
            app.through_gatehouse(&gname, &opts.gateway, &opts.gatehouse_command),
        );
        found_secrets.extend(secrets.iter().map(|s| (gname.clone(), s.clone())));
        servers.push(Planned {
            name: name.clone(),
            gatehouse_name: gname,
            upstream,
            secrets: secrets.iter().map(|s| s.name.clone()).collect(),
            reused,
        });
    }
    let after = write_entries(app, &file, &before, &new_entries)?;
    Ok(Plan {
        app,
        file,
        before,
        after,
        config_after: config.to_string(),
        config_before,
        servers,
        skipped,
        connected,
        secrets: found_secrets,
    })
}

/// The entries of a client's file, by name.
fn read_entries(app: App, file: &Path, text: &str) -> Result<Vec<(String, Value)>, String> {
    let bad = |e: String| format!("{} is not valid: {e}", file.display());
    match app.format() {
        apps::Format::Json(key) => {
            let root = jsonc::parse(text).map_err(|e| bad(e.to_string()))?;
            let Some(servers) = root.at(&[key]) else {
                return Ok(Vec::new());
            };
            match &servers.kind {
                jsonc::Kind::Object(members) => Ok(members
                    .iter()
                    .map(|m| (m.key.clone(), jsonc::value(text, &m.value)))
                    .collect()),
                _ => Err(bad(format!("`{key}` is not an object"))),
            }
        }
        apps::Format::CodexToml => {
            let doc: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
            let Some(servers) = doc.get("mcp_servers") else {
                return Ok(Vec::new());
            };
            let servers = servers
                .as_table()
                .ok_or_else(|| bad("`mcp_servers` is not a table".into()))?;
            Ok(servers
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                .collect())
        }
    }
}

/// `text` with the named entries replaced (everything else as it was).
fn write_entries(
    app: App,
    file: &Path,
    text: &str,
    new: &BTreeMap<String, Value>,
) -> Result<String, String> {
    if new.is_empty() {
        return Ok(text.to_string());
    }
    match app.format() {
        apps::Format::Json(key) => {
            let root = jsonc::parse(text).map_err(|e| e.to_string())?;
            let edits = match root.at(&[key]).map(|n| &n.kind) {
                Some(jsonc::Kind::Object(members)) => members
                    .iter()
                    .filter_map(|m| {
                        let value = new.get(&m.key)?;
                        let indent = jsonc::indentation_at(text, m.key_start);
                        Some((m.value.start, m.value.end, jsonc::render(value, indent)))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            Ok(jsonc::splice(text, edits))
        }
        apps::Format::CodexToml => {
            let mut doc = text
                .parse::<toml_edit::DocumentMut>()
                .map_err(|e| format!("{}: {e}", file.display()))?;
            for (name, entry) in new {
                let Some(table) = doc["mcp_servers"][name.as_str()].as_table_like_mut() else {
                    continue;
                };
                table.clear();
                table.insert(
                    "command",
                    toml_edit::value(entry["command"].as_str().unwrap_or_default()),
                );
                let args: toml_edit::Array = entry["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                table.insert("args", toml_edit::value(args));
            }
            Ok(doc.to_string())
        }
    }
}

/// Adds `[servers.<name>]` to Gatehouse's config (the secrets found as
/// keychain references when they are moved); true when an identical one is
/// already there. A different server of that name is an error.
fn add_server(
    config: &mut toml_edit::DocumentMut,
    name: &str,
    upstream: &Upstream,
    found: &[secrets::Found],
    opts: &Options,
    path: &Path,
) -> Result<bool, String> {
    use crate::config::{SecretRef, Value};
    use secrets::Place;
    // The value as written: a keychain reference where a secret was found
    // (and is moved), else the text as it was.
    let value = |text: &str, here: &dyn Fn(&Place) -> bool| -> Value {
        let secret = found
            .iter()
            .find(|s| here(&s.place))
            .filter(|_| opts.move_secrets);
        match secret {
            Some(s) => Value::Secret(SecretRef {
                secret: s.name.clone(),
                prefix: match &s.place {
                    Place::Arg { prefix, .. } | Place::Header { prefix, .. } => prefix.clone(),
                    Place::Env(_) => String::new(),
                },
            }),
            None => Value::Plain(text.to_string()),
        }
    };
    let entry = match upstream {
        Upstream::Stdio { command, args, env } => edit::Entry {
            command: Some(command.clone()),
            args: args
                .iter()
                .enumerate()
                .map(|(i, a)| value(a, &|p| matches!(p, Place::Arg { index, .. } if *index == i)))
                .collect(),
            env: env
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        value(v, &|p| matches!(p, Place::Env(name) if name == k)),
                    )
                })
                .collect(),
            ..edit::Entry::default()
        },
        Upstream::Http { url, headers } => edit::Entry {
            url: Some(url.clone()),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        value(v, &|p| matches!(p, Place::Header { name, .. } if name == k)),
                    )
                })
                .collect(),
            ..edit::Entry::default()
        },
    };
    match edit::insert_server(config, name, &entry) {
        Ok(edit::Added::Added) => Ok(false),
        Ok(edit::Added::AlreadyThere) => Ok(true),
        Err(e) => Err(format!(
            "Gatehouse already fronts another server named {name:?} ({}): {e}; rename one of them first",
            path.display()
        )),
    }
}

/// The change as a unified diff of both files.
pub fn diff(plan: &Plan, gatehouse_config: &Path) -> String {
    let one = |a: &str, b: &str, path: &Path| {
        similar::TextDiff::from_lines(a, b)
            .unified_diff()
            .context_radius(3)
            .header(&path.display().to_string(), &path.display().to_string())
            .to_string()
    };
    let mut out = one(&plan.before, &plan.after, &plan.file);
    out.push_str(&one(
        plan.config_before.as_deref().unwrap_or(""),
        &plan.config_after,
        gatehouse_config,
    ));
    out
}

impl Plan {
    /// The secrets found, as (Gatehouse server, keychain name).
    pub fn secrets(&self) -> Vec<(String, String)> {
        self.secrets
            .iter()
            .map(|(server, s)| (server.clone(), s.name.clone()))
            .collect()
    }
}

fn writable(path: &Path) -> Result<(), String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if meta.permissions().readonly() {
        return Err(format!(
            "{} is read-only: nothing was changed",
            path.display()
        ));
    }
    Ok(())
}

/// How Gatehouse's config file is changed: only from the text last read,
/// so an edit someone else made since is never overwritten.
pub trait ConfigFile {
    /// Makes the file `text` (`None`: no file) if it still is `was`.
    fn replace(&self, was: Option<&str>, text: Option<&str>) -> Result<(), String>;

    /// Whether a running Gatehouse serves the file, so that a change is in
    /// force once `replace` returns. A file only written is not.
    fn served(&self) -> bool {
        false
    }
}

/// Whether two paths name the same existing file (a running Gatehouse's
/// config as it reports it, and the one a command was given).
pub fn same_file(a: &Path, b: &Path) -> bool {
    a.canonicalize()
        .ok()
        .is_some_and(|a| b.canonicalize().ok() == Some(a))
}

/// Where `connect` keeps the secrets it moves: the store named by the
/// `secret_store` of Gatehouse's config as the plan read it (`auto` when
/// there is none yet).
pub fn secret_store(plan: &Plan, opts: &Options) -> Result<CredentialStore, String> {
    let config = (plan.config_before.as_deref())
        .map(|text| crate::config::Config::parse(text, &opts.gatehouse_config))
        .transpose()
        .map_err(|e| e.to_string())?;
    let choice = config.map_or(crate::config::CredentialStoreChoice::Auto, |c| {
        c.secret_store
    });
    CredentialStore::open(&opts.data_dir, choice).map_err(|e| e.to_string())
}

/// What a connect did, as the person is told.
#[derive(Debug)]
pub struct Connected {
    pub app: App,
    /// The servers that now go through Gatehouse (their names in the client's file).
    pub servers: Vec<String>,
    /// The client's file, which `gatehouse disconnect` restores.
    pub file: PathBuf,
    /// Whether the running Gatehouse serves them already.
    pub served: bool,
    /// Where the secrets moved went (the store, described), if any moved.
    pub moved_secrets: Option<String>,
}

impl std::fmt::Display for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers: Vec<String> = self.servers.iter().map(|s| crate::text::inert(s)).collect();
        let them = if servers.len() == 1 { "it" } else { "them" };
        let serving = if self.served {
            format!("Gatehouse serves {them} now")
        } else {
            format!("Start (or restart) Gatehouse or the app with this config so it serves {them}")
        };
        write!(
            f,
            "{} now reaches {} through Gatehouse. {serving}; `gatehouse disconnect {}` undoes the change to {}.",
            self.app.title(),
            servers.join(", "),
            self.app.id(),
            crate::text::inert(&self.file.display().to_string())
        )
    }
}

/// The config file written by this process: what no running Gatehouse serves.
pub struct LocalFile<'a>(pub &'a Path);

impl ConfigFile for LocalFile<'_> {
    fn replace(&self, was: Option<&str>, text: Option<&str>) -> Result<(), String> {
        unchanged(self.0, was)?;
        match text {
            Some(text) => write_atomic(self.0, text),
            None => std::fs::remove_file(self.0)
                .map_err(|e| format!("cannot remove {}: {e}", self.0.display())),
        }
    }
}

fn unchanged(path: &Path, was: Option<&str>) -> Result<(), String> {
    if read(path)?.as_deref() != was {
        return Err(changed_since_read(path));
    }
    Ok(())
}

/// Why a file is left as it is: it changed between reading and writing.
pub(crate) fn changed_since_read(path: &Path) -> String {
    format!(
        "{} changed since it was read: nothing was written; run the command again",
        path.display()
    )
}

/// Makes the change: moves the secrets (if asked, and if there are any) to
/// the store `secrets` opens, keeps a backup, writes Gatehouse's config
/// (through `config`) and then the client's file. Fails before writing
/// anything if either file changed since the plan or cannot be written.
pub fn apply(
    plan: &Plan,
    opts: &Options,
    secrets: &dyn Fn() -> Result<CredentialStore, String>,
    config: &dyn ConfigFile,
) -> Result<Connected, String> {
    writable(&plan.file)?;
    writable(&opts.gatehouse_config)?;
    unchanged(&plan.file, Some(&plan.before))?;
    unchanged(&opts.gatehouse_config, plan.config_before.as_deref())?;
    let mut moved_secrets = None;
    if opts.move_secrets && !plan.secrets.is_empty() {
        let credentials = secrets()?;
        for (server, secret) in &plan.secrets {
            credentials
                .set(server, &secret.name, &secret.value)
                .map_err(|e| format!("cannot keep the secret {} of {server}: {e}", secret.name))?;
        }
        moved_secrets = Some(credentials.describe());
    }
    let records = records_dir(&opts.data_dir);
    crate::private::ensure_dir(&records).map_err(|e| e.to_string())?;
    let id = record_id(plan.app, opts.project.as_deref());
    let backup = records.join(format!("{id}.backup"));
    let record = Record {
        app: plan.app,
        file: plan.file.clone(),
        at: crate::clock::now(),
        written_sha256: sha256(plan.after.as_bytes()),
        servers: plan
            .servers
            .iter()
            .map(|s| s.gatehouse_name.clone())
            .collect(),
    };
    let keep = |path: &Path, text: &str| -> Result<(), String> {
        use std::io::Write;
        let mut f = crate::private::create_file(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        f.write_all(text.as_bytes()).map_err(|e| e.to_string())
    };
    keep(&backup, &plan.before)?;
    keep(&records.join(format!("{id}.written")), &plan.after)?;
    keep(
        &records.join(format!("{id}.json")),
        &serde_json::to_string_pretty(&record).expect("serializable"),
    )?;
    let undo_record = || {
        for ext in ["json", "written", "backup"] {
            let _ = std::fs::remove_file(records.join(format!("{id}.{ext}")));
        }
    };
    let before = plan.config_before.as_deref();
    if let Err(e) = config.replace(before, Some(&plan.config_after)) {
        undo_record();
        return Err(e);
    }
    if let Err(e) = unchanged(&plan.file, Some(&plan.before))
        .and_then(|()| write_atomic(&plan.file, &plan.after))
    {
        undo_record();
        // Undone only if nobody changed Gatehouse's config since (the app).
        let undone = config.replace(Some(&plan.config_after), before);
        return Err(match undone {
            Ok(()) => e,
            Err(why) => format!("{e}; Gatehouse's config keeps the servers added ({why})"),
        });
    }
    Ok(Connected {
        app: plan.app,
        servers: plan.servers.iter().map(|s| s.name.clone()).collect(),
        file: plan.file.clone(),
        served: config.served(),
        moved_secrets,
    })
}

/// Restores a client's file from the backup `connect` kept. Byte for byte
/// when nobody changed the file since; otherwise it says what changed and
/// restores only with `force`. Gatehouse keeps the servers (other clients
/// may use them). Returns what was done, for the person.
pub fn disconnect(opts: &Options, force: bool) -> Result<String, String> {
    let app = opts.app;
    let records = records_dir(&opts.data_dir);
    let id = record_id(app, opts.project.as_deref());
    let record_path = records.join(format!("{id}.json"));
    let record: Record = read(&record_path)?
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            format!(
                "{} was not connected by Gatehouse (no record in {})",
                app.title(),
                records.display()
            )
        })?;
    let backup = read(&records.join(format!("{id}.backup")))?.ok_or_else(|| {
        format!(
            "the backup of {} is missing from {}",
            record.file.display(),
            records.display()
        )
    })?;
    let written = read(&records.join(format!("{id}.written")))?.unwrap_or_default();
    let current = read(&record.file)?.unwrap_or_default();
    let untouched = sha256(current.as_bytes()) == record.written_sha256;
    if !untouched && !force {
        let since = similar::TextDiff::from_lines(&written, &current)
            .unified_diff()
            .context_radius(2)
            .header("as connect wrote it", "as it is now")
            .to_string();
        return Err(format!(
            "{} changed since `gatehouse connect` wrote it. Three versions:\n  before connect: {} (the backup)\n  as connect wrote it, and as it is now:\n{since}\nRestoring the backup would undo those changes too: run `gatehouse disconnect {} --force` to restore it anyway, or edit the file by hand.",
            record.file.display(),
            records.join(format!("{id}.backup")).display(),
            app.id()
        ));
    }
    writable(&record.file)?;
    write_atomic(&record.file, &backup)?;
    for ext in ["json", "written", "backup"] {
        let _ = std::fs::remove_file(records.join(format!("{id}.{ext}")));
    }
    Ok(format!(
        "Restored {} as it was before `gatehouse connect`{}. Gatehouse still fronts {}; remove them from its config if no other client uses them.",
        record.file.display(),
        if untouched { " (byte for byte)" } else { ", over the changes made since" },
        record.servers.join(", ")
    ))
}

/// One client found on this machine, for `connect --list`.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(rename = "ConnectFound")]
pub struct Found {
    pub client: String,
    pub title: String,
    #[ts(type = "string")]
    pub file: PathBuf,
    pub exists: bool,
    /// Each server: its name and whether it goes through Gatehouse.
    pub servers: Vec<(String, String)>,
    pub error: Option<String>,
}

/// A change shown before it is made (the app's preview).
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(rename = "ConnectPreview")]
pub struct Preview {
    pub client: String,
    pub title: String,
    #[ts(type = "string")]
    pub file: PathBuf,
    /// Both files' change as a unified diff.
    pub diff: String,
    /// The servers it puts behind Gatehouse (their names in the client's file).
    pub servers: Vec<String>,
    /// Entries left as they are, and why.
    pub skipped: Vec<(String, String)>,
    /// Entries that already go through Gatehouse.
    pub connected: Vec<String>,
    /// The secrets found (server/NAME), moved to the keychain when asked.
    pub secrets: Vec<String>,
}

impl Plan {
    /// What the person is shown before the change is made.
    pub fn preview(&self, gatehouse_config: &Path) -> Preview {
        Preview {
            client: self.app.id().into(),
            title: self.app.title().into(),
            file: self.file.clone(),
            diff: diff(self, gatehouse_config),
            servers: self.servers.iter().map(|s| s.name.clone()).collect(),
            skipped: self.skipped.clone(),
            connected: self.connected.clone(),
            secrets: self
                .secrets()
                .into_iter()
                .map(|(s, n)| format!("{s}/{n}"))
                .collect(),
        }
    }
}

/// Every known client, with what it has configured.
pub fn list(dirs: &Dirs, gateway: &str, project: Option<&Path>) -> Vec<Found> {
    App::ALL
        .into_iter()
        .filter(|a| project.is_none() || a.has_project_scope())
        .filter_map(|app| {
            let file = app.file(dirs, project).ok()?;
            let mut found = Found {
                client: app.id().into(),
                title: app.title().into(),
                exists: file.exists(),
                file: file.clone(),
                servers: Vec::new(),
                error: None,
            };
            match read(&file)
                .and_then(|t| t.map_or(Ok(Vec::new()), |t| read_entries(app, &file, &t)))
            {
                Ok(entries) => {
                    found.servers = entries
                        .iter()
                        .map(|(name, e)| {
                            let state = match app.read_entry(e, gateway) {
                                Entry::Connected => "through Gatehouse".to_string(),
                                Entry::Server(_) => "direct".to_string(),
                                Entry::Unsupported(why) => format!("cannot be connected: {why}"),
                            };
                            (name.clone(), state)
                        })
                        .collect()
                }
                Err(e) => found.error = Some(e),
            }
            Some(found)
        })
        .collect()
}
