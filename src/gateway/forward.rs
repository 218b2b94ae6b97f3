//! What passes the policy goes upstream: the request is sent on the session's
//! connection and its messages relayed, ending with the response. A timeout
//! becomes a JSON-RPC error and a cancellation upstream; a `tools/list` answer
//! is filtered to the grant (and checked against the pins); a `tools/call` is
//! audited with its outcome, its duration and the held call that allowed it.
#![allow(clippy::disallowed_methods)] // an edge: calls are timed and audited as they end

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::jsonrpc::{self, Message};
use super::listing::{self, Definition, Shown};
use super::request::ClientRequest;
use super::session::{InFlight, Session};
use super::tasks::NotYours;
use super::upstream::{message_channel, MessageSender, MessageStream, UpstreamHeaders};
use super::{pinning, Gateway, McpError, Reply};
use crate::audit::{self, summarize_arguments, EventKind, NewEvent, Outcome};
use crate::clock::{self, UnixMs};
use crate::oauth::bearer::AccessGrant;
use crate::store::{CallStart, Store};

/// Argument summaries in the audit log are cut at this size.
const ARGUMENT_SUMMARY_BYTES: usize = 1024;
/// The least time a new upstream gets to answer `initialize`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The least time `tasks/result` waits: it answers when the task ends,
/// which may take as long as a person answering it (MCP tasks).
const TASK_RESULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Who makes a request, on which session.
pub(super) struct Call<'a> {
    pub session: &'a Arc<Session>,
    pub access: &'a AccessGrant,
    pub headers: &'a UpstreamHeaders,
}

/// A tool call's arguments as the audit log keeps them.
pub(super) fn argument_summary(arguments: &Value) -> Value {
    summarize_arguments(arguments, ARGUMENT_SUMMARY_BYTES)
}

