//! `gatehouse bridge <server>`: a stdio MCP server for clients that can only
//! launch one (Claude Desktop's local config, for one). It speaks to the
//! running Gatehouse over HTTP as an OAuth client of its own, "<client> via
//! bridge": it registers, asks for consent (the person decides in the
//! consent window or with `gatehouse approve`, as for any agent), keeps its
//! tokens in the keychain, refreshes them, follows step-up, and relays every
//! MCP message both ways: requests, notifications, progress, and what the
//! server sends on its own. When Gatehouse is not running it says so on
//! stderr and answers each request with a JSON-RPC error, never a hang.
//!
//! It lives in the binary and uses only what any client has: the HTTP API,
//! and the control socket to find where Gatehouse listens.

mod oauth;
mod sse;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse::api::CredentialStore;
use gatehouse::control::client::ControlClient;
use gatehouse::control::Request;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Mutex};

use oauth::Tokens;

/// What the bridge relays to: the running Gatehouse, its session, its tokens.
#[derive(Default)]
struct Conn {
    /// Gatehouse's URL, once found.
    base: Option<String>,
    tokens: Option<Tokens>,
    /// The MCP session Gatehouse gave the client's `initialize`.
    session: Option<String>,
    /// The client's `initialize` request, to open a new session with.
    initialize: Option<Value>,
}

struct Bridge {
    data_dir: PathBuf,
    server: String,
    /// How it registers: "<client> via bridge".
    client_name: String,
    http: reqwest::Client,
    credentials: CredentialStore,
    conn: Mutex<Conn>,
    out: mpsc::UnboundedSender<Value>,
}

/// Runs the bridge on stdin/stdout until stdin closes.
pub fn run(data_dir: &Path, server: &str, client: &str) -> Result<(), String> {
    let credentials =
        CredentialStore::open(data_dir, gatehouse::config::CredentialStoreChoice::Auto)
            .map_err(|e| format!("cannot open where tokens are kept: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (out, mut lines) = mpsc::unbounded_channel::<Value>();
        let writer = tokio::spawn(async move {
            let mut stdout = tokio::io::stdout();
            while let Some(msg) = lines.recv().await {
                let mut line = msg.to_string();
                line.push('\n');
                if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err()
                {
                    break;
                }
            }
        });
        let bridge = Arc::new(Bridge {
            data_dir: data_dir.to_path_buf(),
            server: server.to_string(),
            client_name: format!("{client} via bridge"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())?,
            credentials,
            conn: Mutex::new(Conn::default()),
            out,
        });
        let mut tasks = tokio::task::JoinSet::new();
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = stdin.next_line().await {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(msg) => {
                    let bridge = bridge.clone();
                    tasks.spawn(async move { bridge.handle(msg).await });
                }
                Err(e) => bridge.send(rpc_error(Value::Null, -32700, format!("not JSON: {e}"))),
            }
        }
        // stdin closed: let what is in flight finish, then end the session.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        bridge.close().await;
        drop(bridge);
        let _ = writer.await;
        Ok(())
    })
}

fn rpc_error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

/// Why a message could not be relayed (said to the client as a JSON-RPC error).
type Failed = String;

/// What Gatehouse answered one POST.
enum Answer {
    /// Relayed (the replies went to the client).
    Done,
    /// The access token was refused: renew it.
    Unauthorized,
    /// The tool needs more of a grant: this scope.
    StepUp(String),
    /// The session is gone: open a new one.
    SessionGone,
}

impl Bridge {
    fn send(&self, msg: Value) {
        let _ = self.out.send(msg);
    }

    fn say(&self, what: &str) {
        eprintln!("gatehouse bridge ({}): {what}", self.server);
    }

    async fn handle(self: Arc<Self>, msg: Value) {
        let id = msg.get("id").cloned();
        let is_request = id.is_some() && msg.get("method").is_some();
        if let Err(why) = self.relay(&msg).await {
            self.say(&why);
            if is_request {
                self.send(rpc_error(id.unwrap_or(Value::Null), -32000, why));
            }
        }
    }

    /// Relays one message from the client, renewing what has to be renewed
    /// (tokens, consent, the session) and trying again.
    async fn relay(self: &Arc<Self>, msg: &Value) -> Result<(), Failed> {
        let initialize = msg.get("method").and_then(Value::as_str) == Some("initialize");
        for _ in 0..4 {
            let (base, access, session) = self.ready(initialize).await?;
            let answer = self
                .post(
                    &base,
                    &access,
                    session.as_deref(),
                    msg,
                    initialize,
                    &self.out,
                )
                .await?;
            match answer {
                Answer::Done => return Ok(()),
                Answer::Unauthorized => self.renew(&access).await?,
                Answer::StepUp(scope) => self.step_up(&scope).await?,
                Answer::SessionGone => self.reopen(session.as_deref()).await?,
            }
        }
        Err("Gatehouse kept refusing the request; see its log".into())
    }

