//! Scopes that mean tools. A client asks for a risk class (`tools:read`,
//! `tools:write`, `tools:destructive`), one tool (`tool:<name>`), or a server's
//! resources or prompts (`resources:read`, `prompts:read`); the grant stores
//! the exact items the person approved, and its tokens carry one scope per item.

use std::collections::BTreeSet;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::tools::{Risk, ToolInfo, PROMPTS, RESOURCES};

/// The scope that asks for every tool of a risk class.
pub fn class_scope(risk: Risk) -> &'static str {
    match risk {
        Risk::Read => "tools:read",
        Risk::Write => "tools:write",
        Risk::Destructive => "tools:destructive",
    }
}

/// The three class scopes, in risk order (what the authorization server
/// advertises, and what a challenge asks for when a server cannot be listed).
pub fn all_class_scopes() -> Vec<String> {
    Risk::ALL
        .into_iter()
        .map(|r| class_scope(r).to_string())
        .collect()
}

/// The scopes a client may ask for on a server with these items: the classes
/// that have items, then each tool.
pub fn scopes_supported(tools: &[ToolInfo]) -> Vec<String> {
    let mut out = class_scopes(tools);
    out.extend(
        tools
            .iter()
            .filter(|t| t.is_tool())
            .map(|t| item_scope(&t.name)),
    );
    out
}

/// The class scopes that have at least one item, in risk order, then
/// `resources:read` and `prompts:read` where the server has them.
pub fn class_scopes(tools: &[ToolInfo]) -> Vec<String> {
    let mut out: Vec<String> = Risk::ALL
        .into_iter()
        .filter(|r| tools.iter().any(|t| t.is_tool() && t.risk == *r))
        .map(|r| class_scope(r).to_string())
        .collect();
    out.extend(
        tools
            .iter()
            .filter(|t| !t.is_tool())
            .map(|t| item_scope(&t.name)),
    );
    out
}

/// What a tool's name must not hold as it is inside its scope token: a scope
/// token is visible ASCII but `"` and `\` (RFC 6749 §3.3), and `%` encodes
/// the rest. A name comes from its server: one holding a space would
/// otherwise read as several scopes (`tool:x tools:destructive` asks for
/// every destructive tool).
const NOT_IN_TOKEN: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'\\').add(b'%');

/// The scope token that names one item.
pub fn item_scope(name: &str) -> String {
    match name {
        RESOURCES => "resources:read".into(),
        PROMPTS => "prompts:read".into(),
        tool => format!("tool:{}", utf8_percent_encode(tool, NOT_IN_TOKEN)),
    }
}

/// The tool a `tool:` scope token names (its percent-encoding undone).
fn tool_of(token: &str) -> Option<String> {
    let encoded = token.strip_prefix("tool:")?;
    percent_decode_str(encoded)
        .decode_utf8()
        .ok()
        .map(|name| name.into_owned())
}

#[derive(Debug, PartialEq, Eq)]
pub struct UnknownScope(pub String);

/// The items a requested scope string unlocks, in the server's order. `None`
/// or empty means every item (a client that does not know our vocabulary asks
/// for the whole server, and the person picks). An unknown scope token is an
/// error (`invalid_scope`).
pub fn tools_for_scope(
    scope: Option<&str>,
    tools: &[ToolInfo],
) -> Result<Vec<String>, UnknownScope> {
    let tokens: Vec<&str> = scope.unwrap_or("").split_whitespace().collect();
    if tokens.is_empty() {
        return Ok(tools.iter().map(|t| t.name.clone()).collect());
    }
    let mut wanted = BTreeSet::new();
    for token in tokens {
        if let Some(risk) = Risk::ALL.into_iter().find(|r| class_scope(*r) == token) {
            wanted.extend(
                tools
                    .iter()
                    .filter(|t| t.is_tool() && t.risk == risk)
                    .map(|t| t.name.clone()),
            );
        } else if let Some(item) = [RESOURCES, PROMPTS]
            .into_iter()
            .find(|i| item_scope(i) == token)
        {
            if tools.iter().any(|t| t.name == item) {
                wanted.insert(item.to_string());
            }
        } else if let Some(name) = tool_of(token) {
            if !tools.iter().any(|t| t.is_tool() && t.name == name) {
                return Err(UnknownScope(token.to_string()));
            }
            wanted.insert(name);
        } else if token == "tools" || token == "mcp" {
            wanted.extend(tools.iter().map(|t| t.name.clone()));
        } else {
            return Err(UnknownScope(token.to_string()));
        }
    }
    Ok(tools
        .iter()
        .filter(|t| wanted.contains(&t.name))
        .map(|t| t.name.clone())
        .collect())
}

/// The scope string for a granted item set: one item scope each, in the given
/// order. Exact, so it stays true when the server adds tools later.
pub fn scope_for_tools(granted: &[String]) -> String {
    granted
        .iter()
        .map(|name| item_scope(name))
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
            pin: String::new(),
            definition: json!({}),
        }
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
            scope_for_tools(&["read".into(), "rm".into(), RESOURCES.into()]),
            "tool:read tool:rm resources:read"
        );
        let with_items = [tools.clone(), vec![ToolInfo::resources()]].concat();
        assert_eq!(
            tools_for_scope(Some("resources:read"), &with_items).unwrap(),
            vec![RESOURCES]
        );
        assert_eq!(
            tools_for_scope(Some("tools:read"), &with_items).unwrap(),
            vec!["read"]
        );
        assert_eq!(
            class_scopes(&with_items),
            vec![
                "tools:read",
                "tools:write",
                "tools:destructive",
                "resources:read"
            ]
        );
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
        assert_eq!(
            all_class_scopes(),
            ["tools:read", "tools:write", "tools:destructive"]
        );
    }

    /// A server names its tools: each name is one scope token whatever it
    /// holds, and reads back as that name and nothing more.
    #[test]
    fn a_tool_name_is_one_scope_token() {
        let names = [
            "lookup tools:destructive",
            "say \"hi\"",
            "back\\slash",
            "caf\u{e9}\u{202e}",
            "100%20 off",
            "tab\there\r\n",
            "@resources",
        ];
        let mut tools: Vec<ToolInfo> = names.iter().map(|n| tool(n, Risk::Read)).collect();
        tools.push(tool("lookup", Risk::Read));
        tools.push(tool("wipe", Risk::Destructive));
        for name in names.iter().filter(|n| !n.starts_with('@')) {
            let scope = item_scope(name);
            let rfc6749 = |c: char| c.is_ascii_graphic() && c != '"' && c != '\\';
            assert!(scope.chars().all(rfc6749), "{scope}");
            assert_eq!(
                tools_for_scope(Some(&scope), &tools).unwrap(),
                vec![name.to_string()],
                "{scope}"
            );
        }
        assert_eq!(item_scope("read_file-v2.x"), "tool:read_file-v2.x");
        assert_eq!(
            item_scope("lookup tools:destructive"),
            "tool:lookup%20tools:destructive"
        );
        // `@` names the resources and prompts items, never a server's tool.
        assert!(tools_for_scope(Some("tool:@resources"), &tools).is_err());
        assert!(tools_for_scope(Some("tool:%FF"), &tools).is_err());
    }
}
