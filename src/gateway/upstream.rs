//! Connections to the real MCP servers behind the gateway: a child process
//! speaking newline-delimited JSON-RPC on stdio, or a streamable-HTTP server.
//! One connection serves one gateway session (one agent), so sessions never
//! mix. The client's token is never sent upstream.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::jsonrpc::{self, Kind};
use crate::config::{ServerConfig, Upstream as UpstreamConfig, Value as ConfigValue};
use crate::secrets::SecretStore;
use std::collections::BTreeMap;

/// The variables a stdio server inherits from Gatehouse (as the official MCP
/// SDKs do); everything else it gets only from its `env` in the config.
pub const INHERITED_ENV: &[&str] = &[
    "HOME",
    "LOGNAME",
    "PATH",
    "SHELL",
    "TERM",
    "USER",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
];

/// Largest single message accepted from an upstream (bytes).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not start upstream server {server:?}: {reason}")]
    Start { server: String, reason: String },
    #[error("upstream server {0:?} is not running (it exited)")]
    Exited(String),
    #[error("upstream server {server:?} failed: {reason}")]
    Failed { server: String, reason: String },
}

/// Messages belonging to one request: zero or more server messages
/// (progress, sampling…) and then the response.
pub type MessageStream = mpsc::Receiver<Value>;

/// The lease on a session's server-message stream; dropping it (the client
/// disconnected) lets the next GET take it.
pub type ServerStream = std::pin::Pin<Box<dyn futures::Stream<Item = Value> + Send>>;

pub enum Connection {
    Stdio(StdioConnection),
    Http(HttpConnection),
}

/// Opens upstream connections: reads their secrets and holds back a server
/// that keeps crashing (at most 3 crashes a minute, then an exponential wait
/// of up to 30 s before the next start).
pub struct Launcher {
    secrets: Arc<SecretStore>,
    crashes: Arc<Crashes>,
}

#[derive(Default)]
pub struct Crashes {
    recent: Mutex<HashMap<String, Vec<std::time::Instant>>>,
}

const CRASH_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
const CRASHES_BEFORE_BACKOFF: usize = 3;
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);

impl Crashes {
    fn record(&self, server: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let list = recent.entry(server.to_string()).or_default();
        list.retain(|t| t.elapsed() < CRASH_WINDOW);
        list.push(std::time::Instant::now());
    }

    /// How long a new start must still wait, if the server keeps crashing.
    pub fn backoff(&self, server: &str) -> Option<std::time::Duration> {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let list = recent.get_mut(server)?;
        list.retain(|t| t.elapsed() < CRASH_WINDOW);
        let n = list.len();
        if n < CRASHES_BEFORE_BACKOFF {
            return None;
        }
        let wait = std::time::Duration::from_secs(1 << (n - CRASHES_BEFORE_BACKOFF).min(5))
            .min(MAX_BACKOFF);
        wait.checked_sub(list.last()?.elapsed())
    }
}

impl Launcher {
    pub fn new(secrets: Arc<SecretStore>) -> Launcher {
        Launcher {
            secrets,
            crashes: Arc::default(),
        }
    }

    pub async fn open(&self, server: &ServerConfig) -> Result<Connection, UpstreamError> {
        if let Some(wait) = self.crashes.backoff(&server.name) {
            return Err(UpstreamError::Start {
                server: server.name.clone(),
                reason: format!(
                    "it crashed {CRASHES_BEFORE_BACKOFF} or more times in the last minute; the next start is in {} s",
                    wait.as_secs() + 1
                ),
            });
        }
        Connection::open(server, &self.secrets, &self.crashes).await
    }
}