    /// Gatehouse's URL, a valid access token, and the session (none for `initialize`).
    async fn ready(&self, initialize: bool) -> Result<(String, String, Option<String>), Failed> {
        let mut conn = self.conn.lock().await;
        let base = match &conn.base {
            Some(base) => base.clone(),
            None => {
                let base = self.find_gatehouse()?;
                conn.base = Some(base.clone());
                base
            }
        };
        if conn.tokens.is_none() {
            conn.tokens = self.load_tokens();
        }
        let usable = conn.tokens.as_ref().and_then(|t| t.access_token.clone());
        let access = match usable {
            Some(access) => access,
            None => {
                let tokens = self.authorize(&base, conn.tokens.take(), None).await?;
                let access = tokens.access_token.clone().unwrap_or_default();
                conn.tokens = Some(tokens);
                access
            }
        };
        let session = if initialize {
            None
        } else {
            conn.session.clone()
        };
        Ok((base, access, session))
    }

    /// Where the running Gatehouse listens (asked over the control socket,
    /// which checks it is this user's), and that it fronts this server.
    fn find_gatehouse(&self) -> Result<String, Failed> {
        let not_running = |e: gatehouse::api::Error| {
            format!(
                "Gatehouse is not running ({}): start it (`gatehouse serve`, or the app), then try again",
                e.message.lines().next().unwrap_or_default()
            )
        };
        let status = ControlClient::connect(&self.data_dir)
            .and_then(|mut c| c.call(&Request::Status))
            .map_err(not_running)?;
        let url = status["url"].as_str().unwrap_or_default().to_string();
        let servers: Vec<&str> = status["servers"]
            .as_array()
            .map(|s| s.iter().filter_map(|s| s["name"].as_str()).collect())
            .unwrap_or_default();
        if !servers.contains(&self.server.as_str()) {
            return Err(format!(
                "Gatehouse fronts no server named {:?}; it fronts: {}",
                self.server,
                servers.join(", ")
            ));
        }
        Ok(url)
    }

    /// POSTs one message and relays what comes back to `out`.
    async fn post(
        self: &Arc<Self>,
        base: &str,
        access: &str,
        session: Option<&str>,
        msg: &Value,
        initialize: bool,
        out: &mpsc::UnboundedSender<Value>,
    ) -> Result<Answer, Failed> {
        let mut request = self
            .http
            .post(format!("{base}/mcp/{}", self.server))
            .bearer_auth(access)
            .header("accept", "application/json, text/event-stream")
            .json(msg);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach Gatehouse at {base}: {e}"))?;
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string();
        match status {
            401 => return Ok(Answer::Unauthorized),
            403 if challenge.contains("insufficient_scope") => {
                return Ok(Answer::StepUp(
                    oauth::param(&challenge, "scope").unwrap_or_default(),
                ))
            }
            404 if session.is_some() => return Ok(Answer::SessionGone),
            _ => {}
        }
        if initialize && status == 200 {
            let id = response
                .headers()
                .get("mcp-session-id")
                .and_then(|h| h.to_str().ok())
                .map(str::to_string);
            let mut conn = self.conn.lock().await;
            conn.initialize = Some(msg.clone());
            conn.session = id.clone();
            drop(conn);
            if let Some(id) = id {
                self.clone().listen(base.to_string(), id);
            }
        }
        if status == 202 {
            return Ok(Answer::Done);
        }
        let out = out.clone();
        let relayed = sse::relay(response, move |m| {
            let _ = out.send(m);
        })
        .await
        .map_err(|e| format!("reading Gatehouse's answer: {e}"))?;
        if relayed == 0 && status >= 400 {
            return Err(format!("Gatehouse answered {status}"));
        }
        Ok(Answer::Done)
    }

