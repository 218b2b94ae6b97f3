//! Test support: a real Gatehouse on 127.0.0.1 port 0 with a temp data dir
//! and a real SQLite file ([`Fixture`] in-process, [`serve::Serve`] as a
//! `gatehouse serve` process), an HTTP client that does not follow redirects,
//! and helpers that walk the OAuth flow the way a client and a person would,
//! so each test reads as its scenario:
//!
//! - [`Gh::grant`]: an agent registered, authorized, approved by the person
//!   (over the CLI's control socket) and holding tokens;
//! - [`Gh::session`]: an MCP session opened with a token;
//! - [`Session::call`]: one tool call (or any request) on it.
#![allow(dead_code)] // not every scenario uses every helper

pub mod sdk;
pub mod serve;
pub mod servers;
mod session;

pub use session::Session;

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use gatehouse::api::{Approval, AskChoice, DurationChoice, Error, Gatehouse, Target, ToolChoice};
use gatehouse::control::client::ControlClient;
use gatehouse::control::Request;
use gatehouse::daemon::Running;
use gatehouse::Config;
use serde_json::{json, Value};
use sha2::Digest;

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const REDIRECT: &str = "http://127.0.0.1:8976/callback";
/// Upper bound for anything a test waits on (a client, a pending item, a log line).
pub const STEP: Duration = Duration::from_secs(60);

pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

pub fn gatehouse_bin() -> &'static str {
    env!("CARGO_BIN_EXE_gatehouse")
}

/// The config for tests: the demo server (this build's binary) plus `extra`.
pub fn config_text(extra: &str) -> String {
    format!(
        "port = 0\n{extra}\n[servers.demo]\ncommand = {:?}\nargs = [\"demo-server\"]\n",
        gatehouse_bin()
    )
}

/// The Python fixture MCP server (tests/fixtures/upstream.py) as a config entry.
pub fn fixture_server(name: &str, env: &[(&str, String)]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upstream.py");
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k} = {v:?}")).collect();
    format!(
        "[servers.{name}]\ncommand = \"python3\"\nargs = [{script:?}]\nenv = {{ {} }}\n",
        env.join(", ")
    )
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// An approval as the CLI sends it.
pub fn approval(tools: ToolChoice, ask: AskChoice, duration: DurationChoice) -> Approval {
    Approval {
        tools,
        ask,
        duration,
        ask_for_more: false,
        remember: false,
    }
}

/// An MCP `initialize` request as a client sends it first.
pub fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
}

/// Whether any value in `v` is JSON `null` (the TypeScript SDK rejects them in metadata).
pub fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_null),
        Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

/// Asserts an OAuth JSON error response: the status, the RFC error code, a
/// description, and no `null` anywhere in the body.
pub async fn assert_oauth_error(r: reqwest::Response, status: u16, code: &str) {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(!has_null(&body), "{body}");
}

/// A Gatehouse to talk to, in-process or as a process: its URL, its data
/// directory (for the control socket and the database), an HTTP client.
pub struct Gh {
    pub url: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
}

/// An agent that holds a grant: its client id and its token response.
pub struct Grantee {
    pub client_id: String,
    pub tokens: Value,
}

impl Grantee {
    pub fn access(&self) -> &str {
        self.tokens["access_token"]
            .as_str()
            .expect("an access token")
    }

    pub fn refresh(&self) -> &str {
        self.tokens["refresh_token"]
            .as_str()
            .expect("a refresh token")
    }
}

impl Gh {
    pub fn new(url: String, data_dir: PathBuf) -> Gh {
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        Gh {
            url,
            port,
            data_dir,
            http: http_client(),
        }
    }