impl Connection {
    /// Starts (stdio) or prepares (HTTP) a connection, with its secrets read
    /// from the keychain now, so a changed secret applies to the next session.
    async fn open(
        server: &ServerConfig,
        secrets: &SecretStore,
        crashes: &Arc<Crashes>,
    ) -> Result<Connection, UpstreamError> {
        let resolve = |values: &BTreeMap<String, ConfigValue>| -> Result<Vec<(String, String)>, UpstreamError> {
            values
                .iter()
                .map(|(k, v)| match v {
                    ConfigValue::Plain(p) => Ok((k.clone(), p.clone())),
                    ConfigValue::Secret(r) => secrets
                        .get(&server.name, &r.secret)
                        .map(|s| (k.clone(), format!("{}{s}", r.prefix)))
                        .map_err(|e| UpstreamError::Start { server: server.name.clone(), reason: e.to_string() }),
                })
                .collect()
        };
        match &server.upstream {
            UpstreamConfig::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let env = resolve(env)?;
                StdioConnection::spawn(
                    &server.name,
                    command,
                    args,
                    &env,
                    cwd.as_deref(),
                    crashes.clone(),
                )
                .map(Connection::Stdio)
            }
            UpstreamConfig::Http { url, headers } => {
                let headers = resolve(headers)?;
                Ok(Connection::Http(HttpConnection::new(
                    &server.name,
                    url.clone(),
                    &headers,
                )?))
            }
        }
    }

    /// Sends a request; the stream ends with its response.
    pub async fn request(
        &self,
        msg: Value,
        headers: &UpstreamHeaders,
    ) -> Result<MessageStream, UpstreamError> {
        match self {
            Connection::Stdio(c) => c.request(msg).await,
            Connection::Http(c) => c.request(msg, headers).await,
        }
    }

    /// Sends a notification, or a response to a server's request.
    pub async fn send(&self, msg: Value, headers: &UpstreamHeaders) -> Result<(), UpstreamError> {
        match self {
            Connection::Stdio(c) => c.write(&msg).await,
            Connection::Http(c) => c.send(msg, headers).await,
        }
    }

    /// Forgets a request whose caller stopped waiting (a timeout).
    pub fn abandon(&self, id: &Value) {
        if let Connection::Stdio(c) = self {
            c.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&jsonrpc::id_key(id));
        }
    }

    /// Server messages not tied to a request, for the client's GET stream.
    /// One stream at a time: `None` while another is open, or when the
    /// upstream offers no such stream.
    pub async fn open_stream(&self, headers: &UpstreamHeaders) -> Option<ServerStream> {
        match self {
            Connection::Stdio(c) => {
                let lease = c.unsolicited_rx.clone().try_lock_owned().ok()?;
                Some(Box::pin(futures::stream::unfold(
                    lease,
                    |mut lease| async move { lease.recv().await.map(|m| (m, lease)) },
                )))
            }
            Connection::Http(c) => c.open_stream(headers).await,
        }
    }

    /// Whether the upstream said its tool list changed since the last call.
    pub fn take_list_changed(&self) -> bool {
        let flag = match self {
            Connection::Stdio(c) => &c.list_changed,
            Connection::Http(c) => &c.list_changed,
        };
        flag.swap(false, Ordering::SeqCst)
    }

    pub fn is_alive(&self) -> bool {
        match self {
            Connection::Stdio(c) => c.alive.load(Ordering::SeqCst),
            Connection::Http(_) => true,
        }
    }

    pub async fn close(&self) {
        match self {
            Connection::Stdio(c) => c.kill(),
            Connection::Http(c) => c.close().await,
        }
    }
}

/// Headers from the client that are passed on to an HTTP upstream.
#[derive(Debug, Default, Clone)]
pub struct UpstreamHeaders {
    pub protocol_version: Option<String>,
}

type Pending = Arc<Mutex<PendingRequests>>;

#[derive(Default)]
pub struct PendingRequests {
    by_id: HashMap<String, mpsc::Sender<Value>>,
    order: Vec<String>,
}

impl PendingRequests {
    fn remove(&mut self, key: &str) -> Option<mpsc::Sender<Value>> {
        self.order.retain(|k| k != key);
        self.by_id.remove(key)
    }
    /// The newest request still waiting: server messages sent while it runs belong to it.
    fn newest(&self) -> Option<&mpsc::Sender<Value>> {
        self.order.last().and_then(|k| self.by_id.get(k))
    }
}

pub struct StdioConnection {
    server: String,
    list_changed: Arc<AtomicBool>,
    stdin: mpsc::Sender<String>,
    pending: Pending,
    unsolicited_rx: Arc<tokio::sync::Mutex<MessageStream>>,
    alive: Arc<AtomicBool>,
    pid: Option<u32>,
}