impl Gateway {
    /// How long a call may take.
    pub(super) fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.config.get().call_timeout_ms as u64)
    }

    /// How long a new upstream may take to answer `initialize`: starting a
    /// server (`npx` fetching a package, a cold interpreter) may take longer
    /// than any one call should, so at least [`START_TIMEOUT`].
    pub(super) fn start_timeout(&self) -> Duration {
        self.call_timeout().max(START_TIMEOUT)
    }

    /// The longest any request may wait on an upstream.
    pub(super) fn longest_wait(&self) -> Duration {
        self.call_timeout().max(TASK_RESULT_TIMEOUT)
    }

    /// Sends a request upstream and relays its messages, ending with the
    /// response; after `timeout` that becomes a JSON-RPC error and a
    /// cancellation upstream.
    pub(super) async fn exchange(
        &self,
        session: &Arc<Session>,
        id: Value,
        msg: Value,
        headers: &UpstreamHeaders,
        timeout: Duration,
    ) -> Result<MessageStream, McpError> {
        let Some(waiting) = session.start_request(super::MAX_WAITING_PER_SESSION) else {
            return Err(McpError::TooManyWaiting { id });
        };
        let sent = Exchange::send(&self.store, session, waiting, id, msg, headers, timeout);
        let exchange = sent.await?;
        let (tx, rx) = message_channel();
        tokio::spawn(async move {
            let mut exchange = exchange;
            loop {
                let (m, done) = exchange.next().await;
                if !tx.send(m, None).await || done {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// Sends a request upstream and relays its messages. A `tools/list`
    /// answer is filtered to the grant (and checked against the pins); a
    /// `tools/call` is audited before it is sent (nothing reaches an upstream
    /// unless its record is committed) and again with its outcome, naming
    /// the held call that allowed it.
    pub(super) async fn forward(
        &self,
        call: &Call<'_>,
        req: ClientRequest,
        held_call: Option<String>,
    ) -> Reply {
        let (session, access) = (call.session, call.access);
        // Counted from before its record: an agent cannot pile up requests
        // that wait (a task's result may take an hour), nor, on a stdio
        // server, by leaving them (over HTTP, leaving ends the request).
        let admitted = match TaskPart::of(&req, session) {
            Err(NotYours(message)) => Err(McpError::InvalidParams {
                id: req.id.clone(),
                message,
            }),
            Ok(task) => match session.start_request(waiting_limit(&req.method)) {
                Some(waiting) => Ok((task, waiting)),
                None => Err(McpError::TooManyWaiting { id: req.id.clone() }),
            },
        };
        let (task, waiting) = match admitted {
            Ok(admitted) => admitted,
            Err(error) => {
                let detail = held_call.map_or(json!({}), |c| json!({"held_call": c}));
                let subject = req.subject().to_string();
                return self
                    .refuse(call, &req, &subject, error, detail, clock::now())
                    .await;
            }
        };
        let started = match self.record_start(call, &req, held_call).await {
            Ok(started) => started,
            Err(refused) => return refused,
        };
        let relay = Relay {
            store: self.store.clone(),
            session: session.clone(),
            access: access.clone(),
            method: req.method.clone(),
            task,
            call: started,
        };
        let timeout = match req.method.as_str() {
            "tasks/result" => self.longest_wait(),
            _ => self.call_timeout(),
        };
        let ClientRequest { id, msg, .. } = req;
        // Were this request dropped (the agent went away) from here on, the
        // guard sees the exchange to its end, or records that it was cut
        // short, so a call that started always gets its outcome.
        let mut unfinished = Unfinished {
            id: id.clone(),
            relay: Some(relay),
            exchange: None,
        };
        let sent = Exchange::send(
            &self.store,
            session,
            waiting,
            id,
            msg,
            call.headers,
            timeout,
        );
        match sent.await {
            Ok(exchange) => unfinished.exchange = Some(exchange),
            Err(e) => {
                if let Some(relay) = unfinished.relay.take() {
                    relay.ended(&mut e.to_message().into());
                }
                return e.into();
            }
        }
        // Most answers come with no message before them: relayed from here,
        // with no task in between.
        let (mut first, done) = unfinished.next().await;
        let (exchange, relay) = unfinished.into_parts();
        if done {
            relay.ended(&mut first);
            return Reply::Messages {
                session_id: None,
                messages: MessageStream::one(first),
            };
        }
        let (tx, rx) = message_channel();
        tokio::spawn(async move {
            tx.send(first, None).await;
            relay.rest(exchange, Some(tx)).await
        });
        Reply::Messages {
            session_id: None,
            messages: rx,
        }
    }
}

impl Gateway {
    /// A `tools/call` is recorded (`call_started`, made durable) before it
    /// is sent; other requests need no record. Refused when it cannot be.
    async fn record_start(
        &self,
        call: &Call<'_>,
        req: &ClientRequest,
        held_call: Option<String>,
    ) -> Result<Option<StartedCall>, Reply> {
        if req.method != "tools/call" {
            return Ok(None);
        }
        let (tool, arguments) = (req.tool().to_string(), argument_summary(req.arguments()));
        let detail = json!({"arguments": arguments, "held_call": held_call});
        let event = CallEvent {
            access: call.access,
            server: &call.session.server,
            tool: &tool,
        };
        let start = event.event(
            EventKind::CallStarted,
            Outcome::Allowed,
            None,
            detail.clone(),
        );
        match self.store.append_start(start, clock::now()).await {
            Ok(start) => Ok(Some(StartedCall {
                tool,
                detail,
                start,
                at: Instant::now(),
            })),
            Err(e) => {
                tracing::error!(error = %e, "could not audit a tool call; it was not sent");
                let message = format!(
                    "the call could not be recorded in the audit log, so it was not sent: {e}"
                );
                let id = req.id.clone();
                Err(McpError::Internal { id, message }.into())
            }
        }
    }
}

/// How many of a session's requests may wait on its upstream when this
/// one is sent.
pub(super) fn waiting_limit(method: &str) -> usize {
    match method {
        "tasks/cancel" | "tasks/get" | "tasks/list" | "ping" => {
            super::MAX_WAITING_PER_SESSION + super::MORE_WAITING_TO_CONTROL
        }
        _ => super::MAX_WAITING_PER_SESSION,
    }
}

/// How long a cancellation may take to reach an upstream that timed out.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// A request sent upstream, waiting for its messages until a deadline.
struct Exchange {
    store: Arc<Store>,
    session: Arc<Session>,
    /// Counts it among the session's waiting requests while it lives.
    _waiting: InFlight,
    id: Value,
    headers: UpstreamHeaders,
    rx: MessageStream,
    deadline: tokio::time::Instant,
    timeout: Duration,
}

impl Exchange {
    async fn send(
        store: &Arc<Store>,
        session: &Arc<Session>,
        waiting: InFlight,
        id: Value,
        msg: Value,
        headers: &UpstreamHeaders,
        timeout: Duration,
    ) -> Result<Exchange, McpError> {
        // The deadline covers sending too: an HTTP upstream answers in the
        // POST's own response, which a hanging server would never end.
        let deadline = tokio::time::Instant::now() + timeout;
        let sent = tokio::time::timeout_at(deadline, session.upstream.request(msg, headers)).await;
        let rx = match sent {
            Ok(rx) => rx.map_err(|e| failed(&id, e.to_string()))?,
            Err(_) => {
                let why = format!("upstream did not answer within {} s", timeout.as_secs());
                return Err(failed(&id, why));
            }
        };
        Ok(Exchange {
            store: store.clone(),
            session: session.clone(),
            _waiting: waiting,
            id,
            headers: headers.clone(),
            rx,
            deadline,
            timeout,
        })
    }

    /// The next message, and whether it ends the exchange (the response, or
    /// the error that stands for it when the upstream went away or timed out).
    async fn next(&mut self) -> (Message, bool) {
        loop {
            let m = match tokio::time::timeout_at(self.deadline, self.rx.recv()).await {
                Ok(Some(m)) => m,
                Ok(None) => {
                    let why = "upstream closed the request without answering".to_string();
                    return (failed(&self.id, why).to_message().into(), true);
                }
                Err(_) => return (self.timed_out().await, true),
            };
            if self.answers(&m) {
                return (m, true);
            }
            if m.is_server_message() {
                if !self.session.tasks.shows(&m) {
                    continue; // a status of a task that is not the session's
                }
                record_server_request(&self.store, &self.session.server_asks, &m).await;
                return (m, false);
            }
            // Not JSON-RPC, or an answer to another request: an agent's SDK
            // might take it for this one's (an id of 5.0 for 5), and nothing
            // of it would have been filtered. Dropped.
            let server = &self.session.server;
            tracing::warn!(%server, "dropped a message from the upstream that answers no request of this exchange");
        }
    }

    /// Whether the message is the answer to this exchange's request.
    fn answers(&self, m: &Message) -> bool {
        let id = jsonrpc::id_key(&self.id);
        m.response_id().is_some_and(|r| jsonrpc::id_key(&r) == id)
    }

    /// Cancels the request upstream; the error that stands for its answer.
    async fn timed_out(&self) -> Message {
        let (upstream, id) = (&self.session.upstream, &self.id);
        upstream.abandon(id);
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "timed out in Gatehouse"}});
        // An upstream that stopped reading must not hold the exchange (and
        // its place among the session's waiting requests) for ever.
        let sent = upstream.send(cancel, &self.headers);
        let _ = tokio::time::timeout(CANCEL_TIMEOUT, sent).await;
        let why = format!(
            "upstream did not answer within {} s",
            self.timeout.as_secs()
        );
        failed(id, why).to_message().into()
    }
}

fn failed(id: &Value, message: String) -> McpError {
    McpError::UpstreamFailed {
        id: id.clone(),
        message,
    }
}

/// A tool call audited as started, waiting for its outcome.
struct StartedCall {
    tool: String,
    detail: Value,
    /// The `call_started` event.
    start: CallStart,
    at: Instant,
}

/// What a forwarded request's answer goes through before the agent sees it.
struct Relay {
    store: Arc<Store>,
    session: Arc<Session>,
    access: AccessGrant,
    method: String,
    task: TaskPart,
    call: Option<StartedCall>,
}

/// What a request has to do with a task.
enum TaskPart {
    None,
    /// Sent with `params.task`: its answer names the task it created.
    Creates,
    /// `tasks/result` for one of the session's tasks: how the call ended.
    ResultOf {
        id: String,
        tool: String,
    },
}

impl TaskPart {
    /// A client's request that may create a task is a `tools/call` (MCP
    /// 2025-11-25); a client may send `params.task` with others too (the
    /// TypeScript SDK does with `tasks/result`), which creates none.
    /// A result read for a task that is no longer the session's (newer
    /// ones pushed it out since it was checked) is refused: it would go
    /// unaudited.
    fn of(req: &ClientRequest, session: &Session) -> Result<TaskPart, NotYours> {
        let param = |name: &str| req.msg.get("params").and_then(|p| p.get(name));
        match req.method.as_str() {
            "tools/call" if param("task").is_some() => Ok(TaskPart::Creates),
            "tasks/result" => {
                let id = param("taskId").and_then(Value::as_str).unwrap_or_default();
                match session.tasks.tool_of(id) {
                    Some(tool) => Ok(TaskPart::ResultOf {
                        id: id.to_string(),
                        tool,
                    }),
                    None => Err(NotYours(format!(
                        "no task {:?} in this session any more",
                        audit::event::name(id)
                    ))),
                }
            }
            _ => Ok(TaskPart::None),
        }
    }
}

impl Relay {
    /// The answer (or the error standing for it): a listing is filtered to
    /// the grant (a task listing to the session's tasks), a created task
    /// noted as the session's, a call's outcome audited.
    fn ended(&self, answer: &mut Message) {
        let tasks = &self.session.tasks;
        if self.method == "tasks/list" {
            tasks.filter_list(answer);
        }
        let created = match &self.task {
            TaskPart::None => None,
            TaskPart::Creates => {
                let tool = self.call.as_ref().map_or("", |c| &c.tool);
                tasks.note_created(answer, tool)
            }
            TaskPart::ResultOf { id, tool } => {
                self.record_task_result(answer, id, tool);
                None
            }
        };
        if self.method == "tools/list" {
            let now = clock::now();
            let definitions = &self.session.definitions;
            let shown = |def: &Definition| self.shown(def, now);
            if let Some(filtered) = listing::filter(answer, definitions, shown) {
                *answer = filtered;
            }
        }
        if let Some(call) = &self.call {
            let (outcome, mut detail) = call_outcome(answer, call.detail.clone());
            if let Some(task) = &created {
                // Its result comes later, with `tasks/result`.
                detail["task"] = json!(audit::event::name(task));
            }
            let event = CallEvent {
                access: &self.access,
                server: &self.session.server,
                tool: &call.tool,
            };
            let elapsed = Some(call.at.elapsed());
            // Its start is durable: the answer need not wait for this one.
            let outcome = event.event(EventKind::ToolCall, outcome, elapsed, detail);
            self.store
                .append_outcome(&call.start, outcome, clock::now());
        }
    }

    /// How a call that ran as a task ended, as its result was read.
    fn record_task_result(&self, answer: &Message, id: &str, tool: &str) {
        let (outcome, detail) = call_outcome(answer, json!({"task": audit::event::name(id)}));
        let event = CallEvent {
            access: &self.access,
            server: &self.session.server,
            tool,
        };
        let event = event.event(EventKind::TaskResult, outcome, None, detail);
        self.store.append_soon(move || event, clock::now());
    }

    /// Relays the rest of an exchange to `tx` (or to nobody, when the agent
    /// went away), ending with the answer.
    async fn rest(self, mut exchange: Exchange, mut tx: Option<MessageSender>) {
        loop {
            let (mut m, done) = exchange.next().await;
            if done {
                self.ended(&mut m);
            }
            if let Some(to) = &tx {
                if !to.send(m, None).await {
                    tx = None;
                }
            }
            if done {
                return;
            }
        }
    }
}

/// A forwarded request's exchange while the request waits for it. Dropped
/// early (the agent went away), it sees the exchange to its end on a task of
/// its own; dropped while still sending, it records the call as cut short.
struct Unfinished {
    id: Value,
    relay: Option<Relay>,
    exchange: Option<Exchange>,
}

impl Unfinished {
    /// The exchange's next message, waited for on this task.
    async fn next(&mut self) -> (Message, bool) {
        let exchange = self.exchange.as_mut().expect("an exchange once sent");
        exchange.next().await
    }

    /// The exchange back: from here on the caller sees it to its end.
    fn into_parts(mut self) -> (Exchange, Relay) {
        let parts = self.exchange.take().zip(self.relay.take());
        parts.expect("an exchange once sent")
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        match (self.relay.take(), self.exchange.take()) {
            (Some(relay), Some(exchange)) => match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn(relay.rest(exchange, None))),
                Err(_) => {
                    let why = "Gatehouse stopped before the upstream answered".to_string();
                    relay.ended(&mut failed(&self.id, why).to_message().into());
                }
            },
            (Some(relay), None) => {
                let why = "the agent went away before the upstream answered".to_string();
                relay.ended(&mut failed(&self.id, why).to_message().into());
            }
            _ => {}
        }
    }
}

