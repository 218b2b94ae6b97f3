//! JSON-RPC 2.0 message shapes as MCP uses them.

use serde_json::{json, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Gatehouse: the grant does not cover this tool.
pub const NOT_GRANTED: i64 = -32001;
/// Gatehouse: the upstream server failed, exited or timed out.
pub const UPSTREAM_FAILED: i64 = -32002;
/// Gatehouse: the user denied a held (ask-every-time) call, or nobody answered.
pub const CALL_DENIED: i64 = -32003;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Request { id: Value, method: String },
    Notification { method: String },
    Response { id: Value },
}

/// Classifies a message; `None` when it is not valid JSON-RPC 2.0.
pub fn classify(msg: &Value) -> Option<Kind> {
    let obj = msg.as_object()?;
    if obj.get("jsonrpc")?.as_str()? != "2.0" {
        return None;
    }
    let id = obj
        .get("id")
        .filter(|id| id.is_string() || id.is_i64() || id.is_u64());
    match (obj.get("method"), id) {
        (Some(Value::String(m)), Some(id)) => Some(Kind::Request {
            id: id.clone(),
            method: m.clone(),
        }),
        (Some(Value::String(m)), None) if !obj.contains_key("id") => {
            Some(Kind::Notification { method: m.clone() })
        }
        (None, Some(id)) if obj.contains_key("result") || obj.contains_key("error") => {
            Some(Kind::Response { id: id.clone() })
        }
        _ => None,
    }
}

pub fn is_response(msg: &Value) -> bool {
    matches!(classify(msg), Some(Kind::Response { .. }))
}

pub fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

/// A key for matching a response to its request (ids may be numbers or strings).
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        assert!(matches!(
            classify(&json!({"jsonrpc":"2.0","id":1,"method":"ping"})),
            Some(Kind::Request { .. })
        ));
        assert!(matches!(
            classify(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
            Some(Kind::Notification { .. })
        ));
        assert!(matches!(
            classify(&json!({"jsonrpc":"2.0","id":"a","result":{}})),
            Some(Kind::Response { .. })
        ));
        assert_eq!(classify(&json!({"id":1,"method":"ping"})), None);
        assert_eq!(
            classify(&json!({"jsonrpc":"2.0","id":{"x":1},"method":"ping"})),
            None
        );
        assert_eq!(
            classify(&json!({"jsonrpc":"2.0","id":null,"method":"ping"})),
            None
        );
        assert_eq!(classify(&json!([1, 2])), None);
    }
}
