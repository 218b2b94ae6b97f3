//! Connections to the real MCP servers behind the gateway: a child process
//! speaking newline-delimited JSON-RPC on stdio ([`stdio`]), or a
//! streamable-HTTP server ([`http`]). One connection serves one gateway session
//! (one agent), so sessions never mix. The client's token is never sent upstream.
#![allow(clippy::disallowed_methods)] // an edge: processes crash and restart in real time

mod http;
mod stdio;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::config::{ServerConfig, Upstream as UpstreamConfig, Value as ConfigValue};
use crate::credentials::CredentialStore;
use crate::gateway::jsonrpc::Message;
use http::HttpConnection;
use stdio::StdioConnection;

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
    #[error("server {server:?} needs the person to log in to it ({reason}): `gatehouse servers login {server}`, or Log in in the app")]
    NeedsLogin { server: String, reason: String },
}

/// Most messages, and most bytes of text (as read), waiting in one
/// request's stream for the agent to take them: a server that sends faster
/// than the agent reads waits, and holds 16 MiB of text there at most, not
/// 64 messages at the 16 MiB cap (parsed, a message takes more room than
/// its text: up to ~16× for `[0,0,…]`).
const WAITING_MESSAGES: usize = 64;
const WAITING_BYTES: usize = MAX_MESSAGE_BYTES;

/// Messages belonging to one request: zero or more server messages
/// (progress, sampling…) and then the response.
pub struct MessageStream {
    /// A stream of one message (most answers) needs no channel.
    one: Option<Message>,
    rx: Option<mpsc::Receiver<(Message, OwnedSemaphorePermit)>>,
}

/// The sending end of a [`MessageStream`].
#[derive(Clone)]
pub struct MessageSender {
    tx: mpsc::Sender<(Message, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
}

pub fn message_channel() -> (MessageSender, MessageStream) {
    let (tx, rx) = mpsc::channel(WAITING_MESSAGES);
    let room = Arc::new(Semaphore::new(WAITING_BYTES));
    let stream = MessageStream {
        one: None,
        rx: Some(rx),
    };
    (MessageSender { tx, room }, stream)
}

impl MessageSender {
    /// Sends a message of `size` bytes once there is room for it; a size
    /// not known (`None`) counts as the largest, so such messages wait one
    /// at a time. False when the stream is gone.
    pub async fn send(&self, msg: Message, size: Option<usize>) -> bool {
        let size = size.unwrap_or(WAITING_BYTES).clamp(1, WAITING_BYTES);
        let Ok(room) = self.room.clone().acquire_many_owned(size as u32).await else {
            return false;
        };
        self.tx.send((msg, room)).await.is_ok()
    }

    /// Resolves once the stream is gone (nobody will read what is sent).
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

impl MessageStream {
    /// A stream of one message.
    pub fn one(msg: Message) -> MessageStream {
        MessageStream {
            one: Some(msg),
            rx: None,
        }
    }

