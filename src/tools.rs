//! What a fronted server offers, as Gatehouse reasons about it: each tool
//! with its risk class (read from its MCP annotations), and the two items that
//! stand for a server's resources and prompts. Consent requests, grants,
//! scopes and the policy all speak in these names.

use serde::{Deserialize, Serialize};

/// How much harm a tool can do, from its MCP annotations.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// `readOnlyHint: true`.
    Read,
    /// Changes things but `destructiveHint: false`.
    Write,
    /// Anything else, including a tool with no annotations (MCP's defaults).
    Destructive,
}

impl Risk {
    pub const ALL: [Risk; 3] = [Risk::Read, Risk::Write, Risk::Destructive];

    /// As scopes and rules spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Read => "read",
            Risk::Write => "write",
            Risk::Destructive => "destructive",
        }
    }

    pub fn from_annotations(annotations: Option<&serde_json::Value>) -> Risk {
        let flag = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .and_then(|v| v.as_bool())
        };
        if flag("readOnlyHint") == Some(true) {
            Risk::Read
        } else if flag("destructiveHint") == Some(false) {
            Risk::Write
        } else {
            Risk::Destructive
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Risk::Read => "reads",
            Risk::Write => "changes things",
            Risk::Destructive => "destructive",
        }
    }
}

/// The item under which a grant pins its server's `instructions`, the text
/// an agent's client gives its model about the server (MCP's `initialize`
/// result). `@` names are Gatehouse's own: no server's tool has one. Never
/// granted, offered or listed: only pinned (`gateway::pinning`).
pub const INSTRUCTIONS: &str = "@instructions";

/// A server's instructions as a grant pins them: `{"instructions": …}`, or
/// `{}` when it has none, and the pin's hash (`gateway::pinning`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instructions {
    pub pin: String,
    pub definition: serde_json::Value,
}

impl Instructions {
    /// The text as the person reads it; `None` when there is none.
    pub fn text(&self) -> Option<String> {
        match self.definition.get("instructions")? {
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// The grant item for a server's resources (`resources/list`, `resources/read`…).
pub const RESOURCES: &str = "@resources";
/// The grant item for a server's prompts (`prompts/list`, `prompts/get`).
pub const PROMPTS: &str = "@prompts";

/// One item of a fronted server (a tool, or its resources or prompts), as a
/// consent request stores it. Its JSON form is kept in the database: keep the
/// field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub description: String,
    pub risk: Risk,
    /// The hash of the definition the person sees (`gateway::pinning`); empty
    /// for resources and prompts.
    #[serde(default)]
    pub pin: String,
    /// The pinned fields of the tool's definition as the upstream listed it.
    #[serde(default)]
    pub definition: serde_json::Value,
}

impl ToolInfo {
    pub fn resources() -> ToolInfo {
        ToolInfo {
            name: RESOURCES.into(),
            title: Some("Read its resources".into()),
            description: "List and read the server's resources (files, records, documents).".into(),
            risk: Risk::Read,
            pin: String::new(),
            definition: serde_json::Value::Null,
        }
    }

    pub fn prompts() -> ToolInfo {
        ToolInfo {
            name: PROMPTS.into(),
            title: Some("Use its prompts".into()),
            description: "List and fetch the server's prompt templates.".into(),
            risk: Risk::Read,
            pin: String::new(),
            definition: serde_json::Value::Null,
        }
    }

    /// Whether this item is a real tool (not the resources or prompts item).
    pub fn is_tool(&self) -> bool {
        is_tool_name(&self.name)
    }
}

/// Whether a grant item names a real tool (not `@resources` or `@prompts`).
pub fn is_tool_name(name: &str) -> bool {
    !name.starts_with('@')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_from_annotations_with_mcp_defaults() {
        assert_eq!(
            Risk::from_annotations(Some(&json!({"readOnlyHint": true}))),
            Risk::Read
        );
        assert_eq!(
            Risk::from_annotations(Some(
                &json!({"readOnlyHint": false, "destructiveHint": false})
            )),
            Risk::Write
        );
        assert_eq!(
            Risk::from_annotations(Some(&json!({"readOnlyHint": false}))),
            Risk::Destructive
        );
        assert_eq!(Risk::from_annotations(None), Risk::Destructive);
    }

    #[test]
    fn the_stored_form_is_stable() {
        let stored = r#"{"name":"rm","description":"Remove","risk":"destructive","pin":"ab","definition":{"name":"rm"}}"#;
        let tool: ToolInfo = serde_json::from_str(stored).unwrap();
        assert_eq!(tool.risk, Risk::Destructive);
        assert_eq!(serde_json::to_string(&tool).unwrap(), stored);
    }
}
