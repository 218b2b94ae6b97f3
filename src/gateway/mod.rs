//! The MCP gateway: every message from an agent passes the bearer check
//! (done by the HTTP edge with [`crate::oauth::token::authenticate_bearer`])
//! and the [`policy`] before it reaches the upstream, and every tool call is
//! audited with the grant that allowed or refused it.
//!
//! Each gateway session (`Mcp-Session-Id`, created by `initialize`) belongs to
//! one agent and has its own upstream [`upstream::Connection`], so agents never
//! see each other's sessions.
//!
//! Per tool: calls to tools never granted get a step-up challenge
//! ([`Reply::InsufficientScope`]); ask-every-time tools are held ([`holds`]);
//! a granted tool whose definition changed upstream is blocked ([`pinning`]).

pub mod catalog;
pub mod holds;
pub mod jsonrpc;
pub mod pinning;
pub mod policy;
pub mod upstream;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::audit::{summarize_arguments, EventKind, NewEvent, Outcome};
use crate::clock::{self, UnixMs};
use crate::config::Config;
use crate::oauth::token::AccessGrant;
use crate::scope::ToolInfo;
use crate::secrets::SecretStore;
use crate::store::pins::{self, Pin};
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
/// A held call's arguments are shown to the person up to this size.
const HELD_ARGUMENT_BYTES: usize = 8 * 1024;

pub struct Session {
    pub id: String,
    pub client_id: String,
    pub server: String,
    upstream: Connection,
    last_used: Mutex<Instant>,
    /// The tool definitions this session's upstream last listed, by name.
    seen: Mutex<HashMap<String, Value>>,
}

impl Session {
    fn remember_tools(&self, tools: &[Value]) {
        self.remember(tools.iter().filter_map(|t| {
            Some((
                t.get("name")?.as_str()?.to_string(),
                crate::scope::pinned_fields(t),
            ))
        }));
    }

    /// Records the definitions (pinned fields) the upstream listed, by name.
    fn remember(&self, tools: impl IntoIterator<Item = (String, Value)>) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(tools);
    }

    fn seen_tool(&self, name: &str) -> Option<Value> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }
}

pub struct Gateway {
    config: Arc<Config>,
    store: Arc<Store>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// One slot per server: a fetch for one server never waits on another's,
    /// and concurrent askers for a cold server share one fetch.
    catalogs: Mutex<HashMap<String, Arc<CatalogSlot>>>,
    pub holds: holds::Holds,
    launcher: upstream::Launcher,
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
    /// The agent needs more than it was granted (403 with this scope: the
    /// union of what it holds and what it asked for).
    InsufficientScope { scope: String, message: String },
}

/// The answer to a GET for server messages.
pub enum StreamOpening {
    Open(upstream::ServerStream),
    /// The upstream offers no such stream, or one is already open (405).
    Unavailable,
    SessionNotFound,
}

