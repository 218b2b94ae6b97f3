//! Ask-every-time: a call to such a tool is held, recorded as a pending
//! [`HeldCall`], and goes upstream only if the person allows it
//! ([`Holds::decide`]). Nobody answering in time is a denial of that call;
//! so is the agent cancelling it ([`Holds::withdraw`]).
#![allow(clippy::disallowed_methods)] // an edge: a held call waits in real time

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::{self, UnixMs};
use crate::crypto;
use crate::oauth::bearer::AccessGrant;
use crate::store::held_calls::{self, CallStatus, HeldCall};
use crate::store::{Store, StoreError};

#[derive(Default)]
pub struct Holds {
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
}

/// What ended a held call's wait before its time ran out.
#[derive(Clone, Copy)]
enum Answer {
    /// The person's decision: allowed or not.
    Person(bool),
    /// The agent cancelled the call.
    Withdrawn,
}

/// How a held call ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed { call_id: String },
    Denied { call_id: String, why: String },
}

impl Holds {
    /// Records the held call, tells `held` its id, and waits for the person
    /// (up to `timeout`).
    #[allow(clippy::too_many_arguments)]
    pub async fn hold(
        &self,
        store: &Arc<Store>,
        access: &AccessGrant,
        server: &str,
        tool: &str,
        arguments: Value,
        timeout: Duration,
        held: impl FnOnce(&str),
    ) -> Result<Verdict, StoreError> {
        let now = clock::now();
        let call = HeldCall {
            id: crypto::short_id("hc_"),
            client_id: access.client_id.clone(),
            server: server.to_string(),
            grant_id: access.grant().id.clone(),
            tool: tool.to_string(),
            arguments,
            status: CallStatus::Pending,
            created_at: now,
            expires_at: now + timeout.as_millis() as i64,
            decided_at: None,
            decided_by: None,
        };
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(call.id.clone(), tx);
        held(&call.id);
        let held = call.clone();
        store
            .write_queued(move |w| {
                held_calls::insert(w.conn(), &held)?;
                w.record(
                    event(&held, EventKind::CallHeld, Outcome::Allowed)
                        .detail(json!({"call": held.id, "arguments": held.arguments})),
                    now,
                )
            })
            .await?;
        let answer = tokio::time::timeout(timeout, rx).await;
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&call.id);
        let call_id = call.id.clone();
        Ok(match answer {
            Ok(Ok(Answer::Person(true))) => Verdict::Allowed { call_id },
            Ok(Ok(Answer::Person(false))) => Verdict::Denied {
                call_id,
                why: format!("the user denied this call to {tool:?}"),
            },
            Ok(Ok(Answer::Withdrawn)) => Verdict::Denied {
                call_id,
                why: format!("the agent cancelled this call to {tool:?}"),
            },
            _ => {
                let now = clock::now();
                let held = call.clone();
                let expired = store
                    .write_queued(move |w| {
                        let id = &held.id;
                        if !held_calls::decide(w.conn(), id, CallStatus::Expired, None, now)? {
                            return Ok::<_, StoreError>(false);
                        }
                        w.record(
                            event(&held, EventKind::CallDecided, Outcome::Denied)
                                .detail(json!({"call": id, "expired": true})),
                            now,
                        )?;
                        Ok(true)
                    })
                    .await?;
                // The person may have answered in the same instant the wait ran out.
                let allowed_meanwhile = !expired
                    && store
                        .read(|c| held_calls::get(c, &call.id))?
                        .is_some_and(|c| c.status == CallStatus::Allowed);
                if allowed_meanwhile {
                    Verdict::Allowed { call_id }
                } else {
                    Verdict::Denied {
                        call_id,
                        why: format!("nobody approved this call to {tool:?} in time"),
                    }
                }
            }
        })
    }

    /// The person's decision on a held call (allow this once, or deny): the
    /// decision and its audit event commit together, then the waiting call is
    /// woken. `None` when the call is no longer pending.
    pub fn decide(
        &self,
        store: &Store,
        call_id: &str,
        allow: bool,
        actor: &str,
        now: UnixMs,
    ) -> Result<Option<HeldCall>, StoreError> {
        let decided = store.write(|tx| {
            let Some(call) = held_calls::get(tx.conn(), call_id)?
                .filter(|c| c.status == CallStatus::Pending && c.expires_at > now)
            else {
                return Ok::<_, StoreError>(None);
            };
            let (status, outcome) = if allow {
                (CallStatus::Allowed, Outcome::Allowed)
            } else {
                (CallStatus::Denied, Outcome::Denied)
            };
            held_calls::decide(tx.conn(), call_id, status, Some(actor), now)?;
            tx.record(
                event(&call, EventKind::CallDecided, outcome)
                    .actor(actor)
                    .detail(json!({"call": call.id})),
                now,
            )?;
            Ok(Some(HeldCall {
                status,
                decided_at: Some(now),
                decided_by: Some(actor.to_string()),
                ..call
            }))
        })?;
        if decided.is_some() {
            self.resolve(call_id, Answer::Person(allow));
        }
        Ok(decided)
    }

    /// The agent cancelled a held call (`notifications/cancelled`): unless the
    /// person has decided it, it ends denied, recorded as withdrawn, and the
    /// person is no longer asked. False when it was no longer pending.
    pub async fn withdraw(
        &self,
        store: &Arc<Store>,
        call_id: &str,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        let id = call_id.to_string();
        let withdrawn = store
            .write_queued(move |tx| {
                let Some(call) =
                    held_calls::get(tx.conn(), &id)?.filter(|c| c.status == CallStatus::Pending)
                else {
                    return Ok::<_, StoreError>(false);
                };
                held_calls::decide(tx.conn(), &id, CallStatus::Denied, Some("agent"), now)?;
                tx.record(
                    event(&call, EventKind::CallDecided, Outcome::Denied)
                        .actor("agent")
                        .detail(json!({"call": id, "withdrawn": true})),
                    now,
                )?;
                Ok(true)
            })
            .await?;
        if withdrawn {
            self.resolve(call_id, Answer::Withdrawn);
        }
        Ok(withdrawn)
    }

    /// Hands the answer to the waiting call; false if nobody waits.
    fn resolve(&self, call_id: &str, answer: Answer) -> bool {
        match self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(call_id)
        {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }
}

/// An audit event about a held call: its agent, server, tool and grant.
fn event(call: &HeldCall, kind: EventKind, outcome: Outcome) -> NewEvent {
    NewEvent::new(kind, outcome)
        .client(&call.client_id)
        .server(&call.server)
        .tool(&call.tool)
        .grant(&call.grant_id)
}
