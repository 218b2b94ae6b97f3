//! Gatehouse's own requests to a server (to read what it offers, or for the
//! conformance client), spoken in the server's era of MCP:
//!
//! - **legacy** (2025-11-25 and earlier): a session opened with
//!   `initialize` and `notifications/initialized`;
//! - **modern** (2026-07-28): no handshake; every request carries its
//!   protocol version and client capabilities in `_meta`, mirrored in the
//!   `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers.
//!
//! The era is found with one request: `initialize` offering the newest
//! legacy revision, with the modern `_meta` envelope too (which legacy
//! servers ignore). A legacy server answers it; a modern-only one refuses it
//! with an unsupported-version error that lists the versions it speaks.
//! (The spec suggests probing with `server/discover` first on stdio;
//! Gatehouse starts with `initialize` because nearly every server today is
//! legacy, and a legacy server may be left in an undefined state by a probe.)
//!
//! Agents' own sessions are forwarded as they are (see `request`); this
//! module is only for what Gatehouse asks itself.

use super::pinning::pinned_instructions;
use crate::tools::Instructions;
use std::time::Duration;

use serde_json::{json, Value};

use super::upstream::{Connection, MessageStream, UpstreamHeaders};

/// The newest legacy revision Gatehouse speaks.
const LEGACY_VERSION: &str = "2025-11-25";
/// The modern revisions Gatehouse speaks, newest first.
const MODERN_VERSIONS: &[&str] = &["2026-07-28"];
/// How long Gatehouse waits for the answer to one of its own requests, unless
/// told otherwise ([`OwnSession::patience`]): a server that never answers
/// must not hold what waits on it for ever.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

fn client_info() -> Value {
    json!({"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")})
}

/// A conversation of Gatehouse's own with one server.
pub struct OwnSession<'c> {
    conn: &'c Connection,
    /// The modern revision in use, or `None` for a legacy session.
    modern: Option<&'static str>,
    /// For a legacy session: the headers of the negotiated version.
    headers: UpstreamHeaders,
    /// What the server said it offers.
    pub capabilities: Value,
    /// What the server tells its clients' models (`None` inside an agent's session).
    pub instructions: Option<Instructions>,
    /// How long each answer may take.
    patience: Duration,
}

