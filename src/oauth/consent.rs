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
use crate::tools::{Risk, INSTRUCTIONS};

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
/// A new grant pins the server's instructions as the request showed them
/// (as Gatehouse's own session read them) when nothing was decided before
/// about this agent's instructions there: no earlier grant of its holds a
/// pin on the server, no review of it decided that text. Otherwise they are
/// pinned at its first session, by what was decided
/// (`gateway::pinning::check_instructions`).
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
        // A step-up widens this grant; naming a tool it already holds is no error.
        let base = match &request.base_grant_id {
            Some(id) => grants::get(tx.conn(), id)?.filter(|g| g.is_active(now)),
            None => None,
        };
        let new_grant = base.is_none();
        let held = |name: &String| base.as_ref().is_some_and(|b| b.tools.contains(name));
        let chosen: Vec<String> = match tools {
            ToolChoice::All => request.tools.iter().map(|t| t.name.clone()).collect(),
            ToolChoice::ReadOnly => request.tools.iter().filter(|t| t.risk == Risk::Read).map(|t| t.name.clone()).collect(),
            ToolChoice::Only(names) => {
                if let Some(unknown) = names.iter().find(|n| !held(n) && !request.tools.iter().any(|t| &t.name == *n)) {
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
                    DurationChoice::Once => (Duration::Once, Some(now + auth.config.get().access_token_ttl_ms)),
                    DurationChoice::For(ms) if ms > 0 && ms <= crate::clock::MAX_DURATION => {
                        (Duration::Timed, Some(now + ms))
                    }
                    DurationChoice::For(_) => {
                        return Err(DecisionError::BadChoice(
                            "the duration must be positive and at most ten years".into(),
                        ))
                    }
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
                    may_ask_more: false,
                };
                grants::insert(tx.conn(), &grant)?;
                super::programs::grant_made(tx.conn(), &grant.client_id, &grant.id, now)?;
                grant
            }
        };
        for tool in request.tools.iter().filter(|t| t.is_tool() && chosen.contains(&t.name)) {
            pins::pin(tx.conn(), &grant.id, &tool.name, &tool.pin, &tool.definition)?;
        }
        if let (true, Some(shown)) = (new_grant, &request.instructions) {
            let (conn, agent, server) = (tx.conn(), &grant.client_id, &grant.server);
            let earlier = pins::newest_on_server(conn, server, Some(agent), INSTRUCTIONS, &grant.id)?;
            let decided = pins::decision_on(conn, agent, server, INSTRUCTIONS, &shown.pin)?;
            if earlier.is_none() && decided.is_none() {
                pins::pin(conn, &grant.id, INSTRUCTIONS, &shown.pin, &shown.definition)?;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::HOUR;
    use crate::testing::*;

    fn ask(auth: &AuthServer) -> String {
        let client = public_client(auth, "agent", T0);
        request(auth, &client, None, T0).0
    }

    #[test]
    fn approving_grants_exactly_the_chosen_tools_and_pins_them() {
        let auth = auth_server("");
        let id = ask(&auth);
        let chosen = ToolChoice::Only(vec!["delete_note".into(), "read_note".into()]);
        let grant = approve(
            &auth,
            &id,
            &chosen,
            &AskChoice::Destructive,
            DurationChoice::For(HOUR),
            "me",
            T0,
        )
        .unwrap();
        assert_eq!(
            grant.tools,
            ["read_note", "delete_note"],
            "in the request's order"
        );
        assert_eq!(
            grant.ask_tools,
            ["delete_note"],
            "destructive ones ask every time"
        );
        assert_eq!(grant.scope, "tool:read_note tool:delete_note");
        assert_eq!(
            (grant.duration, grant.expires_at),
            (Duration::Timed, Some(T0 + HOUR))
        );
        let pinned = auth.store.read(|c| pins::for_grant(c, &grant.id)).unwrap();
        assert_eq!(pinned.len(), 2);
        let request = auth.store.read(|c| consent::get(c, &id)).unwrap().unwrap();
        assert_eq!(request.status, Status::Approved);
        // Decided once: a second decision finds nothing pending.
        let again = deny(&auth, &id, "me", T0 + 1).unwrap_err();
        assert!(matches!(again, DecisionError::NotPending(_)));
    }

    #[test]
    fn a_bad_choice_changes_nothing() {
        let auth = auth_server("");
        let id = ask(&auth);
        let unknown = ToolChoice::Only(vec!["rm_rf".into()]);
        let e = approve(
            &auth,
            &id,
            &unknown,
            &AskChoice::None,
            DurationChoice::Forever,
            "me",
            T0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not part of request"), "{e}");
        let none = ToolChoice::Only(vec![]);
        let e = approve(
            &auth,
            &id,
            &none,
            &AskChoice::None,
            DurationChoice::Forever,
            "me",
            T0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no tools chosen"), "{e}");
        let ask_ungranted = AskChoice::Only(vec!["delete_note".into()]);
        let read = ToolChoice::ReadOnly;
        let e = approve(
            &auth,
            &id,
            &read,
            &ask_ungranted,
            DurationChoice::Forever,
            "me",
            T0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not among the granted"), "{e}");
        let e = approve(
            &auth,
            &id,
            &read,
            &AskChoice::None,
            DurationChoice::For(0),
            "me",
            T0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("positive"), "{e}");
        let forever_and_more = DurationChoice::For(i64::MAX);
        let e = approve(
            &auth,
            &id,
            &read,
            &AskChoice::None,
            forever_and_more,
            "me",
            T0,
        );
        assert!(e.unwrap_err().to_string().contains("at most ten years"));
        let request = auth.store.read(|c| consent::get(c, &id)).unwrap().unwrap();
        assert_eq!(
            request.status,
            Status::Pending,
            "still waiting for a good decision"
        );
        assert!(auth
            .store
            .read(|c| grants::list(c, None, true, T0))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_once_grant_lasts_one_access_token() {
        let auth = auth_server("");
        let id = ask(&auth);
        let grant = approve(
            &auth,
            &id,
            &ToolChoice::ReadOnly,
            &AskChoice::None,
            DurationChoice::Once,
            "me",
            T0,
        )
        .unwrap();
        assert_eq!(grant.tools, ["read_note"]);
        assert_eq!(
            (grant.duration, grant.expires_at),
            (
                Duration::Once,
                Some(T0 + auth.config.get().access_token_ttl_ms)
            )
        );
    }

    #[test]
    fn a_step_up_widens_the_grant_and_keeps_its_duration() {
        let auth = auth_server("");
        let client = public_client(&auth, "agent", T0);
        let only_read = ToolChoice::Only(vec!["read_note".into()]);
        approved_code(&auth, &client, only_read, DurationChoice::Forever, T0);
        let (id, _) = request(&auth, &client, Some("tools:write"), T0 + 10_000);
        let widened = approve(
            &auth,
            &id,
            &ToolChoice::All,
            &AskChoice::None,
            DurationChoice::Once,
            "me",
            T0 + 10_001,
        )
        .unwrap();
        assert_eq!(widened.tools, ["read_note", "write_note"]);
        assert_eq!(
            widened.duration,
            Duration::Forever,
            "a step-up keeps the grant's duration"
        );
        let all = auth
            .store
            .read(|c| grants::list(c, None, true, T0 + 10_002))
            .unwrap();
        assert_eq!(all.len(), 1, "widened, not duplicated");
    }

    #[test]
    fn a_step_up_may_name_tools_the_grant_already_holds() {
        let auth = auth_server("");
        let client = public_client(&auth, "agent", T0);
        let only_read = ToolChoice::Only(vec!["read_note".into()]);
        approved_code(&auth, &client, only_read, DurationChoice::Forever, T0);
        let (id, _) = request(&auth, &client, Some("tool:write_note"), T0 + 10_000);
        let names = |n: &[&str]| ToolChoice::Only(n.iter().map(|s| s.to_string()).collect());
        let approve_with = |tools: &ToolChoice| {
            approve(
                &auth,
                &id,
                tools,
                &AskChoice::None,
                DurationChoice::Once,
                "me",
                T0 + 10_001,
            )
        };
        // A tool neither held nor asked for is still refused, and nothing changes.
        let e = approve_with(&names(&["read_note", "delete_note"])).unwrap_err();
        assert!(matches!(e, DecisionError::BadChoice(_)), "{e}");
        let widened = approve_with(&names(&["read_note", "write_note"])).unwrap();
        assert_eq!(widened.tools, ["read_note", "write_note"]);
    }

    #[test]
    fn deny_and_timeout_grant_nothing_and_are_audited() {
        let auth = auth_server("");
        let id = ask(&auth);
        deny(&auth, &id, "me", T0).unwrap();
        let client = public_client(&auth, "late", T0);
        let (late, _) = request(&auth, &client, None, T0);
        assert_eq!(
            expire_overdue(&auth, T0 + auth.config.get().consent_timeout_ms - 1).unwrap(),
            0
        );
        assert_eq!(
            expire_overdue(&auth, T0 + auth.config.get().consent_timeout_ms).unwrap(),
            1
        );
        let e = approve(
            &auth,
            &late,
            &ToolChoice::All,
            &AskChoice::None,
            DurationChoice::Forever,
            "me",
            T0 + 1,
        )
        .unwrap_err();
        assert!(
            matches!(e, DecisionError::NotPending(_)),
            "an expired request stays expired"
        );
        assert!(auth
            .store
            .read(|c| grants::list(c, None, true, T0))
            .unwrap()
            .is_empty());
        let kinds = audit_kinds(&auth.store);
        assert!(
            kinds.contains(&"consent_denied".into()) && kinds.contains(&"consent_expired".into()),
            "{kinds:?}"
        );
    }
}