/// How an upstream's answer to a `tools/call` reads in the audit log (read
/// without parsing what the tool returned).
fn call_outcome(answer: &Message, mut detail: Value) -> (Outcome, Value) {
    /// The one member of a result the log keeps.
    #[derive(serde::Deserialize)]
    struct Flag {
        #[serde(rename = "isError", default)]
        is_error: Value,
    }
    match answer.member::<Flag>("result") {
        Some(flag) => {
            let is_error = match flag {
                Ok(flag) => flag.is_error.as_bool(),
                // `isError` twice: read as a tree (and most agents) read it, the last one.
                Err(_) => answer
                    .member::<Value>("result")
                    .and_then(Result::ok)
                    .and_then(|r| r.get("isError").and_then(Value::as_bool)),
            };
            detail["is_error"] = json!(is_error.unwrap_or(false));
            (Outcome::Allowed, detail)
        }
        None => {
            let error = answer.member::<Value>("error").and_then(Result::ok);
            detail["error"] = match error.and_then(|e| e.get("message").cloned()) {
                None => Value::Null,
                // As much of it as the log keeps: the upstream chose its length.
                Some(Value::String(m)) => json!(audit::event::note(&m)),
                // Not a string, as JSON-RPC has it: its JSON text.
                Some(other) => json!(audit::event::note(&other.to_string())),
            };
            (Outcome::Error, detail)
        }
    }
}

