//! Test fixtures: a real Gatehouse on 127.0.0.1 port 0 with a temp data dir
//! and a real SQLite file, an HTTP client that does not follow redirects, and
//! helpers that walk the OAuth flow the way a client and a person would.
#![allow(dead_code)]

use std::path::Path;

use base64::Engine;
use gatehouse::control::client::ControlClient;
use gatehouse::control::{Request, Target};
use gatehouse::oauth::consent::{DurationChoice, ToolChoice};
use gatehouse::{Config, RunningServer};
use serde_json::{json, Value};
use sha2::Digest;

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const REDIRECT: &str = "http://127.0.0.1:8976/callback";

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

pub struct Fixture {
    pub running: Option<RunningServer>,
    pub url: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Fixture {
    pub async fn start(extra: &str) -> Fixture {
        Fixture::start_with(&config_text(extra)).await
    }

    pub async fn start_with(toml: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Fixture::start_in(toml, dir).await
    }

    pub async fn start_in(toml: &str, dir: tempfile::TempDir) -> Fixture {
        let config = Config::parse(toml, Path::new("test.toml")).unwrap();
        let running = gatehouse::core::start(config, dir.path()).await.unwrap();
        let url = running.url();
        let port = running.addr.port();
        Fixture {
            running: Some(running),
            url,
            port,
            dir,
            http: http_client(),
        }
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        self.running.take().unwrap().shutdown().await;
        self.dir
    }

    pub fn gatehouse(&self) -> &gatehouse::Gatehouse {
        &self.running.as_ref().unwrap().gatehouse
    }

    pub fn resource(&self, server: &str) -> String {
        format!("{}/mcp/{server}", self.url)
    }

    /// Talks to the daemon the way the CLI does: over the control socket.
    pub async fn control(
        &self,
        request: Request,
    ) -> Result<Value, gatehouse::control::ControlError> {
        let dir = self.dir.path().to_path_buf();
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

    pub async fn approve(
        &self,
        client_name: &str,
        tools: ToolChoice,
        duration: DurationChoice,
    ) -> Value {
        self.control(Request::Approve {
            ask: Default::default(),
            target: Target::Client(client_name.into()),
            tools,
            duration,
        })
        .await
        .unwrap()
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

    /// GET /authorize as a browser would; returns the Location it is sent to.
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
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the waiting page never redirected");
    }

    /// Registers a client, authorizes, lets the person approve, returns (client_id, code).
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

    /// A full flow: returns (client_id, token response).
    pub async fn tokens_for(&self, name: &str, tools: ToolChoice) -> (String, Value) {
        let (client_id, code) = self.code_for(name, tools, DurationChoice::Forever).await;
        let (status, body) = self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("client_id", &client_id),
                ("redirect_uri", REDIRECT),
                ("resource", &self.resource("demo")),
            ])
            .await;
        assert_eq!(status, 200, "{body}");
        (client_id, body)
    }

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

    /// initialize + notifications/initialized; returns the session id.
    pub async fn open_session(&self, server: &str, token: &str) -> String {
        let r = self
            .mcp(server, Some(token), None, &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}))
            .await;
        assert_eq!(r.status(), 200);
        let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
        let body: Value = r.json().await.unwrap();
        assert!(body["result"]["serverInfo"].is_object(), "{body}");
        let r = self
            .mcp(
                server,
                Some(token),
                Some(&sid),
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(r.status(), 202);
        sid
    }

    pub async fn rpc(
        &self,
        token: &str,
        session: &str,
        id: i64,
        method: &str,
        params: Value,
    ) -> Value {
        let r = self
            .mcp(
                "demo",
                Some(token),
                Some(session),
                &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
            )
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Row counts of the tables a bad request must never change.
    pub fn counts(&self) -> Vec<(String, i64)> {
        let db = rusqlite::Connection::open(self.dir.path().join("gatehouse.db")).unwrap();
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

    pub fn audit_kinds(&self) -> Vec<String> {
        let db = rusqlite::Connection::open(self.dir.path().join("gatehouse.db")).unwrap();
        let mut stmt = db
            .prepare("SELECT kind FROM audit_events ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

pub fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl Fixture {
    /// A full flow on any server, with an ask-every-time choice: (client_id, token response).
    pub async fn grant_on(
        &self,
        name: &str,
        server: &str,
        tools: ToolChoice,
        ask: gatehouse::oauth::consent::AskChoice,
    ) -> (String, Value) {
        let client_id = self.register(name).await;
        let (status, wait) = self
            .authorize(&self.authorize_url(&client_id, &[("resource", &self.resource(server))]))
            .await;
        assert_eq!(status, 303, "{wait}");
        self.control(Request::Approve {
            target: Target::Client(name.into()),
            tools,
            ask,
            duration: DurationChoice::Forever,
        })
        .await
        .unwrap();
        let code = query(&self.wait_for_redirect(&wait).await, "code").unwrap();
        let (status, body) = self.exchange_code(&client_id, &code).await;
        assert_eq!(status, 200, "{body}");
        (client_id, body)
    }

    /// One JSON-RPC request on a session of any server: (HTTP status, body).
    pub async fn call_on(
        &self,
        server: &str,
        token: &str,
        session: &str,
        id: i64,
        method: &str,
        params: Value,
    ) -> (u16, Value) {
        let r = self
            .mcp(
                server,
                Some(token),
                Some(session),
                &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
            )
            .await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
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

/// `gatehouse serve` as a real process, with its log captured.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub fixture: Fixture,
    pub log: std::path::PathBuf,
}

impl ServeProcess {
    pub fn start(config_toml: &str, env: &[(&str, &str)]) -> ServeProcess {
        use std::io::{BufRead, BufReader};
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, config_toml).unwrap();
        let log = dir.path().join("serve.log");
        let mut child = std::process::Command::new(gatehouse_bin())
            .args(["serve", "--port", "0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path())
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .trim()
            .strip_prefix("Gatehouse is running at ")
            .unwrap_or_else(|| panic!("{first}"))
            .to_string();
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        ServeProcess {
            child,
            fixture: Fixture {
                running: None,
                url,
                port,
                dir,
                http: http_client(),
            },
            log,
        }
    }

    /// Stops with SIGTERM and waits.
    pub fn stop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the CLI against a data dir, with stdin; returns (exit code, stdout, stderr).
pub fn cli_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(gatehouse_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}
