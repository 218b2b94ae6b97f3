//! What a fronted server offers: its tools (with risk classes and pins) and
//! whether it has resources and prompts, read from the upstream itself
//! (started just for this when needed) and kept for a minute per server.
#![allow(clippy::disallowed_methods)] // an edge: the cache ages in real time

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::own_session::OwnSession;
use super::pinning::{pin_of, pinned_fields};
use super::upstream::Launcher;
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
        let own = OwnSession::open(&conn).await?;
        let capabilities = &own.capabilities;
        let mut items: Vec<ToolInfo> = own
            .list_tools()
            .await?
            .iter()
            .filter_map(tool_info)
            .collect();
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

/// Calls one tool of a server as Gatehouse itself (not for an agent: the
/// conformance client of `gatehouse conformance-client`, which checks
/// Gatehouse's login at remote servers). Returns the response.
pub async fn call_as_gatehouse(
    config: &ServerConfig,
    launcher: &Launcher,
    tool: &str,
    arguments: Value,
) -> Result<Value, String> {
    let conn = launcher.open(config).await.map_err(|e| e.to_string())?;
    let result = async {
        let own = OwnSession::open(&conn).await?;
        own.ask(
            "gatehouse-call",
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
        )
        .await
    }
    .await;
    conn.close().await;
    result
}