impl Relay {
    /// What the agent sees of one tool its upstream listed: tools it was not
    /// granted are hidden (or marked, to an agent that may ask for more),
    /// and so are tools blocked after a change and tools that changed just
    /// now (which are blocked and put up for review here).
    fn shown(&self, def: &Definition, now: UnixMs) -> Shown {
        let (access, session) = (&self.access, &self.session);
        // `@` names the resources and prompts items, never a server's tool.
        let Some(name) = def.name().filter(|n| crate::tools::is_tool_name(n)) else {
            return Shown::Hidden;
        };
        if !access.live.tools.contains(name) {
            // Shown, marked, to an agent that may ask for more: calling it is a step-up.
            return match access.grant().may_ask_more {
                true => Shown::Askable,
                false => Shown::Hidden,
            };
        }
        let Some(current) = session.note_listed(def) else {
            return Shown::Hidden;
        };
        match access.live.pins.get(name) {
            None => Shown::AsListed,
            Some(pin) if pin.suspended => Shown::Hidden,
            Some(pin) if current.hash == pin.hash => Shown::AsListed,
            Some(_) => {
                let (store, server) = (&self.store, &session.server);
                let changed =
                    pinning::record_change(store, access, server, name, &current.fields, now);
                if let Err(e) = changed {
                    tracing::error!(error = %e, "could not record a changed tool");
                }
                Shown::Hidden
            }
        }
    }
}

