//! JSON-RPC 2.0 message shapes as MCP uses them.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
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
/// Gatehouse: too many of the session's requests are waiting on the server.
pub const TOO_MANY_WAITING: i64 = -32004;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Request { id: Value, method: String },
    Notification { method: String },
    Response { id: Value },
}

/// Classifies a message; `None` when it is not valid JSON-RPC 2.0. A
/// request or notification carries no `result` or `error`, and a response
/// exactly one of them: a message that is both would be relayed as one kind
/// and read as the other (an answer that passed no filter).
pub fn classify(msg: &Value) -> Option<Kind> {
    let obj = msg.as_object()?;
    if obj.get("jsonrpc")?.as_str()? != "2.0" {
        return None;
    }
    let id = obj
        .get("id")
        .filter(|id| id.is_string() || id.is_i64() || id.is_u64());
    let (result, error) = (obj.contains_key("result"), obj.contains_key("error"));
    match (obj.get("method"), id) {
        _ if result && error => None,
        (Some(_), _) if result || error => None,
        (Some(Value::String(m)), Some(id)) => Some(Kind::Request {
            id: id.clone(),
            method: m.clone(),
        }),
        (Some(Value::String(m)), None) if !obj.contains_key("id") => {
            Some(Kind::Notification { method: m.clone() })
        }
        (None, Some(id)) if result || error => Some(Kind::Response { id: id.clone() }),
        _ => None,
    }
}

pub fn is_response(msg: &Value) -> bool {
    matches!(classify(msg), Some(Kind::Response { .. }))
}

pub fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

/// How Gatehouse's own requests to a server begin their (string) ids.
pub const OWN_ID_PREFIX: &str = "gatehouse-";

/// Whether a request key ([`id_key`]) is one of Gatehouse's own requests.
pub fn is_own_key(key: &str) -> bool {
    key.strip_prefix('"')
        .is_some_and(|k| k.starts_with(OWN_ID_PREFIX))
}

/// A key for matching a response to its request (ids may be numbers or strings).
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

/// A message on its way from an upstream to the agent. A response is kept
/// as the text the upstream sent (checked, when it was read, to be one
/// well-formed JSON-RPC response), so an answer that passes through unchanged
/// is neither parsed into a tree nor written out again; whatever must look
/// inside it parses it then. Everything else is parsed as it is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Parsed(Value),
    Response {
        id: Value,
        text: Box<str>,
        spans: Spans,
    },
}

/// Where each top-level member's value lies in a response's text, as the
/// scan that read it found them: a member is then read without scanning the
/// rest again. Empty for a response Gatehouse wrote (found when asked).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spans(Box<[(Box<str>, std::ops::Range<usize>)]>);

impl From<Value> for Message {
    fn from(v: Value) -> Message {
        Message::Parsed(v)
    }
}

impl Message {
    /// Reads one message an upstream sent; `None` when it is not JSON. A
    /// response is kept as text only when its envelope is unambiguous (no
    /// repeated member, `"jsonrpc": "2.0"`, a string or integer id, a result
    /// or an error, no method); anything else is parsed and judged as before.
    pub fn read(bytes: &[u8]) -> Option<Message> {
        let json_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
        let text = std::str::from_utf8(bytes)
            .ok()
            .map(|t| t.trim_matches(json_space));
        if let Some(response) = text.and_then(Message::as_response) {
            return Some(response);
        }
        serde_json::from_slice(bytes).ok().map(Message::Parsed)
    }

    fn as_response(text: &str) -> Option<Message> {
        let Envelope(members) = serde_json::from_str(text).ok()?;
        let member = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        let answers = member("result").is_some() != member("error").is_some();
        let is_response = member("jsonrpc")?.get() == "\"2.0\"" && member("method").is_none();
        if !(answers && is_response) {
            return None;
        }
        let id: Value = serde_json::from_str(member("id")?.get()).ok()?;
        if !(id.is_string() || id.is_i64() || id.is_u64()) {
            return None;
        }
        // Each value is a slice of `text`: its place is its distance from the start.
        let spans = members.iter().map(|(name, raw)| {
            let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
            (name.as_str().into(), start..start + raw.get().len())
        });
        Some(Message::Response {
            id,
            text: text.into(),
            spans: Spans(spans.collect()),
        })
    }