    pub async fn recv(&mut self) -> Option<Message> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Message>> {
        if let Some(msg) = self.one.take() {
            return std::task::Poll::Ready(Some(msg));
        }
        match &mut self.rx {
            Some(rx) => rx.poll_recv(cx).map(|m| m.map(|(msg, _room)| msg)),
            None => std::task::Poll::Ready(None),
        }
    }
}

impl futures::Stream for MessageStream {
    type Item = Message;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Message>> {
        self.poll_message(cx)
    }
}

/// The lease on a session's server-message stream; dropping it (the client
/// disconnected) lets the next GET take it.
pub type ServerStream = std::pin::Pin<Box<dyn futures::Stream<Item = Message> + Send>>;

pub enum Connection {
    Stdio(StdioConnection),
    Http(HttpConnection),
}

/// Opens upstream connections: reads their secrets and holds back a server
/// that keeps crashing (at most 3 health a minute, then an exponential wait
/// of up to 30 s before the next start).
pub struct Launcher {
    secrets: Arc<CredentialStore>,
    login: Arc<crate::upstream_oauth::UpstreamAuth>,
    health: Arc<Health>,
}

/// How each server's processes fared: when they crashed (to hold a server
/// back that keeps crashing), and the last lines they wrote to stderr (for
/// `gatehouse servers logs` and the app), inert and without secret values.
#[derive(Default)]
pub struct Health {
    recent: Mutex<HashMap<String, Vec<Instant>>>,
    stderr: Mutex<HashMap<String, std::collections::VecDeque<String>>>,
}

/// Lines of stderr kept per server.
const STDERR_LINES: usize = 200;

const CRASH_WINDOW: Duration = Duration::from_secs(60);
const CRASHES_BEFORE_BACKOFF: usize = 3;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Health {
    fn record(&self, server: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let list = recent.entry(server.to_string()).or_default();
        list.retain(|t| t.elapsed() < CRASH_WINDOW);
        list.push(Instant::now());
    }

    /// Keeps one line the server wrote to stderr (already cleaned).
    pub fn note_stderr(&self, server: &str, line: String) {
        let mut all = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let lines = all.entry(server.to_string()).or_default();
        if lines.len() == STDERR_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `n` lines the server wrote to stderr, oldest first.
    pub fn stderr_tail(&self, server: &str, n: usize) -> Vec<String> {
        let all = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        all.get(server)
            .map(|l| l.iter().skip(l.len().saturating_sub(n)).cloned().collect())
            .unwrap_or_default()
    }

    /// Crashes in the last minute.
    pub fn recent_crashes(&self, server: &str) -> usize {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.get_mut(server).map_or(0, |list| {
            list.retain(|t| t.elapsed() < CRASH_WINDOW);
            list.len()
        })
    }

    /// Forgets the crashes (a restart by the person, or a changed command).
    pub fn reset(&self, server: &str) {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(server);
    }

    /// How long a new start must still wait, if the server keeps crashing.
    pub fn backoff(&self, server: &str) -> Option<Duration> {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let list = recent.get_mut(server)?;
        list.retain(|t| t.elapsed() < CRASH_WINDOW);
        let n = list.len();
        if n < CRASHES_BEFORE_BACKOFF {
            return None;
        }
        let wait = Duration::from_secs(1 << (n - CRASHES_BEFORE_BACKOFF).min(5)).min(MAX_BACKOFF);
        wait.checked_sub(list.last()?.elapsed())
    }
}

impl Launcher {
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Gatehouse's own logins at the remote servers.
    pub fn login(&self) -> &Arc<crate::upstream_oauth::UpstreamAuth> {
        &self.login
    }

    pub fn new(secrets: Arc<CredentialStore>) -> Launcher {
        Launcher {
            login: Arc::new(crate::upstream_oauth::UpstreamAuth::new(secrets.clone())),
            secrets,
            health: Arc::default(),
        }
    }

    pub async fn open(&self, server: &ServerConfig) -> Result<Connection, UpstreamError> {
        if let Some(wait) = self.health.backoff(&server.name) {
            return Err(UpstreamError::Start {
                server: server.name.clone(),
                reason: format!(
                    "it crashed {CRASHES_BEFORE_BACKOFF} or more times in the last minute; the next start is in {} s",
                    wait.as_secs() + 1
                ),
            });
        }
        let secrets = read_secrets(server, &self.secrets).await?;
        Connection::open(server, &secrets, &self.health, &self.login)
    }
}

/// The secrets a server's configuration names, read now (so a changed
/// secret applies to the next session) and off the async workers: a locked
/// keychain may wait for the person, and every agent's requests with it.
async fn read_secrets(
    server: &ServerConfig,
    store: &Arc<CredentialStore>,
) -> Result<HashMap<String, String>, UpstreamError> {
    let names: Vec<String> = server
        .upstream
        .secret_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let (store, name) = (store.clone(), server.name.clone());
    let read = tokio::task::spawn_blocking(move || {
        let read = |secret: String| store.get(&name, &secret).map(|value| (secret, value));
        names.into_iter().map(read).collect::<Result<_, _>>()
    })
    .await;
    let failed = |reason: String| UpstreamError::Start {
        server: server.name.clone(),
        reason,
    };
    match read {
        Ok(secrets) => secrets.map_err(|e| failed(e.to_string())),
        Err(e) => Err(failed(format!("reading its secrets failed: {e}"))),
    }
}

impl Connection {
    /// Starts (stdio) or prepares (HTTP) a connection with its secrets
    /// (read by [`read_secrets`]).
    fn open(
        server: &ServerConfig,
        secrets: &HashMap<String, String>,
        health: &Arc<Health>,
        login: &Arc<crate::upstream_oauth::UpstreamAuth>,
    ) -> Result<Connection, UpstreamError> {
        let mut redactor = Redactor::default();
        let mut resolve = |value: &ConfigValue| -> Result<String, UpstreamError> {
            match value {
                ConfigValue::Plain(p) => Ok(p.clone()),
                ConfigValue::Secret(r) => {
                    let Some(secret) = secrets.get(&r.secret).cloned() else {
                        return Err(UpstreamError::Start {
                            server: server.name.clone(),
                            reason: format!("its secret {:?} was not read", r.secret),
                        });
                    };
                    let value = format!("{}{secret}", r.prefix);
                    redactor.secrets.push(secret);
                    Ok(value)
                }
            }
        };
        match &server.upstream {
            UpstreamConfig::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let env = env
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), resolve(v)?)))
                    .collect::<Result<Vec<_>, UpstreamError>>()?;
                let args = args
                    .iter()
                    .map(&mut resolve)
                    .collect::<Result<Vec<_>, _>>()?;
                let command = stdio::Command {
                    server: &server.name,
                    program: command,
                    args: &args,
                    env: &env,
                    cwd: cwd.as_deref(),
                };
                StdioConnection::spawn(command, health.clone(), redactor).map(Connection::Stdio)
            }
            UpstreamConfig::Http { url, headers } => {
                let headers = headers
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), resolve(v)?)))
                    .collect::<Result<Vec<_>, UpstreamError>>()?;
                Ok(Connection::Http(HttpConnection::new(
                    &server.name,
                    url.clone(),
                    &headers,
                    login.clone(),
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
            c.abandon(id);
        }
    }

    /// Server messages not tied to a request, for the client's GET stream.
    /// One stream at a time: `None` while another is open, or when the
    /// upstream offers no such stream.
    pub async fn open_stream(&self, headers: &UpstreamHeaders) -> Option<ServerStream> {
        match self {
            Connection::Stdio(c) => c.open_stream(),
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
            Connection::Stdio(c) => c.is_alive(),
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

/// What Gatehouse logs of an upstream's own output: inert (it cannot drive the
/// terminal that shows the log), and without the secret values the upstream
/// was given (a server that prints its API key does not leak it to the log).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn clean(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in self.secrets.iter().filter(|s| !s.is_empty()) {
            text = text.replace(secret.as_str(), "[redacted]");
        }
        crate::text::inert(&text)
    }
}

