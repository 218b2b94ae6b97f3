//! Revocation by the person: one agent, one grant, or everything. Revocation
//! ends the grants and their tokens in one transaction, with its audit event,
//! so the agent's very next request fails. Also the person's other change to a
//! grant in force: letting its agent ask for more tools.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AuthServer;
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;
use crate::store::clients::{self, Client};
use crate::store::grants;
use crate::store::tokens;
use crate::store::{StoreError, Tx};

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("no agent matches {0:?}; see `gatehouse agents`")]
    NoSuchAgent(String),
    #[error("{0:?} matches several agents ({1}); give the client id")]
    Ambiguous(String, String),
    #[error("no grant {0} in force; see `gatehouse grants`")]
    NoSuchGrant(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Finds an agent by client id, or by a name that only one agent has.
pub fn find(auth: &AuthServer, name_or_id: &str) -> Result<Client, RevokeError> {
    let all = auth.store.read(clients::list)?;
    if let Some(c) = all.iter().find(|c| c.client_id == name_or_id) {
        return Ok(c.clone());
    }
    let named: Vec<&Client> = all
        .iter()
        .filter(|c| c.name.eq_ignore_ascii_case(name_or_id))
        .collect();
    match named.as_slice() {
        [] => Err(RevokeError::NoSuchAgent(name_or_id.to_string())),
        [one] => Ok((*one).clone()),
        many => Err(RevokeError::Ambiguous(
            name_or_id.to_string(),
            many.iter()
                .map(|c| c.client_id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// What a revocation ended.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Revoked {
    pub client_ids: Vec<String>,
    pub grants: Vec<String>,
    /// How many token families it revoked: one per sign-in (the tokens an
    /// authorization code issued and every refresh of them).
    #[ts(type = "number")]
    pub token_families: usize,
}

/// Revokes every grant and token of one agent.
pub fn revoke_agent(
    auth: &AuthServer,
    client_id: &str,
    actor: &str,
    now: UnixMs,
) -> Result<Revoked, StoreError> {
    auth.store
        .write(|tx| revoke_agent_in(tx, client_id, actor, now))
}

/// Removes a client for good, in one write: everything it holds is revoked,
/// its open consent requests end and it never authenticates again. A write
/// queued for it before that (a token exchange, a consent decision) finds
/// its grants and tokens revoked and its requests ended.
pub fn remove_client(
    auth: &AuthServer,
    client_id: &str,
    actor: &str,
    now: UnixMs,
) -> Result<Revoked, StoreError> {
    auth.store.write(|tx| {
        let revoked = revoke_agent_in(tx, client_id, actor, now)?;
        clients::remove(tx.conn(), client_id, now)?;
        Ok(revoked)
    })
}

/// Revokes every grant and token of one agent, inside a write.
fn revoke_agent_in(
    tx: &mut Tx<'_>,
    client_id: &str,
    actor: &str,
    now: UnixMs,
) -> Result<Revoked, StoreError> {
    let grants = grants::revoke_for_client(tx.conn(), client_id, now)?;
    let token_families = tokens::revoke_for_client(tx.conn(), client_id, now)?;
    tx.record(
        NewEvent::new(EventKind::AgentRevoked, Outcome::Revoked)
            .client(client_id)
            .actor(actor)
            .detail(json!({"grants": grants, "token_families_revoked": token_families})),
        now,
    )?;
    Ok(Revoked {
        client_ids: vec![client_id.to_string()],
        grants,
        token_families,
    })
}

/// Revokes one grant and its tokens.
pub fn revoke_grant(
    auth: &AuthServer,
    grant_id: &str,
    actor: &str,
    now: UnixMs,
) -> Result<Revoked, RevokeError> {
    auth.store.write(|tx| {
        let grant = grants::get(tx.conn(), grant_id)?
            .ok_or_else(|| RevokeError::NoSuchGrant(grant_id.to_string()))?;
        grants::revoke(tx.conn(), grant_id, now)?;
        let token_families = tokens::revoke_for_grant(tx.conn(), grant_id, now)?;
        tx.record(
            NewEvent::new(EventKind::GrantRevoked, Outcome::Revoked)
                .client(&grant.client_id)
                .server(&grant.server)
                .grant(grant_id)
                .actor(actor)
                .detail(json!({ "token_families_revoked": token_families })),
            now,
        )?;
        Ok(Revoked {
            client_ids: vec![grant.client_id],
            grants: vec![grant_id.to_string()],
            token_families,
        })
    })
}

/// Lets a grant's agent see the tools it was not granted (marked as needing
/// approval) and ask for one by calling it, or stops that. Audited.
pub fn set_may_ask_more(
    auth: &AuthServer,
    grant_id: &str,
    on: bool,
    actor: &str,
    now: UnixMs,
) -> Result<grants::Grant, RevokeError> {
    auth.store.write(|tx| {
        let mut grant = grants::get(tx.conn(), grant_id)?
            .filter(|g| g.is_active(now))
            .ok_or_else(|| RevokeError::NoSuchGrant(grant_id.to_string()))?;
        if grant.may_ask_more != on {
            grants::set_may_ask_more(tx.conn(), grant_id, on)?;
            grant.may_ask_more = on;
            tx.record(
                NewEvent::new(EventKind::GrantChanged, Outcome::Allowed)
                    .client(&grant.client_id)
                    .server(&grant.server)
                    .grant(grant_id)
                    .actor(actor)
                    .detail(json!({"may_ask_more": on})),
                now,
            )?;
        }
        Ok(grant)
    })
}

/// The panic button: every agent loses every grant and token.
pub fn revoke_all(auth: &AuthServer, actor: &str, now: UnixMs) -> Result<Revoked, StoreError> {
    let ids: Vec<String> = auth
        .store
        .read(clients::list)?
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    let mut all = Revoked {
        client_ids: Vec::new(),
        grants: Vec::new(),
        token_families: 0,
    };
    for id in ids {
        let r = revoke_agent(auth, &id, actor, now)?;
        all.client_ids.extend(r.client_ids);
        all.grants.extend(r.grants);
        all.token_families += r.token_families;
    }
    Ok(all)
}
