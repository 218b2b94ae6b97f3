//! One POSTed message from an authenticated agent: parsed, tied to the
//! agent's session (or opening one with `initialize`), and decided by the
//! policy before anything reaches the upstream. A refusal is audited with the
//! grant that decided it.
#![allow(clippy::disallowed_methods)] // an edge: each request reads the clock once

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::forward::{argument_summary, Call, CallEvent};
use super::holds::Verdict;
use super::jsonrpc::{self, Kind, Message};
use super::session::Session;
use super::tasks::NotYours;
use super::upstream::UpstreamHeaders;
use super::upstream::{message_channel, MessageStream};
use super::{pinning, policy, Gateway, McpError, Reply};
use crate::audit::{redact, Outcome};
use crate::clock::{self, UnixMs};
use crate::oauth::bearer::AccessGrant;

/// The parts of an MCP POST the gateway needs.
pub struct Incoming<'a> {
    pub access: &'a AccessGrant,
    pub server: &'a str,
    pub session_id: Option<&'a str>,
    pub headers: UpstreamHeaders,
    pub body: &'a [u8],
}

/// One JSON-RPC request from an agent, in an open session.
pub(super) struct ClientRequest {
    pub id: Value,
    pub method: String,
    pub msg: Value,
}

impl ClientRequest {
    fn params(&self) -> Option<&Value> {
        self.msg.get("params")
    }

    /// The tool a `tools/call` names (empty if it names none).
    pub fn tool(&self) -> &str {
        self.params()
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// What its audit event names: the tool of a `tools/call`, else the method.
    pub fn subject(&self) -> &str {
        match self.method.as_str() {
            "tools/call" => self.tool(),
            method => method,
        }
    }

    pub fn arguments(&self) -> &Value {
        self.params()
            .and_then(|p| p.get("arguments"))
            .unwrap_or(&Value::Null)
    }
}

impl Gateway {
    /// Handles one POSTed JSON-RPC message from an authenticated agent.
    pub async fn handle(&self, req: Incoming<'_>) -> Reply {
        let Ok(msg) = serde_json::from_slice::<Value>(req.body) else {
            return McpError::Parse.into();
        };
        if msg.is_array() {
            return McpError::InvalidMessage("JSON-RPC batches are not supported").into();
        }
        let Some(kind) = jsonrpc::classify(&msg) else {
            return McpError::InvalidMessage("not a JSON-RPC 2.0 message").into();
        };
        let Some(sid) = req.session_id else {
            return match kind {
                Kind::Request { method, .. } if method == "initialize" => {
                    self.initialize(req, msg).await
                }
                // Newer clients probe before `initialize`; answering promptly lets them fall back.
                Kind::Request { id, method } if method == "server/discover" => {
                    McpError::MethodNotFound {
                        id,
                        message: "server/discover is not supported; use initialize".into(),
                    }
                    .into()
                }
                Kind::Request { id, .. } => McpError::NoSession {
                    id,
                    message: "Mcp-Session-Id header is required (send initialize first)",
                }
                .into(),
                _ => McpError::NoSession {
                    id: Value::Null,
                    message: "Mcp-Session-Id header is required",
                }
                .into(),
            };
        };
        let Some(session) = self.sessions.get(sid, &req.access.client_id, req.server) else {
            return McpError::SessionNotFound.into();
        };
        match kind {
            // The instructions an agent is told are checked against the
            // grant's pin at the session's one `initialize`; another would
            // take the server's answer past that check.
            Kind::Request { id, method } if method == "initialize" => {
                McpError::Initialized { id }.into()
            }
            Kind::Request { id, method } => {
                let request = ClientRequest { id, method, msg };
                self.dispatch(&session, req.access, request, &req.headers, clock::now())
                    .await
            }
            Kind::Notification { method } if !policy::is_client_notification(&method) => {
                let call = Call {
                    session: &session,
                    access: req.access,
                    headers: &req.headers,
                };
                self.refuse_notification(&call, msg, method, clock::now())
                    .await
            }
            Kind::Notification { method } if self.withdraws_held(&session, &method, &msg).await => {
                Reply::Accepted
            }
            Kind::Notification { .. } | Kind::Response { .. } => {
                match session.upstream.send(msg, &req.headers).await {
                    Ok(()) => Reply::Accepted,
                    Err(_) => {
                        self.end_session(sid);
                        McpError::SessionNotFound.into()
                    }
                }
            }
        }
    }