    /// GET a JSON document (metadata) from this Gatehouse.
    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.http.get(format!("{}{path}", self.url)).send().await;
        r.unwrap().json().await.unwrap()
    }

    pub fn resource(&self, server: &str) -> String {
        format!("{}/mcp/{server}", self.url)
    }

    /// Talks to the daemon the way the CLI does: over the control socket.
    pub async fn control(&self, request: Request) -> Result<Value, Error> {
        let dir = self.data_dir.clone();
        tokio::task::spawn_blocking(move || ControlClient::connect(&dir)?.call(&request))
            .await
            .unwrap()
    }

    pub async fn pending(&self) -> Vec<Value> {
        self.control(Request::Pending)
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits for a pending item of this kind (`authorization`, `tool_call`…).
    pub async fn wait_for_pending(&self, kind: &str) -> Value {
        for _ in 0..200 {
            if let Some(p) = self.pending().await.into_iter().find(|p| p["kind"] == kind) {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("no pending {kind}");
    }

    /// The person decides, with the CLI's request (by id or by agent).
    /// The person decides, the way they do with the CLI: by id, or by agent
    /// after listing what is pending (`gatehouse pending`, then
    /// `gatehouse approve --client NAME`).
    pub async fn decide(&self, target: Target, approval: Approval) -> Result<Value, Error> {
        if let Target::Client(_) = target {
            self.pending().await;
        }
        self.control(Request::Approve { target, approval }).await
    }

    /// The person approves the pending request of this agent (ask-every-time: the default).
    pub async fn approve(
        &self,
        client_name: &str,
        tools: ToolChoice,
        duration: DurationChoice,
    ) -> Value {
        let target = Target::Client(client_name.into());
        self.decide(target, approval(tools, AskChoice::default(), duration))
            .await
            .unwrap()
    }

    /// The person approves one pending item by its id.
    pub async fn approve_id(&self, id: &str) -> Value {
        let choice = approval(ToolChoice::All, AskChoice::default(), DurationChoice::Once);
        self.decide(Target::Id(id.into()), choice).await.unwrap()
    }

    /// The person denies a pending item (as listed), then the held call that
    /// waited on it returns.
    pub async fn deny_held(&self, item: &Value, held: tokio::task::JoinHandle<Value>) -> Value {
        let id = item["id"].as_str().expect("a pending id").to_string();
        self.deny(Target::Id(id)).await.unwrap();
        held.await.unwrap()
    }

    pub async fn deny(&self, target: Target) -> Result<Value, Error> {
        self.control(Request::Deny { target }).await
    }

    pub async fn register(&self, name: &str) -> String {
        let r = self
            .http
            .post(format!("{}/register", self.url))
            .json(&json!({"client_name": name, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["client_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn authorize_url(&self, client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&format!("{}/authorize", self.url)).unwrap();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", REDIRECT)
                .append_pair("code_challenge", &challenge(VERIFIER))
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", "st4te");
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        url.into()
    }

    /// GET /authorize as a browser would: (status, the Location it is sent to).
    pub async fn authorize(&self, url: &str) -> (u16, String) {
        let r = self.http.get(url).send().await.unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, location)
    }

    /// Polls the waiting page until it redirects; returns the final redirect URL.
    pub async fn wait_for_redirect(&self, wait_path: &str) -> url::Url {
        for _ in 0..100 {
            let r = self
                .http
                .get(format!("{}{wait_path}", self.url))
                .send()
                .await
                .unwrap();
            if r.status() == 302 {
                return url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
            }
            assert_eq!(r.status(), 200);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the waiting page never redirected");
    }

    /// Registers a client, authorizes on `demo`, lets the person approve: (client_id, code).
    pub async fn code_for(
        &self,
        name: &str,
        tools: ToolChoice,
        duration: DurationChoice,
    ) -> (String, String) {
        let client_id = self.register(name).await;
        let (_, wait) = self
            .authorize(&self.authorize_url(&client_id, &[("resource", &self.resource("demo"))]))
            .await;
        self.approve(name, tools, duration).await;
        let redirect = self.wait_for_redirect(&wait).await;
        let code = query(&redirect, "code").expect("a code");
        (client_id, code)
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/token", self.url))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// Exchanges an authorization code the way a client does (PKCE, its redirect URI).
    pub async fn exchange_code(&self, client_id: &str, code: &str) -> (u16, Value) {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
        ])
        .await
    }

    /// Refreshes the way a public client does.
    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> (u16, Value) {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ])
        .await
    }

    /// A full flow on `demo` (every tool the choice names, until revoked).
    pub async fn tokens_for(&self, name: &str, tools: ToolChoice) -> Grantee {
        self.grant(name, "demo", tools, AskChoice::default()).await
    }

    /// A full flow on any server, with an ask-every-time choice.
    pub async fn grant(
        &self,
        name: &str,
        server: &str,
        tools: ToolChoice,
        ask: AskChoice,
    ) -> Grantee {
        let client_id = self.register(name).await;
        self.grant_to(client_id, name, server, tools, ask).await
    }

    /// A full flow for a client registered before (named `name`).
    pub async fn grant_to(
        &self,
        client_id: String,
        name: &str,
        server: &str,
        tools: ToolChoice,
        ask: AskChoice,
    ) -> Grantee {
        let (status, wait) = self
            .authorize(&self.authorize_url(&client_id, &[("resource", &self.resource(server))]))
            .await;
        assert_eq!(status, 303, "{wait}");
        let choice = approval(tools, ask, DurationChoice::Forever);
        self.decide(Target::Client(name.into()), choice)
            .await
            .unwrap();
        let code = query(&self.wait_for_redirect(&wait).await, "code").unwrap();
        let (status, tokens) = self.exchange_code(&client_id, &code).await;
        assert_eq!(status, 200, "{tokens}");
        Grantee { client_id, tokens }
    }

    /// A raw JSON-RPC POST to an MCP endpoint.
    pub async fn mcp(
        &self,
        server: &str,
        token: Option<&str>,
        session: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut r = self
            .http
            .post(self.resource(server))
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r.send().await.unwrap()
    }

    /// initialize + notifications/initialized on `server` with this token.
    pub async fn session(&self, server: &str, token: &str) -> Session {
        let r = self.mcp(server, Some(token), None, &initialize()).await;
        assert_eq!(r.status(), 200);
        let id = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
        let body: Value = r.json().await.unwrap();
        assert!(body["result"]["serverInfo"].is_object(), "{body}");
        let r = self
            .mcp(
                server,
                Some(token),
                Some(&id),
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(r.status(), 202);
        Session::new(self.http.clone(), self.resource(server), token, id)
    }

    /// An agent with a grant on `server` and an open session there.
    pub async fn agent(
        &self,
        name: &str,
        server: &str,
        tools: ToolChoice,
        ask: AskChoice,
    ) -> (Grantee, Session) {
        let grantee = self.grant(name, server, tools, ask).await;
        let session = self.session(server, grantee.access()).await;
        (grantee, session)
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data_dir.join("gatehouse.db")).unwrap()
    }

    /// Row counts of the tables a bad request must never change.
    pub fn counts(&self) -> Vec<(String, i64)> {
        let db = self.db();
        [
            "clients",
            "grants",
            "consent_requests",
            "authorization_codes",
            "tokens",
        ]
        .iter()
        .map(|t| {
            (
                t.to_string(),
                db.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                    .unwrap(),
            )
        })
        .collect()
    }

    /// Every audit event as (kind, outcome, tool, detail), oldest first.
    pub fn audit_rows(&self) -> Vec<(String, String, Option<String>, Value)> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT kind, outcome, tool, detail FROM audit_events ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| {
            let detail: String = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                serde_json::from_str(&detail).unwrap(),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// The kinds of every audit event, oldest first.
    pub fn audit_kinds(&self) -> Vec<String> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT kind FROM audit_events ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

/// Gatehouse in this process, on a temp data dir.
pub struct Fixture {
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    gh: Gh,
}

impl Deref for Fixture {
    type Target = Gh;
    fn deref(&self) -> &Gh {
        &self.gh
    }
}

impl Fixture {
    /// The demo server plus `extra` config.
    pub async fn start(extra: &str) -> Fixture {
        Fixture::start_with(&config_text(extra)).await
    }

    pub async fn start_with(toml: &str) -> Fixture {
        Fixture::start_in(toml, tempfile::tempdir().unwrap()).await
    }

    /// Starts on an existing data dir (a restart).
    pub async fn start_in(toml: &str, dir: tempfile::TempDir) -> Fixture {
        let config = Config::parse(toml, Path::new("test.toml")).unwrap();
        let running = gatehouse::daemon::start(config, dir.path()).await.unwrap();
        let gh = Gh::new(running.url(), dir.path().to_path_buf());
        Fixture {
            running: Some(running),
            dir,
            gh,
        }
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        self.running.take().unwrap().shutdown().await;
        self.dir
    }

    /// The API both faces use, in-process.
    pub fn api(&self) -> &Gatehouse {
        self.running.as_ref().unwrap().gatehouse()
    }

    /// [`Gh::audit_rows`] once the outcomes already queued are committed
    /// (a call's outcome is written after its answer), as a view of the log waits.
    pub fn audit_rows(&self) -> Vec<(String, String, Option<String>, Value)> {
        self.settled().audit_rows()
    }

    /// [`Gh::audit_kinds`], settled the same way.
    pub fn audit_kinds(&self) -> Vec<String> {
        self.settled().audit_kinds()
    }

    fn settled(&self) -> &Gh {
        if let Some(running) = &self.running {
            running.gatehouse().settle_audit();
        }
        &self.gh
    }
}
