//! The command line: `gatehouse serve` and the commands that talk to a
//! running Gatehouse through the control channel. Every command takes
//! `--data-dir` and `--json`; failures print what to do and exit non-zero.
//! It lives in the binary, so it can use only the library's public API.

mod conformance;
mod connect;
mod output;
mod servers;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use gatehouse::api::{
    Approval, AskChoice, CredentialStore, DurationChoice, ExportFormat, Target, ToolChoice,
};
use gatehouse::clock;
use gatehouse::config::{self, Config, CredentialStoreChoice};
use gatehouse::control::client::ControlClient;
use gatehouse::control::{LogFilter, Request};

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Decides which AI agents may use which tools on this computer"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct Common {
    /// Where the database and the control socket live.
    #[arg(long, global = true, env = "GATEHOUSE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run Gatehouse headless: the authorization server and MCP gateway on 127.0.0.1.
    Serve {
        /// A TOML file listing the MCP servers to front (default:
        /// ~/.config/gatehouse/gatehouse.toml if it exists, else the built-in demo server).
        #[arg(long, env = "GATEHOUSE_CONFIG")]
        config: Option<PathBuf>,
        /// Port on 127.0.0.1 (default 7390; 0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Run the built-in demo MCP server on stdio (Gatehouse starts it for you).
    DemoServer,
    /// Gatehouse as the client of the MCP conformance suite's authorization
    /// scenarios: fronts the server at URL, logs in, lists and calls its tools.
    #[command(hide = true)]
    ConformanceClient { url: String },
    /// A stdio MCP server that relays to one server behind the running
    /// Gatehouse, for clients that can only launch stdio servers. It asks for
    /// consent as "<NAME> via bridge" and keeps its tokens in the keychain.
    Bridge {
        /// The server behind Gatehouse (see `gatehouse status`).
        server: String,
        /// The client this bridge serves (shown to you when it asks).
        #[arg(long, default_value = "MCP client")]
        name: String,
    },
    /// Manage upstream secrets (API keys for the fronted servers) in the OS keychain.
    Secret {
        #[command(subcommand)]
        action: SecretAction,
        /// The config file (its `secret_store` says where secrets live).
        #[arg(long, env = "GATEHOUSE_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// Show the running Gatehouse: its URL, servers and sessions.
    Status,
    /// List consent requests waiting for a decision.
    Pending,
    /// Approve a pending request (by ID, or the one consent request of an agent
    /// as `gatehouse pending` listed it): a consent request, a held call
    /// (allowed once), a changed tool (re-approved) or a server's changed
    /// instructions (told the agent from its next session).
    Approve {
        /// The request ID shown by `gatehouse pending`.
        id: Option<String>,
        /// Approve the one pending consent request of this agent instead: its
        /// exact name or client id; refused if it names several, or a request
        /// you have not listed.
        #[arg(long)]
        client: Option<String>,
        /// Grant only these tools (comma-separated). Default: the read-only tools.
        #[arg(long, value_delimiter = ',', conflicts_with = "all_tools")]
        tools: Option<Vec<String>>,
        /// Grant every tool the request asks for.
        #[arg(long)]
        all_tools: bool,
        /// Tools to hold for your decision on every call (default: the destructive ones).
        #[arg(long, value_delimiter = ',', conflicts_with = "ask_none")]
        ask: Option<Vec<String>>,
        /// Hold no tool's calls.
        #[arg(long)]
        ask_none: bool,
        /// How long: `once`, a duration such as `1h` or `7d`, or `forever` (until revoked).
        #[arg(long = "for", default_value = "forever")]
        duration: String,
        /// Let the agent see the tools it was not granted, and ask for one by calling it.
        #[arg(long)]
        ask_more: bool,
        /// Remember these choices for this agent on this server (as rules).
        #[arg(long)]
        remember: bool,
    },
    /// Rules you keep for an agent, applied when it asks for tools: list them,
    /// add one, change one, or remove one.
    Rules {
        #[command(subcommand)]
        action: Option<RulesAction>,
        /// Only this agent's rules (name or client id).
        #[arg(long)]
        agent: Option<String>,
    },
    /// Let a grant's agent see the tools it was not granted (marked as needing
    /// your approval) and ask for one by calling it (`on`), or stop that (`off`).
    AskMore {
        /// The grant (see `gatehouse grants`).
        grant: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Deny a pending request (by ID, or the one consent request of an agent).
    Deny {
        id: Option<String>,
        #[arg(long)]
        client: Option<String>,
    },
    /// Put an AI client's MCP servers behind Gatehouse: shows the change as a
    /// diff; `--apply` makes it (with a backup `disconnect` restores).
    Connect {
        /// claude-code, claude-desktop, cursor, vscode, windsurf or codex.
        #[arg(required_unless_present = "list")]
        client: Option<String>,
        /// List the clients found on this machine and what each has configured.
        #[arg(long)]
        list: bool,
        /// The project's (workspace's) file instead of the user's (Claude Code, Cursor, VS Code).
        #[arg(long)]
        project: Option<PathBuf>,
        /// Make the change (without it, only show it).
        #[arg(long)]
        apply: bool,
        /// Move the plaintext secrets found (API keys in env, headers, args) into the keychain.
        #[arg(long)]
        move_secrets: bool,
        /// Gatehouse's config file to add the servers to.
        #[arg(long, env = "GATEHOUSE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Restore a client's file as it was before `gatehouse connect`.
    Disconnect {
        client: String,
        #[arg(long)]
        project: Option<PathBuf>,
        /// Restore the backup even if the file changed since connect wrote it.
        #[arg(long)]
        force: bool,
        #[arg(long, env = "GATEHOUSE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The MCP servers Gatehouse fronts: list, add, remove, enable, disable,
    /// restart, logs, tools. Changes take effect at once.
    Servers {
        #[command(subcommand)]
        action: servers::ServersAction,
        /// The config file (default: the one the running Gatehouse reads).
        #[arg(long, env = "GATEHOUSE_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// List agents and their grants.
    Agents,
    /// Pre-registered clients: add one (as a `[clients.X]` config entry would), list, remove.
    Clients {
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// List grants in force (or all with --all).
    Grants {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Revoke an agent (name or client id), one grant, or everything.
    Revoke {
        agent: Option<String>,
        #[arg(long, conflicts_with = "agent")]
        grant: Option<String>,
        /// Revoke every agent's grants and tokens.
        #[arg(long, conflicts_with_all = ["agent", "grant"])]
        all: bool,
    },
    /// Show the settings, or change some: written to the config file (comments
    /// kept) and in force at once; a new port at the next start.
    Settings {
        /// The port to listen on (at the next start).
        #[arg(long)]
        port: Option<u16>,
        /// How long a consent request waits for you, e.g. 2m (10s to 1h).
        #[arg(long)]
        consent_timeout: Option<String>,
        /// What the consent window picks first.
        #[arg(long, value_parser = ["once", "1h", "1d", "forever"])]
        default_duration: Option<String>,
        /// Which granted tools ask every time unless you pick otherwise.
        #[arg(long, value_parser = ["destructive", "none"])]
        ask_every_time: Option<String>,
        /// Refuse a token presented by another program than the one it was granted to.
        #[arg(long, value_parser = ["on", "off"])]
        bind_grants_to_program: Option<String>,
        /// The app's look.
        #[arg(long, value_parser = ["system", "light", "dark"])]
        theme: Option<String>,
        /// Archive and cut audit events older than this many days (0: keep them all).
        #[arg(long)]
        keep_audit_days: Option<u32>,
        /// Archive and cut the oldest audit events past this many (0: no limit).
        #[arg(long)]
        keep_audit_events: Option<u64>,
    },
    /// Pause every agent, or one (name or client id): their calls are refused
    /// (and audited) until you resume; nothing is revoked. Survives a restart.
    Pause { agent: Option<String> },
    /// Resume every agent, or one paused on its own.
    Resume { agent: Option<String> },
    /// Show the audit log (newest last); --follow keeps printing new events.
    /// Filters combine: each event shown meets every one given.
    #[command(args_conflicts_with_subcommands = true)]
    Log {
        #[command(subcommand)]
        action: Option<LogAction>,
        /// Keep printing new events (that meet the filters) as they are recorded.
        #[arg(long, short)]
        follow: bool,
        /// How many of the most recent events to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// One agent's events (name or client id).
        #[arg(long)]
        agent: Option<String>,
        /// One server's events.
        #[arg(long)]
        server: Option<String>,
        /// Events with this outcome.
        #[arg(long, value_enum)]
        outcome: Option<OutcomeArg>,
        /// Events of the last while: a duration such as 10m, 2h, 7d.
        #[arg(long, value_parser = since_duration)]
        since: Option<i64>,
        /// Events whose agent, server, tool, kind, actor or details contain this text (ASCII letters in any case).
        #[arg(long)]
        search: Option<String>,
    },
}

#[derive(Subcommand)]
enum LogAction {
    /// Write the whole audit log, with each event's seals, to a file.
    Export {
        /// Where to write it (default: gatehouse-audit-<time>.<format> here).
        #[arg(long)]
        out: Option<PathBuf>,
        /// `jsonl` (one event per line) or `csv`.
        #[arg(long, default_value = "jsonl")]
        format: String,
    },
    /// Check that no event of the audit log was edited, deleted, inserted or
    /// moved (each is sealed to the one before it); exits 1 if any was.
    Verify {
        /// Check an exported JSON Lines file instead of the running Gatehouse's log.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The config file (its `secret_store` says where the key is kept).
        #[arg(long, env = "GATEHOUSE_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SecretAction {
    /// Store a secret; the value is read from stdin (never from the command line).
    Set { server: String, name: String },
    /// List stored secrets by name (values are never shown).
    List,
    /// Remove a secret.
    Rm { server: String, name: String },
}

#[derive(Subcommand)]
enum RulesAction {
    /// Add a rule for an agent: what it gets for a risk class or one tool.
    Add {
        /// The agent (name or client id).
        agent: String,
        /// Every tool of this risk class.
        #[arg(long, value_enum, conflicts_with = "tool")]
        risk: Option<RiskArg>,
        /// One tool, by name.
        #[arg(long)]
        tool: Option<String>,
        /// Only on this server (default: every server).
        #[arg(long)]
        server: Option<String>,
        /// allow (granted without asking), ask (granted; each call asks you) or deny (never granted).
        #[arg(long = "to", value_enum)]
        decide: DecideArg,
    },
    /// Change what a rule decides.
    Set {
        id: String,
        #[arg(long = "to", value_enum)]
        decide: DecideArg,
    },
    /// Remove a rule.
    Rm { id: String },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RiskArg {
    Read,
    Write,
    Destructive,
}

impl From<RiskArg> for gatehouse::api::Risk {
    fn from(r: RiskArg) -> Self {
        match r {
            RiskArg::Read => gatehouse::api::Risk::Read,
            RiskArg::Write => gatehouse::api::Risk::Write,
            RiskArg::Destructive => gatehouse::api::Risk::Destructive,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutcomeArg {
    Allowed,
    Denied,
    Error,
    Revoked,
}

impl From<OutcomeArg> for gatehouse::api::Outcome {
    fn from(o: OutcomeArg) -> Self {
        use gatehouse::api::Outcome;
        match o {
            OutcomeArg::Allowed => Outcome::Allowed,
            OutcomeArg::Denied => Outcome::Denied,
            OutcomeArg::Error => Outcome::Error,
            OutcomeArg::Revoked => Outcome::Revoked,
        }
    }
}

/// `--since`: how long ago the shown events begin, in ms.
fn since_duration(text: &str) -> Result<i64, String> {
    clock::parse_duration(text)
        .ok_or_else(|| format!("{text:?}: use a duration such as 10m, 2h, 7d (at most 3650d)"))
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DecideArg {
    Allow,
    Ask,
    Deny,
}

impl From<DecideArg> for gatehouse::api::RuleAction {
    fn from(d: DecideArg) -> Self {
        match d {
            DecideArg::Allow => gatehouse::api::RuleAction::Allow,
            DecideArg::Ask => gatehouse::api::RuleAction::Ask,
            DecideArg::Deny => gatehouse::api::RuleAction::Deny,
        }
    }
}

#[derive(Subcommand)]
enum ClientsAction {
    /// Add a client; prints its client id (and its secret, once).
    Add {
        /// What you call it (shown in consent prompts and the log).
        name: String,
        /// Where it receives the authorization answer (repeatable).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A public client: no secret, PKCE only (the default).
        #[arg(long, conflicts_with = "secret")]
        public: bool,
        /// A confidential client: it gets a secret (printed once).
        #[arg(long)]
        secret: bool,
        /// The server it may leave out `resource` for.
        #[arg(long)]
        server: Option<String>,
    },
    /// List the pre-registered clients.
    List,
    /// Remove a client added with `clients add` (exact name or client id):
    /// everything it holds is revoked and it can never sign in again.
    Rm { client: String },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let data_dir = cli
        .common
        .data_dir
        .clone()
        .unwrap_or_else(config::default_data_dir);
    let result = match cli.command {
        Command::Serve { config, port } => serve(data_dir, config, port),
        Command::DemoServer => gatehouse::demo::run().map_err(|e| format!("demo server: {e}")),
        Command::Bridge { server, name } => crate::bridge::run(&data_dir, &server, &name),
        Command::ConformanceClient { url } => conformance::run(&url),
        Command::Connect {
            client,
            list,
            project,
            apply,
            move_secrets,
            config,
        } => {
            let setup = connect::Setup::new(&data_dir, &cli.common, config, project);
            match (list, client) {
                (true, _) | (false, None) => connect::list(&setup),
                (false, Some(client)) => connect::connect(&setup, &client, apply, move_secrets),
            }
        }
        Command::Disconnect {
            client,
            project,
            force,
            config,
        } => {
            let setup = connect::Setup::new(&data_dir, &cli.common, config, project);
            connect::disconnect(&setup, &client, force)
        }
        Command::Secret { action, config } => secret(&data_dir, config, action),
        Command::Servers { action, config } => {
            servers::run(&data_dir, config, cli.common.json, action)
        }
        command => run_command(command, &data_dir, cli.common.json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // A message may quote what an agent or a server chose: inert, line by line.
            for (i, line) in message.lines().enumerate() {
                let lead = if i == 0 { "gatehouse: " } else { "  " };
                eprintln!("{lead}{}", gatehouse::text::inert(line));
            }
            ExitCode::FAILURE
        }
    }
}

fn serve(data_dir: PathBuf, config_path: Option<PathBuf>, port: Option<u16>) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = Config::load_or_default(config_path.as_deref()).map_err(|e| e.to_string())?;
    if let Some(port) = port {
        config.port_override = Some(port);
    }
    let runtime = gatehouse::daemon::runtime().map_err(|e| format!("{e:#}"))?;
    runtime.block_on(async move {
        // Listen for signals before telling anyone we are up.
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let running = gatehouse::daemon::start(config, &data_dir)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let url = running.url();
        // stdout may be a pipe that is already closed: never die for a banner.
        let mut banner = format!("Gatehouse is running at {url}\n");
        for name in running.gatehouse().config().servers.keys() {
            banner.push_str(&format!("  MCP server {name:?}: {url}/mcp/{name}\n"));
        }
        banner.push_str(&format!(
            "Approve requests with `gatehouse pending` and `gatehouse approve`. Data: {}\n",
            data_dir.display()
        ));
        let mut out = std::io::stdout();
        let _ = std::io::Write::write_all(&mut out, banner.as_bytes())
            .and_then(|_| std::io::Write::flush(&mut out));
        running
            .run_until(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            })
            .await;
        Ok(())
    })
}

fn secret(data_dir: &Path, config: Option<PathBuf>, action: SecretAction) -> Result<(), String> {
    let store = open_credentials(data_dir, config)?;
    match action {
        SecretAction::Set { server, name } => {
            let mut value = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut value)
                .map_err(|e| format!("reading the value from stdin: {e}"))?;
            let value = value
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&value);
            if value.is_empty() {
                return Err(format!("no value on stdin; e.g. `printf %s \"$TOKEN\" | gatehouse secret set {server} {name}`"));
            }
            store
                .set(&server, &name, value)
                .map_err(|e| e.to_string())?;
            if !store.is_keychain() {
                eprintln!("warning: {}", store.describe());
            }
            println!("Stored {name} for {server}. It reaches the server's next session.");
        }
        SecretAction::List => {
            let names = store.names().map_err(|e| e.to_string())?;
            if names.is_empty() {
                println!("No secrets stored.");
            }
            for (server, list) in names {
                println!("{server}: {}", list.join(", "));
            }
        }
        SecretAction::Rm { server, name } => {
            if !store.remove(&server, &name).map_err(|e| e.to_string())? {
                return Err(format!(
                    "no secret {name:?} for {server:?}; see `gatehouse secret list`"
                ));
            }
            println!("Removed {name} for {server}.");
        }
    }
    Ok(())
}

/// `gatehouse log verify`: the running Gatehouse's log, or an exported file.
fn verify_log(
    data_dir: &Path,
    file: Option<PathBuf>,
    config: Option<PathBuf>,
    json: bool,
) -> Result<(), String> {
    let subject = if file.is_some() {
        "The file"
    } else {
        "The audit log"
    };
    let found = match file {
        Some(path) => {
            let credentials = open_credentials(data_dir, config)?;
            let reader = std::fs::File::open(&path)
                .map(std::io::BufReader::new)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            gatehouse::api::verify_export(&credentials, reader).map_err(|e| e.message)?
        }
        None => {
            let mut client = ControlClient::connect(data_dir).map_err(|e| e.message)?;
            let answer = client.call(&Request::VerifyAudit).map_err(|e| e.message)?;
            serde_json::from_value(answer).map_err(|e| e.to_string())?
        }
    };
    output::verification(&found, subject, json);
    if found.intact() {
        Ok(())
    } else {
        Err(format!(
            "{} was tampered with: {} event(s) do not hold",
            subject.to_lowercase(),
            found.problem_count
        ))
    }
}

/// Where this data directory's secrets (and the audit log's key) are kept.
/// The secret store the config names (`auto` without a config), with the
/// data directory made ready for it.
fn open_credentials(data_dir: &Path, config: Option<PathBuf>) -> Result<CredentialStore, String> {
    let choice = match config {
        Some(path) => Config::load(&path).map_err(|e| e.to_string())?.secret_store,
        None => CredentialStoreChoice::Auto,
    };
    gatehouse::daemon::prepare_data_dir(data_dir).map_err(|e| format!("{e:#}"))?;
    CredentialStore::open(data_dir, choice).map_err(|e| e.to_string())
}

fn target(id: Option<String>, client: Option<String>) -> Result<Target, String> {
    match (id, client) {
        (Some(id), None) => Ok(Target::Id(id)),
        (None, Some(client)) => Ok(Target::Client(client)),
        (Some(_), Some(_)) => Err("give a request ID or --client, not both".into()),
        (None, None) => {
            Err("give a request ID (see `gatehouse pending`) or --client <NAME>".into())
        }
    }
}

fn parse_duration(text: &str) -> Result<DurationChoice, String> {
    match text {
        "once" => Ok(DurationChoice::Once),
        "forever" | "until-revoked" => Ok(DurationChoice::Forever),
        other => clock::parse_duration(other)
            .map(DurationChoice::For)
            .ok_or_else(|| {
                format!("--for {other:?}: use once, forever, or a duration such as 30m, 1h, 1d")
            }),
    }
}

/// The tools named on the command line (comma-separated, trimmed).
fn tool_list(names: Vec<String>) -> Vec<String> {
    names
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn run_command(command: Command, data_dir: &Path, json: bool) -> Result<(), String> {
    let request = match command {
        Command::Status => Request::Status,
        Command::Clients { action } => match action {
            ClientsAction::Add {
                name,
                redirect_uris,
                public: _,
                secret,
                server,
            } => Request::AddClient {
                client: gatehouse::api::NewClient {
                    name,
                    redirect_uris,
                    confidential: secret,
                    server,
                },
            },
            ClientsAction::List => Request::Clients,
            ClientsAction::Rm { client } => Request::RemoveClient { client },
        },
        Command::Pending => Request::Pending,
        Command::Approve {
            id,
            client,
            tools,
            all_tools,
            ask,
            ask_none,
            duration,
            ask_more,
            remember,
        } => Request::Approve {
            target: target(id, client)?,
            approval: Approval {
                tools: match (tools, all_tools) {
                    (_, true) => ToolChoice::All,
                    (Some(t), false) => ToolChoice::Only(tool_list(t)),
                    (None, false) => ToolChoice::ReadOnly,
                },
                ask: match (ask, ask_none) {
                    (_, true) => AskChoice::None,
                    (Some(t), false) => AskChoice::Only(tool_list(t)),
                    (None, false) => AskChoice::Destructive,
                },
                duration: parse_duration(&duration)?,
                ask_for_more: ask_more,
                remember,
            },
        },
        Command::Rules { action, agent } => match action {
            None => Request::Rules { agent },
            Some(RulesAction::Add {
                agent,
                risk,
                tool,
                server,
                decide,
            }) => Request::AddRule {
                rule: gatehouse::api::NewRule {
                    agent,
                    server,
                    target: match (risk, tool) {
                        (Some(r), None) => gatehouse::api::RuleTarget::Risk(r.into()),
                        (None, Some(t)) => gatehouse::api::RuleTarget::Tool(t),
                        _ => return Err("give --risk or --tool".into()),
                    },
                    action: decide.into(),
                },
            },
            Some(RulesAction::Set { id, decide }) => Request::ChangeRule {
                id,
                action: Some(decide.into()),
            },
            Some(RulesAction::Rm { id }) => Request::ChangeRule { id, action: None },
        },
        Command::AskMore { grant, state } => Request::SetMayAskMore {
            grant,
            on: state == "on",
        },
        Command::Deny { id, client } => Request::Deny {
            target: target(id, client)?,
        },
        Command::Agents => Request::Agents,
        Command::Grants { agent, all } => Request::Grants {
            client: agent,
            include_ended: all,
        },
        Command::Revoke { agent, grant, all } => match (agent, grant, all) {
            (_, _, true) => Request::RevokeAll,
            (_, Some(grant), _) => Request::RevokeGrant { grant },
            (Some(agent), None, false) => Request::RevokeAgent { agent },
            (None, None, false) => {
                return Err("give an agent (see `gatehouse agents`), --grant <ID>, or --all".into())
            }
        },
        Command::Settings {
            port,
            consent_timeout,
            default_duration,
            ask_every_time,
            bind_grants_to_program,
            theme,
            keep_audit_days,
            keep_audit_events,
        } => {
            let change = gatehouse::api::SettingsChange {
                port,
                consent_timeout_secs: match consent_timeout {
                    Some(t) => Some(
                        clock::parse_duration(&t).ok_or_else(|| {
                            format!("--consent-timeout {t:?}: use a duration such as 90s or 5m")
                        })? / clock::SECOND,
                    ),
                    None => None,
                },
                default_duration: default_duration
                    .as_deref()
                    .and_then(gatehouse::api::DefaultDuration::parse),
                ask_every_time: ask_every_time.map(|a| match a.as_str() {
                    "none" => gatehouse::api::AskDefault::None,
                    _ => gatehouse::api::AskDefault::Destructive,
                }),
                bind_grants_to_program: bind_grants_to_program.map(|b| b == "on"),
                theme: theme.map(|t| match t.as_str() {
                    "light" => gatehouse::api::Theme::Light,
                    "dark" => gatehouse::api::Theme::Dark,
                    _ => gatehouse::api::Theme::System,
                }),
                keep_audit_days,
                keep_audit_events,
            };
            let nothing = serde_json::to_value(&change).is_ok_and(|v| {
                v.as_object()
                    .is_some_and(|o| o.values().all(serde_json::Value::is_null))
            });
            if nothing {
                Request::Settings
            } else {
                Request::ChangeSettings { change }
            }
        }
        Command::Pause { agent } => Request::Pause { agent },
        Command::Resume { agent } => Request::Resume { agent },
        Command::Log {
            action: Some(LogAction::Verify { file, config }),
            ..
        } => return verify_log(data_dir, file, config, json),
        Command::Log {
            action: Some(LogAction::Export { out, format }),
            ..
        } => {
            let format: ExportFormat = serde_json::from_value(serde_json::json!(format))
                .map_err(|_| format!("--format {format:?}: use jsonl or csv"))?;
            // The default file name is stamped with the wall clock.
            #[allow(clippy::disallowed_methods)]
            let out = out.unwrap_or_else(|| {
                format!("gatehouse-audit-{}.{}", clock::now(), format.extension()).into()
            });
            let path = std::path::absolute(&out).map_err(|e| e.to_string())?;
            Request::ExportAudit { format, path }
        }
        Command::Log {
            follow,
            limit,
            agent,
            server,
            outcome,
            since,
            search,
            action: None,
        } => {
            // "The last hour" is measured by the wall clock.
            #[allow(clippy::disallowed_methods)]
            let since = since.map(|ago| clock::now() - ago);
            let filter = LogFilter {
                agent,
                server,
                outcome: outcome.map(Into::into),
                since,
                text: search.filter(|s| !s.trim().is_empty()),
            };
            Request::Log {
                limit,
                follow,
                filter,
            }
        }
        Command::Serve { .. }
        | Command::DemoServer
        | Command::Bridge { .. }
        | Command::ConformanceClient { .. }
        | Command::Connect { .. }
        | Command::Servers { .. }
        | Command::Disconnect { .. }
        | Command::Secret { .. } => {
            unreachable!("handled in main")
        }
    };
    let fail = |e: gatehouse::api::Error| e.message;
    let mut client = ControlClient::connect(data_dir).map_err(fail)?;
    if let Request::Log { follow: true, .. } = request {
        client.send(&request).map_err(fail)?;
        while let Some(event) = client.next_answer() {
            output::event(event.map_err(fail)?, json)?;
        }
        return Ok(());
    }
    let answer = client.call(&request).map_err(fail)?;
    if json {
        output::json(&answer, true);
        return Ok(());
    }
    output::answer(&request, answer)
}
