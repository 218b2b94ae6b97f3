//! The audit event model: what happened ([`EventKind`]), how it ended
//! ([`Outcome`]), to whom, through which grant.

use serde::{Deserialize, Serialize};

use crate::clock::UnixMs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    ClientRegistered,
    ConsentRequested,
    ConsentApproved,
    ConsentDenied,
    ConsentExpired,
    TokenIssued,
    TokenRefreshed,
    TokenRevoked,
    CodeReplayed,
    RefreshReused,
    GrantRevoked,
    AgentRevoked,
    ToolCall,
    /// A tool call is about to go upstream: made durable (in the calls'
    /// journal, `store/journal.rs`) before it is sent. Its outcome's
    /// `tool_call` event names it (`call_started` in its detail); one with
    /// no outcome is a call whose end was never recorded (Gatehouse stopped
    /// while it ran).
    CallStarted,
    /// An agent read the result of a tool call that ran as a task
    /// (`tasks/result`): the call's `tool_call` event says the task was
    /// created; this one says how it ended.
    TaskResult,
    /// A server sent the agent a request of its own (sampling, elicitation,
    /// roots): relayed, and named here by its method (as the event's tool).
    McpRequest,
    /// A call to an ask-every-time tool is waiting for the person.
    CallHeld,
    /// The person allowed or denied a held call (or nobody answered).
    CallDecided,
    /// A pinned tool's definition changed upstream; the tool is blocked.
    ToolChanged,
    /// The person re-approved (or kept blocked) a changed tool.
    ToolReviewed,
    /// At start, the newest audit events Gatehouse remembered writing were
    /// gone: someone cut the end of the log while it was stopped.
    AuditTruncated,
    /// The config changed while Gatehouse ran: servers added, removed,
    /// changed or disabled.
    ConfigChanged,
    /// The person paused every agent, or one agent: calls are refused.
    Paused,
    /// The person resumed what they had paused.
    Resumed,
    /// A token was presented by another program than the one it was granted to.
    ProgramMismatch,
    /// The person changed a grant in force (other than revoking it).
    GrantChanged,
    /// The person added, changed or removed a rule for an agent.
    RuleChanged,
    /// The oldest events were exported and deleted, as the retention setting
    /// asks: its detail says up to which event (and its seal) and where they went.
    AuditPruned,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ClientRegistered => "client_registered",
            EventKind::ConsentRequested => "consent_requested",
            EventKind::ConsentApproved => "consent_approved",
            EventKind::ConsentDenied => "consent_denied",
            EventKind::ConsentExpired => "consent_expired",
            EventKind::TokenIssued => "token_issued",
            EventKind::TokenRefreshed => "token_refreshed",
            EventKind::TokenRevoked => "token_revoked",
            EventKind::CodeReplayed => "code_replayed",
            EventKind::RefreshReused => "refresh_reused",
            EventKind::GrantRevoked => "grant_revoked",
            EventKind::AgentRevoked => "agent_revoked",
            EventKind::ToolCall => "tool_call",
            EventKind::CallStarted => "call_started",
            EventKind::TaskResult => "task_result",
            EventKind::McpRequest => "mcp_request",
            EventKind::CallHeld => "call_held",
            EventKind::CallDecided => "call_decided",
            EventKind::ToolChanged => "tool_changed",
            EventKind::ToolReviewed => "tool_reviewed",
            EventKind::AuditTruncated => "audit_truncated",
            EventKind::ConfigChanged => "config_changed",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::ProgramMismatch => "program_mismatch",
            EventKind::GrantChanged => "grant_changed",
            EventKind::RuleChanged => "rule_changed",
            EventKind::AuditPruned => "audit_pruned",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }

    /// Whether live listeners (the timeline, `log --follow`) are sent events
    /// of this kind as they are written. A call's start is not: its outcome
    /// follows, and a view of the log shows a start only while it has none.
    pub fn shown_live(self) -> bool {
        self != EventKind::CallStarted
    }

    /// Whether an event of this kind adds to or takes from the person's queue
    /// (a consent request, a held call or a changed tool opened or decided).
    pub fn changes_pending(self) -> bool {
        matches!(
            self,
            EventKind::ConsentRequested
                | EventKind::ConsentApproved
                | EventKind::ConsentDenied
                | EventKind::ConsentExpired
                | EventKind::CallHeld
                | EventKind::CallDecided
                | EventKind::ToolChanged
                | EventKind::ToolReviewed
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allowed,
    Denied,
    Error,
    Revoked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
            Outcome::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// A stored audit event (emitted live to the app and `log --follow`). Absent
/// fields are `null` in JSON, so every event has the same shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct AuditEvent {
    #[ts(type = "number")]
    pub id: i64,
    #[ts(type = "number")]
    pub at: UnixMs,
    pub kind: EventKind,
    pub outcome: Outcome,
    /// The agent (OAuth client) the event is about.
    pub client_id: Option<String>,
    pub agent: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    /// The grant that allowed (or was changed by) this event.
    pub grant_id: Option<String>,
    /// The person who decided, for consent and revocation events.
    pub actor: Option<String>,
    #[ts(type = "number | null")]
    pub duration_ms: Option<i64>,
    /// Event-specific facts, e.g. the redacted argument summary of a tool call.
    #[ts(type = "unknown")]
    pub detail: serde_json::Value,
    /// The seal of the event before it (`audit::chain`).
    pub prev_seal: Option<String>,
    /// This event's seal: a keyed hash over `prev_seal` and its content.
    pub seal: Option<String>,
}

/// The most of a tool's name an event keeps, in bytes. No real tool's name
/// is near it; a longer one an agent made up is cut, so one request cannot
/// put megabytes into the log and its text index.
const MAX_TOOL_BYTES: usize = 256;

/// The most of a text from outside (an upstream's error message, the reason
/// a request was refused, a change to a tool's definition) an event keeps,
/// in bytes: the sender chose its length, the log does not take it whole.
pub const MAX_NOTE_BYTES: usize = 1024;

/// `text` as an event's detail keeps it: cut at [`MAX_NOTE_BYTES`], marked "…".
pub fn note(text: &str) -> String {
    crate::text::cut(text, MAX_NOTE_BYTES)
}

/// A name (a tool's, a method's) as an event keeps it: cut at the bound of
/// a tool's name.
pub fn name(text: &str) -> String {
    crate::text::cut(text, MAX_TOOL_BYTES)
}

/// An event about to be recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewEvent {
    pub kind: EventKind,
    pub outcome: Outcome,
    pub client_id: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub grant_id: Option<String>,
    pub actor: Option<String>,
    pub duration_ms: Option<i64>,
    pub detail: serde_json::Value,
}

