//! The audit event model. Every grant, denial, token issue, refresh,
//! revocation, replay and tool call is an [`AuditEvent`], written by
//! [`crate::store::Tx::record`] inside the transaction of the change it
//! records, and published to live listeners only after that commit.

use serde::{Deserialize, Serialize};

use crate::clock::UnixMs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    McpRequest,
    /// A call to an ask-every-time tool is waiting for the person.
    CallHeld,
    /// The person allowed or denied a held call (or nobody answered).
    CallDecided,
    /// A pinned tool's definition changed upstream; the tool is blocked.
    ToolChanged,
    /// The person re-approved (or kept blocked) a changed tool.
    ToolReviewed,
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
            EventKind::McpRequest => "mcp_request",
            EventKind::CallHeld => "call_held",
            EventKind::CallDecided => "call_decided",
            EventKind::ToolChanged => "tool_changed",
            EventKind::ToolReviewed => "tool_reviewed",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: UnixMs,
    pub kind: EventKind,
    pub outcome: Outcome,
    /// The agent (OAuth client) the event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The grant that allowed (or was changed by) this event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// The person who decided, for consent and revocation events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    pub detail: serde_json::Value,
}

/// An event about to be recorded.
#[derive(Debug, Clone)]
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
    pub fn tool(mut self, tool: &str) -> Self {
        self.tool = Some(tool.to_string());
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

/// Keys whose values are never written to the audit log.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "authorization",
        "cookie",
        "api_key",
        "apikey",
        "credential",
        "private_key",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// A size-capped summary of tool arguments with secret-looking values redacted.
pub fn summarize_arguments(args: &serde_json::Value, max_bytes: usize) -> serde_json::Value {
    fn redact(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if is_secret_key(k) {
                            serde_json::json!("[redacted]")
                        } else {
                            redact(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(redact).collect())
            }
            other => other.clone(),
        }
    }
    let redacted = redact(args);
    let text = redacted.to_string();
    if text.len() <= max_bytes {
        redacted
    } else {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        serde_json::json!({ "truncated": format!("{}…", &text[..cut]), "bytes": text.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argument_summary_redacts_and_caps() {
        let s = summarize_arguments(&json!({"path": "a", "nested": {"api_token": "xyz"}}), 1024);
        assert_eq!(
            s,
            json!({"path": "a", "nested": {"api_token": "[redacted]"}})
        );
        let big = json!({"text": "x".repeat(5000)});
        let s = summarize_arguments(&big, 100);
        assert_eq!(s["bytes"], json!(5011));
        assert!(s["truncated"].as_str().unwrap().len() < 120);
    }
}
