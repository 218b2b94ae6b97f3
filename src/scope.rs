//! Scopes that mean tools. A fronted server's tools fall in three risk
//! classes, read from their MCP annotations; a client asks for a class
//! (`tools:read`, `tools:write`, `tools:destructive`) or one tool
//! (`tool:<name>`). The grant stores the exact tool names the person approved.

use serde::{Deserialize, Serialize};

/// How much harm a tool can do, from its MCP annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
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

    pub fn scope(self) -> &'static str {
        match self {
            Risk::Read => "tools:read",
            Risk::Write => "tools:write",
            Risk::Destructive => "tools:destructive",
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

/// One tool of a fronted server, as shown in a consent request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub description: String,
    pub risk: Risk,
}

impl ToolInfo {
    /// Reads a tool object from an MCP `tools/list` result.
    pub fn from_mcp(tool: &serde_json::Value) -> Option<ToolInfo> {
        let name = tool.get("name")?.as_str()?.to_string();
        let annotations = tool.get("annotations");
        let title = tool
            .get("title")
            .or_else(|| annotations.and_then(|a| a.get("title")))
            .and_then(|t| t.as_str())
            .map(str::to_string);
        let description = tool
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or_default()
            .to_string();
        Some(ToolInfo {
            name,
            title,
            description,
            risk: Risk::from_annotations(annotations),
        })
    }
}

/// The scopes a client may ask for on a server with these tools: the classes
/// that have tools, then each tool.
pub fn scopes_supported(tools: &[ToolInfo]) -> Vec<String> {
    let mut out: Vec<String> = class_scopes(tools);
    out.extend(tools.iter().map(|t| format!("tool:{}", t.name)));
    out
}

/// The class scopes that have at least one tool, in risk order.
pub fn class_scopes(tools: &[ToolInfo]) -> Vec<String> {
    [Risk::Read, Risk::Write, Risk::Destructive]
        .into_iter()
        .filter(|r| tools.iter().any(|t| t.risk == *r))
        .map(|r| r.scope().to_string())
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
pub struct UnknownScope(pub String);

/// The tools a requested scope string unlocks. `None` or empty means every
/// tool (a client that does not know our vocabulary asks for the whole server,
/// and the person picks). An unknown scope token is an error (`invalid_scope`).
pub fn tools_for_scope(
    scope: Option<&str>,
    tools: &[ToolInfo],
) -> Result<Vec<String>, UnknownScope> {
    let tokens: Vec<&str> = scope.unwrap_or("").split_whitespace().collect();
    if tokens.is_empty() {
        return Ok(tools.iter().map(|t| t.name.clone()).collect());
    }
    let mut wanted = std::collections::BTreeSet::new();
    for token in tokens {
        let class = [Risk::Read, Risk::Write, Risk::Destructive]
            .into_iter()
            .find(|r| r.scope() == token);
        if let Some(risk) = class {
            wanted.extend(
                tools
                    .iter()
                    .filter(|t| t.risk == risk)
                    .map(|t| t.name.clone()),
            );
        } else if let Some(name) = token.strip_prefix("tool:") {
            if !tools.iter().any(|t| t.name == name) {
                return Err(UnknownScope(token.to_string()));
            }
            wanted.insert(name.to_string());
        } else if token == "tools" || token == "mcp" {
            wanted.extend(tools.iter().map(|t| t.name.clone()));
        } else {
            return Err(UnknownScope(token.to_string()));
        }
    }
    // Keep the server's order.
    Ok(tools
        .iter()
        .filter(|t| wanted.contains(&t.name))
        .map(|t| t.name.clone())
        .collect())
}

/// The scope string for a granted tool set: `tool:<name>` for each tool, in
/// the server's order. Exact, so it stays true when the server adds tools later.
pub fn scope_for_tools(granted: &[String], tools: &[ToolInfo]) -> String {
    tools
        .iter()
        .filter(|t| granted.contains(&t.name))
        .map(|t| format!("tool:{}", t.name))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, risk: Risk) -> ToolInfo {
        ToolInfo {
            name: name.into(),
            title: None,
            description: String::new(),
            risk,
        }
    }

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
    fn scopes_map_to_tools() {
        let tools = vec![
            tool("read", Risk::Read),
            tool("write", Risk::Write),
            tool("rm", Risk::Destructive),
        ];
        assert_eq!(tools_for_scope(None, &tools).unwrap().len(), 3);
        assert_eq!(
            tools_for_scope(Some("tools:read"), &tools).unwrap(),
            vec!["read"]
        );
        assert_eq!(
            tools_for_scope(Some("tools:read tool:rm"), &tools).unwrap(),
            vec!["read", "rm"]
        );
        assert!(tools_for_scope(Some("tool:nope"), &tools).is_err());
        assert!(tools_for_scope(Some("admin"), &tools).is_err());
        assert_eq!(
            scope_for_tools(&["read".into(), "rm".into()], &tools),
            "tools:read tools:destructive"
        );
        assert_eq!(scope_for_tools(&["write".into()], &tools), "tools:write");
        assert_eq!(
            scopes_supported(&tools),
            vec![
                "tools:read",
                "tools:write",
                "tools:destructive",
                "tool:read",
                "tool:write",
                "tool:rm"
            ]
        );
    }
}
