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
use crate::tools::{Instructions, Risk, ToolInfo};

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

/// A server's last offer, and the lock held while it is being read anew.
#[derive(Default)]
struct Slot {
    /// The last offer (items and instructions, from one read) and when it
    /// was read; never held across an await.
    last: Mutex<Option<(Instant, Offer)>>,
    /// Held while the upstream is listed, so concurrent askers share one fetch.
    fetching: tokio::sync::Mutex<()>,
}

impl Slot {
    fn last(&self) -> Option<Offer> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref().map(|(_, offer)| offer.clone())
    }

    fn fresh(&self) -> Option<Offer> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match &*last {
            Some((at, offer)) if at.elapsed() < CATALOG_TTL => Some(offer.clone()),
            _ => None,
        }
    }

    fn keep(&self, offer: Offer) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), offer));
    }
}

impl Catalogs {
    /// The server's items, from the cache if fresh, else from the upstream.
    pub async fn get(
        &self,
        config: &ServerConfig,
        launcher: &Launcher,
    ) -> Result<Vec<ToolInfo>, String> {
        Ok(self.offer(config, launcher).await?.0)
    }

    /// [`Catalogs::get`], with the server's instructions from the same read.
    pub async fn offer(&self, config: &ServerConfig, launcher: &Launcher) -> Result<Offer, String> {
        let slot = self.slot(&config.name);
        if let Some(offer) = slot.fresh() {
            return Ok(offer);
        }
        let _fetching = slot.fetching.lock().await;
        // Whoever held the lock before may have just read it.
        if let Some(offer) = slot.fresh() {
            return Ok(offer);
        }
        let offer = tokio::time::timeout(CATALOG_TIMEOUT, fetch(config, launcher))
            .await
            .map_err(|_| {
                format!(
                    "server {:?} did not list its tools within {} s",
                    config.name,
                    CATALOG_TIMEOUT.as_secs()
                )
            })??;
        slot.keep(offer.clone());
        Ok(offer)
    }

    /// The last list read, however old; listed from the upstream only when
    /// there is none. For hints (a challenge's `scope`, the metadata's
    /// `scopes_supported`) that must not wait for an upstream to start again.
    pub async fn last_or_get(
        &self,
        config: &ServerConfig,
        launcher: &Launcher,
    ) -> Result<Vec<ToolInfo>, String> {
        match self.cached(&config.name) {
            Some(tools) => Ok(tools),
            None => self.get(config, launcher).await,
        }
    }

    /// The last list read, however old, if any (for views that must not
    /// start an upstream or wait for one; a fetch under way does not block it).
    pub fn cached(&self, server: &str) -> Option<Vec<ToolInfo>> {
        self.slot(server).last().map(|(tools, _)| tools)
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

/// What a server offers: its items, and its instructions (when it was read
/// through a session of Gatehouse's own).
pub type Offer = (Vec<ToolInfo>, Option<Instructions>);

/// Starts the upstream, initializes it and reads what it offers.
async fn fetch(config: &ServerConfig, launcher: &Launcher) -> Result<Offer, String> {
    let conn = launcher.open(config).await.map_err(|e| e.to_string())?;
    let result = async {
        let own = OwnSession::open(&conn).await?;
        let capabilities = &own.capabilities;
        let mut items: Vec<ToolInfo> = own
            .list_tools()
            .await?
            .iter()
            .filter_map(tool_info)
            // `@` names the resources and prompts items, never a server's tool.
            .filter(ToolInfo::is_tool)
            .collect();
        if capabilities.get("resources").is_some() {
            items.push(ToolInfo::resources());
        }
        if capabilities.get("prompts").is_some() {
            items.push(ToolInfo::prompts());
        }
        Ok((items, own.instructions))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Upstream;

    /// A server whose command cannot start: any fetch fails at once.
    fn unstartable() -> ServerConfig {
        ServerConfig {
            name: "gone".into(),
            upstream: Upstream::Stdio {
                command: "/nonexistent/gatehouse-test-upstream".into(),
                args: vec![],
                env: Default::default(),
                cwd: None,
            },
            oauth: None,
            start_at_launch: false,
            description: None,
        }
    }

    fn listed(catalogs: &Catalogs, server: &str, age: Duration) {
        let at = Instant::now()
            .checked_sub(age)
            .expect("the machine has been up longer than the age");
        let tools = vec![ToolInfo::resources()];
        *catalogs.slot(server).last.lock().unwrap() = Some((at, (tools, None)));
    }

    #[tokio::test]
    async fn a_hint_uses_the_last_list_however_old_and_lists_only_when_there_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let launcher = Launcher::new(Arc::new(crate::credentials::CredentialStore::file(
            dir.path(),
        )));
        let config = unstartable();
        let catalogs = Catalogs::default();

        let none = catalogs.last_or_get(&config, &launcher).await;
        assert!(
            none.is_err(),
            "nothing listed yet: it must try the upstream"
        );

        listed(&catalogs, "gone", CATALOG_TTL * 2);
        let hint = catalogs.last_or_get(&config, &launcher).await;
        assert_eq!(hint.unwrap().len(), 1, "a stale list still answers a hint");
        let fresh = catalogs.get(&config, &launcher).await;
        assert!(fresh.is_err(), "a stale list is read anew for consent");

        listed(&catalogs, "gone", Duration::ZERO);
        assert_eq!(catalogs.get(&config, &launcher).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_last_list_is_readable_while_a_fetch_is_under_way() {
        let catalogs = Catalogs::default();
        listed(&catalogs, "busy", CATALOG_TTL * 2);
        let slot = catalogs.slot("busy");
        let _fetching = slot.fetching.lock().await;
        assert_eq!(catalogs.cached("busy").map(|t| t.len()), Some(1));
    }
}