/// One JSON-RPC request from an agent.
struct ClientRequest {
    id: Value,
    method: String,
    msg: Value,
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
    pub fn new(config: Arc<Config>, store: Arc<Store>, secrets: Arc<SecretStore>) -> Gateway {
        Gateway {
            config,
            store,
            sessions: Mutex::default(),
            catalogs: Default::default(),
            holds: Default::default(),
            launcher: upstream::Launcher::new(secrets),
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
                        self.dispatch(
                            &session,
                            req.access,
                            ClientRequest { id, method, msg },
                            &req.headers,
                        )
                        .await
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

    /// Applies the policy to one request of an open session.
    async fn dispatch(
        &self,
        session: &Arc<Session>,
        access: &AccessGrant,
        req: ClientRequest,
        headers: &UpstreamHeaders,
    ) -> Reply {
        let ClientRequest { id, method, msg } = &req;
        let (id, method) = (id.clone(), method.clone());
        let params = msg.get("params");
        // The pins this request needs: all of them to filter a listing, the
        // called tool's for a call, none otherwise.
        let grant_id = &access.grant.id;
        let pins = match method.as_str() {
            "tools/list" => self.store.read(|c| pins::for_grant(c, grant_id)),
            "tools/call" => match params.and_then(|p| p.get("name")).and_then(Value::as_str) {
                Some(tool) => self
                    .store
                    .read(|c| pins::for_tool(c, grant_id, tool))
                    .map(|p| p.into_iter().collect()),
                None => Ok(Vec::new()),
            },
            _ => Ok(Vec::new()),
        };
        let pins = match pins {
            Ok(p) => p,
            Err(e) => return reply(jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, e.to_string())),
        };
        let suspended: Vec<String> = pins
            .iter()
            .filter(|p| p.suspended_at.is_some())
            .map(|p| p.tool.clone())
            .collect();
        let grantee = policy::Grantee {
            tools: &access.grant.tools,
            ask: &access.grant.ask_tools,
            suspended: &suspended,
        };
        let arguments = || {
            summarize_arguments(
                params
                    .and_then(|p| p.get("arguments"))
                    .unwrap_or(&Value::Null),
                ARGUMENT_SUMMARY_BYTES,
            )
        };
        let refuse = |tool: &str, code: i64, why: String, detail: Value| {
            let mut detail = detail;
            detail["reason"] = json!(why);
            detail["method"] = json!(method);
            detail["arguments"] = arguments();
            record_call(
                &self.store,
                access,
                &session.server,
                tool,
                Outcome::Denied,
                None,
                detail,
            );
            reply(jsonrpc::error(id.clone(), code, why))
        };
        match policy::check_request(&method, params, &grantee) {
            policy::Decision::Forward => {
                self.forward(session, access, req, headers, pins, None)
                    .await
            }
            policy::Decision::Answer(result) => {
                reply(json!({"jsonrpc": "2.0", "id": id, "result": result}))
            }
            policy::Decision::Refuse(why) => {
                let tool = params
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                refuse(tool, jsonrpc::NOT_GRANTED, why, json!({}))
            }
            policy::Decision::StepUp(tool) => {
                let offered = session.seen_tool(&tool).is_some()
                    || self
                        .catalog(&session.server)
                        .await
                        .is_ok_and(|c| c.iter().any(|t| t.name == tool));
                if !offered {
                    return refuse(
                        &tool,
                        jsonrpc::NOT_GRANTED,
                        format!("tool {tool:?} is not granted to this agent"),
                        json!({}),
                    );
                }
                let mut items = access.grant.tools.clone();
                items.push(tool.clone());
                let scope = crate::scope::scope_for_tools(&items);
                let message = format!(
                    "tool {tool:?} is not granted yet: ask the user for it (scope {scope:?})"
                );
                refuse(
                    &tool,
                    jsonrpc::NOT_GRANTED,
                    message.clone(),
                    json!({"step_up": scope}),
                );
                Reply::InsufficientScope { scope, message }
            }
            policy::Decision::Call(tool) => {
                if let Err(why) = self.check_pin(session, access, &tool, &pins, headers).await {
                    return refuse(&tool, jsonrpc::NOT_GRANTED, why, json!({}));
                }
                self.forward(session, access, req, headers, pins, None)
                    .await
            }
            policy::Decision::Hold(tool) => {
                if let Err(why) = self.check_pin(session, access, &tool, &pins, headers).await {
                    return refuse(&tool, jsonrpc::NOT_GRANTED, why, json!({}));
                }
                let shown = summarize_arguments(
                    params
                        .and_then(|p| p.get("arguments"))
                        .unwrap_or(&Value::Null),
                    HELD_ARGUMENT_BYTES,
                );
                let timeout = Duration::from_millis(self.config.consent_timeout_ms as u64);
                match self
                    .holds
                    .hold(&self.store, access, &session.server, &tool, shown, timeout)
                    .await
                {
                    Ok(holds::Verdict::Allowed { call_id }) => {
                        // The wait may have been long: the grant must still be in force now.
                        let in_force = self
                            .store
                            .read(|c| crate::store::grants::get(c, &access.grant.id))
                            .is_ok_and(|g| g.is_some_and(|g| g.is_active(clock::now())));
                        if !in_force {
                            return refuse(
                                &tool,
                                jsonrpc::CALL_DENIED,
                                "the grant was revoked while the call waited".into(),
                                json!({"held_call": call_id}),
                            );
                        }
                        self.forward(session, access, req, headers, pins, Some(call_id))
                            .await
                    }
                    Ok(holds::Verdict::Denied { call_id, why }) => refuse(
                        &tool,
                        jsonrpc::CALL_DENIED,
                        why,
                        json!({"held_call": call_id}),
                    ),
                    Err(e) => reply(jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, e.to_string())),
                }
            }
        }
    }

