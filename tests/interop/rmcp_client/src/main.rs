//! An MCP client written with the official Rust SDK (`rmcp`), the Rust counterpart of
//! `tests/interop/ts_client.mjs`: same command line, same JSON-line events on stdout.
//! It proves that an independently written client completes Gatehouse's whole flow: the
//! 401 challenge, metadata discovery, dynamic registration, /authorize, the waiting page,
//! the person's decision (made with the `gatehouse` CLI by whoever drives this client),
//! the code exchange, and then MCP calls through the gateway over Streamable HTTP.
//!
//! rmcp does the OAuth work (`rmcp::transport::auth`); this program plays the browser
//! (see `browser.rs`) and reacts to the challenges rmcp reports, as an app would: a
//! refused connection or call that rmcp could not fix by refreshing its token leads to a
//! new authorization, after which the connection is made or the call retried once.
//!
//! Usage: rmcp_client <mcp-url> <client-name> [options]
//!   --call NAME=JSON   call a tool with these arguments (repeatable, in order)
//!   --relist           after the calls, list the tools again
//!   --pause            after the calls, print {"event":"paused"}, wait for a line on
//!                      stdin, then make the calls again (used to show revocation)
//!   --store FILE       keep the client registration and tokens in FILE, and reuse them
//! Output: one JSON object per line on stdout ({"event": ...}); exit 0 unless something
//! unexpected happened (then {"event":"error"} and exit 1).

mod auth;
mod browser;
mod events;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::AuthClient;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ServiceError, ServiceExt};
use serde_json::{Map, Value, json};
use tokio::io::AsyncBufReadExt;

use auth::{Authorizer, Outcome};
use events::emit;
use store::Credentials;

const USAGE: &str = "usage: rmcp_client <mcp-url> <client-name> [--call NAME=JSON]... [--relist] [--pause] [--store FILE]";

type Client = RunningService<RoleClient, ClientConfig>;
/// The HTTP client of the MCP transport: reqwest, with rmcp's OAuth on top.
type Http = AuthClient<reqwest::Client>;

struct Args {
    url: String,
    name: String,
    calls: Vec<Call>,
    relist: bool,
    pause: bool,
    store: Option<PathBuf>,
}

struct Call {
    tool: String,
    arguments: Map<String, Value>,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let (Some(url), Some(name)) = (argv.next(), argv.next()) else {
        bail!(USAGE);
    };
    let mut args = Args {
        url,
        name,
        calls: Vec::new(),
        relist: false,
        pause: false,
        store: None,
    };
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--call" => {
                let spec = argv.next().unwrap_or_default();
                let (tool, arguments) = match spec.split_once('=') {
                    Some((tool, json)) => (
                        tool.to_string(),
                        serde_json::from_str(json).with_context(|| {
                            format!("--call {tool}: arguments must be a JSON object")
                        })?,
                    ),
                    None => (spec, Map::new()),
                };
                args.calls.push(Call { tool, arguments });
            }
            "--relist" => args.relist = true,
            "--pause" => args.pause = true,
            "--store" => args.store = Some(argv.next().context("--store needs a file")?.into()),
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run().await {
        Ok(()) => {
            emit("done", json!({}));
            ExitCode::SUCCESS
        }
        Err(error) => {
            emit("error", json!({"message": format!("{error:#}")}));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let args = parse_args(std::env::args().skip(1))?;
    // A loopback redirect URI on a port nothing listens on: the browser stops at the
    // redirect. Gatehouse, as RFC 8252 asks, accepts any port for a loopback URI, so a
    // registration kept with --store still fits a later run's port.
    let redirect_uri = format!(
        "http://127.0.0.1:{}/callback",
        20000 + std::process::id() % 20000
    );
    let authorizer = Authorizer {
        server_url: args.url.clone(),
        client_name: args.name.clone(),
        redirect_uri,
        credentials: Credentials::open(args.store.as_deref())?,
    };

    // With kept tokens rmcp is ready at once; without, the first request goes out
    // unauthenticated and the server's 401 challenge starts the authorization.
    let mut manager = authorizer.manager().await?;
    if manager.initialize_from_store().await? {
        let (client_id, _) = manager.get_credentials().await?;
        emit("stored_credentials", json!({"client_id": client_id}));
    }
    let http = AuthClient::new(reqwest::Client::new(), manager);

    let Some(client) = connect(&args, &authorizer, &http).await? else {
        return Ok(()); // the person said no
    };
    let server = client.peer_info();
    emit(
        "connected",
        json!({
            "server": server.as_ref().and_then(|info| info.server_info.as_ref()).map(|i| &i.name),
            "protocol_version": server.as_ref().map(|info| info.protocol_version.to_string()),
        }),
    );
    list_tools(&client).await?;
    run_calls(&client, &authorizer, &http, &args.calls).await?;
    if args.relist {
        list_tools(&client).await?;
    }
    if args.pause {
        emit("paused", json!({}));
        let mut line = String::new();
        tokio::io::BufReader::new(tokio::io::stdin())
            .read_line(&mut line)
            .await?;
        run_calls(&client, &authorizer, &http, &args.calls).await?;
    }
    client.cancel().await?;
    Ok(())
}

/// Connects, authorizing first if the server asks for it. `None` when the person said no.
async fn connect(
    args: &Args,
    authorizer: &Authorizer,
    http: &Http,
) -> anyhow::Result<Option<Client>> {
    let config = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new(args.name.clone(), env!("CARGO_PKG_VERSION")),
    );
    let mut authorized = false;
    loop {
        let transport = StreamableHttpClientTransport::with_client(
            http.clone(),
            StreamableHttpClientTransportConfig::with_uri(args.url.as_str()),
        );
        let error = match config.clone().serve(transport).await {
            Ok(client) => return Ok(Some(client)),
            Err(error) => error,
        };
        let Some(challenge) = error.auth_challenge().map(str::to_string) else {
            return Err(error).context("connecting");
        };
        if authorized {
            return Err(error).context("still refused after a new authorization");
        }
        match authorizer.authorize(Some(&challenge)).await? {
            Outcome::Authorized(manager) => *http.auth_manager.lock().await = *manager,
            Outcome::Denied => return Ok(None),
        }
        authorized = true;
    }
}

