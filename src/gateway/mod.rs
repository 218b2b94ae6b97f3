//! The MCP gateway: every message from an agent passes the bearer check
//! (done by the HTTP edge with [`crate::oauth::token::authenticate_bearer`])
//! and the [`policy`] before it reaches the upstream, and every tool call is
//! audited with the grant that allowed or refused it.
//!
//! Each gateway session (`Mcp-Session-Id`, created by `initialize`) belongs to
//! one agent and has its own upstream [`upstream::Connection`], so agents never
//! see each other's sessions.

pub mod jsonrpc;
pub mod policy;
pub mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::audit::{summarize_arguments, EventKind, NewEvent, Outcome};
use crate::clock::{self, UnixMs};
use crate::config::Config;
use crate::oauth::token::AccessGrant;
use crate::scope::ToolInfo;
use crate::store::Store;
use jsonrpc::Kind;
use upstream::{Connection, MessageStream, UpstreamHeaders};

/// A session unused this long is closed and its upstream stopped.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// How long a server's tool list is reused for consent requests.
const CATALOG_TTL: Duration = Duration::from_secs(60);
/// Upper bound on starting an upstream and listing its tools.
const CATALOG_TIMEOUT: Duration = Duration::from_secs(30);
/// Argument summaries in the audit log are cut at this size.
const ARGUMENT_SUMMARY_BYTES: usize = 1024;

pub struct Session {
    pub id: String,
    pub client_id: String,
    pub server: String,
    upstream: Connection,
    last_used: Mutex<Instant>,
}

pub struct Gateway {
    config: Arc<Config>,
    store: Arc<Store>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    catalogs: tokio::sync::Mutex<HashMap<String, (Instant, Vec<ToolInfo>)>>,
}

/// What the HTTP edge sends back for one POST.
pub enum Reply {
    /// Messages for one request: zero or more server messages, then the response.
    Messages {
        session_id: Option<String>,
        messages: MessageStream,
    },
    /// A notification or response was accepted (202).
    Accepted,
    /// The session id is unknown, ended, or not this agent's (404).
    SessionNotFound,
    /// A malformed message (400), with a JSON-RPC error body.
    BadRequest(Value),
}

/// The answer to a GET for server messages.
pub enum StreamOpening {
    Open(upstream::ServerStream),
    /// The upstream offers no such stream, or one is already open (405).
    Unavailable,
    SessionNotFound,
}

/// The parts of an MCP POST the gateway needs.
pub struct Incoming<'a> {
    pub access: &'a AccessGrant,
    pub server: &'a str,
    pub session_id: Option<&'a str>,
    pub headers: UpstreamHeaders,
    pub body: &'a [u8],
}

impl Gateway {
    pub fn new(config: Arc<Config>, store: Arc<Store>) -> Gateway {
        Gateway {
            config,
            store,
            sessions: Mutex::default(),
            catalogs: Default::default(),
        }
    }

    fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.config.call_timeout_ms as u64)
    }

    /// Handles one POSTed JSON-RPC message from an authenticated agent.
    pub async fn handle(&self, req: Incoming<'_>) -> Reply {
        let msg: Value = match serde_json::from_slice(req.body) {
            Ok(v) => v,
            Err(_) => {
                return Reply::BadRequest(jsonrpc::error(
                    Value::Null,
                    jsonrpc::PARSE_ERROR,
                    "body is not valid JSON",
                ))
            }
        };
        if msg.is_array() {
            return Reply::BadRequest(jsonrpc::error(
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                "JSON-RPC batches are not supported",
            ));
        }
        let Some(kind) = jsonrpc::classify(&msg) else {
            return Reply::BadRequest(jsonrpc::error(
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                "not a JSON-RPC 2.0 message",
            ));
        };
        let grant = &req.access.grant;
        match (&kind, req.session_id) {
            (Kind::Request { method, .. }, None) if method == "initialize" => {
                self.initialize(req, msg).await
            }
            (Kind::Request { id, method }, None) if method == "server/discover" => {
                // Newer clients probe before `initialize`; answering promptly lets them fall back.
                Reply::Messages {
                    session_id: None,
                    messages: one(jsonrpc::error(
                        id.clone(),
                        jsonrpc::METHOD_NOT_FOUND,
                        "server/discover is not supported; use initialize",
                    )),
                }
            }
            (Kind::Request { id, .. }, None) => Reply::BadRequest(jsonrpc::error(
                id.clone(),
                jsonrpc::INVALID_REQUEST,
                "Mcp-Session-Id header is required (send initialize first)",
            )),
            (_, None) => Reply::BadRequest(jsonrpc::error(
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                "Mcp-Session-Id header is required",
            )),
            (_, Some(sid)) => {
                let Some(session) = self.session(sid, &req.access.client_id, req.server) else {
                    return Reply::SessionNotFound;
                };
                match kind {
                    Kind::Request { id, method } => {
                        let params = msg.get("params");
                        match policy::check_request(&method, params, &grant.tools) {
                            policy::Decision::Forward => {
                                self.forward(&session, req.access, id, method, msg, &req.headers)
                                    .await
                            }
                            policy::Decision::Refuse(why) => {
                                let tool = params
                                    .and_then(|p| p.get("name"))
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_string();
                                self.audit_call(req.access, req.server, &tool, Outcome::Denied, None, json!({"reason": why, "method": method, "arguments": summarize_arguments(params.and_then(|p| p.get("arguments")).unwrap_or(&Value::Null), ARGUMENT_SUMMARY_BYTES)}));
                                Reply::Messages {
                                    session_id: None,
                                    messages: one(jsonrpc::error(id, jsonrpc::NOT_GRANTED, why)),
                                }
                            }
                        }
                    }
                    Kind::Notification { .. } | Kind::Response { .. } => {
                        match session.upstream.send(msg, &req.headers).await {
                            Ok(()) => Reply::Accepted,
                            Err(_) => {
                                self.end_session(sid);
                                Reply::SessionNotFound
                            }
                        }
                    }
                }
            }
        }
    }

    async fn initialize(&self, req: Incoming<'_>, msg: Value) -> Reply {
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        let Some(server) = self.config.servers.get(req.server) else {
            return Reply::SessionNotFound;
        };
        let upstream = match Connection::open(server).await {
            Ok(c) => c,
            Err(e) => {
                return Reply::Messages {
                    session_id: None,
                    messages: one(jsonrpc::error(id, jsonrpc::UPSTREAM_FAILED, e.to_string())),
                }
            }
        };
        let session = Arc::new(Session {
            id: crate::secret::Secret::generate("gh_sess_").into_exposed(),
            client_id: req.access.client_id.clone(),
            server: req.server.to_string(),
            upstream,
            last_used: Mutex::new(Instant::now()),
        });
        let mut messages = match self.exchange(&session, id.clone(), msg, &req.headers).await {
            Ok(m) => m,
            Err(e) => {
                return Reply::Messages {
                    session_id: None,
                    messages: one(e),
                }
            }
        };
        // Only a successful initialize opens a session.
        let (tx, rx) = mpsc::channel(64);
        let first = messages.recv().await;
        let ok = first.as_ref().is_some_and(|m| m.get("result").is_some());
        if ok {
            self.sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(session.id.clone(), session.clone());
            tracing::info!(client = %session.client_id, server = %session.server, "session opened");
        }
        if let Some(first) = first {
            let _ = tx.send(first).await;
        }
        tokio::spawn(async move {
            while let Some(m) = messages.recv().await {
                if tx.send(m).await.is_err() {
                    break;
                }
            }
        });
        Reply::Messages {
            session_id: ok.then(|| session.id.clone()),
            messages: rx,
        }
    }

    /// Sends a request upstream and relays its messages, ending with the
    /// response; a timeout becomes a JSON-RPC error and a cancellation upstream.
    async fn exchange(
        &self,
        session: &Arc<Session>,
        id: Value,
        msg: Value,
        headers: &UpstreamHeaders,
    ) -> Result<MessageStream, Value> {
        let mut upstream_rx = session
            .upstream
            .request(msg, headers)
            .await
            .map_err(|e| jsonrpc::error(id.clone(), jsonrpc::UPSTREAM_FAILED, e.to_string()))?;
        let (tx, rx) = mpsc::channel(64);
        let timeout = self.call_timeout();
        let session = session.clone();
        let headers = headers.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                match tokio::time::timeout_at(deadline, upstream_rx.recv()).await {
                    Ok(Some(m)) => {
                        let done = jsonrpc::is_response(&m);
                        if tx.send(m).await.is_err() || done {
                            return;
                        }
                    }
                    Ok(None) => {
                        let _ = tx
                            .send(jsonrpc::error(
                                id,
                                jsonrpc::UPSTREAM_FAILED,
                                "upstream closed the request without answering",
                            ))
                            .await;
                        return;
                    }
                    Err(_) => {
                        session.upstream.abandon(&id);
                        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "timed out in Gatehouse"}});
                        let _ = session.upstream.send(cancel, &headers).await;
                        let _ = tx
                            .send(jsonrpc::error(
                                id,
                                jsonrpc::UPSTREAM_FAILED,
                                format!("upstream did not answer within {} s", timeout.as_secs()),
                            ))
                            .await;
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn forward(
        &self,
        session: &Arc<Session>,
        access: &AccessGrant,
        id: Value,
        method: String,
        msg: Value,
        headers: &UpstreamHeaders,
    ) -> Reply {
        let started = Instant::now();
        let tool_call = (method == "tools/call").then(|| {
            let params = msg.get("params");
            (
                params
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                summarize_arguments(
                    params
                        .and_then(|p| p.get("arguments"))
                        .unwrap_or(&Value::Null),
                    ARGUMENT_SUMMARY_BYTES,
                ),
            )
        });
        let mut upstream_rx = match self.exchange(session, id.clone(), msg, headers).await {
            Ok(rx) => rx,
            Err(e) => {
                if let Some((tool, args)) = &tool_call {
                    self.audit_call(
                        access,
                        &session.server,
                        tool,
                        Outcome::Error,
                        Some(started),
                        json!({"arguments": args, "error": e["error"]["message"]}),
                    );
                }
                return Reply::Messages {
                    session_id: None,
                    messages: one(e),
                };
            }
        };
        let (tx, rx) = mpsc::channel(64);
        let granted = access.grant.tools.clone();
        let (store, access) = (self.store.clone(), access.clone());
        let server = session.server.clone();
        tokio::spawn(async move {
            while let Some(mut m) = upstream_rx.recv().await {
                let done = jsonrpc::is_response(&m);
                if done {
                    if method == "tools/list" {
                        if let Some(result) = m.get_mut("result") {
                            policy::filter_tools_list(result, &granted);
                        }
                    }
                    if let Some((tool, args)) = &tool_call {
                        let (outcome, detail) = match (m.get("result"), m.get("error")) {
                            (Some(r), _) => (
                                Outcome::Allowed,
                                json!({"arguments": args, "is_error": r.get("isError").and_then(Value::as_bool).unwrap_or(false)}),
                            ),
                            (_, e) => (
                                Outcome::Error,
                                json!({"arguments": args, "error": e.and_then(|e| e.get("message")).cloned().unwrap_or(Value::Null)}),
                            ),
                        };
                        record_call(
                            &store,
                            &access,
                            &server,
                            tool,
                            outcome,
                            Some(started),
                            detail,
                        );
                    }
                }
                if tx.send(m).await.is_err() || done {
                    break;
                }
            }
        });
        Reply::Messages {
            session_id: None,
            messages: rx,
        }
    }

    fn audit_call(
        &self,
        access: &AccessGrant,
        server: &str,
        tool: &str,
        outcome: Outcome,
        started: Option<Instant>,
        detail: Value,
    ) {
        record_call(&self.store, access, server, tool, outcome, started, detail);
    }

    fn session(&self, id: &str, client_id: &str, server: &str) -> Option<Arc<Session>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let session = sessions.get(id)?.clone();
        if session.client_id != client_id || session.server != server {
            return None;
        }
        if !session.upstream.is_alive() {
            sessions.remove(id);
            return None;
        }
        *session.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        Some(session)
    }

    /// Server messages outside any request, for the agent's GET stream.
    pub fn open_stream(&self, id: &str, client_id: &str, server: &str) -> StreamOpening {
        match self.session(id, client_id, server) {
            None => StreamOpening::SessionNotFound,
            Some(session) => match session.upstream.open_stream() {
                Some(lease) => StreamOpening::Open(lease),
                None => StreamOpening::Unavailable,
            },
        }
    }

    /// Ends a session (DELETE from the client, or its upstream died).
    pub fn end_session(&self, id: &str) -> bool {
        let removed = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(s) = &removed {
            close_later(s.clone());
        }
        removed.is_some()
    }

    /// Ends one agent's sessions, for a DELETE that names a session of this agent.
    pub fn end_own_session(&self, id: &str, client_id: &str, server: &str) -> bool {
        self.session(id, client_id, server).is_some() && self.end_session(id)
    }

    /// Ends every session of an agent (after revocation).
    pub fn end_sessions_of(&self, client_id: &str) -> usize {
        let ended: Vec<Arc<Session>> = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<String> = sessions
                .values()
                .filter(|s| s.client_id == client_id)
                .map(|s| s.id.clone())
                .collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        for s in &ended {
            close_later(s.clone());
        }
        ended.len()
    }

    /// Closes sessions idle longer than [`SESSION_IDLE`].
    pub fn close_idle(&self) -> usize {
        let idle: Vec<String> = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|s| {
                s.last_used
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .elapsed()
                    > SESSION_IDLE
            })
            .map(|s| s.id.clone())
            .collect();
        idle.iter().filter(|id| self.end_session(id)).count()
    }

    pub async fn close_all(&self) {
        let all: Vec<Arc<Session>> = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect();
        for s in all {
            s.upstream.close().await;
        }
    }

    pub fn session_count(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The server's tools with their risk classes, from the upstream itself
    /// (started just for this when needed), reused for a minute.
    pub async fn catalog(&self, server: &str) -> Result<Vec<ToolInfo>, String> {
        let mut cache = self.catalogs.lock().await;
        if let Some((at, tools)) = cache.get(server) {
            if at.elapsed() < CATALOG_TTL {
                return Ok(tools.clone());
            }
        }
        let config = self
            .config
            .servers
            .get(server)
            .ok_or_else(|| format!("no server {server:?}"))?;
        let tools = tokio::time::timeout(CATALOG_TIMEOUT, list_tools(config))
            .await
            .map_err(|_| {
                format!(
                    "server {server:?} did not list its tools within {} s",
                    CATALOG_TIMEOUT.as_secs()
                )
            })??;
        cache.insert(server.to_string(), (Instant::now(), tools.clone()));
        Ok(tools)
    }

    /// The cached tool list, if any (for metadata that must not start an upstream).
    pub async fn cached_catalog(&self, server: &str) -> Option<Vec<ToolInfo>> {
        self.catalogs
            .lock()
            .await
            .get(server)
            .map(|(_, t)| t.clone())
    }
}