    /// A method sent as a notification (no `id`): `tools/call` and the rest of
    /// what the policy governs must be requests, or they would run unchecked
    /// and unaudited. Refused, audited, and nothing reaches the upstream.
    async fn refuse_notification(
        &self,
        call: &Call<'_>,
        msg: Value,
        method: String,
        now: UnixMs,
    ) -> Reply {
        let request = ClientRequest {
            id: Value::Null,
            method: method.clone(),
            msg,
        };
        let tool = request.subject().to_string();
        let error = McpError::NotANotification { method };
        self.refuse(
            call,
            &request,
            &tool,
            error,
            json!({"notification": true}),
            now,
        )
        .await
    }

    /// Opens a session: its own upstream connection, initialized with the
    /// agent's `initialize`. Only a successful answer keeps the session.
    async fn initialize(&self, req: Incoming<'_>, msg: Value) -> Reply {
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        let config = self.config.get();
        let Some(server) = config.servers.get(req.server) else {
            return McpError::SessionNotFound.into();
        };
        let limit = super::MAX_SESSIONS_PER_AGENT;
        for old in self
            .sessions
            .make_room(&req.access.client_id, req.server, limit)
        {
            tracing::info!(client = %old.client_id, server = %old.server, "closed the agent's least recently used session to open a new one ({limit} at most)");
            super::close_later(old);
        }
        let upstream = match self.launcher.open(server).await {
            Ok(c) => c,
            Err(e) => {
                return McpError::UpstreamFailed {
                    id,
                    message: e.to_string(),
                }
                .into()
            }
        };
        let session = Arc::new(Session::new(&req.access.client_id, req.server, upstream));
        let mut messages = match self
            .exchange(&session, id, msg, &req.headers, self.start_timeout())
            .await
        {
            Ok(m) => m,
            Err(e) => return e.into(),
        };
        let (tx, rx) = message_channel();
        // What the server sends before its answer is not passed on (MCP
        // allows it only pings and log lines then): no answer reaches the
        // agent behind one, past the check of its instructions. A request
        // is answered here, so a server that waits on it is not left waiting.
        let mut answer = None;
        while let Some(m) = messages.recv().await {
            if m.is_response() {
                answer = Some(self.instructions_as_pinned(req.access, req.server, m));
                break;
            }
            if let Some(reply) = answer_before_initialized(&m) {
                if let Err(e) = session.upstream.send(reply, &req.headers).await {
                    tracing::warn!(server = %session.server, error = %e, "could not answer a request the server sent before its answer to initialize");
                }
            }
            tracing::debug!(server = %session.server, "did not pass on a message the server sent before its answer to initialize");
        }
        let ok = answer.as_ref().is_some_and(Message::has_result);
        if ok {
            self.sessions.insert(session.clone());
            tracing::info!(client = %session.client_id, server = %session.server, "session opened");
        }
        if let Some(answer) = answer {
            tx.send(answer, None).await;
        }
        tokio::spawn(async move {
            while let Some(m) = messages.recv().await {
                if !tx.send(m, None).await {
                    break;
                }
            }
        });
        Reply::Messages {
            session_id: ok.then(|| session.id.clone()),
            messages: rx,
        }
    }

