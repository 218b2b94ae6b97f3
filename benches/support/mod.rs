//! What the benches share: the quick-mode switch and an empty Gatehouse
//! set-up (a config file and a data directory in a temp directory).
#![allow(dead_code)] // each bench uses its part

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use gatehouse::api::{Actor, Approval, AskChoice, DurationChoice, NewClient, ToolChoice};
use gatehouse::daemon::Running;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// One agent's tokens from one consent. Each agent is its own public client: a
/// second consent for the same client and server would widen its one grant.
#[derive(Clone)]
pub struct Agent {
    pub client_id: String,
    pub access: String,
    pub refresh: String,
}

/// `GATEHOUSE_BENCH_QUICK=1`: a smoke run (CI), whose numbers mean little.
pub fn quick() -> bool {
    std::env::var("GATEHOUSE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A temp directory with a config file (no servers, any port) and the path
/// of a data directory in it; a two-worker runtime, like the machine's cores.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub runtime: tokio::runtime::Runtime,
}

impl Setup {
    pub fn new() -> Result<Setup> {
        let dir = tempfile::tempdir()?;
        let (config_path, data_dir) = (dir.path().join("gatehouse.toml"), dir.path().join("data"));
        std::fs::write(&config_path, "# benchmark\nport = 0\n")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(Setup {
            dir,
            config_path,
            data_dir,
            runtime,
        })
    }

    pub fn config(&self) -> Result<gatehouse::Config> {
        Ok(gatehouse::Config::load(&self.config_path)?)
    }
}

/// A reqwest client as the benches use it: no proxy, no Nagle, no redirects.
pub fn client() -> Result<reqwest::Client> {
    let builder = reqwest::Client::builder().no_proxy().tcp_nodelay(true);
    let builder = builder.redirect(reqwest::redirect::Policy::none());
    Ok(builder.build()?)
}

pub async fn json_ok(resp: reqwest::Response) -> Result<Value> {
    let status = resp.status();
    let text = resp.text().await?;
    ensure!(status.is_success(), "HTTP {status}: {text}");
    Ok(serde_json::from_str(&text)?)
}

pub fn field(v: &Value, key: &str) -> Result<String> {
    let value = v[key].as_str().with_context(|| format!("no {key} in {v}"));
    Ok(value?.to_string())
}

fn location(resp: &reqwest::Response) -> Result<String> {
    let status = resp.status();
    ensure!(status.is_redirection(), "expected a redirect, got {status}");
    let location = resp.headers().get("location").context("no Location")?;
    Ok(location.to_str()?.to_string())
}

/// RFC 7591 registration; the reply holds `client_id` (and `client_secret`).
/// A new client, added as `gatehouse clients add` does (dynamic registration
/// is rate-limited per source, and this bench needs more clients than a burst).
pub fn register(gh: &Running, method: &str) -> Result<Value> {
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let client = NewClient {
        name: format!("bench {n}"),
        redirect_uris: vec![REDIRECT.to_string()],
        confidential: method != "none",
        server: None,
    };
    let added = gh.gatehouse().add_client(client, Actor::Cli)?;
    Ok(json!({"client_id": added.client.client_id, "client_secret": added.client_secret}))
}

/// A new agent (public client, PKCE) and one authorization code flow,
/// approved for every requested tool until revoked, none of them held.
pub async fn authorize(
    gh: &Running,
    http: &reqwest::Client,
    server: &str,
    scope: &str,
) -> Result<Agent> {
    let base = gh.url();
    let client_id = field(&register(gh, "none")?, "client_id")?;
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let resource = format!("{base}/mcp/{server}");
    let mut url = url::Url::parse(&format!("{base}/authorize"))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "bench")
        .append_pair("resource", &resource);
    if !scope.is_empty() {
        url.query_pairs_mut().append_pair("scope", scope);
    }
    let wait = location(&http.get(url).send().await?)?;
    let handle = wait
        .strip_prefix("/authorize/wait/")
        .context("not the waiting page")?;
    ensure!(!handle.is_empty(), "no waiting page handle");
    let api = gh.gatehouse();
    let pending = api.pending()?;
    let request = pending.iter().find(|p| p.client_id == client_id);
    let id = request.context("no consent request")?.id.clone();
    let approval = Approval {
        tools: ToolChoice::All,
        ask: AskChoice::None,
        duration: DurationChoice::Forever,
        ask_for_more: false,
        remember: false,
    };
    api.approve(&id, &approval, Actor::Cli)?;
    let back = url::Url::parse(&location(&http.get(format!("{base}{wait}")).send().await?)?)?;
    let code = back.query_pairs().find(|(k, _)| k == "code");
    let code = code.context("no code")?.1;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", &client_id),
        ("code_verifier", &verifier),
        ("resource", &resource),
    ];
    let resp = http
        .post(format!("{base}/token"))
        .form(&form)
        .send()
        .await?;
    let body = json_ok(resp).await?;
    let (access, refresh) = (
        field(&body, "access_token")?,
        field(&body, "refresh_token")?,
    );
    Ok(Agent {
        client_id,
        access,
        refresh,
    })
}