/// A tool call as the audit log names it: the agent, its grant, the server, the tool.
pub(super) struct CallEvent<'a> {
    pub access: &'a AccessGrant,
    pub server: &'a str,
    pub tool: &'a str,
}

impl CallEvent<'_> {
    /// Writes the call's audit event (allowed, refused or failed) in the
    /// store's next group commit.
    pub async fn record(
        &self,
        store: &Arc<Store>,
        outcome: Outcome,
        elapsed: Option<Duration>,
        detail: Value,
        now: UnixMs,
    ) {
        let event = self.event(EventKind::ToolCall, outcome, elapsed, detail);
        if let Err(e) = store.append(event, now).await {
            tracing::error!(error = %e, "could not write a tool-call audit event");
        }
    }

    /// The call's audit event of `kind`.
    fn event(
        &self,
        kind: EventKind,
        outcome: Outcome,
        elapsed: Option<Duration>,
        detail: Value,
    ) -> NewEvent {
        let mut detail = detail;
        if let (Some(program), Some(d)) = (&self.access.program, detail.as_object_mut()) {
            // Which program made the call, and whom the grant was given to when that differs.
            d.insert(
                "program".into(),
                json!({"pid": program.pid, "exe": program.exe}),
            );
            if let Some(granted) = &self.access.granted_program {
                d.insert("granted_to".into(), json!(granted.exe));
            }
        }
        let mut event = NewEvent::new(kind, outcome)
            .client(&self.access.client_id)
            .server(self.server)
            .tool(self.tool)
            .grant(&self.access.grant().id)
            .detail(detail);
        if let Some(elapsed) = elapsed {
            event = event.duration_ms(elapsed.as_millis() as i64);
        }
        event
    }
}