    /// The server's answer to `initialize`, with the instructions the agent
    /// may be told ([`pinning::check_instructions`]): read whole first, so
    /// that what the agent is told is what was checked (text that cannot be
    /// read becomes an error answer). When they cannot be checked, the agent
    /// is told none.
    fn instructions_as_pinned(
        &self,
        access: &AccessGrant,
        server: &str,
        answer: Message,
    ) -> Message {
        let mut answer = answer.into_value();
        let Some(result) = answer.get_mut("result") else {
            return Message::from(answer);
        };
        let current = pinning::instructions_of(result);
        let pinned =
            pinning::check_instructions(&self.store, access, server, &current, clock::now());
        let told = match pinned {
            Ok(None) => return Message::from(answer),
            Ok(Some(pinned)) => pinned,
            Err(e) => {
                tracing::error!(error = %e, %server, "could not check the server's instructions against their pin; the agent is told none");
                json!({})
            }
        };
        if let Some(result) = result.as_object_mut() {
            match told.get("instructions") {
                Some(text) => result.insert("instructions".into(), text.clone()),
                None => result.remove("instructions"),
            };
        }
        Message::from(answer)
    }

    /// Applies the policy to one request of an open session.
    async fn dispatch(
        &self,
        session: &Arc<Session>,
        access: &AccessGrant,
        req: ClientRequest,
        headers: &UpstreamHeaders,
        now: UnixMs,
    ) -> Reply {
        let grantee = policy::Grantee::of(&access.live);
        let call = Call {
            session,
            access,
            headers,
        };
        if let Some(why) = self.pauses.refusal(&access.client_id) {
            if policy::acts(&req.method) {
                let tool = req.tool().to_string();
                let error = call_denied(&req, why);
                return self
                    .refuse(&call, &req, &tool, error, json!({"paused": true}), now)
                    .await;
            }
        }
        if let Err(NotYours(why)) = session.tasks.check(&req.method, req.params()) {
            let error = McpError::InvalidParams {
                id: req.id.clone(),
                message: why,
            };
            let subject = req.subject().to_string();
            return self
                .refuse(&call, &req, &subject, error, json!({}), now)
                .await;
        }
        match policy::check_request(&req.method, req.params(), &grantee) {
            policy::Decision::Forward => self.forward(&call, req, None).await,
            policy::Decision::Answer(result) => Reply::Messages {
                session_id: None,
                messages: MessageStream::one(
                    json!({"jsonrpc": "2.0", "id": req.id, "result": result}).into(),
                ),
            },
            policy::Decision::Refuse(why) => {
                let tool = req.tool().to_string();
                self.refuse(&call, &req, &tool, not_granted(&req, why), json!({}), now)
                    .await
            }
            policy::Decision::StepUp(tool) => self.step_up(&call, &req, tool, now).await,
            policy::Decision::NotMcp => {
                let error = McpError::MethodNotFound {
                    id: req.id.clone(),
                    message: format!(
                        "{:?} is not an MCP method: Gatehouse does not pass it on",
                        req.method
                    ),
                };
                let method = req.method.clone();
                self.refuse(&call, &req, &method, error, json!({}), now)
                    .await
            }
            policy::Decision::Call(tool) => {
                if let Err(why) = self.check_pin(&call, &tool, now).await {
                    return self
                        .refuse(&call, &req, &tool, not_granted(&req, why), json!({}), now)
                        .await;
                }
                self.forward(&call, req, None).await
            }
            policy::Decision::Hold(tool) => {
                if let Err(why) = self.check_pin(&call, &tool, now).await {
                    return self
                        .refuse(&call, &req, &tool, not_granted(&req, why), json!({}), now)
                        .await;
                }
                // The person is not asked about a call that could not be sent.
                if !session.has_room(super::forward::waiting_limit(&req.method)) {
                    let error = McpError::TooManyWaiting { id: req.id.clone() };
                    return self.refuse(&call, &req, &tool, error, json!({}), now).await;
                }
                self.hold(&call, req, tool).await
            }
        }
    }

