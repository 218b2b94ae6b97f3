//! The person's decision on a consent request: approve a chosen subset of the
//! requested tools for a duration, or deny. A timeout is a denial of that one
//! request, never a rule. Each decision commits with its audit event.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{scope, AuthServer, OAuthError};
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;
use crate::crypto;
use crate::store::consent::{self, ConsentRequest, Status};
use crate::store::grants::{self, Duration, Grant};
use crate::store::pins;
use crate::store::StoreError;
use crate::tools::Risk;

/// Which of the requested tools to grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case", tag = "kind", content = "tools")]
pub enum ToolChoice {
    /// The read-only tools (what the consent window ticks by default).
    ReadOnly,
    All,
    Only(Vec<String>),
}

/// Which granted tools are "ask every time": each call is held for the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, ts_rs::TS)]
#[serde(rename_all = "snake_case", tag = "kind", content = "tools")]
pub enum AskChoice {
    /// The destructive tools among those granted.
    #[default]
    Destructive,
    None,
    Only(Vec<String>),
}

/// How long the grant lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case", tag = "kind", content = "ms")]
pub enum DurationChoice {
    /// This one authorization: one access token, no refresh.
    Once,
    /// For this many milliseconds.
    For(#[ts(type = "number")] i64),
    /// Until revoked.
    Forever,
}

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("no pending consent request {0}")]
    NotPending(String),
    #[error("{0}")]
    BadChoice(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DecisionError> for OAuthError {
    fn from(e: DecisionError) -> OAuthError {
        OAuthError::invalid_request(e.to_string())
    }
}

fn pending(
    conn: &rusqlite::Connection,
    id: &str,
    now: UnixMs,
) -> Result<ConsentRequest, DecisionError> {
    consent::get(conn, id)?
        .filter(|r| r.status == Status::Pending && r.expires_at > now)
        .ok_or_else(|| DecisionError::NotPending(id.to_string()))
}

/// Approves a pending request: creates the grant the browser's code will
/// carry, or, for a step-up, widens the agent's grant with the chosen tools
/// (keeping its duration). Each granted tool is pinned as the person saw it.
pub fn approve(
    auth: &AuthServer,
    request_id: &str,
    tools: &ToolChoice,
    ask: &AskChoice,
    duration: DurationChoice,
    actor: &str,
    now: UnixMs,
) -> Result<Grant, DecisionError> {
    auth.store.write(|tx| {
        let request = pending(tx.conn(), request_id, now)?;
        let chosen: Vec<String> = match tools {
            ToolChoice::All => request.tools.iter().map(|t| t.name.clone()).collect(),
            ToolChoice::ReadOnly => request.tools.iter().filter(|t| t.risk == Risk::Read).map(|t| t.name.clone()).collect(),
            ToolChoice::Only(names) => {
                if let Some(unknown) = names.iter().find(|n| !request.tools.iter().any(|t| &t.name == *n)) {
                    let offered: Vec<&str> = request.tools.iter().map(|t| t.name.as_str()).collect();
                    return Err(DecisionError::BadChoice(format!(
                        "tool {unknown:?} is not part of request {request_id}; it asks for: {}",
                        offered.join(", ")
                    )));
                }
                request.tools.iter().filter(|t| names.contains(&t.name)).map(|t| t.name.clone()).collect()
            }
        };
        let ask_chosen: Vec<String> = match ask {
            AskChoice::Destructive => request
                .tools
                .iter()
                .filter(|t| t.is_tool() && t.risk == Risk::Destructive && chosen.contains(&t.name))
                .map(|t| t.name.clone())
                .collect(),
            AskChoice::None => Vec::new(),
            AskChoice::Only(names) => {
                if let Some(n) = names.iter().find(|n| !chosen.contains(n)) {
                    return Err(DecisionError::BadChoice(format!("ask-every-time tool {n:?} is not among the granted tools")));
                }
                names.clone()
            }
        };
        let base = match &request.base_grant_id {
            Some(id) => grants::get(tx.conn(), id)?.filter(|g| g.is_active(now)),
            None => None,
        };
        let grant = match base {
            Some(mut base) => {
                let added: Vec<String> = chosen.iter().filter(|t| !base.tools.contains(t)).cloned().collect();
                base.tools.extend(added);
                for t in ask_chosen {
                    if !base.ask_tools.contains(&t) {
                        base.ask_tools.push(t);
                    }
                }
                base.scope = scope::scope_for_tools(&base.tools);
                grants::set_tools(tx.conn(), &base.id, &base.tools, &base.ask_tools, &base.scope)?;
                base
            }
            None => {
                if chosen.is_empty() {
                    return Err(DecisionError::BadChoice(
                        "no tools chosen: pick at least one tool (--tools or --all-tools), or deny the request".into(),
                    ));
                }
                let (kind, expires_at) = match duration {
                    DurationChoice::Once => (Duration::Once, Some(now + super::ACCESS_TOKEN_TTL_MS)),
                    DurationChoice::For(ms) if ms > 0 => (Duration::Timed, Some(now + ms)),
                    DurationChoice::For(_) => return Err(DecisionError::BadChoice("the duration must be positive".into())),
                    DurationChoice::Forever => (Duration::Forever, None),
                };
                let grant = Grant {
                    id: crypto::short_id("gr_"),
                    client_id: request.client_id.clone(),
                    server: request.server.clone(),
                    scope: scope::scope_for_tools(&chosen),
                    tools: chosen.clone(),
                    ask_tools: ask_chosen,
                    duration: kind,
                    created_at: now,
                    expires_at,
                    revoked_at: None,
                    decided_by: actor.to_string(),
                };
                grants::insert(tx.conn(), &grant)?;
                grant
            }
        };
        for tool in request.tools.iter().filter(|t| t.is_tool() && chosen.contains(&t.name)) {
            pins::pin(tx.conn(), &grant.id, &tool.name, &tool.pin, &tool.definition)?;
        }
        consent::transition(tx.conn(), &request.id, Status::Pending, Status::Approved, now, Some(actor), Some(&grant.id))?;
        tx.record(
            NewEvent::new(EventKind::ConsentApproved, Outcome::Allowed)
                .client(&grant.client_id)
                .server(&grant.server)
                .grant(&grant.id)
                .actor(actor)
                .detail(json!({
                    "request": request.id, "step_up": request.base_grant_id.is_some(), "chosen": chosen,
                    "tools": grant.tools, "ask_every_time": grant.ask_tools, "duration": grant.duration, "expires_at": grant.expires_at,
                })),
            now,
        )?;
        Ok(grant)
    })
}

/// Denies a pending request; the browser sends the client `access_denied`.
pub fn deny(
    auth: &AuthServer,
    request_id: &str,
    actor: &str,
    now: UnixMs,
) -> Result<ConsentRequest, DecisionError> {
    auth.store.write(|tx| {
        let request = pending(tx.conn(), request_id, now)?;
        consent::transition(
            tx.conn(),
            &request.id,
            Status::Pending,
            Status::Denied,
            now,
            Some(actor),
            None,
        )?;
        tx.record(
            NewEvent::new(EventKind::ConsentDenied, Outcome::Denied)
                .client(&request.client_id)
                .server(&request.server)
                .actor(actor)
                .detail(json!({"request": request.id})),
            now,
        )?;
        Ok(request)
    })
}

/// Marks one overdue request expired (a denial of that request only).
pub fn expire(auth: &AuthServer, request: &ConsentRequest, now: UnixMs) -> Result<(), StoreError> {
    auth.store.write(|tx| {
        if consent::transition(
            tx.conn(),
            &request.id,
            Status::Pending,
            Status::Expired,
            now,
            None,
            None,
        )? {
            tx.record(
                NewEvent::new(EventKind::ConsentExpired, Outcome::Denied)
                    .client(&request.client_id)
                    .server(&request.server)
                    .detail(json!({"request": request.id})),
                now,
            )?;
        }
        Ok(())
    })
}

/// Expires every overdue request (run periodically by the daemon).
pub fn expire_overdue(auth: &AuthServer, now: UnixMs) -> Result<usize, StoreError> {
    let overdue = auth.store.read(|c| consent::overdue(c, now))?;
    for request in &overdue {
        expire(auth, request, now)?;
    }
    Ok(overdue.len())
}
