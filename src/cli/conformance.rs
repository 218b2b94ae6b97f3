//! `gatehouse conformance-client <URL>` (hidden): Gatehouse as the client
//! of the MCP conformance suite's authorization scenarios. It fronts the one
//! server at URL (in a data directory of its own), logs in to it as it would
//! for the person, with a browser stand-in that follows the redirects, then
//! lists the server's tools and calls each, logging in again when the
//! server asks for more scope (three times at most).

use std::collections::BTreeMap;
use std::path::Path;

use gatehouse::config::{Config, OAuthClientFile, ServerConfig, Upstream, Value};

const SERVER: &str = "conformance";
const MAX_LOGINS: usize = 3;

pub fn run(url: &str) -> Result<(), String> {
    let url = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    let dir = tempfile_dir()?;
    let mut config = Config::demo();
    config.servers.clear();
    config.port_override = Some(0);
    config.secret_store = gatehouse::config::CredentialStoreChoice::File;
    // Where the suite publishes the client's metadata document (its convention).
    config.client_metadata_url = Some("https://conformance-test.local/client-metadata.json".into());
    // A client registered by hand, when the scenario gives one.
    let context: serde_json::Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    let oauth = context["client_id"].as_str().map(|id| OAuthClientFile {
        client_id: id.to_string(),
        client_secret: context["client_secret"]
            .as_str()
            .map(|s| Value::Plain(s.to_string())),
        scope: None,
    });
    config.servers.insert(
        SERVER.into(),
        ServerConfig {
            name: SERVER.into(),
            upstream: Upstream::Http {
                url,
                headers: BTreeMap::new(),
            },
            oauth,
            start_at_launch: false,
            description: None,
        },
    );
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let result = runtime.block_on(async {
        let running = gatehouse::daemon::start(config, &dir)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let g = running.gatehouse().clone();
        let outcome = exercise(&g).await;
        running.shutdown().await;
        outcome
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Lists the tools and calls each, logging in whenever the server asks.
async fn exercise(g: &gatehouse::api::Gatehouse) -> Result<(), String> {
    let mut logins = 0;
    let tools = loop {
        match g.server_tools(SERVER).await {
            Ok(tools) => break tools,
            Err(e) if e.message.contains("log in") && logins < MAX_LOGINS => {
                logins += 1;
                login(g).await?;
            }
            Err(e) => return Err(e.message),
        }
    };
    println!(
        "tools: {}",
        tools
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for tool in tools.iter().filter(|t| !t.name.starts_with('@')) {
        loop {
            match g.call_as_gatehouse(SERVER, &tool.name).await {
                Ok(reply) => {
                    println!("{}: {reply}", tool.name);
                    break;
                }
                Err(e) if e.message.contains("log in") && logins < MAX_LOGINS => {
                    logins += 1;
                    login(g).await?;
                }
                Err(e) => return Err(e.message),
            }
        }
    }
    Ok(())
}

/// Starts a login and plays the browser: follows the redirects from the
/// authorization URL until they come back to Gatehouse.
async fn login(g: &gatehouse::api::Gatehouse) -> Result<(), String> {
    let mut url = g.start_login(SERVER).await.map_err(|e| e.message)?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    for _ in 0..20 {
        let answer = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let Some(next) = answer
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
        else {
            return if url.contains("/oauth/callback") && answer.status().is_success() {
                Ok(())
            } else {
                Err(format!("the login stopped at {url} ({})", answer.status()))
            };
        };
        url = url::Url::parse(&url)
            .and_then(|base| base.join(next))
            .map_err(|e| e.to_string())?
            .to_string();
    }
    Err("too many redirects".into())
}

fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("gatehouse-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let _ = Path::new(&dir);
    Ok(dir)
}
