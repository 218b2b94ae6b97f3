//! Pausing: the person stops every agent, or one, without revoking anything.
//! While paused, an agent's requests that would act (a tool call, a read, a
//! prompt) are refused with a JSON-RPC error and audited; listings and
//! lifecycle messages still pass, so agents stay connected and resume cleanly.
//!
//! The state lives in the `pauses` table (it survives a restart) and, for the
//! hot path, in memory: a change is written and audited in one transaction,
//! then applied in memory before the operation returns, under one lock, so
//! the very next request sees it.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;
use crate::store::pauses::{self, PauseRow, ALL};
use crate::store::{Store, StoreError};

/// Who paused, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Paused {
    #[ts(type = "number")]
    pub at: UnixMs,
    pub by: String,
}

/// What is paused: every agent, and agents one by one (by client id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct PauseState {
    pub all: Option<Paused>,
    pub agents: BTreeMap<String, Paused>,
}

impl PauseState {
    fn from_rows(rows: Vec<PauseRow>) -> PauseState {
        let mut state = PauseState::default();
        for row in rows {
            let paused = Paused {
                at: row.paused_at,
                by: row.paused_by,
            };
            if row.target == ALL {
                state.all = Some(paused);
            } else {
                state.agents.insert(row.target, paused);
            }
        }
        state
    }

    /// Why this agent's calls are refused now, if they are.
    pub fn refusal(&self, client_id: &str) -> Option<String> {
        if self.all.is_some() {
            Some("Gatehouse is paused: the person paused every agent; calls are refused until they resume".into())
        } else if self.agents.contains_key(client_id) {
            Some("this agent is paused: the person paused it; calls are refused until they resume it".into())
        } else {
            None
        }
    }
}

/// Every agent, or one (by client id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    All,
    Agent(&'a str),
}

impl Target<'_> {
    fn key(&self) -> &str {
        match self {
            Target::All => ALL,
            Target::Agent(id) => id,
        }
    }
}

pub struct Pauses {
    state: RwLock<PauseState>,
}

impl Pauses {
    /// The pauses in force, read from the store.
    pub fn load(store: &Store) -> Result<Pauses, StoreError> {
        let rows = store.read(pauses::list)?;
        Ok(Pauses {
            state: RwLock::new(PauseState::from_rows(rows)),
        })
    }

    pub fn state(&self) -> PauseState {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Why this agent's calls are refused now, if they are (the hot path: memory only).
    pub fn refusal(&self, client_id: &str) -> Option<String> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        if state.all.is_none() && state.agents.is_empty() {
            return None;
        }
        state.refusal(client_id)
    }

    /// Pauses (or resumes) the target: stored and audited together, then in
    /// force. Returns whether anything changed.
    pub fn set(
        &self,
        store: &Store,
        target: Target<'_>,
        paused: bool,
        actor: &str,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let changed = store.write(|tx| {
            let key = target.key();
            let changed = if paused {
                pauses::pause(tx.conn(), key, now, actor)?
            } else {
                pauses::resume(tx.conn(), key)?
            };
            if changed {
                let kind = if paused {
                    EventKind::Paused
                } else {
                    EventKind::Resumed
                };
                let mut event = NewEvent::new(kind, Outcome::Allowed)
                    .actor(actor)
                    .detail(json!({"all": target == Target::All}));
                if let Target::Agent(id) = target {
                    event = event.client(id);
                }
                tx.record(event, now)?;
            }
            Ok::<_, StoreError>(changed)
        })?;
        if changed {
            *state = PauseState::from_rows(store.read(pauses::list)?);
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pausing_refuses_until_resumed_and_is_audited() {
        let store = Store::open_in_memory().unwrap();
        let pauses = Pauses::load(&store).unwrap();
        assert_eq!(pauses.refusal("c_a"), None);
        assert!(pauses
            .set(&store, Target::Agent("c_a"), true, "cli", 1)
            .unwrap());
        assert!(pauses
            .refusal("c_a")
            .unwrap()
            .contains("this agent is paused"));
        assert_eq!(pauses.refusal("c_b"), None, "only that agent");
        assert!(pauses.set(&store, Target::All, true, "desktop", 2).unwrap());
        assert!(pauses.refusal("c_b").unwrap().contains("every agent"));
        assert!(
            !pauses.set(&store, Target::All, true, "cli", 3).unwrap(),
            "already paused"
        );
        // What a restart reads is what was in force.
        assert_eq!(Pauses::load(&store).unwrap().state(), pauses.state());
        assert!(pauses.set(&store, Target::All, false, "cli", 4).unwrap());
        assert_eq!(pauses.refusal("c_b"), None);
        assert!(
            pauses.refusal("c_a").is_some(),
            "the agent's own pause stays"
        );
        let f = crate::audit::Filter::default();
        let events = store
            .read(|c| crate::store::audit::page(c, &f, crate::store::audit::Cursor::After(0), 10))
            .unwrap();
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        use EventKind::{Paused as P, Resumed as R};
        assert_eq!(kinds, [P, P, R]);
        assert_eq!(events[0].client_id.as_deref(), Some("c_a"));
    }
}
