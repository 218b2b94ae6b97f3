//! Gatehouse logs in to a remote MCP server that asks for OAuth (a server
//! built from the official TypeScript SDK's server and auth pieces:
//! tests/interop/oauth_upstream.mjs): it says the server needs a login, the
//! person logs in once (the test plays the browser), the tokens go to the
//! keychain and are refreshed, agents use the server through their own
//! grants and never see Gatehouse's token, which appears nowhere else.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::serve::Serve;
use crate::support::servers::files_containing;
use crate::support::*;
use gatehouse::api::{AskChoice, ToolChoice};
use serde_json::{json, Value};

/// The OAuth-protected upstream, and the events it logs.
struct Upstream {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Upstream {
    fn start(token_ttl: u32) -> Upstream {
        Upstream::on_port(token_ttl, 0)
    }

    /// Starts it on `port` (0: any), with a memory of its own (no tokens).
    fn on_port(token_ttl: u32, port: u16) -> Upstream {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("upstream.log");
        std::fs::write(&log, "").unwrap();
        let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
        sdk::node_package("@modelcontextprotocol/sdk/package.json");
        let mut child = Command::new("node")
            .current_dir(&interop)
            .arg("oauth_upstream.mjs")
            .arg(&log)
            .env("TOKEN_TTL", token_ttl.to_string())
            .env("PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .expect("the upstream listens")
            .to_string();
        Upstream {
            child,
            url: format!("{base}/mcp"),
            log,
            _dir: dir,
        }
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use crate::support::sdk;

/// `gatehouse servers login <name> --no-browser`, with the test as the
/// browser: follows the printed URL to the authorization server, and its
/// redirect back to Gatehouse.
async fn log_in(gh: &Serve, name: &str) -> String {
    let (data_dir, base, name) = (gh.data_dir.clone(), gh.url.clone(), name.to_string());
    tokio::task::spawn_blocking(move || play_browser(&data_dir, &base, &name))
        .await
        .unwrap()
}

/// `gatehouse servers login <name> --no-browser`, its output piped.
fn login_cli(data_dir: &Path, name: &str) -> std::process::Child {
    Command::new(gatehouse_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["servers", "login", name, "--no-browser"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A browser that shows each redirect instead of following it.
fn browser() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn play_browser(data_dir: &Path, base: &str, name: &str) -> String {
    let mut cli = login_cli(data_dir, name);
    let mut out = BufReader::new(cli.stdout.take().unwrap());
    let mut said = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "no URL: {said}");
        said.push_str(&line);
        if line.starts_with("http") {
            break line.trim().to_string();
        }
    };
    let browser = browser();
    let to_authorize = browser.get(&url).send().unwrap();
    assert_eq!(
        to_authorize.status(),
        302,
        "{}",
        to_authorize.text().unwrap_or_default()
    );
    let back = to_authorize.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        back.starts_with(&format!("{base}/oauth/callback?")),
        "{back}"
    );
    // The browser arrives from the authorization server's site.
    let page = browser
        .get(&back)
        .header("sec-fetch-site", "cross-site")
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    assert!(page.contains("logged in to"), "{page}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = cli.wait().unwrap();
    assert!(status.success(), "{said}{rest}");
    said + &rest
}

fn state_of(gh: &Serve, name: &str) -> Value {
    let list = gh.cli_json(&["servers", "list"]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn gatehouse_logs_in_to_a_remote_server_for_its_agents() {
    let upstream = Upstream::start(3600);
    let gh = Serve::start(
        &format!(
            "{}[servers.remote]\nurl = {:?}\n",
            config_text(""),
            upstream.url
        ),
        &[],
    );

    // Before the login: the server says so, and nothing can use it.
    let tools = gh.cli(&["servers", "tools", "remote"]);
    assert!(!tools.status.success());
    assert!(String::from_utf8_lossy(&tools.stderr).contains("needs the person to log in"));
    let state = state_of(&gh, "remote");
    assert_eq!(state["state"]["state"], "needs_login", "{state}");
    assert_eq!(state["logged_in"], false);

    let said = log_in(&gh, "remote").await;
    assert!(said.contains("Gatehouse is logged in to remote"), "{said}");
    assert_eq!(state_of(&gh, "remote")["logged_in"], true);

    // An agent uses it through its own grant; the upstream sees only Gatehouse's token.
    let (agent, session) = gh
        .agent("Agent", "remote", ToolChoice::All, AskChoice::None)
        .await;
    let whoami = session.call_text("whoami", json!({})).await;
    assert!(whoami.starts_with("client "), "{whoami}");
    assert_eq!(
        session.call_text("echo", json!({"word": "through"})).await,
        "through"
    );
    let events = upstream.events();
    let issued: Vec<String> = events
        .iter()
        .filter_map(|e| e["issued"].as_str().map(str::to_string))
        .collect();
    let seen: Vec<String> = events
        .iter()
        .filter_map(|e| e["seen"].as_str().map(str::to_string))
        .collect();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|s| !s.contains(agent.access())),
        "the agent's token reached the upstream"
    );
    assert!(
        seen.iter().any(|s| *s == format!("Bearer {}", issued[0])),
        "{seen:?}"
    );

    // Gatehouse's tokens are nowhere but the keychain (the file fallback here).
    let log_json = gh.cli_ok(&["log", "--json", "--limit", "1000"]);
    let serve_log = std::fs::read_to_string(gh.log_path()).unwrap();
    for token in &issued {
        assert!(!log_json.contains(token.as_str()) && !serve_log.contains(token.as_str()));
        assert!(!session
            .call_text("whoami", json!({}))
            .await
            .contains(token.as_str()));
        let leaks: Vec<PathBuf> = files_containing(&gh.data_dir, token)
            .into_iter()
            .filter(|p| !p.ends_with("secrets.json"))
            .collect();
        assert!(leaks.is_empty(), "{token} leaked into {leaks:?}");
    }

    // Logged out: the sessions start afresh, and the next one needs a login.
    gh.cli_ok(&["servers", "logout", "remote"]);
    let r = gh
        .mcp("remote", Some(agent.access()), None, &initialize())
        .await;
    let body = r.text().await.unwrap();
    assert!(body.contains("needs the person to log in"), "{body}");
    assert_eq!(state_of(&gh, "remote")["logged_in"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expiring_token_is_refreshed_and_a_failed_refresh_asks_for_a_login() {
    let upstream = Upstream::start(2);
    let gh = Serve::start(
        &format!(
            "{}[servers.remote]\nurl = {:?}\n",
            config_text(""),
            upstream.url
        ),
        &[],
    );
    let _ = gh.cli(&["servers", "tools", "remote"]);
    log_in(&gh, "remote").await;
    let (_, session) = gh
        .agent("Agent", "remote", ToolChoice::All, AskChoice::None)
        .await;
    assert_eq!(
        session.call_text("echo", json!({"word": "one"})).await,
        "one"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        session.call_text("echo", json!({"word": "two"})).await,
        "two"
    );
    let refreshed = upstream
        .events()
        .iter()
        .filter(|e| e["grant"] == "refresh_token")
        .count();
    assert!(refreshed >= 1, "no refresh");

    // The upstream forgets every token (it restarted): the refresh fails, the
    // server needs a login, the agent is told so, and the rest runs on.
    let port: u16 = upstream
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/mcp")
        .parse()
        .unwrap();
    drop(upstream);
    let _again = Upstream::on_port(2, port);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, body) = session.call("echo", json!({"word": "three"})).await;
    assert!(
        body.to_string().contains("needs the person to log in"),
        "{body}"
    );
    assert_eq!(state_of(&gh, "remote")["state"]["state"], "needs_login");
    let (_, demo) = gh
        .agent("Other", "demo", ToolChoice::All, AskChoice::None)
        .await;
    assert!(
        !demo.tool_names().await.is_empty(),
        "the other servers keep running"
    );
}

/// How a hostile remote server (and its authorization server) misbehaves.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// Its challenge points the metadata fetch at a private address.
    MetadataAtPrivateAddress,
    /// Its metadata URL redirects to the cloud metadata service.
    MetadataRedirects,
    /// Its protected-resource metadata describes another server.
    ResourceOfAnotherServer,
    /// Its authorization server's metadata names another issuer.
    IssuerMismatch,
    /// Its token endpoint answers without `token_type`.
    NoTokenType,
}

/// A remote server that asks for a login and then misbehaves as `how`
/// (built for the test: it is the attacker). Returns its MCP URL.
async fn hostile(how: Hostile) -> String {
    use axum::extract::{Query, State};
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::{get, post};
    use std::collections::HashMap;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let challenge = match how {
        Hostile::MetadataAtPrivateAddress => {
            "Bearer resource_metadata=\"https://10.0.0.1/.well-known/oauth-protected-resource\""
                .to_string()
        }
        _ => {
            format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"")
        }
    };
    let app = axum::Router::new()
        .route(
            "/mcp",
            post(move || {
                let challenge = challenge.clone();
                async move {
                    (
                        StatusCode::UNAUTHORIZED,
                        [(header::WWW_AUTHENTICATE, challenge)],
                    )
                }
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(|State((base, how)): State<(String, Hostile)>| async move {
                if let Hostile::MetadataRedirects = how {
                    return Redirect::temporary("http://169.254.169.254/latest/meta-data/")
                        .into_response();
                }
                let resource = match how {
                    Hostile::ResourceOfAnotherServer => "https://mail.example/mcp".to_string(),
                    _ => format!("{base}/mcp"),
                };
                axum::Json(json!({"resource": resource, "authorization_servers": [base]}))
                    .into_response()
            }),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(|State((base, how)): State<(String, Hostile)>| async move {
                let issuer = match how {
                    Hostile::IssuerMismatch => "https://login.example".to_string(),
                    _ => base.clone(),
                };
                axum::Json(json!({"issuer": issuer,
                    "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{base}/token"),
                    "registration_endpoint": format!("{base}/register"),
                    "code_challenge_methods_supported": ["S256"]}))
            }),
        )
        .route(
            "/register",
            post(|| async {
                (
                    StatusCode::CREATED,
                    axum::Json(json!({"client_id": "hostile-client"})),
                )
            }),
        )
        .route(
            "/authorize",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let back = format!(
                    "{}?code=hostile-code&state={}",
                    q["redirect_uri"], q["state"]
                );
                Redirect::to(&back)
            }),
        )
        .route(
            "/token",
            post(|| async {
                axum::Json(json!({"access_token": "hostile-token", "expires_in": 3600}))
            }),
        )
        .with_state((base.clone(), how));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("{base}/mcp")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_server_gets_a_clear_refusal_and_the_rest_runs_on() {
    let gh = Serve::start(&config_text(""), &[]);
    let (_, demo) = gh
        .agent("Agent", "demo", ToolChoice::All, AskChoice::None)
        .await;
    for (how, says) in [
        (
            Hostile::MetadataAtPrivateAddress,
            "private or local address",
        ),
        (Hostile::MetadataRedirects, "redirects are not followed"),
        (
            Hostile::ResourceOfAnotherServer,
            "describes the resource \"https://mail.example/mcp\"",
        ),
        (
            Hostile::IssuerMismatch,
            "says its issuer is \"https://login.example\"",
        ),
        (Hostile::NoTokenType, "token_type"),
    ] {
        let url = hostile(how).await;
        let name = format!("{how:?}").to_lowercase();
        gh.cli_ok(&["servers", "add", &name, "--url", &url]);
        let (data_dir, base, server) = (gh.data_dir.clone(), gh.url.clone(), name.clone());
        let said = tokio::task::spawn_blocking(move || failed_login(&data_dir, &base, &server))
            .await
            .unwrap();
        assert!(said.contains(says), "{how:?}: {said}");
        assert!(!said.contains("hostile-token"), "{said}");
        let state = state_of(&gh, &name);
        assert_eq!(state["logged_in"], false, "{how:?}");
        // The other servers, and the agents on them, go on as before.
        assert!(!demo.tool_names().await.is_empty(), "{how:?}");
    }
}

/// `gatehouse servers login <name> --no-browser` when the login must fail:
/// plays the browser if a URL is printed, and returns what the CLI said.
fn failed_login(data_dir: &Path, base: &str, name: &str) -> String {
    let mut cli = login_cli(data_dir, name);
    let mut out = BufReader::new(cli.stdout.take().unwrap());
    let mut said = String::new();
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if line.starts_with("http") {
            let browser = browser();
            let to_authorize = browser.get(line.trim()).send().unwrap();
            let back = to_authorize.headers()["location"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(
                back.starts_with(&format!("{base}/oauth/callback?")),
                "{back}"
            );
            let page = browser.get(&back).send().unwrap();
            assert_eq!(page.status(), 400);
            said.push_str(&page.text().unwrap());
        }
        said.push_str(&line);
        line.clear();
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut cli.stderr.take().unwrap(), &mut err).unwrap();
    let status = cli.wait().unwrap();
    assert!(!status.success(), "{said}{err}");
    said + &err
}