    /// A response Gatehouse wrote (its members found when first asked for).
    pub fn response(id: Value, text: String) -> Message {
        Message::Response {
            id,
            text: text.into(),
            spans: Spans::default(),
        }
    }

    pub fn is_response(&self) -> bool {
        match self {
            Message::Parsed(v) => is_response(v),
            Message::Response { .. } => true,
        }
    }

    /// The method of a request the server sends the agent (sampling,
    /// elicitation, roots…); `None` for anything else.
    pub fn server_request(&self) -> Option<&str> {
        let Message::Parsed(v) = self else {
            return None;
        };
        v.get("id")?;
        v.get("method")?.as_str()
    }

    /// Whether it is a request or a notification from the server.
    pub fn is_server_message(&self) -> bool {
        match self {
            Message::Parsed(v) => matches!(
                classify(v),
                Some(Kind::Request { .. } | Kind::Notification { .. })
            ),
            Message::Response { .. } => false,
        }
    }

    /// The id of the request this message answers, if it is a response.
    pub fn response_id(&self) -> Option<Cow<'_, Value>> {
        match self {
            Message::Parsed(v) => match classify(v) {
                Some(Kind::Response { id }) => Some(Cow::Owned(id)),
                _ => None,
            },
            Message::Response { id, .. } => Some(Cow::Borrowed(id)),
        }
    }

    /// Whether it is an answer with a result (not an error).
    pub fn has_result(&self) -> bool {
        self.member::<serde::de::IgnoredAny>("result").is_some()
    }

    /// One top-level member, read as `T` without parsing the others.
    pub fn member<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Option<serde_json::Result<T>> {
        match self {
            Message::Parsed(v) => v.get(name).map(T::deserialize),
            Message::Response { .. } => Some(serde_json::from_str(self.member_text(name)?)),
        }
    }

    /// One top-level member of a response kept as text, as the upstream
    /// wrote it; `None` for a parsed message, or a response without it.
    pub fn member_text(&self, name: &str) -> Option<&str> {
        let Message::Response { text, spans, .. } = self else {
            return None;
        };
        if spans.0.is_empty() {
            let (_, raw) = members(text)?.into_iter().find(|(k, _)| k == name)?;
            return Some(raw.get());
        }
        let (_, span) = spans.0.iter().find(|(k, _)| &**k == name)?;
        text.get(span.clone())
    }

    /// The names of a response's top-level members, in order (`None` for a
    /// parsed message, or a response Gatehouse wrote).
    pub fn member_names(&self) -> Option<impl Iterator<Item = &str>> {
        match self {
            Message::Response { spans, .. } if !spans.0.is_empty() => {
                Some(spans.0.iter().map(|(name, _)| &**name))
            }
            _ => None,
        }
    }

    /// The message as a tree, parsed now if it was kept as text. Text that
    /// a tree cannot hold (the scan when it was read is more lenient: a lone
    /// surrogate, a number out of range) reads as an error answer.
    pub fn into_value(self) -> Value {
        match self {
            Message::Parsed(v) => v,
            Message::Response { id, text, .. } => {
                serde_json::from_str(&text).unwrap_or_else(|_| {
                    let why = "the server's answer is not JSON Gatehouse can read";
                    error(id, UPSTREAM_FAILED, why)
                })
            }
        }
    }

    pub fn into_text(self) -> String {
        match self {
            Message::Parsed(v) => v.to_string(),
            Message::Response { text, .. } => text.into(),
        }
    }

    /// The message as JSON text, as it goes to the agent.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Message::Parsed(v) => Cow::Owned(v.to_string()),
            Message::Response { text, .. } => Cow::Borrowed(text),
        }
    }
}

/// A JSON object's members as written, each value unparsed; a member named
/// twice makes it unreadable (parsers disagree on which one counts).
struct Envelope<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Envelope<'de>, A::Error> {
                let mut members = Vec::new();
                read_members(map, |name, map| {
                    members.push((name, map.next_value()?));
                    Ok(())
                })?;
                Ok(Envelope(members))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Reads a JSON object's members as written (see [`Envelope`]); `None` when
/// the text is not one object or names a member twice.
pub fn members(text: &str) -> Option<Vec<(String, &RawValue)>> {
    serde_json::from_str::<Envelope>(text).ok().map(|e| e.0)
}

