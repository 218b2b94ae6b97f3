//! `gatehouse servers`: the fronted servers, managed without editing files.
//! Additions, removals and switches are written to the config file the
//! running Gatehouse reads (its comments and layout kept), then put in force
//! at once; the rest asks the running Gatehouse.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use gatehouse::api::{ConfigChange, CredentialStore, Tool};
use gatehouse::config::edit::{self, Entry};
use gatehouse::config::{self, CredentialStoreChoice, SecretRef, Value};
use gatehouse::control::client::ControlClient;
use gatehouse::control::Request;
use gatehouse::text::inert;

use super::output;

#[derive(Subcommand)]
pub enum ServersAction {
    /// The servers, their state and their tools.
    List,
    /// Add a server: a stdio command after `--`, or `--url` for a remote one.
    /// Secret values (`--secret-env`, `--secret-header`) are read from stdin,
    /// one line each in the order given, and kept in the keychain.
    Add {
        name: String,
        /// A remote (streamable HTTP) MCP server.
        #[arg(long, conflicts_with = "command")]
        url: Option<String>,
        /// An environment variable for a stdio server: KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// An environment variable whose value is a secret (read from stdin).
        #[arg(long = "secret-env", value_name = "KEY")]
        secret_env: Vec<String>,
        /// A request header for a remote server: NAME=VALUE (repeatable).
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
        /// A header whose value is a secret (read from stdin), e.g. Authorization.
        #[arg(long = "secret-header", value_name = "NAME")]
        secret_headers: Vec<String>,
        /// What goes before a secret header's value, e.g. "Bearer ".
        #[arg(long, default_value = "")]
        header_prefix: String,
        #[arg(long)]
        description: Option<String>,
        /// Start it when Gatehouse starts (else with the first agent session).
        #[arg(long)]
        at_start: bool,
        /// The command and its arguments.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Remove a server: its sessions end and its grants are revoked.
    Rm { name: String },
    /// Serve a disabled server again.
    Enable { name: String },
    /// Stop serving a server but keep it (and its grants) in the file.
    Disable { name: String },
    /// Start a server afresh (its sessions end; agents open new ones).
    Restart { name: String },
    /// The last lines a server wrote to stderr.
    Logs {
        name: String,
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
    },
    /// A server's tools, asked of the server itself.
    Tools { name: String },
    /// Read the config file again now (Gatehouse also notices edits by itself).
    Reload,
}

/// Runs one `servers` command.
pub fn run(
    data_dir: &Path,
    config: Option<PathBuf>,
    json: bool,
    action: ServersAction,
) -> Result<(), String> {
    let simple = match &action {
        ServersAction::List => Some(Request::Servers),
        ServersAction::Restart { name } => Some(Request::RestartServer {
            server: name.clone(),
        }),
        ServersAction::Logs { name, lines } => Some(Request::ServerLogs {
            server: name.clone(),
            lines: *lines,
        }),
        ServersAction::Tools { name } => Some(Request::ServerTools {
            server: name.clone(),
        }),
        ServersAction::Reload => Some(Request::ReloadConfig),
        _ => None,
    };
    if let Some(request) = simple {
        let answer = ControlClient::connect(data_dir)
            .and_then(|mut c| c.call(&request))
            .map_err(|e| e.message)?;
        return if json {
            output::json(&answer, true);
            Ok(())
        } else {
            output::answer(&request, answer)
        };
    }
    let path = config_path(data_dir, config.clone());
    let mut doc = edit::read(&path)?;
    let name = match action {
        ServersAction::Add {
            name,
            url,
            env,
            secret_env,
            headers,
            secret_headers,
            header_prefix,
            description,
            at_start,
            command,
        } => {
            let (program, args) = match (command.split_first(), &url) {
                (Some((program, args)), None) => (Some(program.clone()), args.to_vec()),
                (None, Some(_)) => (None, Vec::new()),
                _ => {
                    return Err(
                        "give the command after `--` (a stdio server) or --url (a remote one)"
                            .into(),
                    )
                }
            };
            if let Some(program) = &program {
                check_command(program)?;
            }
            let mut entry = Entry {
                command: program,
                args: args.into_iter().map(Value::Plain).collect(),
                env: pairs(&env)?,
                url,
                headers: pairs(&headers)?,
                description,
                start_at_launch: at_start,
            };
            let secrets: Vec<(String, String)> = secret_env
                .iter()
                .map(|k| (k.clone(), String::new()))
                .chain(
                    secret_headers
                        .iter()
                        .map(|h| (h.clone(), header_prefix.clone())),
                )
                .collect();
            let values = read_secrets(&secrets)?;
            for (key, prefix) in &secrets {
                let reference = Value::Secret(SecretRef {
                    secret: secret_name(key),
                    prefix: prefix.clone(),
                });
                if secret_env.contains(key) {
                    entry.env.insert(key.clone(), reference);
                } else {
                    entry.headers.insert(key.clone(), reference);
                }
            }
            if edit::insert_server(&mut doc, &name, &entry)? == edit::Added::AlreadyThere {
                println!(
                    "{} is already in {} as given.",
                    inert(&name),
                    path.display()
                );
            }
            edit::write(&path, &doc)?;
            if !values.is_empty() {
                let store = credentials(data_dir, &path)?;
                for ((key, _), value) in secrets.iter().zip(values) {
                    store
                        .set(&name, &secret_name(key), &value)
                        .map_err(|e| e.to_string())?;
                }
            }
            name
        }
        ServersAction::Rm { name } => {
            edit::remove_server(&mut doc, &name)?;
            edit::write(&path, &doc)?;
            name
        }
        ServersAction::Enable { name } => {
            edit::set_enabled(&mut doc, &name, true)?;
            edit::write(&path, &doc)?;
            name
        }
        ServersAction::Disable { name } => {
            edit::set_enabled(&mut doc, &name, false)?;
            edit::write(&path, &doc)?;
            name
        }
        _ => unreachable!("answered above"),
    };
    put_in_force(data_dir, &path, &name)
}

/// Tells the running Gatehouse to read the file now, says what changed,
/// and lists the tools of a server that was just added.
fn put_in_force(data_dir: &Path, path: &Path, name: &str) -> Result<(), String> {
    let Ok(mut control) = ControlClient::connect(data_dir) else {
        println!(
            "Written to {}. Gatehouse is not running: it takes effect when it starts.",
            path.display()
        );
        return Ok(());
    };
    let change = control
        .call(&Request::ReloadConfig)
        .map_err(|e| e.message)?;
    let change: Option<ConfigChange> = serde_json::from_value(change).map_err(|e| e.to_string())?;
    println!("Written to {}.", path.display());
    output::config_change(change.as_ref());
    if change.is_some_and(|c| c.added.iter().any(|a| a == name)) {
        let tools = control.call(&Request::ServerTools {
            server: name.to_string(),
        });
        match tools.map(serde_json::from_value::<Vec<Tool>>) {
            Ok(Ok(tools)) => {
                let names: Vec<String> = tools.iter().map(|t| inert(&t.name)).collect();
                println!(
                    "{} answers with {} tool(s): {}",
                    inert(name),
                    tools.len(),
                    names.join(", ")
                );
            }
            Ok(Err(e)) => return Err(e.to_string()),
            Err(e) => println!("{} did not list its tools: {}", inert(name), e.message),
        }
    }
    Ok(())
}

/// The config file the running Gatehouse reads, else the one given, else the default.
fn config_path(data_dir: &Path, given: Option<PathBuf>) -> PathBuf {
    let running = ControlClient::connect(data_dir)
        .and_then(|mut c| c.call(&Request::Status))
        .ok()
        .and_then(|s| s["config_path"].as_str().map(PathBuf::from));
    running
        .or(given)
        .unwrap_or_else(config::default_config_path)
}

fn credentials(data_dir: &Path, config_path: &Path) -> Result<CredentialStore, String> {
    let choice =
        config::Config::load(config_path).map_or(CredentialStoreChoice::Auto, |c| c.secret_store);
    gatehouse::daemon::prepare_data_dir(data_dir).map_err(|e| format!("{e:#}"))?;
    CredentialStore::open(data_dir, choice).map_err(|e| e.to_string())
}

/// A command that can be started: a path to a file, or a name on the PATH.
fn check_command(program: &str) -> Result<(), String> {
    let found = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
    };
    if found {
        Ok(())
    } else {
        Err(format!(
            "{}: no such command (give its full path, or install it first); nothing was written",
            inert(program)
        ))
    }
}

/// KEY=VALUE pairs.
fn pairs(items: &[String]) -> Result<BTreeMap<String, Value>, String> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), Value::Plain(v.to_string()))),
            _ => Err(format!("{item:?}: expected KEY=VALUE")),
        })
        .collect()
}

/// The keychain name of a variable or header: letters, digits, '_' and '-'.
fn secret_name(key: &str) -> String {
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

/// One line of stdin per secret, in order.
fn read_secrets(secrets: &[(String, String)]) -> Result<Vec<String>, String> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    secrets
        .iter()
        .map(|(key, _)| {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprint!("{key}: ");
            }
            match lines.next() {
                Some(Ok(line)) if !line.trim().is_empty() => {
                    Ok(line.trim_end_matches(['\r', '\n']).to_string())
                }
                _ => Err(format!(
                    "no value for the secret {key} on stdin (one line per secret, in order)"
                )),
            }
        })
        .collect()
}
