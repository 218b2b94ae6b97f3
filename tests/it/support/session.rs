//! An open MCP session: one agent's requests on one server, with its token.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

/// An open MCP session of one agent on one server.
pub struct Session {
    http: reqwest::Client,
    url: String,
    pub token: String,
    pub id: String,
    /// Shared with its copies ([`Session::with_token`]): ids stay unique.
    next_id: Arc<AtomicI64>,
}

impl Session {
    pub fn new(http: reqwest::Client, url: String, token: &str, id: String) -> Session {
        Session {
            http,
            url,
            token: token.to_string(),
            id,
            next_id: Arc::new(AtomicI64::new(2)),
        }
    }

    /// One JSON-RPC request: (HTTP status, body; `null` if it is not JSON).
    pub async fn request(&self, method: &str, params: Value) -> (u16, Value) {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let r = self.post(&body).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A request that must be answered 200: its body.
    pub async fn ok(&self, method: &str, params: Value) -> Value {
        let (status, body) = self.request(method, params).await;
        assert_eq!(status, 200, "{method}: {body}");
        body
    }

    /// `tools/call`: (HTTP status, body).
    pub async fn call(&self, tool: &str, arguments: Value) -> (u16, Value) {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }

    /// The text of a successful tool call.
    pub async fn call_text(&self, tool: &str, arguments: Value) -> String {
        let (status, body) = self.call(tool, arguments).await;
        assert_eq!(status, 200, "{body}");
        body["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text in {body}"))
            .to_string()
    }

    /// The names `tools/list` shows.
    pub async fn tool_names(&self) -> Vec<String> {
        let list = self.ok("tools/list", json!({})).await;
        list["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tools in {list}"))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// A raw POST on this session (any body).
    pub async fn post(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.id)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The session's GET stream of server messages.
    pub async fn open_stream(&self) -> reqwest::Response {
        self.http
            .get(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &self.id)
            .send()
            .await
            .unwrap()
    }

    /// Ends the session (DELETE).
    pub async fn end(&self) -> reqwest::Response {
        self.http
            .delete(&self.url)
            .bearer_auth(&self.token)
            .header("mcp-session-id", &self.id)
            .send()
            .await
            .unwrap()
    }

    /// The same session, used with another token (a refreshed one, or another agent's).
    pub fn with_token(&self, token: &str) -> Session {
        Session {
            http: self.http.clone(),
            url: self.url.clone(),
            token: token.to_string(),
            id: self.id.clone(),
            next_id: self.next_id.clone(),
        }
    }

    /// A `tools/call` sent in the background (for calls that wait for the person).
    pub fn call_later(&self, tool: &str, arguments: Value) -> tokio::task::JoinHandle<Value> {
        let session = self.with_token(&self.token);
        let (tool, arguments) = (tool.to_string(), arguments);
        tokio::spawn(async move { session.call(&tool, arguments).await.1 })
    }
}