    /// Checks that a granted tool is still the one the person approved. A
    /// session that never listed tools lists them first (Gatehouse's own request).
    async fn check_pin(
        &self,
        session: &Session,
        access: &AccessGrant,
        tool: &str,
        pins: &[Pin],
        headers: &UpstreamHeaders,
    ) -> Result<(), String> {
        let Some(pin) = pins.iter().find(|p| p.tool == tool) else {
            return Ok(());
        };
        if session.upstream.take_list_changed() {
            session
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        if session.seen_tool(tool).is_none() {
            let listed = catalog::list_tools(&session.upstream, headers).await?;
            session.remember_tools(&listed);
        }
        let Some(current) = session.seen_tool(tool) else {
            return Err(format!("tool {tool:?} is no longer offered by the server"));
        };
        if crate::scope::pin_hash(&current) == pin.hash {
            return Ok(());
        }
        let review = pinning::record_change(
            &self.store,
            access,
            &session.server,
            pin,
            &current,
            clock::now(),
        )
        .map_err(|e| e.to_string())?;
        Err(format!(
            "tool {tool:?} changed on the server since it was approved; it is blocked until the user re-approves it (review {review})"
        ))
    }

    async fn initialize(&self, req: Incoming<'_>, msg: Value) -> Reply {
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        let Some(server) = self.config.servers.get(req.server) else {
            return Reply::SessionNotFound;
        };
        let upstream = match self.launcher.open(server).await {
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
            seen: Mutex::default(),
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

    /// Sends a request upstream and relays its messages. A `tools/list`
    /// answer is filtered to the grant (and checked against the pins); a
    /// `tools/call` is audited with its outcome and the held call that allowed it.
    async fn forward(
        &self,
        session: &Arc<Session>,
        access: &AccessGrant,
        req: ClientRequest,
        headers: &UpstreamHeaders,
        pins: Vec<Pin>,
        held_call: Option<String>,
    ) -> Reply {
        let ClientRequest { id, method, msg } = req;
        let started = Instant::now();
        let tool_call = (method == "tools/call").then(|| {
            let params = msg.get("params");
            let tool = params
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let args = summarize_arguments(
                params
                    .and_then(|p| p.get("arguments"))
                    .unwrap_or(&Value::Null),
                ARGUMENT_SUMMARY_BYTES,
            );
            (tool, json!({"arguments": args, "held_call": held_call}))
        });
        let mut upstream_rx = match self.exchange(session, id.clone(), msg, headers).await {
            Ok(rx) => rx,
            Err(e) => {
                if let Some((tool, mut detail)) = tool_call {
                    detail["error"] = e["error"]["message"].clone();
                    record_call(
                        &self.store,
                        access,
                        &session.server,
                        &tool,
                        Outcome::Error,
                        Some(started),
                        detail,
                    );
                }
                return reply(e);
            }
        };
        let (tx, rx) = mpsc::channel(64);
        let (store, access, session) = (self.store.clone(), access.clone(), session.clone());
        tokio::spawn(async move {
            while let Some(mut m) = upstream_rx.recv().await {
                let done = jsonrpc::is_response(&m);
                if done && method == "tools/list" {
                    if let Some(result) = m.get_mut("result") {
                        filter_listing(&store, &session, &access, &pins, result);
                    }
                }
                if let (true, Some((tool, detail))) = (done, &tool_call) {
                    let mut detail = detail.clone();
                    let outcome = match (m.get("result"), m.get("error")) {
                        (Some(r), _) => {
                            detail["is_error"] =
                                json!(r.get("isError").and_then(Value::as_bool).unwrap_or(false));
                            Outcome::Allowed
                        }
                        (_, e) => {
                            detail["error"] = e
                                .and_then(|e| e.get("message"))
                                .cloned()
                                .unwrap_or(Value::Null);
                            Outcome::Error
                        }
                    };
                    record_call(
                        &store,
                        &access,
                        &session.server,
                        tool,
                        outcome,
                        Some(started),
                        detail,
                    );
                }
                if tx.send(m).await.is_err() || done {
                    break;
                }
            }
        });
        reply_stream(rx)
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
    pub async fn open_stream(
        &self,
        id: &str,
        client_id: &str,
        server: &str,
        headers: &UpstreamHeaders,
    ) -> StreamOpening {
        match self.session(id, client_id, server) {
            None => StreamOpening::SessionNotFound,
            Some(session) => match session.upstream.open_stream(headers).await {
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
        let slot = self.catalog_slot(server);
        let mut cached = slot.lock().await;
        if let Some((at, tools)) = &*cached {
            if at.elapsed() < CATALOG_TTL {
                return Ok(tools.clone());
            }
        }
        let config = self
            .config
            .servers
            .get(server)
            .ok_or_else(|| format!("no server {server:?}"))?;
        let tools = tokio::time::timeout(CATALOG_TIMEOUT, catalog::fetch(config, &self.launcher))
            .await
            .map_err(|_| {
                format!(
                    "server {server:?} did not list its tools within {} s",
                    CATALOG_TIMEOUT.as_secs()
                )
            })??;
        *cached = Some((Instant::now(), tools.clone()));
        Ok(tools)
    }

    /// The cached tool list, if any and if no fetch is under way (for views
    /// that must not start an upstream or wait for one).
    pub async fn cached_catalog(&self, server: &str) -> Option<Vec<ToolInfo>> {
        let slot = self.catalog_slot(server);
        let cached = slot.try_lock().ok()?;
        cached.as_ref().map(|(_, tools)| tools.clone())
    }

    fn catalog_slot(&self, server: &str) -> Arc<CatalogSlot> {
        self.catalogs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(server.to_string())
            .or_default()
            .clone()
    }
}

/// A server's last tool list and when it was read.
type CatalogSlot = tokio::sync::Mutex<Option<(Instant, Vec<ToolInfo>)>>;

fn close_later(session: Arc<Session>) {
    tokio::spawn(async move { session.upstream.close().await });
}

/// A reply of one message.
fn reply(msg: Value) -> Reply {
    Reply::Messages {
        session_id: None,
        messages: one(msg),
    }
}

fn reply_stream(messages: MessageStream) -> Reply {
    Reply::Messages {
        session_id: None,
        messages,
    }
}

/// Hides what the agent may not see in a `tools/list` answer: tools it was
/// not granted, tools blocked after a change, and tools that changed just now
/// (which are blocked and put up for review here).
fn filter_listing(
    store: &Store,
    session: &Session,
    access: &AccessGrant,
    pins: &[Pin],
    result: &mut Value,
) {
    let granted: HashSet<&str> = access.grant.tools.iter().map(String::as_str).collect();
    let pins: HashMap<&str, &Pin> = pins.iter().map(|p| (p.tool.as_str(), p)).collect();
    let now = clock::now();
    let mut seen = Vec::new();
    policy::filter_tools_list(result, |tool| {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return false;
        };
        if !granted.contains(name) {
            return false;
        }
        let current = crate::scope::pinned_fields(tool);
        let verdict = match pins.get(name) {
            None => true,
            Some(pin) if pin.suspended_at.is_some() => false,
            Some(pin) if crate::scope::pin_hash(&current) == pin.hash => true,
            Some(pin) => {
                if let Err(e) =
                    pinning::record_change(store, access, &session.server, pin, &current, now)
                {
                    tracing::error!(error = %e, "could not record a changed tool");
                }
                false
            }
        };
        seen.push((name.to_string(), current));
        verdict
    });
    session.remember(seen);
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