/// An MCP session as an agent holds it: a server's stdio (the child is
/// killed on drop), or a streamable-HTTP endpoint (a token, if it needs one;
/// answers in JSON or in an event stream).
pub enum Mcp {
    Stdio(
        Box<tokio::process::Child>,
        tokio::process::ChildStdin,
        tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    ),
    Http {
        http: reqwest::Client,
        url: String,
        token: Option<String>,
        session: Option<String>,
    },
}

pub const PROTOCOL: &str = "2025-06-18";

impl Mcp {
    /// Starts `cmd` as an MCP server over stdio and initializes it.
    pub async fn direct(cmd: &str, args: &[String]) -> Result<Mcp> {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(cmd)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut mcp = Mcp::Stdio(Box::new(child), stdin, stdout);
        mcp.handshake().await?;
        Ok(mcp)
    }

    /// An endpoint (not yet initialized: see [`Mcp::handshake`]).
    pub fn http(url: String, token: Option<String>) -> Result<Mcp> {
        Ok(Mcp::Http {
            http: client()?,
            url,
            token,
            session: None,
        })
    }

    pub fn token(&self) -> &str {
        match self {
            Mcp::Http { token, .. } => token.as_deref().unwrap_or(""),
            Mcp::Stdio(..) => "",
        }
    }

    pub async fn handshake(&mut self) -> Result<()> {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}});
        let reply = self.send(&init).await?;
        ensure!(reply.get("result").is_some(), "initialize failed: {reply}");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(())
    }

    /// Sends one message: the response to a request, or `null` for a
    /// notification. A refusal is an error that starts with "HTTP <status>".
    pub async fn send(&mut self, msg: &Value) -> Result<Value> {
        use tokio::io::AsyncWriteExt;
        let request = msg.get("id").is_some();
        let answers = |m: &Value| m.get("id") == msg.get("id") && m.get("method").is_none();
        match self {
            Mcp::Stdio(child, stdin, stdout) => {
                stdin.write_all(format!("{msg}\n").as_bytes()).await?;
                stdin.flush().await?;
                if !request {
                    return Ok(Value::Null);
                }
                loop {
                    let line = stdout.next_line().await?;
                    let line = line.with_context(|| format!("upstream {:?} exited", child.id()))?;
                    let reply: Value = serde_json::from_str(&line)?;
                    if answers(&reply) {
                        return Ok(reply);
                    }
                }
            }
            Mcp::Http {
                http,
                url,
                token,
                session,
            } => {
                let mut req = http
                    .post(url.as_str())
                    .body(msg.to_string())
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", PROTOCOL);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                if let Some(sid) = session {
                    req = req.header("mcp-session-id", sid.as_str());
                }
                let resp = req.send().await?;
                if let Some(sid) = resp.headers().get("mcp-session-id") {
                    *session = Some(sid.to_str()?.to_string());
                }
                let status = resp.status();
                let sse = resp
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
                let body = resp.bytes().await?;
                let text = || String::from_utf8_lossy(&body).into_owned();
                ensure!(status.is_success(), "HTTP {status}: {}", text());
                if !request {
                    ensure!(status.as_u16() == 202, "notification got HTTP {status}");
                    return Ok(Value::Null);
                }
                if !sse {
                    return serde_json::from_slice(&body)
                        .with_context(|| format!("not JSON: {}", text()));
                }
                for line in text().lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        let m: Value = serde_json::from_str(data.trim())?;
                        if answers(&m) {
                            return Ok(m);
                        }
                    }
                }
                anyhow::bail!("no answer in the event stream: {}", text())
            }
        }
    }

    /// Ends the session (and so its upstream process, where there is one).
    pub async fn close(self) {
        match self {
            Mcp::Http {
                http,
                url,
                token,
                session: Some(sid),
            } => {
                let mut req = http.delete(url.as_str()).header("mcp-session-id", sid);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let _ = req.send().await;
            }
            Mcp::Http { .. } => {}
            Mcp::Stdio(mut child, ..) => {
                let _ = child.kill().await;
            }
        }
    }
}