impl StdioConnection {
    fn spawn(
        server: &str,
        command: &str,
        args: &[String],
        env: &[(String, String)],
        cwd: Option<&std::path::Path>,
        crashes: Arc<Crashes>,
    ) -> Result<StdioConnection, UpstreamError> {
        let mut cmd = tokio::process::Command::new(command);
        // A fresh environment: only what a program needs to run, plus what the
        // config gives it. Gatehouse's own environment may hold credentials.
        cmd.args(args)
            .env_clear()
            .envs(
                INHERITED_ENV
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (*k, v))),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|e| UpstreamError::Start {
            server: server.to_string(),
            reason: format!("{command}: {e}"),
        })?;
        let pid = child.id();
        let mut child_stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let (stdin_tx, mut stdin_rx) = mpsc::channel::<String>(64);
        let (unsolicited_tx, unsolicited_rx) = mpsc::channel::<Value>(256);

        tokio::spawn(async move {
            while let Some(line) = stdin_rx.recv().await {
                if child_stdin.write_all(line.as_bytes()).await.is_err()
                    || child_stdin.flush().await.is_err()
                {
                    break;
                }
            }
        });
        let name = server.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(server = %name, "upstream stderr: {line}");
            }
        });
        let list_changed = Arc::new(AtomicBool::new(false));
        let (name, reader_pending, reader_alive, reader_changed) = (
            server.to_string(),
            pending.clone(),
            alive.clone(),
            list_changed.clone(),
        );
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match (&mut reader)
                    .take(MAX_MESSAGE_BYTES as u64 + 1)
                    .read_until(b'\n', &mut line)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(n) if n > MAX_MESSAGE_BYTES => {
                        tracing::warn!(server = %name, "upstream sent an oversized message; stopping it");
                        break;
                    }
                    Ok(_) => {}
                }
                let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
                    tracing::warn!(server = %name, "upstream wrote a line that is not JSON: {}", String::from_utf8_lossy(&line).trim());
                    continue;
                };
                note_list_changed(&msg, &reader_changed);
                route(&reader_pending, &unsolicited_tx, msg).await;
            }
            // Still marked alive: nobody stopped it, so it crashed (or quit on its own).
            // Count the crash before anyone can see the connection dead.
            let crashed = reader_alive.load(Ordering::SeqCst);
            if crashed {
                crashes.record(&name);
            }
            reader_alive.store(false, Ordering::SeqCst);
            let status = child
                .wait()
                .await
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            if crashed {
                tracing::warn!(server = %name, "upstream exited on its own ({status})");
            } else {
                tracing::debug!(server = %name, "upstream stopped ({status})");
            }
            let waiting: Vec<(String, mpsc::Sender<Value>)> = {
                let mut p = reader_pending.lock().unwrap_or_else(|p| p.into_inner());
                p.order.clear();
                p.by_id.drain().collect()
            };
            for (key, tx) in waiting {
                let id: Value = serde_json::from_str(&key).unwrap_or(Value::Null);
                let _ = tx
                    .send(jsonrpc::error(
                        id,
                        jsonrpc::UPSTREAM_FAILED,
                        format!("upstream server {name:?} exited ({status})"),
                    ))
                    .await;
            }
        });
        Ok(StdioConnection {
            server: server.to_string(),
            list_changed,
            stdin: stdin_tx,
            pending,
            unsolicited_rx: Arc::new(tokio::sync::Mutex::new(unsolicited_rx)),
            alive,
            pid,
        })
    }

    async fn write(&self, msg: &Value) -> Result<(), UpstreamError> {
        if !self.alive.load(Ordering::SeqCst) {
            return Err(UpstreamError::Exited(self.server.clone()));
        }
        let mut line = msg.to_string();
        line.push('\n');
        self.stdin
            .send(line)
            .await
            .map_err(|_| UpstreamError::Exited(self.server.clone()))
    }

    async fn request(&self, msg: Value) -> Result<MessageStream, UpstreamError> {
        let Some(Kind::Request { id, .. }) = jsonrpc::classify(&msg) else {
            return Err(UpstreamError::Failed {
                server: self.server.clone(),
                reason: "not a request".into(),
            });
        };
        let key = jsonrpc::id_key(&id);
        let (tx, rx) = mpsc::channel(64);
        {
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if p.by_id.contains_key(&key) {
                return Err(UpstreamError::Failed {
                    server: self.server.clone(),
                    reason: format!("request id {key} is already in flight"),
                });
            }
            p.by_id.insert(key.clone(), tx);
            p.order.push(key.clone());
        }
        if let Err(e) = self.write(&msg).await {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            return Err(e);
        }
        Ok(rx)
    }

    fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
        if let Some(pid) = self.pid {
            // The child leads its own process group: end it and whatever it started (npx → node).
            unsafe {
                libc::kill(-(pid as i32), libc::SIGTERM);
            }
        }
    }
}

impl Drop for StdioConnection {
    fn drop(&mut self) {
        self.kill();
    }
}

fn note_list_changed(msg: &Value, flag: &AtomicBool) {
    if msg.get("method").and_then(Value::as_str) == Some("notifications/tools/list_changed") {
        flag.store(true, Ordering::SeqCst);
    }
}

async fn route(pending: &Pending, unsolicited: &mpsc::Sender<Value>, msg: Value) {
    let target = {
        let mut p = pending.lock().unwrap_or_else(|p| p.into_inner());
        match jsonrpc::classify(&msg) {
            Some(Kind::Response { id }) => p.remove(&jsonrpc::id_key(&id)),
            _ => p.newest().cloned(),
        }
    };
    match target {
        Some(tx) => {
            let _ = tx.send(msg).await;
        }
        None if !jsonrpc::is_response(&msg) => {
            // Nobody is listening for it right now: keep a bounded backlog for a GET stream.
            let _ = unsolicited.try_send(msg);
        }
        None => {}
    }
}

pub struct HttpConnection {
    server: String,
    /// Held by the one open GET stream.
    stream_lock: Arc<tokio::sync::Mutex<()>>,
    list_changed: Arc<AtomicBool>,
    url: url::Url,
    http: reqwest::Client,
    session_id: Mutex<Option<String>>,
}

