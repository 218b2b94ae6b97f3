//! Rules the person keeps for an agent (see `oauth::rules`): listed, added,
//! changed and removed here; applied when the agent asks for tools.

use serde::{Deserialize, Serialize};

use super::{Actor, Error, Gatehouse, Result};
use crate::clock;
use crate::oauth::{agents, rules};
use crate::store::rules::{self as table, Rule, RuleAction, RuleTarget};

/// A rule to add: for an agent (name or client id), on one server or all.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct NewRule {
    pub agent: String,
    pub server: Option<String>,
    pub target: RuleTarget,
    pub action: RuleAction,
}

impl Gatehouse {
    /// Rules of one agent (name or client id), or of every agent.
    pub fn rules(&self, agent: Option<&str>) -> Result<Vec<Rule>> {
        let client_id = agent.map(|a| self.find_agent(a)).transpose()?;
        Ok(self
            .store()
            .read(|c| table::list(c, client_id.as_deref()))?)
    }

    /// Adds a rule (replacing one for the same agent, server and tools).
    pub fn add_rule(&self, new: NewRule, actor: Actor) -> Result<Rule> {
        let client = agents::find(self.auth(), &new.agent)?;
        if let Some(server) = &new.server {
            if !self.config().servers.contains_key(server) {
                return Err(Error::not_found(format!("no MCP server named {server:?}")));
            }
        }
        if let RuleTarget::Tool(name) = &new.target {
            if name.trim().is_empty() {
                return Err(Error::bad_request(
                    "a rule for a tool needs the tool's name",
                ));
            }
        }
        let actor = self.actor_name(actor);
        Ok(rules::add(
            self.auth(),
            &client.client_id,
            new.server.as_deref(),
            new.target,
            new.action,
            &actor,
            clock::now(),
        )?)
    }

    /// Changes what a rule decides, or removes it (`None`).
    pub fn change_rule(&self, id: &str, action: Option<RuleAction>, actor: Actor) -> Result<()> {
        let actor = self.actor_name(actor);
        if rules::change(self.auth(), id, action, &actor, clock::now())? {
            Ok(())
        } else {
            Err(Error::not_found(format!(
                "no rule {id}; see `gatehouse rules`"
            )))
        }
    }
}