    /// A tool (or resources/prompts) the agent was never granted: if the server
    /// offers it, a step-up challenge for the union of what it holds and this;
    /// otherwise a plain refusal. Either way nothing reaches the upstream.
    async fn step_up(
        &self,
        call: &Call<'_>,
        req: &ClientRequest,
        tool: String,
        now: UnixMs,
    ) -> Reply {
        let offered = call.session.seen_tool(&tool).is_some()
            || self
                .catalog(&call.session.server)
                .await
                .is_ok_and(|c| c.iter().any(|t| t.name == tool));
        if !offered {
            let why = format!("tool {tool:?} is not granted to this agent");
            return self
                .refuse(call, req, &tool, not_granted(req, why), json!({}), now)
                .await;
        }
        let mut items = call.access.grant().tools.clone();
        items.push(tool.clone());
        let scope = crate::oauth::scope::scope_for_tools(&items);
        let message =
            format!("tool {tool:?} is not granted yet: ask the user for it (scope {scope:?})");
        let detail = json!({"step_up": scope});
        self.refuse(
            call,
            req,
            &tool,
            not_granted(req, message.clone()),
            detail,
            now,
        )
        .await;
        McpError::InsufficientScope { scope, message }.into()
    }

    /// Whether `msg` is the agent's `notifications/cancelled` for one of the
    /// session's held calls, now withdrawn (the call never reached the
    /// server, so neither does the cancellation).
    async fn withdraws_held(&self, session: &Session, method: &str, msg: &Value) -> bool {
        if method != "notifications/cancelled" {
            return false;
        }
        let Some(id) = msg.pointer("/params/requestId") else {
            return false;
        };
        let Some(call_id) = session.held_call(&jsonrpc::id_key(id)) else {
            return false;
        };
        match self
            .holds
            .withdraw(&self.store, &call_id, clock::now())
            .await
        {
            Ok(withdrawn) => withdrawn,
            Err(e) => {
                tracing::error!(error = %e, "could not withdraw a held call the agent cancelled");
                false
            }
        }
    }

    /// An ask-every-time call: held until the person allows it (then sent, if
    /// the grant is still in force) or denies it (or nobody answers).
    async fn hold(&self, call: &Call<'_>, req: ClientRequest, tool: String) -> Reply {
        // The person sees every argument (redacted where secret), never a cut.
        let shown = redact(req.arguments());
        let timeout = Duration::from_millis(self.config.get().consent_timeout_ms as u64);
        // While it waits, the agent may cancel it by its request id.
        let held = HeldRequest {
            session: call.session,
            key: jsonrpc::id_key(&req.id),
        };
        let noted = |call_id: &str| held.session.note_held(&held.key, call_id);
        let verdict = self
            .holds
            .hold(
                &self.store,
                call.access,
                &call.session.server,
                &tool,
                shown,
                timeout,
                noted,
            )
            .await;
        drop(held);
        match verdict {
            Ok(Verdict::Allowed { call_id }) => {
                // The wait may have been long: the grant must still be in force
                // now, still hold the tool as it did, unblocked, and the tool's
                // definition still be the one approved.
                let now = clock::now();
                let detail = json!({"held_call": call_id});
                let live = self.store.live().grant(&call.access.grant().id);
                let Some(live) = live.filter(|g| g.grant.is_active(now)) else {
                    let why = "the grant was revoked while the call waited".to_string();
                    return self
                        .refuse(call, &req, &tool, call_denied(&req, why), detail, now)
                        .await;
                };
                let access = AccessGrant {
                    live,
                    ..call.access.clone()
                };
                let call = Call {
                    access: &access,
                    ..*call
                };
                let still = match policy::check_request(
                    &req.method,
                    req.params(),
                    &policy::Grantee::of(&access.live),
                ) {
                    policy::Decision::Call(t) | policy::Decision::Hold(t) => t == tool,
                    _ => false,
                };
                if !still {
                    let why = format!(
                        "tool {tool:?} was blocked or taken out of the grant while the call waited"
                    );
                    return self
                        .refuse(&call, &req, &tool, call_denied(&req, why), detail, now)
                        .await;
                }
                if let Err(why) = self.check_pin(&call, &tool, now).await {
                    return self
                        .refuse(&call, &req, &tool, call_denied(&req, why), detail, now)
                        .await;
                }
                if let Some(why) = self.pauses.refusal(&call.access.client_id) {
                    let detail = json!({"held_call": call_id, "paused": true});
                    return self
                        .refuse(&call, &req, &tool, call_denied(&req, why), detail, now)
                        .await;
                }
                self.forward(&call, req, Some(call_id)).await
            }
            Ok(Verdict::Denied { call_id, why }) => {
                let detail = json!({"held_call": call_id});
                self.refuse(
                    call,
                    &req,
                    &tool,
                    call_denied(&req, why),
                    detail,
                    clock::now(),
                )
                .await
            }
            Err(e) => McpError::Internal {
                id: req.id,
                message: e.to_string(),
            }
            .into(),
        }
    }