fn close_later(session: Arc<Session>) {
    tokio::spawn(async move { session.upstream.close().await });
}

fn one(msg: Value) -> MessageStream {
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(msg);
    rx
}

fn record_call(
    store: &Store,
    access: &AccessGrant,
    server: &str,
    tool: &str,
    outcome: Outcome,
    started: Option<Instant>,
    detail: Value,
) {
    let now: UnixMs = clock::now();
    let mut event = NewEvent::new(EventKind::ToolCall, outcome)
        .client(&access.client_id)
        .server(server)
        .tool(tool)
        .grant(&access.grant.id)
        .detail(detail);
    if let Some(started) = started {
        event = event.duration_ms(started.elapsed().as_millis() as i64);
    }
    if let Err(e) = store.write(|tx| tx.record(event, now)) {
        tracing::error!(error = %e, "could not write a tool-call audit event");
    }
}

/// Starts the upstream, initializes it and reads every page of `tools/list`.
async fn list_tools(config: &crate::config::ServerConfig) -> Result<Vec<ToolInfo>, String> {
    let conn = Connection::open(config).await.map_err(|e| e.to_string())?;
    let headers = UpstreamHeaders::default();
    let result = async {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")}}});
        let reply = final_message(
            conn.request(init, &headers)
                .await
                .map_err(|e| e.to_string())?,
        )
        .await?;
        let version = reply["result"]["protocolVersion"]
            .as_str()
            .map(str::to_string);
        let headers = UpstreamHeaders {
            protocol_version: version,
        };
        conn.send(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            &headers,
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for page in 1..=100 {
            let mut params = json!({});
            if let Some(c) = &cursor {
                params["cursor"] = json!(c);
            }
            let reply = final_message(
                conn.request(
                    json!({"jsonrpc": "2.0", "id": page, "method": "tools/list", "params": params}),
                    &headers,
                )
                .await
                .map_err(|e| e.to_string())?,
            )
            .await?;
            let result = &reply["result"];
            tools.extend(
                result["tools"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(ToolInfo::from_mcp),
            );
            cursor = result["nextCursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }
    .await;
    conn.close().await;
    result
}

async fn final_message(mut rx: MessageStream) -> Result<Value, String> {
    while let Some(m) = rx.recv().await {
        if jsonrpc::is_response(&m) {
            if let Some(e) = m.get("error") {
                return Err(format!(
                    "upstream error: {}",
                    e["message"].as_str().unwrap_or("unknown")
                ));
            }
            return Ok(m);
        }
    }
    Err("upstream closed without answering".into())
}
