//! Which events a view of the log wants: the timeline's filter bar, the CLI's
//! `log --agent`, a followed log. The store turns a [`Filter`] into SQL; live
//! events are checked with [`Filter::matches`], by the same rules.

use serde::{Deserialize, Serialize};

use super::AuditEvent;
use crate::clock::UnixMs;

/// Every field is optional; all that are given must hold.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "AuditFilter")]
pub struct Filter {
    pub client_id: Option<String>,
    pub server: Option<String>,
    pub outcome: Option<super::Outcome>,
    /// Inclusive lower bound on `at` (Unix ms).
    #[ts(type = "number | null")]
    pub since: Option<UnixMs>,
    /// Exclusive upper bound on `at` (Unix ms).
    #[ts(type = "number | null")]
    pub until: Option<UnixMs>,
    /// Case-insensitive substring of the agent, server, tool, kind, actor or detail.
    pub text: Option<String>,
}

impl Filter {
    /// Only this agent's events.
    pub fn agent(client_id: impl Into<String>) -> Filter {
        Filter {
            client_id: Some(client_id.into()),
            ..Filter::default()
        }
    }

    /// The search text, trimmed; `None` when there is nothing to search for.
    pub fn search_text(&self) -> Option<&str> {
        self.text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// Whether a live event matches (the same rules as the SQL in `store::audit`).
    pub fn matches(&self, e: &AuditEvent) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        let text_ok = match self.search_text() {
            None => true,
            Some(t) => {
                // As SQLite's LIKE compares: ASCII letters in any case, others as they are.
                let t = t.to_ascii_lowercase();
                let has = |s: Option<&str>| s.is_some_and(|s| s.to_ascii_lowercase().contains(&t));
                has(e.agent.as_deref())
                    || has(e.server.as_deref())
                    || has(e.tool.as_deref())
                    || has(Some(e.kind.as_str()))
                    || has(e.actor.as_deref())
                    || has(Some(&e.detail.to_string()))
            }
        };
        eq(&self.client_id, &e.client_id)
            && eq(&self.server, &e.server)
            && self.outcome.is_none_or(|o| o == e.outcome)
            && self.since.is_none_or(|t| e.at >= t)
            && self.until.is_none_or(|t| e.at < t)
            && text_ok
    }
}