/// Reads a JSON object member by member: `read` gets each name and reads its
/// value from `map`. A member named twice is refused.
pub fn read_members<'de, A: MapAccess<'de>>(
    mut map: A,
    mut read: impl FnMut(String, &mut A) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    let mut names = std::collections::HashSet::new();
    while let Some(name) = map.next_key::<String>()? {
        if !names.insert(name.clone()) {
            return Err(serde::de::Error::custom("a member is named twice"));
        }
        read(name, &mut map)?;
    }
    Ok(())
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
        // Both a request (or notification) and an answer, or an answer twice
        // over: a client could take it for either, so it is neither.
        for both in [
            json!({"jsonrpc":"2.0","id":1,"method":"x","result":{"tools":[]}}),
            json!({"jsonrpc":"2.0","id":1,"method":"x","error":{"code":1,"message":"m"}}),
            json!({"jsonrpc":"2.0","method":"x","result":{}}),
            json!({"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}),
        ] {
            assert_eq!(classify(&both), None, "{both}");
        }
    }

    #[test]
    fn a_kept_responses_members_are_read_where_its_scan_found_them() {
        let text = " \n{\"jsonrpc\":\"2.0\", \"result\" : {\"a\": [1, 2]} ,\"id\":3}\n";
        let msg = Message::read(text.as_bytes()).unwrap();
        assert!(matches!(&msg, Message::Response { spans, .. } if spans.0.len() == 3));
        assert_eq!(msg.member_text("result"), Some("{\"a\": [1, 2]}"));
        assert_eq!(msg.member_text("id"), Some("3"));
        assert_eq!(msg.member_text("error"), None);
        let names: Vec<&str> = msg.member_names().unwrap().collect();
        assert_eq!(names, ["jsonrpc", "result", "id"]);
        // One Gatehouse wrote is scanned when asked.
        let written = Message::response(json!(3), r#"{"jsonrpc":"2.0","id":3,"result":{}}"#.into());
        assert_eq!(written.member_text("result"), Some("{}"));
        assert!(written.member_names().is_none());
    }

    #[test]
    fn keeps_a_plain_response_as_its_text() {
        let text = r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[]}}"#;
        let msg = Message::read(format!("{text}\n").as_bytes()).unwrap();
        let Message::Response { id, text: kept, .. } = &msg else {
            panic!("{msg:?}");
        };
        assert_eq!((id, &**kept), (&json!(7), text));
        assert!(msg.is_response());
        assert_eq!(msg.text(), text);
        assert_eq!(
            msg.into_value(),
            json!({"jsonrpc":"2.0","id":7,"result":{"tools":[]}})
        );
    }

    #[test]
    fn parses_what_is_not_plainly_a_response() {
        for text in [
            // a member named twice: parsers disagree on which one counts
            r#"{"jsonrpc":"2.0","id":1,"result":{},"id":2}"#,
            // no id, a null id, a method, another version, a "2.0" spelled with an escape
            r#"{"jsonrpc":"2.0","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":null,"result":{}}"#,
            r#"{"jsonrpc":"1.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"\u0032.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            // a result and an error, or a method with a result
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","result":{"tools":[]}}"#,
            r#"[1,2]"#,
        ] {
            let msg = Message::read(text.as_bytes()).unwrap();
            let parsed: Value = serde_json::from_str(text).unwrap();
            assert_eq!(msg.is_response(), is_response(&parsed), "{text}");
            assert_eq!(msg, Message::Parsed(parsed), "{text}");
        }
        assert_eq!(Message::read(b"{\"jsonrpc\":"), None);
        // Trailing whitespace JSON does not allow keeps the message out.
        assert_eq!(
            Message::read("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\u{a0}".as_bytes()),
            None
        );
        assert_eq!(Message::read(b"not json"), None);
    }

    #[test]
    fn text_a_tree_cannot_hold_reads_as_an_error() {
        // The scan that keeps a response as text lets these through; a tree does not.
        for member in [r#""\ud800""#, "1e400"] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":4,"result":{{"x":{member}}}}}"#);
            let msg = Message::read(text.as_bytes()).unwrap();
            assert!(matches!(msg, Message::Response { .. }), "{text}");
            let value = msg.into_value();
            assert_eq!(value["id"], 4);
            assert_eq!(value["error"]["code"], UPSTREAM_FAILED, "{value}");
        }
    }
}