/// Headers from the client that are passed on to an HTTP upstream.
#[derive(Debug, Default, Clone)]
pub struct UpstreamHeaders {
    pub protocol_version: Option<String>,
    /// From the 2026-07-28 revision on: the request's method and what it
    /// names (a tool, prompt or resource), mirrored from the body.
    pub method: Option<String>,
    pub name: Option<String>,
}

/// Remembers that the upstream said its tool list changed.
fn note_list_changed(msg: &Message, flag: &AtomicBool) {
    let Message::Parsed(msg) = msg else {
        return; // a response
    };
    if msg.get("method").and_then(Value::as_str) == Some("notifications/tools/list_changed") {
        flag.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn note() -> Message {
        json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}).into()
    }

    #[tokio::test]
    async fn a_request_stream_holds_its_byte_budget_at_most() {
        let (tx, mut rx) = message_channel();
        let ten_mib = 10 * 1024 * 1024;
        assert!(tx.send(note(), Some(ten_mib)).await);
        // A second 10 MiB would hold 20: it waits until the first is taken.
        let second = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(note(), Some(ten_mib)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "the second message did not wait");
        assert!(rx.recv().await.is_some());
        assert!(second.await.unwrap());
        // Small messages share the room; one of unknown size takes all of it.
        assert!(rx.recv().await.is_some());
        assert!(tx.send(note(), Some(100)).await);
        let unknown = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(note(), None).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !unknown.is_finished(),
            "a message of unknown size did not wait"
        );
        // The agent goes away: whoever waits learns it.
        drop(rx);
        assert!(!unknown.await.unwrap());
        assert!(!tx.send(note(), Some(1)).await);
    }
}
