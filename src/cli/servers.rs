//! `gatehouse servers`: the fronted servers, managed without editing files.
//! Additions, removals and switches are written to the config file the
//! running Gatehouse reads (its comments and layout kept), then put in force
//! at once; the rest asks the running Gatehouse.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use gatehouse::api::servers::add_server_to;
use gatehouse::api::{ConfigChange, NewSecret, NewServer, Tool};
use gatehouse::config;
use gatehouse::config::edit;
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
    /// Log Gatehouse in to a remote server that asks for it: opens the
    /// browser (or prints the URL) and waits until you are done.
    Login {
        name: String,
        /// Only print the URL.
        #[arg(long)]
        no_browser: bool,
    },
    /// Forget Gatehouse's login at a remote server.
    Logout { name: String },
}

/// Runs one `servers` command.
pub fn run(
    data_dir: &Path,
    config: Option<PathBuf>,
    json: bool,
    action: ServersAction,
) -> Result<(), String> {
    if let ServersAction::Login { name, no_browser } = &action {
        return login(data_dir, name, *no_browser);
    }
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
        ServersAction::Logout { name } => Some(Request::Logout {
            server: name.clone(),
        }),
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
    let request = match action {
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
            let keys: Vec<(String, bool)> = secret_env
                .iter()
                .map(|k| (k.clone(), false))
                .chain(secret_headers.iter().map(|h| (h.clone(), true)))
                .collect();
            let values = read_secrets(&keys)?;
            let secrets: Vec<NewSecret> = keys
                .into_iter()
                .zip(values)
                .map(|((key, header), value)| NewSecret {
                    key,
                    value,
                    header,
                    prefix: if header {
                        header_prefix.clone()
                    } else {
                        String::new()
                    },
                })
                .collect();
            let server = NewServer {
                name,
                command: program,
                args,
                url,
                env: pairs(&env)?,
                headers: pairs(&headers)?,
                secrets,
                description,
                start_at_launch: at_start,
            };
            Request::AddServer { server }
        }
        ServersAction::Rm { name } => Request::RemoveServer { server: name },
        ServersAction::Enable { name } => Request::SetServerEnabled {
            server: name,
            enabled: true,
        },
        ServersAction::Disable { name } => Request::SetServerEnabled {
            server: name,
            enabled: false,
        },
        _ => unreachable!("answered above"),
    };
    match ControlClient::connect(data_dir) {
        Ok(mut control) => in_force(&mut control, &request),
        Err(_) => offline(data_dir, config, &request),
    }
}

/// Starts the login, sends the person to the browser, and waits for the
/// browser to come back to Gatehouse.
#[allow(clippy::disallowed_methods)] // it waits for the person in real time
fn login(data_dir: &Path, name: &str, no_browser: bool) -> Result<(), String> {
    let mut control = ControlClient::connect(data_dir).map_err(|e| e.message)?;
    let url = control
        .call(&Request::StartLogin {
            server: name.to_string(),
        })
        .map_err(|e| e.message)?;
    let url = url.as_str().unwrap_or_default().to_string();
    if no_browser || !gatehouse::browser::open(&url) {
        println!(
            "Open this address in your browser to log Gatehouse in to {}:\n{url}",
            inert(name)
        );
    } else {
        println!(
            "Log in to {} in the browser window that opened.",
            inert(name)
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let servers = control.call(&Request::Servers).map_err(|e| e.message)?;
        let server = servers
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == name);
        if server.is_some_and(|s| s["logged_in"] == true && s["state"]["state"] != "needs_login") {
            println!("Gatehouse is logged in to {}.", inert(name));
            return Ok(());
        }
        if let Some(error) = server.and_then(|s| s["login_error"].as_str()) {
            return Err(format!(
                "the login to {} failed: {}",
                inert(name),
                inert(error)
            ));
        }
    }
    Err(format!(
        "no login came back within 10 minutes; run `gatehouse servers login {name}` again"
    ))
}

/// Asks the running Gatehouse to make the change; says what changed, and
/// lists the tools of a server that was just added.
fn in_force(control: &mut ControlClient, request: &Request) -> Result<(), String> {
    let change = control.call(request).map_err(|e| e.message)?;
    let change: ConfigChange = serde_json::from_value(change).map_err(|e| e.to_string())?;
    output::config_change(Some(&change));
    if let Request::AddServer { server } = request {
        let name = &server.name;
        if change.added.contains(name) {
            let tools = control.call(&Request::ServerTools {
                server: name.clone(),
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
    }
    Ok(())
}

/// Gatehouse is not running: the change goes to the file, in force when it starts.
fn offline(data_dir: &Path, config: Option<PathBuf>, request: &Request) -> Result<(), String> {
    let path = config.unwrap_or_else(config::default_config_path);
    match request {
        Request::AddServer { server } if server.secrets.is_empty() => {
            let entry = server.entry().map_err(|e| e.message)?;
            edit::add_to_file(&path, &server.name, &entry)?;
        }
        Request::AddServer { server } => {
            // No file is touched for an entry that would be refused.
            server.entry().map_err(|e| e.message)?;
            // The file says where secrets are kept; with no file yet, the default place.
            let file = Some(path.clone()).filter(|p| p.exists());
            let made = file.is_none();
            let store = super::open_credentials(data_dir, file)?;
            add_server_to(&path, &store, server).map_err(|e| {
                // An add that made the file and was undone leaves no file (an
                // empty one would stop the demo server being served).
                if made {
                    let _ = std::fs::remove_file(&path);
                }
                e.message
            })?;
        }
        Request::RemoveServer { server } => {
            edit::change_in_file(&path, server, edit::remove_server)?
        }
        Request::SetServerEnabled { server, enabled } => {
            edit::change_in_file(&path, server, |doc, name| {
                edit::set_enabled(doc, name, *enabled)
            })?
        }
        _ => unreachable!("only changes of the file"),
    }
    println!(
        "Written to {}. Gatehouse is not running: it takes effect when it starts.",
        path.display()
    );
    Ok(())
}

/// KEY=VALUE pairs.
fn pairs(items: &[String]) -> Result<BTreeMap<String, String>, String> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{item:?}: expected KEY=VALUE")),
        })
        .collect()
}

/// One line of stdin per secret, in order.
fn read_secrets(secrets: &[(String, bool)]) -> Result<Vec<String>, String> {
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