impl HttpConnection {
    fn new(
        server: &str,
        url: url::Url,
        headers: &[(String, String)],
    ) -> Result<HttpConnection, UpstreamError> {
        let start_error = |reason: String| UpstreamError::Start {
            server: server.to_string(),
            reason,
        };
        let mut default_headers = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| start_error(format!("header {name:?}: {e}")))?;
            let mut value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| start_error(format!("header {name}: invalid value")))?;
            value.set_sensitive(true);
            default_headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(default_headers)
            .build()
            .map_err(|e| start_error(e.to_string()))?;
        Ok(HttpConnection {
            server: server.to_string(),
            stream_lock: Arc::default(),
            list_changed: Arc::default(),
            url,
            http,
            session_id: Mutex::new(None),
        })
    }

    fn failed(&self, reason: impl Into<String>) -> UpstreamError {
        UpstreamError::Failed {
            server: self.server.clone(),
            reason: reason.into(),
        }
    }

    fn post(&self, msg: &Value, headers: &UpstreamHeaders) -> reqwest::RequestBuilder {
        let req = self
            .http
            .post(self.url.clone())
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(msg.to_string());
        self.with_session(req, headers)
    }

    /// Adds the upstream's session id and the client's protocol version.
    fn with_session(
        &self,
        mut req: reqwest::RequestBuilder,
        headers: &UpstreamHeaders,
    ) -> reqwest::RequestBuilder {
        if let Some(sid) = self
            .session_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            req = req.header("mcp-session-id", sid);
        }
        if let Some(v) = &headers.protocol_version {
            req = req.header("mcp-protocol-version", v);
        }
        req
    }

    async fn request(
        &self,
        msg: Value,
        headers: &UpstreamHeaders,
    ) -> Result<MessageStream, UpstreamError> {
        let response = self
            .post(&msg, headers)
            .send()
            .await
            .map_err(|e| self.failed(e.to_string()))?;
        if let Some(sid) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            *self.session_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(sid.to_string());
        }
        let status = response.status();
        if !status.is_success() {
            return Err(self.failed(format!("answered HTTP {status}")));
        }
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let (tx, rx) = mpsc::channel(64);
        if is_sse {
            tokio::spawn(relay_sse(response, tx, self.list_changed.clone(), true));
        } else {
            let body = response
                .bytes()
                .await
                .map_err(|e| self.failed(e.to_string()))?;
            if body.len() > MAX_MESSAGE_BYTES {
                return Err(self.failed("response too large"));
            }
            let msg: Value = serde_json::from_slice(&body)
                .map_err(|_| self.failed("answered with a body that is not JSON"))?;
            let _ = tx.send(msg).await;
        }
        Ok(rx)
    }

    async fn send(&self, msg: Value, headers: &UpstreamHeaders) -> Result<(), UpstreamError> {
        let response = self
            .post(&msg, headers)
            .send()
            .await
            .map_err(|e| self.failed(e.to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.failed(format!("answered HTTP {}", response.status())))
        }
    }

    /// The upstream's GET stream of server messages, relayed (one at a time).
    async fn open_stream(&self, headers: &UpstreamHeaders) -> Option<ServerStream> {
        let lease = self.stream_lock.clone().try_lock_owned().ok()?;
        let req = self
            .http
            .get(self.url.clone())
            .header("accept", "text/event-stream");
        let response = self.with_session(req, headers).send().await.ok()?;
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !response.status().is_success() || !is_sse {
            return None;
        }
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(relay_sse(response, tx, self.list_changed.clone(), false));
        Some(Box::pin(futures::stream::unfold(
            (rx, lease),
            |(mut rx, lease)| async move { rx.recv().await.map(|m| (m, (rx, lease))) },
        )))
    }

    async fn close(&self) {
        let sid = self
            .session_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(sid) = sid {
            let _ = self
                .http
                .delete(self.url.clone())
                .header("mcp-session-id", sid)
                .send()
                .await;
        }
    }
}

/// Reads an SSE response and forwards each `data:` message until the stream ends.
async fn relay_sse(
    response: reqwest::Response,
    tx: mpsc::Sender<Value>,
    list_changed: Arc<AtomicBool>,
    until_response: bool,
) {
    let mut stream = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut data = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        buffer.extend_from_slice(&chunk);
        if buffer.len() > MAX_MESSAGE_BYTES {
            return;
        }
        while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !data.is_empty() {
                    if let Ok(msg) = serde_json::from_str::<Value>(&data) {
                        note_list_changed(&msg, &list_changed);
                        let done = until_response && jsonrpc::is_response(&msg);
                        if tx.send(msg).await.is_err() || done {
                            return;
                        }
                    }
                    data.clear();
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            }
        }
    }
}
