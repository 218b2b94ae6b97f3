//! A stdio upstream: a child process speaking newline-delimited JSON-RPC.
//! Responses go to the request that waits for them; server messages sent while
//! a request runs go with it; others wait (bounded) for the session's GET stream.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::{
    message_channel, note_list_changed, Health, MessageSender, MessageStream, Redactor,
    ServerStream, UpstreamError, INHERITED_ENV, MAX_MESSAGE_BYTES,
};

/// What to start: a server's command line, its environment and directory.
pub(super) struct Command<'a> {
    pub server: &'a str,
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a std::path::Path>,
}
use crate::gateway::jsonrpc::{self, Kind, Message};

type Pending = Arc<Mutex<PendingRequests>>;

#[derive(Default)]
struct PendingRequests {
    by_id: HashMap<String, MessageSender>,
    order: Vec<String>,
}

impl PendingRequests {
    fn remove(&mut self, key: &str) -> Option<MessageSender> {
        self.order.retain(|k| k != key);
        self.by_id.remove(key)
    }
    /// The newest request of the agent's still waiting: server messages
    /// sent while it runs belong to it. Gatehouse's own requests (a listing
    /// for a pin check) read nothing but their answer, so a server's request
    /// or progress for the agent never goes to one of them.
    fn newest(&self) -> Option<&MessageSender> {
        let key = self.order.iter().rev().find(|k| !jsonrpc::is_own_key(k));
        key.and_then(|k| self.by_id.get(k))
    }
}

/// Most server messages kept for a GET stream while none is open, and most
/// bytes (as read) in all: a server that floods while nobody listens holds
/// 16 MiB of text at most, not the 4 GiB of 256 messages at the 16 MiB cap.
/// Kept parsed, that text takes more room (up to ~16× for `[0,0,…]`).
const BACKLOG_MESSAGES: usize = 256;
const BACKLOG_BYTES: usize = MAX_MESSAGE_BYTES;

/// Server messages sent outside any request, waiting for the GET stream.
#[derive(Clone)]
struct Backlog {
    tx: mpsc::Sender<(Message, usize)>,
    bytes: Arc<AtomicUsize>,
}

impl Backlog {
    fn new() -> (Backlog, mpsc::Receiver<(Message, usize)>) {
        let (tx, rx) = mpsc::channel(BACKLOG_MESSAGES);
        let bytes = Arc::default();
        (Backlog { tx, bytes }, rx)
    }

    /// Keeps a message of `size` bytes if there is room; drops it otherwise.
    fn keep(&self, msg: Message, size: usize) {
        let held = self.bytes.fetch_add(size, Ordering::SeqCst);
        if held + size > BACKLOG_BYTES || self.tx.try_send((msg, size)).is_err() {
            self.bytes.fetch_sub(size, Ordering::SeqCst);
            tracing::debug!("dropped a server message: no GET stream and the backlog is full");
        }
    }
}

pub struct StdioConnection {
    server: String,
    pub(super) list_changed: Arc<AtomicBool>,
    stdin: mpsc::Sender<String>,
    pending: Pending,
    backlog: Backlog,
    unsolicited_rx: Arc<tokio::sync::Mutex<mpsc::Receiver<(Message, usize)>>>,
    alive: Arc<AtomicBool>,
    pid: Option<u32>,
}

