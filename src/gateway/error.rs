//! Everything the gateway refuses or fails at, as one enum. Each variant has
//! its HTTP status and its JSON-RPC error here; `crate::http::error` turns it
//! into the response (adding the step-up challenge for `InsufficientScope`).
//!
//! Errors about one request travel in-band (HTTP 200 with a JSON-RPC error
//! answering that request id); errors about the HTTP exchange itself (no
//! JSON-RPC, no session, an unknown session) are HTTP errors with a JSON-RPC body.

use serde_json::Value;

use super::jsonrpc;

#[derive(Debug, Clone, PartialEq)]
pub enum McpError {
    /// The body is not JSON.
    Parse,
    /// A batch, or not a JSON-RPC 2.0 message.
    InvalidMessage(&'static str),
    /// A notification (no `id`) that is not one of MCP's `notifications/…`:
    /// it could not be answered, so it cannot be checked, and it is refused.
    NotANotification { method: String },
    /// A message outside a session, other than `initialize`.
    NoSession { id: Value, message: &'static str },
    /// `initialize` inside a session: it has been initialized (its
    /// instructions checked against the pin) once.
    Initialized { id: Value },
    /// The session id is unknown, ended, or not this agent's.
    SessionNotFound,
    /// No fronted server has this name.
    UnknownServer(String),
    /// The session's server-message stream is taken, or the upstream has none.
    StreamUnavailable,
    /// A method the gateway does not offer (answered at once).
    MethodNotFound { id: Value, message: String },
    /// A request's params are wrong for it (a task that is not the session's).
    InvalidParams { id: Value, message: String },
    /// The grant does not cover this tool (or it is blocked after a change).
    NotGranted { id: Value, message: String },
    /// The person denied a held call, or nobody answered in time.
    CallDenied { id: Value, message: String },
    /// [`super::MAX_WAITING_PER_SESSION`] of the session's requests already
    /// wait on its upstream.
    TooManyWaiting { id: Value },
    /// The upstream failed, exited or timed out.
    UpstreamFailed { id: Value, message: String },
    /// Gatehouse itself failed (its store).
    Internal { id: Value, message: String },
    /// The agent needs more than it was granted: a step-up challenge for this
    /// scope (the union of what it holds and what it asked for).
    InsufficientScope { scope: String, message: String },
}

impl McpError {
    /// The HTTP status of the response that carries this error.
    pub fn status(&self) -> u16 {
        match self {
            McpError::Parse
            | McpError::InvalidMessage(_)
            | McpError::NotANotification { .. }
            | McpError::NoSession { .. }
            | McpError::Initialized { .. } => 400,
            McpError::SessionNotFound | McpError::UnknownServer(_) => 404,
            McpError::StreamUnavailable => 405,
            McpError::InsufficientScope { .. } => 403,
            McpError::MethodNotFound { .. }
            | McpError::InvalidParams { .. }
            | McpError::NotGranted { .. }
            | McpError::CallDenied { .. }
            | McpError::TooManyWaiting { .. }
            | McpError::UpstreamFailed { .. }
            | McpError::Internal { .. } => 200,
        }
    }

    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            McpError::Parse => jsonrpc::PARSE_ERROR,
            McpError::InvalidMessage(_)
            | McpError::NotANotification { .. }
            | McpError::NoSession { .. }
            | McpError::Initialized { .. }
            | McpError::SessionNotFound
            | McpError::UnknownServer(_)
            | McpError::StreamUnavailable => jsonrpc::INVALID_REQUEST,
            McpError::MethodNotFound { .. } => jsonrpc::METHOD_NOT_FOUND,
            McpError::InvalidParams { .. } => jsonrpc::INVALID_PARAMS,
            McpError::NotGranted { .. } | McpError::InsufficientScope { .. } => {
                jsonrpc::NOT_GRANTED
            }
            McpError::CallDenied { .. } => jsonrpc::CALL_DENIED,
            McpError::TooManyWaiting { .. } => jsonrpc::TOO_MANY_WAITING,
            McpError::UpstreamFailed { .. } => jsonrpc::UPSTREAM_FAILED,
            McpError::Internal { .. } => jsonrpc::INTERNAL_ERROR,
        }
    }

    pub fn message(&self) -> String {
        match self {
            McpError::Parse => "body is not valid JSON".into(),
            McpError::InvalidMessage(m) => (*m).into(),
            McpError::NoSession { message, .. } => (*message).into(),
            McpError::Initialized { .. } => {
                "this session is already initialized: to start another, send initialize without Mcp-Session-Id".into()
            }
            McpError::NotANotification { method }
                if method.starts_with("notifications/") || !super::policy::governs(method) =>
            {
                format!("{method:?} is not a notification MCP gives clients: Gatehouse does not pass it on")
            }
            McpError::NotANotification { method } => format!(
                "{method:?} was sent without an id; send it as a request: Gatehouse checks it against the grant and answers it"
            ),
            McpError::SessionNotFound => {
                "session not found: it ended or belongs to someone else; initialize a new one".into()
            }
            McpError::UnknownServer(name) => format!("no MCP server named {name:?}"),
            McpError::StreamUnavailable => {
                "no server-message stream: one is already open for this session, or the server offers none".into()
            }
            McpError::TooManyWaiting { .. } => format!(
                "{} requests of this session already wait on the server: send this one again when one is answered",
                super::MAX_WAITING_PER_SESSION
            ),
            McpError::MethodNotFound { message, .. }
            | McpError::InvalidParams { message, .. }
            | McpError::NotGranted { message, .. }
            | McpError::CallDenied { message, .. }
            | McpError::UpstreamFailed { message, .. }
            | McpError::Internal { message, .. }
            | McpError::InsufficientScope { message, .. } => message.clone(),
        }
    }

    /// The request id the error answers (`null` when it answers none).
    pub fn id(&self) -> Value {
        match self {
            McpError::NoSession { id, .. }
            | McpError::Initialized { id }
            | McpError::MethodNotFound { id, .. }
            | McpError::InvalidParams { id, .. }
            | McpError::NotGranted { id, .. }
            | McpError::CallDenied { id, .. }
            | McpError::TooManyWaiting { id }
            | McpError::UpstreamFailed { id, .. }
            | McpError::Internal { id, .. } => id.clone(),
            _ => Value::Null,
        }
    }

    /// The JSON-RPC error message (also what goes down a stream of messages).
    pub fn to_message(&self) -> Value {
        jsonrpc::error(self.id(), self.code(), self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn in_band_errors_answer_their_request() {
        let e = McpError::CallDenied {
            id: json!(7),
            message: "no".into(),
        };
        assert_eq!(e.status(), 200);
        assert_eq!(
            e.to_message(),
            json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32003, "message": "no"}})
        );
        assert_eq!(McpError::Parse.to_message()["error"]["code"], -32700);
        assert_eq!(McpError::Parse.status(), 400);
        assert_eq!(McpError::SessionNotFound.status(), 404);
    }
}
