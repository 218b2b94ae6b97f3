//! What a fronted server offers: its tools (with risk classes and pins) and
//! whether it has resources and prompts, read from the upstream itself
//! (started just for this when needed) and kept for a minute per server.
#![allow(clippy::disallowed_methods)] // an edge: the cache ages in real time

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::jsonrpc;
use super::pinning::{pin_of, pinned_fields};
use super::upstream::{Connection, Launcher, MessageStream, UpstreamHeaders};
use crate::config::ServerConfig;
use crate::tools::{Risk, ToolInfo};

/// How long a server's tool list is reused for consent requests.
const CATALOG_TTL: Duration = Duration::from_secs(60);
/// Upper bound on starting an upstream and listing its tools.
const CATALOG_TIMEOUT: Duration = Duration::from_secs(30);

/// The servers' last tool lists. One slot per server: a fetch for one server
/// never waits on another's, and concurrent askers for a cold server share one fetch.
#[derive(Default)]
pub struct Catalogs {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// A server's last tool list and when it was read.
type Slot = tokio::sync::Mutex<Option<(Instant, Vec<ToolInfo>)>>;

impl Catalogs {
    /// The server's items, from the cache if fresh, else from the upstream.
    pub async fn get(
        &self,
        config: &ServerConfig,
        launcher: &Launcher,
    ) -> Result<Vec<ToolInfo>, String> {
        let slot = self.slot(&config.name);
        let mut cached = slot.lock().await;
        if let Some((at, tools)) = &*cached {
            if at.elapsed() < CATALOG_TTL {
                return Ok(tools.clone());
            }
        }
        let tools = tokio::time::timeout(CATALOG_TIMEOUT, fetch(config, launcher))
            .await
            .map_err(|_| {
                format!(
                    "server {:?} did not list its tools within {} s",
                    config.name,
                    CATALOG_TIMEOUT.as_secs()
                )
            })??;
        *cached = Some((Instant::now(), tools.clone()));
        Ok(tools)
    }

    /// The cached list, if any and if no fetch is under way (for views that
    /// must not start an upstream or wait for one).
    pub fn cached(&self, server: &str) -> Option<Vec<ToolInfo>> {
        let slot = self.slot(server);
        let cached = slot.try_lock().ok()?;
        cached.as_ref().map(|(_, tools)| tools.clone())
    }

    /// Drops what was listed of a server (its command changed, or it is gone).
    pub fn forget(&self, server: &str) {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(server);
    }

    fn slot(&self, server: &str) -> Arc<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(server.to_string())
            .or_default()
            .clone()
    }
}

/// Reads a tool object from an MCP `tools/list` result.
pub fn tool_info(tool: &Value) -> Option<ToolInfo> {
    let name = tool.get("name")?.as_str()?.to_string();
    let annotations = tool.get("annotations");
    let title = tool
        .get("title")
        .or_else(|| annotations.and_then(|a| a.get("title")))
        .and_then(|t| t.as_str())
        .map(str::to_string);
    let description = tool
        .get("description")
        .and_then(|d| d.as_str())
        .unwrap_or_default()
        .to_string();
    Some(ToolInfo {
        name,
        title,
        description,
        risk: Risk::from_annotations(annotations),
        pin: pin_of(tool),
        definition: pinned_fields(tool),
    })
}

/// Starts the upstream, initializes it and reads what it offers.
async fn fetch(config: &ServerConfig, launcher: &Launcher) -> Result<Vec<ToolInfo>, String> {
    let conn = launcher.open(config).await.map_err(|e| e.to_string())?;
    let result = async {
        let init = json!({"jsonrpc": "2.0", "id": "gatehouse-init", "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")}}});
        let reply = final_message(conn.request(init, &UpstreamHeaders::default()).await.map_err(|e| e.to_string())?).await?;
        let headers = UpstreamHeaders { protocol_version: reply["result"]["protocolVersion"].as_str().map(str::to_string) };
        conn.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}), &headers)
            .await
            .map_err(|e| e.to_string())?;
        let capabilities = &reply["result"]["capabilities"];
        let mut items: Vec<ToolInfo> = list_tools(&conn, &headers).await?.iter().filter_map(tool_info).collect();
        if capabilities.get("resources").is_some() {
            items.push(ToolInfo::resources());
        }
        if capabilities.get("prompts").is_some() {
            items.push(ToolInfo::prompts());
        }
        Ok(items)
    }
    .await;
    conn.close().await;
    result
}

/// Reads every page of `tools/list` through a connection (at most 100 pages).
/// Gatehouse's own request ids are strings that start with `gatehouse-`.
pub async fn list_tools(
    conn: &Connection,
    headers: &UpstreamHeaders,
) -> Result<Vec<Value>, String> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 1..=100 {
        let mut params = json!({});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let id = format!("gatehouse-list-{page}-{}", crate::crypto::short_id(""));
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params});
        let reply = final_message(
            conn.request(request, headers)
                .await
                .map_err(|e| e.to_string())?,
        )
        .await?;
        let result = &reply["result"];
        tools.extend(result["tools"].as_array().into_iter().flatten().cloned());
        cursor = result["nextCursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    Ok(tools)
}

/// The response at the end of a request's messages.
pub async fn final_message(mut rx: MessageStream) -> Result<Value, String> {
    while let Some(m) = rx.recv().await {
        if jsonrpc::is_response(&m) {
            if let Some(e) = m.get("error") {
                return Err(format!(
                    "upstream error: {}",
                    e["message"].as_str().unwrap_or("unknown")
                ));
            }
            return Ok(m);
        }
    }
    Err("upstream closed without answering".into())
}
