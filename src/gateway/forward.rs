//! What passes the policy goes upstream: the request is sent on the session's
//! connection and its messages relayed, ending with the response. A timeout
//! becomes a JSON-RPC error and a cancellation upstream; a `tools/list` answer
//! is filtered to the grant (and checked against the pins); a `tools/call` is
//! audited with its outcome, its duration and the held call that allowed it.
#![allow(clippy::disallowed_methods)] // an edge: calls are timed and audited as they end

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::request::ClientRequest;
use super::session::Session;
use super::upstream::{MessageStream, UpstreamHeaders};
use super::{jsonrpc, pinning, policy, Gateway, McpError, Reply};
use crate::audit::{summarize_arguments, EventKind, NewEvent, Outcome};
use crate::clock::{self, UnixMs};
use crate::oauth::bearer::AccessGrant;
use crate::store::Store;

/// Argument summaries in the audit log are cut at this size.
const ARGUMENT_SUMMARY_BYTES: usize = 1024;
/// The least time a new upstream gets to answer `initialize`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

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
        let failed = |id: &Value, message: String| McpError::UpstreamFailed {
            id: id.clone(),
            message,
        };
        let mut upstream_rx = session
            .upstream
            .request(msg, headers)
            .await
            .map_err(|e| failed(&id, e.to_string()))?;
        let (tx, rx) = mpsc::channel(64);
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
                        let why = "upstream closed the request without answering".to_string();
                        let _ = tx.send(failed(&id, why).to_message()).await;
                        return;
                    }
                    Err(_) => {
                        session.upstream.abandon(&id);
                        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "timed out in Gatehouse"}});
                        let _ = session.upstream.send(cancel, &headers).await;
                        let why = format!("upstream did not answer within {} s", timeout.as_secs());
                        let _ = tx.send(failed(&id, why).to_message()).await;
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
    pub(super) async fn forward(
        &self,
        call: &Call<'_>,
        req: ClientRequest,
        held_call: Option<String>,
    ) -> Reply {
        let started = Instant::now();
        let tool_call = (req.method == "tools/call").then(|| {
            let detail =
                json!({"arguments": argument_summary(req.arguments()), "held_call": held_call});
            (req.tool().to_string(), detail)
        });
        let ClientRequest { id, method, msg } = req;
        let (session, access) = (call.session, call.access);
        let mut upstream_rx = match self
            .exchange(session, id, msg, call.headers, self.call_timeout())
            .await
        {
            Ok(rx) => rx,
            Err(e) => {
                if let Some((tool, mut detail)) = tool_call {
                    detail["error"] = json!(e.message());
                    let event = CallEvent {
                        access,
                        server: &session.server,
                        tool: &tool,
                    };
                    let elapsed = Some(started.elapsed());
                    event.record(&self.store, Outcome::Error, elapsed, detail, clock::now());
                }
                return e.into();
            }
        };
        let (tx, rx) = mpsc::channel(64);
        let (store, access, session) = (self.store.clone(), access.clone(), session.clone());
        tokio::spawn(async move {
            while let Some(mut m) = upstream_rx.recv().await {
                let done = jsonrpc::is_response(&m);
                if done && method == "tools/list" {
                    if let Some(result) = m.get_mut("result") {
                        filter_listing(&store, &session, &access, result, clock::now());
                    }
                }
                if let (true, Some((tool, detail))) = (done, &tool_call) {
                    let (outcome, detail) = call_outcome(&m, detail.clone());
                    let event = CallEvent {
                        access: &access,
                        server: &session.server,
                        tool,
                    };
                    event.record(
                        &store,
                        outcome,
                        Some(started.elapsed()),
                        detail,
                        clock::now(),
                    );
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
}

/// How an upstream's answer to a `tools/call` reads in the audit log.
fn call_outcome(answer: &Value, mut detail: Value) -> (Outcome, Value) {
    match (answer.get("result"), answer.get("error")) {
        (Some(r), _) => {
            detail["is_error"] = json!(r.get("isError").and_then(Value::as_bool).unwrap_or(false));
            (Outcome::Allowed, detail)
        }
        (_, e) => {
            detail["error"] = e
                .and_then(|e| e.get("message"))
                .cloned()
                .unwrap_or(Value::Null);
            (Outcome::Error, detail)
        }
    }
}

/// Hides what the agent may not see in a `tools/list` answer: tools it was
/// not granted, tools blocked after a change, and tools that changed just now
/// (which are blocked and put up for review here).
fn filter_listing(
    store: &Store,
    session: &Session,
    access: &AccessGrant,
    result: &mut Value,
    now: UnixMs,
) {
    let (granted, pins) = (&access.live.tools, &access.live.pins);
    let mut seen = Vec::new();
    let may_ask_more = access.grant().may_ask_more;
    policy::filter_tools_list(result, |tool| {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return false;
        };
        if !granted.contains(name) {
            // Shown, marked, to an agent that may ask for more: calling it is a step-up.
            if may_ask_more {
                policy::mark_askable(tool);
            }
            return may_ask_more;
        }
        let name = name.to_string();
        let current = pinning::pinned_fields(tool);
        let verdict = match pins.get(name.as_str()) {
            None => true,
            Some(pin) if pin.suspended => false,
            Some(pin) if pinning::pin_hash(&current) == pin.hash => true,
            Some(_) => {
                if let Err(e) =
                    pinning::record_change(store, access, &session.server, &name, &current, now)
                {
                    tracing::error!(error = %e, "could not record a changed tool");
                }
                false
            }
        };
        seen.push((name, current));
        verdict
    });
    session.remember(seen);
}

/// A stream of one message.
pub(super) fn one(msg: Value) -> MessageStream {
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(msg);
    rx
}

/// A tool call as the audit log names it: the agent, its grant, the server, the tool.
pub(super) struct CallEvent<'a> {
    pub access: &'a AccessGrant,
    pub server: &'a str,
    pub tool: &'a str,
}

impl CallEvent<'_> {
    /// Writes the call's audit event (allowed, refused or failed).
    pub fn record(
        &self,
        store: &Store,
        outcome: Outcome,
        elapsed: Option<Duration>,
        detail: Value,
        now: UnixMs,
    ) {
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
        let mut event = NewEvent::new(EventKind::ToolCall, outcome)
            .client(&self.access.client_id)
            .server(self.server)
            .tool(self.tool)
            .grant(&self.access.grant().id)
            .detail(detail);
        if let Some(elapsed) = elapsed {
            event = event.duration_ms(elapsed.as_millis() as i64);
        }
        if let Err(e) = store.write(|tx| tx.record(event, now)) {
            tracing::error!(error = %e, "could not write a tool-call audit event");
        }
    }
}