impl NewEvent {
    pub fn new(kind: EventKind, outcome: Outcome) -> NewEvent {
        NewEvent {
            kind,
            outcome,
            client_id: None,
            server: None,
            tool: None,
            grant_id: None,
            actor: None,
            duration_ms: None,
            detail: serde_json::Value::Object(Default::default()),
        }
    }
    pub fn client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_string());
        self
    }
    pub fn server(mut self, server: &str) -> Self {
        self.server = Some(server.to_string());
        self
    }
    /// The tool, its name cut at [`MAX_TOOL_BYTES`].
    pub fn tool(mut self, tool: &str) -> Self {
        self.tool = Some(name(tool));
        self
    }
    pub fn grant(mut self, grant_id: &str) -> Self {
        self.grant_id = Some(grant_id.to_string());
        self
    }
    pub fn actor(mut self, actor: &str) -> Self {
        self.actor = Some(actor.to_string());
        self
    }
    pub fn duration_ms(mut self, ms: i64) -> Self {
        self.duration_ms = Some(ms);
        self
    }
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_keeps_a_tools_name_up_to_a_bound() {
        let named = |name: &str| NewEvent::new(EventKind::ToolCall, Outcome::Denied).tool(name);
        assert_eq!(named("read_note").tool.as_deref(), Some("read_note"));
        let made_up = named(&"n".repeat(4 << 20)).tool.unwrap();
        assert_eq!(made_up, format!("{}…", "n".repeat(MAX_TOOL_BYTES)));
    }
}