impl<'c> OwnSession<'c> {
    /// Opens a conversation with a server in its era.
    pub async fn open(conn: &'c Connection) -> Result<OwnSession<'c>, String> {
        let init = json!({"jsonrpc": "2.0", "id": "gatehouse-init", "method": "initialize", "params": {
            "protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": client_info(),
            "_meta": envelope(LEGACY_VERSION)}});
        let offered = UpstreamHeaders {
            protocol_version: Some(LEGACY_VERSION.into()),
            ..UpstreamHeaders::default()
        };
        let stream = conn
            .request(init, &offered)
            .await
            .map_err(|e| e.to_string())?;
        let reply = final_reply(stream, "gatehouse-init").await?;
        if let Some(version) = modern_version_in(&reply) {
            let mut session = OwnSession {
                conn,
                modern: Some(version),
                headers: UpstreamHeaders::default(),
                capabilities: Value::Null,
                instructions: None,
                patience: ANSWER_TIMEOUT,
            };
            let discovered = session
                .ask("gatehouse-discover", "server/discover", json!({}))
                .await?;
            session.capabilities = discovered["result"]["capabilities"].clone();
            session.instructions = Some(pinned_instructions(&discovered["result"]));
            return Ok(session);
        }
        let reply = success(reply)?;
        let headers = UpstreamHeaders {
            protocol_version: reply["result"]["protocolVersion"]
                .as_str()
                .map(str::to_string),
            ..UpstreamHeaders::default()
        };
        conn.send(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            &headers,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(OwnSession {
            conn,
            modern: None,
            headers,
            capabilities: reply["result"]["capabilities"].clone(),
            instructions: Some(pinned_instructions(&reply["result"])),
            patience: ANSWER_TIMEOUT,
        })
    }

    /// Gatehouse's own requests inside an agent's (legacy) session.
    pub fn within(conn: &'c Connection, headers: &UpstreamHeaders) -> OwnSession<'c> {
        OwnSession {
            conn,
            modern: None,
            headers: headers.clone(),
            capabilities: Value::Null,
            instructions: None,
            patience: ANSWER_TIMEOUT,
        }
    }

    /// Waits at most `patience` for each answer (an agent's call that waits
    /// on it: its own deadline).
    pub fn patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// Sends one request and returns the server's successful response.
    /// Gatehouse's own request ids are strings that start with
    /// [`crate::gateway::jsonrpc::OWN_ID_PREFIX`] (`gatehouse-`).
    pub async fn ask(&self, id: &str, method: &str, mut params: Value) -> Result<Value, String> {
        let mut headers = self.headers.clone();
        if let Some(version) = self.modern {
            params["_meta"] = envelope(version);
            headers = UpstreamHeaders {
                protocol_version: Some(version.into()),
                method: Some(method.into()),
                name: params["name"]
                    .as_str()
                    .or(params["uri"].as_str())
                    .map(str::to_string),
            };
        }
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answered = async {
            let stream = self.conn.request(request, &headers).await;
            final_reply(stream.map_err(|e| e.to_string())?, id).await
        };
        match tokio::time::timeout(self.patience, answered).await {
            Ok(reply) => success(reply?),
            Err(_) => {
                self.conn.abandon(&json!(id));
                Err(format!(
                    "the server did not answer {method} within {} s",
                    self.patience.as_secs_f64()
                ))
            }
        }
    }

    /// Reads every page of `tools/list` (at most 100 pages).
    pub async fn list_tools(&self) -> Result<Vec<Value>, String> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for page in 1..=100 {
            let mut params = json!({});
            if let Some(c) = &cursor {
                params["cursor"] = json!(c);
            }
            let id = format!("gatehouse-list-{page}-{}", crate::crypto::short_id(""));
            let reply = self.ask(&id, "tools/list", params).await?;
            let result = &reply["result"];
            tools.extend(result["tools"].as_array().into_iter().flatten().cloned());
            cursor = result["nextCursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }
}

/// The `_meta` a modern request carries.
fn envelope(version: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": client_info(),
    })
}

/// The modern revision to use when the answer is an unsupported-version
/// error whose list of supported versions has one Gatehouse speaks.
fn modern_version_in(reply: &Value) -> Option<&'static str> {
    let supported = reply["error"]["data"]["supported"].as_array()?;
    MODERN_VERSIONS
        .iter()
        .copied()
        .find(|v| supported.iter().any(|s| s == v))
}

/// The answer to Gatehouse's own request `id`, success or error. A response
/// carrying any other id (a server's stray or replayed answer) is not taken
/// for it: it is skipped with a warning, and the wait goes on.
async fn final_reply(mut rx: MessageStream, id: &str) -> Result<Value, String> {
    while let Some(m) = rx.recv().await {
        match m.response_id() {
            Some(answered) if answered.as_str() == Some(id) => return Ok(m.into_value()),
            Some(other) => tracing::warn!(
                ours = id,
                answered = %crate::gateway::jsonrpc::id_key(&other).escape_debug(),
                "a server answered a request Gatehouse did not send; ignored"
            ),
            None => {}
        }
    }
    Err("upstream closed without answering".into())
}

/// A successful response, or its error as text.
fn success(reply: Value) -> Result<Value, String> {
    match reply.get("error") {
        Some(e) => Err(format!(
            "upstream error: {}",
            e["message"].as_str().unwrap_or("unknown")
        )),
        None => Ok(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unsupported_version_error_naming_a_modern_version_switches_eras() {
        let refused = |supported: Value| {
            json!({"jsonrpc": "2.0", "id": "gatehouse-init", "error": {"code": -32022,
                "message": "Unsupported protocol version",
                "data": {"supported": supported, "requested": "2025-11-25"}}})
        };
        assert_eq!(
            modern_version_in(&refused(json!(["2026-07-28"]))),
            Some("2026-07-28")
        );
        assert_eq!(
            modern_version_in(&refused(json!(["2099-01-01", "2026-07-28"]))),
            Some("2026-07-28")
        );
        assert_eq!(modern_version_in(&refused(json!(["2099-01-01"]))), None);
        assert_eq!(modern_version_in(&refused(json!("2026-07-28"))), None);
        let legacy = json!({"jsonrpc": "2.0", "id": "gatehouse-init",
            "result": {"protocolVersion": "2025-06-18", "capabilities": {}}});
        assert_eq!(modern_version_in(&legacy), None);
        let other = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32600, "message": "no"}});
        assert_eq!(modern_version_in(&other), None);
    }

    #[tokio::test]
    async fn an_answer_to_another_request_is_not_taken_for_ours() {
        let (tx, rx) = crate::gateway::upstream::message_channel();
        let stray = json!({"jsonrpc": "2.0", "id": "gatehouse-init", "result": {"forged": true}});
        let ours = json!({"jsonrpc": "2.0", "id": "gatehouse-list-1", "result": {"tools": []}});
        let note = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}});
        for m in [stray, note, ours.clone()] {
            assert!(tx.send(m.into(), Some(64)).await);
        }
        drop(tx);
        assert_eq!(final_reply(rx, "gatehouse-list-1").await, Ok(ours));

        let (tx, rx) = crate::gateway::upstream::message_channel();
        let numeric = json!({"jsonrpc": "2.0", "id": 7, "result": {}});
        assert!(tx.send(numeric.into(), Some(64)).await);
        drop(tx);
        assert!(final_reply(rx, "gatehouse-init").await.is_err());
    }
}