impl StdioConnection {
    pub(super) fn spawn(
        launch: Command<'_>,
        health: Arc<Health>,
        redactor: Redactor,
    ) -> Result<StdioConnection, UpstreamError> {
        let Command {
            server,
            program: command,
            args,
            env,
            cwd,
        } = launch;
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
        let (backlog, unsolicited_rx) = Backlog::new();
        let reader_backlog = backlog.clone();

        tokio::spawn(async move {
            while let Some(line) = stdin_rx.recv().await {
                if child_stdin.write_all(line.as_bytes()).await.is_err()
                    || child_stdin.flush().await.is_err()
                {
                    break;
                }
            }
        });
        let (name, shown, kept) = (server.to_string(), redactor.clone(), health.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = shown.clean(&line);
                tracing::info!(server = %name, "upstream stderr: {line}");
                kept.note_stderr(&name, line);
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
                let Some(msg) = Message::read(&line) else {
                    let text = redactor.clean(String::from_utf8_lossy(&line).trim());
                    tracing::warn!(server = %name, "upstream wrote a line that is not JSON: {text}");
                    continue;
                };
                note_list_changed(&msg, &reader_changed);
                route(&reader_pending, &reader_backlog, msg, line.len()).await;
            }
            // Still marked alive: nobody stopped it, so it crashed (or quit on its own).
            // Count the crash before anyone can see the connection dead.
            let crashed = reader_alive.load(Ordering::SeqCst);
            if crashed {
                health.record(&name);
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
            let waiting: Vec<(String, MessageSender)> = {
                let mut p = reader_pending.lock().unwrap_or_else(|p| p.into_inner());
                p.order.clear();
                p.by_id.drain().collect()
            };
            for (key, tx) in waiting {
                let id: Value = serde_json::from_str(&key).unwrap_or(Value::Null);
                let error = jsonrpc::error(
                    id,
                    jsonrpc::UPSTREAM_FAILED,
                    format!("upstream server {name:?} exited ({status})"),
                );
                // Each on its own: a stream whose agent stopped reading
                // holds up no other request's error.
                let size = error.to_string().len();
                tokio::spawn(async move { tx.send(error.into(), Some(size)).await });
            }
        });
        Ok(StdioConnection {
            server: server.to_string(),
            list_changed,
            stdin: stdin_tx,
            pending,
            backlog,
            unsolicited_rx: Arc::new(tokio::sync::Mutex::new(unsolicited_rx)),
            alive,
            pid,
        })
    }

    pub(super) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Forgets a request whose caller stopped waiting.
    pub(super) fn abandon(&self, id: &Value) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&jsonrpc::id_key(id));
    }

    /// The backlog of server messages outside any request, one reader at a time.
    pub(super) fn open_stream(&self) -> Option<ServerStream> {
        let lease = self.unsolicited_rx.clone().try_lock_owned().ok()?;
        let bytes = self.backlog.bytes.clone();
        Some(Box::pin(futures::stream::unfold(
            (lease, bytes),
            |(mut lease, bytes)| async move {
                let (msg, size) = lease.recv().await?;
                bytes.fetch_sub(size, Ordering::SeqCst);
                Some((msg, (lease, bytes)))
            },
        )))
    }

    pub(super) async fn write(&self, msg: &Value) -> Result<(), UpstreamError> {
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

    pub(super) async fn request(&self, msg: Value) -> Result<MessageStream, UpstreamError> {
        let Some(Kind::Request { id, .. }) = jsonrpc::classify(&msg) else {
            return Err(UpstreamError::Failed {
                server: self.server.clone(),
                reason: "not a request".into(),
            });
        };
        let key = jsonrpc::id_key(&id);
        let (tx, rx) = message_channel();
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
        // Until it is written, the request is forgotten if the write fails
        // or is given up (a server that stopped reading fills the pipe and
        // the caller's deadline passes): else its id would stay "in flight".
        let mut unsent = Unsent {
            pending: &self.pending,
            key: Some(key),
        };
        self.write(&msg).await?;
        unsent.key = None;
        Ok(rx)
    }

    pub(super) fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
        if let Some(pid) = self.pid {
            // The child leads its own process group: end it and whatever it started (npx → node).
            unsafe {
                libc::kill(-(pid as i32), libc::SIGTERM);
            }
        }
    }
}

/// A request registered and not yet written: forgotten when dropped.
struct Unsent<'a> {
    pending: &'a Pending,
    /// `None` once written.
    key: Option<String>,
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        if let Some(key) = &self.key {
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            p.remove(key);
        }
    }
}

impl Drop for StdioConnection {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn route(pending: &Pending, backlog: &Backlog, msg: Message, size: usize) {
    let target = {
        let mut p = pending.lock().unwrap_or_else(|p| p.into_inner());
        match msg.response_id() {
            Some(id) => p.remove(&jsonrpc::id_key(&id)),
            None => p.newest().cloned(),
        }
    };
    match target {
        Some(tx) => {
            tx.send(msg, Some(size)).await;
        }
        None if msg.is_server_message() => {
            // A request or notification nobody is listening for right now: keep a
            // bounded backlog for a GET stream (never an answer: see `relay_sse`).
            backlog.keep(msg, size);
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_servers_message_goes_to_the_agents_newest_request_not_gatehouses_own() {
        let mut pending = PendingRequests::default();
        let mut add = |id: Value| {
            let key = jsonrpc::id_key(&id);
            let (tx, rx) = message_channel();
            pending.by_id.insert(key.clone(), tx);
            pending.order.push(key);
            rx
        };
        let _first = add(json!(1));
        let mut second = add(json!("call-2"));
        let _listing = add(json!("gatehouse-list-0-abc"));
        let newest = pending.newest().expect("an agent's request waits").clone();
        let note = json!({"jsonrpc": "2.0", "method": "notifications/progress"});
        assert!(newest.send(note.clone().into(), None).await);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), second.recv()).await;
        assert_eq!(got.ok().flatten(), Some(note.into()), "the agent's newest");
        assert!(!jsonrpc::is_own_key(&jsonrpc::id_key(&json!("gatehouse"))));
        assert!(!jsonrpc::is_own_key(&jsonrpc::id_key(&json!(7))));
    }

    /// A server that stops reading its stdin: the pipe fills, a request
    /// waits to be written, and its caller gives up; the id is not left
    /// "in flight" for good.
    #[tokio::test]
    async fn a_request_given_up_before_it_was_written_is_forgotten() {
        let launch = Command {
            server: "deaf",
            program: "sleep",
            args: &["30".to_string()],
            env: &[],
            cwd: None,
        };
        let conn = StdioConnection::spawn(launch, Arc::default(), Redactor::default()).unwrap();
        let big = "x".repeat(256 * 1024);
        let ask = |id: &str| json!({"jsonrpc": "2.0", "id": id, "method": "ping", "params": {"pad": big}});
        let wait = std::time::Duration::from_millis(300);
        // Enough to fill the pipe and the queue to the writer task behind it.
        let mut given_up = 0;
        for n in 0..100 {
            let id = format!("r{n}");
            if tokio::time::timeout(wait, conn.request(ask(&id)))
                .await
                .is_err()
            {
                given_up = n;
                break;
            }
        }
        assert!(given_up > 0, "the pipe never filled");
        let again = tokio::time::timeout(wait, conn.request(ask(&format!("r{given_up}")))).await;
        assert!(
            again.is_err(),
            "waits to be written again, not {:?}",
            again.map(|r| r.err())
        );
        conn.kill();
    }
}