    /// Checks that a granted tool is still the one the person approved. A
    /// session that never listed tools lists them first (Gatehouse's own request).
    async fn check_pin(&self, call: &Call<'_>, tool: &str, now: UnixMs) -> Result<(), String> {
        let Some(pin) = call.access.live.pins.get(tool) else {
            return Ok(());
        };
        let session = call.session;
        if session.seen_tool(tool).is_none() {
            let listed = super::own_session::OwnSession::within(&session.upstream, call.headers)
                .patience(self.call_timeout())
                .list_tools()
                .await?;
            session.remember_tools(&listed);
        }
        let Some(current) = session.seen_tool(tool) else {
            return Err(format!("tool {tool:?} is no longer offered by the server"));
        };
        if current.hash == pin.hash {
            return Ok(());
        }
        let review = pinning::record_change(
            &self.store,
            call.access,
            &session.server,
            tool,
            &current.fields,
            now,
        )
        .map_err(|e| e.to_string())?;
        Err(format!(
            "tool {tool:?} changed on the server since it was approved; it is blocked until the user re-approves it (review {review})"
        ))
    }

    /// Refuses a request: audited as a denied call with the reason, answered
    /// with the error. Nothing reaches the upstream.
    pub(super) async fn refuse(
        &self,
        call: &Call<'_>,
        req: &ClientRequest,
        tool: &str,
        error: McpError,
        mut detail: Value,
        now: UnixMs,
    ) -> Reply {
        // The agent chose their length (a method, a tool's name of megabytes).
        detail["reason"] = json!(crate::audit::event::note(&error.message()));
        detail["method"] = json!(crate::audit::event::name(&req.method));
        detail["arguments"] = argument_summary(req.arguments());
        let server = &call.session.server;
        let event = CallEvent {
            access: call.access,
            server,
            tool,
        };
        event
            .record(&self.store, Outcome::Denied, None, detail, now)
            .await;
        error.into()
    }
}

fn not_granted(req: &ClientRequest, message: String) -> McpError {
    McpError::NotGranted {
        id: req.id.clone(),
        message,
    }
}

fn call_denied(req: &ClientRequest, message: String) -> McpError {
    McpError::CallDenied {
        id: req.id.clone(),
        message,
    }
}

/// Gatehouse's answer to a request the server sends before its answer to
/// `initialize`, when the agent has no session to be asked in: `ping` (the
/// one request MCP allows then) is answered, anything else refused; `None`
/// for a message that is not a request.
fn answer_before_initialized(m: &Message) -> Option<Value> {
    let method = m.server_request()?;
    let id = m.member::<Value>("id")?.ok()?;
    Some(match method {
        "ping" => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
        _ => jsonrpc::error(
            id,
            jsonrpc::INVALID_REQUEST,
            "only ping may come before the answer to initialize",
        ),
    })
}

/// A held request the agent may cancel, forgotten by its session when the
/// hold ends or the agent goes away.
struct HeldRequest<'a> {
    session: &'a Session,
    key: String,
}

impl Drop for HeldRequest<'_> {
    fn drop(&mut self) {
        self.session.forget_held(&self.key);
    }
}