    /// Listens for what the server sends on its own (a GET stream on the
    /// session), for as long as the session lasts.
    fn listen(self: Arc<Self>, base: String, session: String) {
        tokio::spawn(async move {
            loop {
                let access = {
                    let conn = self.conn.lock().await;
                    if conn.session.as_deref() != Some(session.as_str()) {
                        return;
                    }
                    conn.tokens.as_ref().and_then(|t| t.access_token.clone())
                };
                let Some(access) = access else { return };
                let response = self
                    .http
                    .get(format!("{base}/mcp/{}", self.server))
                    .bearer_auth(&access)
                    .header("accept", "text/event-stream")
                    .header("mcp-session-id", &session)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 200 => {
                        let out = self.out.clone();
                        let _ = sse::relay(r, move |m| {
                            let _ = out.send(m);
                        })
                        .await;
                    }
                    // No stream on this server, or the session ended.
                    Ok(r) if matches!(r.status().as_u16(), 404 | 405) => return,
                    _ => {}
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }

    /// A refused access token: refresh it, or (when the refresh is refused
    /// too: revoked, expired) ask the person again. `stale` is the token that
    /// was refused: if another request renewed it meanwhile, that is enough.
    async fn renew(&self, stale: &str) -> Result<(), Failed> {
        let mut conn = self.conn.lock().await;
        let current = conn.tokens.as_ref().and_then(|t| t.access_token.clone());
        if current.as_deref() != Some(stale) {
            return Ok(());
        }
        let base = conn.base.clone().unwrap_or_default();
        let tokens = conn.tokens.take();
        let renewed = match oauth::refresh(&self.http, &base, tokens.as_ref()).await {
            Some(t) => t,
            None => {
                self.say("the grant ended (revoked or expired): asking again");
                self.authorize(&base, tokens, None).await?
            }
        };
        conn.tokens = Some(renewed);
        self.save_tokens(conn.tokens.as_ref());
        Ok(())
    }

    /// A tool outside the grant: ask the person for it (a step-up request).
    async fn step_up(&self, scope: &str) -> Result<(), Failed> {
        let mut conn = self.conn.lock().await;
        let base = conn.base.clone().unwrap_or_default();
        let tokens = conn.tokens.take();
        let wider = self.authorize(&base, tokens, Some(scope)).await?;
        conn.tokens = Some(wider);
        Ok(())
    }

    /// The session ended (Gatehouse restarted, or it was idle): open a new
    /// one with the client's own `initialize`, so the client never notices.
    async fn reopen(self: &Arc<Self>, gone: Option<&str>) -> Result<(), Failed> {
        let init = {
            let mut conn = self.conn.lock().await;
            if conn.session.as_deref() != gone {
                return Ok(());
            }
            conn.session = None;
            conn.initialize.clone()
        };
        let Some(init) = init else {
            return Err("the session ended before it was initialized".into());
        };
        let (base, access, _) = self.ready(true).await?;
        // The answer to a replayed initialize is not the client's to see.
        let (quiet, _) = mpsc::unbounded_channel();
        self.post(&base, &access, None, &init, true, &quiet).await?;
        let session = self.conn.lock().await.session.clone();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post(
            &base,
            &access,
            session.as_deref(),
            &initialized,
            false,
            &quiet,
        )
        .await?;
        Ok(())
    }

    /// Ends the session when the client goes away.
    async fn close(&self) {
        let conn = self.conn.lock().await;
        let (Some(base), Some(session), Some(access)) = (
            &conn.base,
            &conn.session,
            conn.tokens.as_ref().and_then(|t| t.access_token.as_ref()),
        ) else {
            return;
        };
        let _ = self
            .http
            .delete(format!("{base}/mcp/{}", self.server))
            .bearer_auth(access)
            .header("mcp-session-id", session)
            .send()
            .await;
    }

    /// Where this bridge's client id and tokens are kept in the keychain.
    fn state_key(&self) -> String {
        format!("{}/{}", self.server, self.client_name)
    }

    fn load_tokens(&self) -> Option<Tokens> {
        let text = self.credentials.bridge_state(&self.state_key()).ok()??;
        serde_json::from_str(&text).ok()
    }

    fn save_tokens(&self, tokens: Option<&Tokens>) {
        let Some(tokens) = tokens else { return };
        let text = serde_json::to_string(tokens).unwrap_or_default();
        if let Err(e) = self.credentials.set_bridge_state(&self.state_key(), &text) {
            self.say(&format!("cannot keep the tokens: {e}"));
        }
    }

    /// Registers if it must, asks the person (waiting for the decision),
    /// and returns the new tokens, kept.
    async fn authorize(
        &self,
        base: &str,
        known: Option<Tokens>,
        scope: Option<&str>,
    ) -> Result<Tokens, Failed> {
        let client = oauth::Client {
            http: &self.http,
            base,
            resource: format!("{base}/mcp/{}", self.server),
            name: &self.client_name,
        };
        let tokens = client
            .authorize(known.map(|t| t.client_id), scope, |what| self.say(what))
            .await?;
        self.save_tokens(Some(&tokens));
        Ok(tokens)
    }
}
