//! What a fronted server offers: its tools (with risk classes and pins) and
//! whether it has resources and prompts, read from the upstream itself.

use serde_json::{json, Value};

use super::jsonrpc;
use super::upstream::{Connection, Launcher, MessageStream, UpstreamHeaders};
use crate::config::ServerConfig;
use crate::scope::ToolInfo;

/// Starts the upstream, initializes it and reads what it offers.
pub async fn fetch(config: &ServerConfig, launcher: &Launcher) -> Result<Vec<ToolInfo>, String> {
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
        let mut items: Vec<ToolInfo> = list_tools(&conn, &headers).await?.iter().filter_map(ToolInfo::from_mcp).collect();
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
        let id = format!("gatehouse-list-{page}-{}", crate::secret::short_id(""));
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
