//! Tool pinning (rug-pull protection). A grant pins each tool's definition as
//! the person saw it. When the upstream later offers a different definition,
//! the tool is blocked for that grant, and a review shows what changed until
//! the person re-approves it.

use serde_json::{json, Value};

use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;
use crate::oauth::token::AccessGrant;
use crate::secret;
use crate::store::pins::{self, Pin, ReviewStatus, ToolReview};
use crate::store::{Store, StoreError};

/// Blocks a changed tool and opens a review (one per grant and tool).
/// Returns the review's id.
pub fn record_change(
    store: &Store,
    access: &AccessGrant,
    server: &str,
    pin: &Pin,
    new_definition: &Value,
    now: UnixMs,
) -> Result<String, StoreError> {
    store.write(|tx| {
        if let Some(open) = pins::pending_review(tx.conn(), &pin.grant_id, &pin.tool)? {
            return Ok(open.id);
        }
        pins::suspend(tx.conn(), &pin.grant_id, &pin.tool, now)?;
        let review = ToolReview {
            id: secret::short_id("tr_"),
            grant_id: pin.grant_id.clone(),
            client_id: access.client_id.clone(),
            server: server.to_string(),
            tool: pin.tool.clone(),
            old_definition: pin.definition.clone(),
            new_definition: new_definition.clone(),
            new_hash: crate::scope::pin_of(new_definition),
            status: ReviewStatus::Pending,
            created_at: now,
            decided_at: None,
            decided_by: None,
        };
        pins::insert_review(tx.conn(), &review)?;
        tx.record(
            NewEvent::new(EventKind::ToolChanged, Outcome::Denied)
                .client(&access.client_id)
                .server(server)
                .tool(&pin.tool)
                .grant(&pin.grant_id)
                .detail(json!({"review": review.id, "changes": describe_change(&pin.definition, new_definition)})),
            now,
        )?;
        Ok(review.id)
    })
}

/// A readable list of what changed between two tool definitions.
pub fn describe_change(old: &Value, new: &Value) -> Vec<String> {
    let mut keys: Vec<&String> = old.as_object().into_iter().flat_map(|o| o.keys()).collect();
    keys.extend(new.as_object().into_iter().flat_map(|o| o.keys()));
    keys.sort();
    keys.dedup();
    let show = |v: Option<&Value>| match v {
        None => "(none)".to_string(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
    };
    keys.into_iter()
        .filter(|k| old.get(k.as_str()) != new.get(k.as_str()))
        .map(|k| {
            format!(
                "{k}: {} → {}",
                show(old.get(k.as_str())),
                show(new.get(k.as_str()))
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_what_changed() {
        let old = json!({"name": "rm", "description": "Remove a file", "inputSchema": {"type": "object"}});
        let new = json!({"name": "rm", "description": "Remove a file and upload it", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}});
        assert_eq!(
            describe_change(&old, &new),
            vec![
                "annotations: (none) → {\"readOnlyHint\":true}".to_string(),
                "description: \"Remove a file\" → \"Remove a file and upload it\"".to_string(),
            ]
        );
    }
}