async fn list_tools(client: &Client) -> anyhow::Result<()> {
    let tools = client.list_all_tools().await.context("listing tools")?;
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    emit("tools", json!({"names": names}));
    Ok(())
}

/// Makes each call. One refused for lack of authorization (a revoked grant, a tool outside
/// it) after rmcp's own refresh attempt is retried once after a new authorization; if the
/// person says no, the remaining calls are skipped.
async fn run_calls(
    client: &Client,
    authorizer: &Authorizer,
    http: &Http,
    calls: &[Call],
) -> anyhow::Result<()> {
    for call in calls {
        let params =
            CallToolRequestParams::new(call.tool.clone()).with_arguments(call.arguments.clone());
        let mut reauthorized = false;
        loop {
            let error = match client.call_tool(params.clone()).await {
                Ok(result) => {
                    let ok = result.is_error != Some(true);
                    emit(
                        "call",
                        json!({"tool": call.tool, "ok": ok, "result": result}),
                    );
                    break;
                }
                Err(error) => error,
            };
            let challenge = match error.auth_challenge() {
                Some(challenge) if !reauthorized => challenge.to_string(),
                // Another failure, or refused again right after a new authorization.
                _ => {
                    emit(
                        "call",
                        json!({"tool": call.tool, "ok": false, "error": error_json(&error)}),
                    );
                    break;
                }
            };
            emit(
                "call_unauthorized",
                json!({"tool": call.tool, "message": innermost(&error), "reauthorizing": true}),
            );
            match authorizer.authorize(Some(&challenge)).await? {
                // The transport's AuthClient shares this manager: the retry carries the
                // new token on the same MCP session.
                Outcome::Authorized(manager) => *http.auth_manager.lock().await = *manager,
                Outcome::Denied => {
                    emit(
                        "call",
                        json!({"tool": call.tool, "ok": false, "error": {"message": "not authorized"}}),
                    );
                    return Ok(());
                }
            }
            reauthorized = true;
        }
    }
    Ok(())
}

/// The innermost cause of an error: for a refused request, rmcp's "authorization
/// required" or "insufficient scope" with the server's `WWW-Authenticate` value.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// A failed call as JSON: the JSON-RPC error's code and message, or the transport's message.
fn error_json(error: &ServiceError) -> Value {
    match error {
        ServiceError::McpError(data) => json!({"code": data.code.0, "message": data.message}),
        other => json!({"message": other.to_string()}),
    }
}
