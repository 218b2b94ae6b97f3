//! The MCP servers Gatehouse fronts, as the person sees them: where an AI
//! client should point, what runs behind, and what each offers.

use serde::{Deserialize, Serialize};

use super::{Error, Gatehouse, Result, Tool};
use crate::config::Upstream;

/// How Gatehouse reaches a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A command Gatehouse starts, speaking MCP on stdio.
    Stdio,
    /// A remote streamable-HTTP MCP server.
    Http,
}

/// A fronted MCP server.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Server {
    pub name: String,
    /// The URL to give to an AI client.
    pub url: String,
    pub transport: Transport,
    /// The command line, or the upstream URL.
    pub target: String,
    pub description: Option<String>,
    /// The tools, when the gateway has listed them recently.
    pub tools: Option<Vec<Tool>>,
}

impl Gatehouse {
    /// Every fronted server, by name. Never starts an upstream: `tools` is
    /// what was listed recently, if anything.
    pub fn servers(&self) -> Vec<Server> {
        self.config()
            .servers
            .iter()
            .map(|(name, s)| {
                let (transport, target) = match &s.upstream {
                    Upstream::Stdio { command, args, .. } => {
                        let mut line = vec![command.clone()];
                        line.extend(args.iter().map(|a| match a {
                            crate::config::Value::Plain(p) => p.clone(),
                            crate::config::Value::Secret(r) => format!("[secret {}]", r.secret),
                        }));
                        (Transport::Stdio, line.join(" "))
                    }
                    Upstream::Http { url, .. } => (Transport::Http, url.to_string()),
                };
                let tools = self.gateway().cached_catalog(name);
                Server {
                    name: name.clone(),
                    url: self.auth().resource_url(name),
                    transport,
                    target,
                    description: s.description.clone(),
                    tools: tools.map(|t| t.iter().map(Tool::from).collect()),
                }
            })
            .collect()
    }

    /// A server's tools, from the server itself (started for this if needed).
    pub async fn server_tools(&self, server: &str) -> Result<Vec<Tool>> {
        let tools = self
            .gateway()
            .catalog(server)
            .await
            .map_err(Error::not_found)?;
        Ok(tools.iter().map(Tool::from).collect())
    }
}