/// How many of the requests a server sends its agent one session's
/// timeline shows: a server that floods its agent with them fills the log
/// no further.
const SERVER_REQUESTS_RECORDED: u32 = 100;

/// A request the server sends the agent (to sample its model, to ask the
/// person something, to read its roots) goes on the timeline: no grant
/// covers that direction, but the person sees what a server asks of their
/// agent, and when. Past the session's cap nothing is recorded, and the
/// last one recorded says so.
pub(super) async fn record_server_request(
    store: &Arc<Store>,
    asks: &super::session::ServerAsks,
    msg: &Message,
) {
    let Some(method) = msg.server_request() else {
        return;
    };
    use std::sync::atomic::Ordering::Relaxed;
    let Ok(before) = asks.count.fetch_update(Relaxed, Relaxed, |n| {
        (n < SERVER_REQUESTS_RECORDED).then_some(n + 1)
    }) else {
        return;
    };
    let n = before + 1;
    let mut detail = json!({"from": "server"});
    if n == SERVER_REQUESTS_RECORDED {
        detail["last_recorded"] =
            json!("the server's later requests in this session are relayed, not recorded");
    }
    let event = NewEvent::new(EventKind::McpRequest, Outcome::Allowed)
        .client(&asks.client_id)
        .server(&asks.server)
        .tool(method)
        .detail(detail);
    if let Err(e) = store.append(event, clock::now()).await {
        tracing::error!(error = %e, "could not write a server request's audit event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_keeps_at_most_a_kilobyte_of_the_upstreams_error_message() {
        let error = |message: Value| -> Message {
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": message}}).into()
        };
        let (outcome, detail) = call_outcome(&error(json!("no such note")), json!({}));
        assert_eq!(
            (outcome, &detail["error"]),
            (Outcome::Error, &json!("no such note"))
        );
        let (_, detail) = call_outcome(&error(json!("x".repeat(5_000_000))), json!({}));
        let kept = detail["error"].as_str().unwrap();
        assert!(kept.len() <= crate::audit::event::MAX_NOTE_BYTES + 3 && kept.ends_with('…'));
        // Not a string, as JSON-RPC has it: its JSON text, cut the same way.
        let (_, detail) = call_outcome(&error(json!({"big": "y".repeat(10_000)})), json!({}));
        assert!(detail["error"]
            .as_str()
            .unwrap()
            .starts_with("{\"big\":\"yyy"));
        assert!(detail["error"].as_str().unwrap().len() <= crate::audit::event::MAX_NOTE_BYTES + 3);
    }
}
