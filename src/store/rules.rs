//! The `rules` table: what the person decided once for an agent, applied
//! each time it asks for tools (see `oauth::rules`).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::{corrupt, StoreError};
use crate::clock::UnixMs;
use crate::tools::Risk;

/// What a rule decides for the tools it covers.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Granted without asking.
    Allow,
    /// Granted, and each call waits for the person.
    Ask,
    /// Never granted.
    Deny,
}

impl RuleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Allow => "allow",
            RuleAction::Ask => "ask",
            RuleAction::Deny => "deny",
        }
    }
    pub fn parse(s: &str) -> Option<RuleAction> {
        Some(match s {
            "allow" => RuleAction::Allow,
            "ask" => RuleAction::Ask,
            "deny" => RuleAction::Deny,
            _ => return None,
        })
    }
}

/// Which tools a rule covers: a risk class, or one tool by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum RuleTarget {
    Risk(Risk),
    Tool(String),
}

impl RuleTarget {
    fn to_column(&self) -> String {
        match self {
            RuleTarget::Risk(r) => r.as_str().to_string(),
            RuleTarget::Tool(name) => format!("tool:{name}"),
        }
    }
    fn from_column(s: &str) -> Option<RuleTarget> {
        if let Some(name) = s.strip_prefix("tool:") {
            return Some(RuleTarget::Tool(name.to_string()));
        }
        Risk::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .map(RuleTarget::Risk)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Rule {
    pub id: String,
    pub client_id: String,
    /// The server it applies on; `None`: every server.
    pub server: Option<String>,
    pub target: RuleTarget,
    pub action: RuleAction,
    #[ts(type = "number")]
    pub created_at: UnixMs,
    pub created_by: String,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Rule> {
    let target: String = row.get("target")?;
    let action: String = row.get("action")?;
    Ok(Rule {
        id: row.get("id")?,
        client_id: row.get("client_id")?,
        server: row.get("server")?,
        target: RuleTarget::from_column(&target)
            .ok_or_else(|| corrupt(StoreError::Corrupt(format!("rule target {target}"))))?,
        action: RuleAction::parse(&action)
            .ok_or_else(|| corrupt(StoreError::Corrupt(format!("rule action {action}"))))?,
        created_at: row.get("created_at")?,
        created_by: row.get("created_by")?,
    })
}

pub fn insert(conn: &Connection, r: &Rule) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO rules (id, client_id, server, target, action, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            r.id,
            r.client_id,
            r.server,
            r.target.to_column(),
            r.action.as_str(),
            r.created_at,
            r.created_by
        ],
    )?;
    Ok(())
}

/// Rules of one agent (or of all), oldest first.
pub fn list(conn: &Connection, client_id: Option<&str>) -> Result<Vec<Rule>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT * FROM rules WHERE (?1 IS NULL OR client_id = ?1) ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map(params![client_id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<Rule>, StoreError> {
    Ok(conn
        .query_row("SELECT * FROM rules WHERE id = ?1", [id], from_row)
        .optional()?)
}

/// Changes what a rule decides; false when there is no such rule.
pub fn set_action(conn: &Connection, id: &str, action: RuleAction) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE rules SET action = ?2 WHERE id = ?1",
        params![id, action.as_str()],
    )? == 1)
}

pub fn remove(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM rules WHERE id = ?1", [id])? == 1)
}
