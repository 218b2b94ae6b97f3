//! Agents (OAuth clients) with their grants, and revocation by the person:
//! one agent, one grant, or everything. A revocation also ends the agent's
//! open sessions, so its very next request fails.

use super::{Actor, Agent, Gatehouse, Grant, PauseState, Result, Revoked};
use crate::clock;
use crate::gateway::pause::Target;
use crate::oauth::agents;
use crate::store::programs::{self, Owner};
use crate::store::{clients, grants};

impl Gatehouse {
    /// Every agent that ever registered, oldest first, with its grants in force.
    pub fn agents(&self) -> Result<Vec<Agent>> {
        let now = clock::now();
        let pauses = self.gateway().pauses().state();
        Ok(self.store().read(|c| {
            let all = clients::list(c)?;
            all.iter()
                .map(|client| {
                    let grants = grants::list(c, Some(&client.client_id), false, now)?;
                    let mut agent = Agent::new(client.clone(), grants, &all, &pauses);
                    agent.program = programs::get(c, Owner::Client(&client.client_id))?;
                    Ok(agent)
                })
                .collect::<std::result::Result<Vec<_>, crate::store::StoreError>>()
        })?)
    }

    /// Grants, newest first: of one agent (name or client id) or all; those
    /// still in force unless `include_ended`.
    pub fn grants(&self, agent: Option<&str>, include_ended: bool) -> Result<Vec<Grant>> {
        let client_id = match agent {
            Some(name) => Some(agents::find(self.auth(), name)?.client_id),
            None => None,
        };
        let now = clock::now();
        Ok(self
            .store()
            .read(|c| grants::list(c, client_id.as_deref(), include_ended, now))?)
    }

    /// One grant, in force or not.
    pub fn grant(&self, id: &str) -> Result<Option<Grant>> {
        Ok(self.store().read(|c| grants::get(c, id))?)
    }

    /// The client id of the agent with this client id, or with this name if
    /// only one agent has it.
    pub fn find_agent(&self, name_or_id: &str) -> Result<String> {
        Ok(agents::find(self.auth(), name_or_id)?.client_id)
    }

    /// Revokes an agent (by name or client id) and closes its open sessions.
    pub fn revoke_agent(&self, name_or_id: &str, actor: Actor) -> Result<Revoked> {
        let client = agents::find(self.auth(), name_or_id)?;
        let actor = self.actor_name(actor);
        let revoked = agents::revoke_agent(self.auth(), &client.client_id, &actor, clock::now())?;
        self.gateway().end_sessions_of(&client.client_id);
        Ok(revoked)
    }

    /// Revokes one grant and its tokens.
    pub fn revoke_grant(&self, grant_id: &str, actor: Actor) -> Result<Revoked> {
        let actor = self.actor_name(actor);
        let revoked = agents::revoke_grant(self.auth(), grant_id, &actor, clock::now())?;
        self.end_sessions(&revoked);
        Ok(revoked)
    }

    /// The panic button: every agent loses every grant and token.
    pub fn revoke_all(&self, actor: Actor) -> Result<Revoked> {
        let actor = self.actor_name(actor);
        let revoked = agents::revoke_all(self.auth(), &actor, clock::now())?;
        self.end_sessions(&revoked);
        Ok(revoked)
    }

    /// Lets a grant's agent see the tools it was not granted (marked as
    /// needing approval) and ask for one by calling it, or stops that.
    pub fn set_may_ask_more(&self, grant_id: &str, on: bool, actor: Actor) -> Result<Grant> {
        let actor = self.actor_name(actor);
        Ok(agents::set_may_ask_more(
            self.auth(),
            grant_id,
            on,
            &actor,
            clock::now(),
        )?)
    }

    /// Pauses every agent (`None`), or one (name or client id): their calls
    /// are refused, and audited, until resumed; nothing is revoked. In force
    /// for the very next request, and after a restart.
    pub fn pause(&self, agent: Option<&str>, actor: Actor) -> Result<PauseState> {
        self.set_paused(agent, true, actor)
    }

    /// Ends a pause of every agent (`None`), or of one.
    pub fn resume(&self, agent: Option<&str>, actor: Actor) -> Result<PauseState> {
        self.set_paused(agent, false, actor)
    }

    fn set_paused(&self, agent: Option<&str>, paused: bool, actor: Actor) -> Result<PauseState> {
        let client_id = agent.map(|a| self.find_agent(a)).transpose()?;
        let target = client_id.as_deref().map_or(Target::All, Target::Agent);
        let actor = self.actor_name(actor);
        let pauses = self.gateway().pauses();
        pauses.set(self.store(), target, paused, &actor, clock::now())?;
        Ok(pauses.state())
    }

    fn end_sessions(&self, revoked: &Revoked) {
        for id in &revoked.client_ids {
            self.gateway().end_sessions_of(id);
        }
    }
}
