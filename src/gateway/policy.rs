//! Per-request policy: a small pure function. Deny by hiding: lists show only
//! what was granted, and a request for anything else is refused (or, for a
//! real tool the agent was never granted, answered with a step-up challenge)
//! before it can reach the upstream.

use serde_json::{json, Value};

use crate::store::live::{LiveGrant, ToolSet};
use crate::tools::{PROMPTS, RESOURCES};

/// What the agent holds on this server.
pub struct Grantee<'a> {
    pub tools: &'a ToolSet,
    /// Granted tools whose every call is held for the person.
    pub ask: &'a ToolSet,
    /// Granted tools blocked because their definition changed upstream.
    pub suspended: &'a ToolSet,
}

impl<'a> Grantee<'a> {
    pub fn of(grant: &'a LiveGrant) -> Grantee<'a> {
        Grantee {
            tools: &grant.tools,
            ask: &grant.ask,
            suspended: &grant.suspended,
        }
    }

    fn has(&self, item: &str) -> bool {
        self.tools.contains(item)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not a gated method: pass it on.
    Forward,
    /// A call to a granted tool: pass it on after its pin is checked.
    Call(String),
    /// A call to an ask-every-time tool: hold it for the person.
    Hold(String),
    /// A tool the agent was never granted: ask for more (step-up).
    StepUp(String),
    /// Answer locally with this result; nothing reaches the upstream.
    Answer(Value),
    /// Refuse with this message; nothing reaches the upstream.
    Refuse(String),
    /// Not a method MCP gives clients: no grant covers it, so it is not
    /// passed on (a server's own extra methods would bypass every grant).
    NotMcp,
}

/// What a client may ask of a server beyond tools, resources and prompts
/// (which are gated): passed on as they are. Tasks come only from the
/// agent's own calls on its own upstream session. (`initialize` opens a
/// session, and is answered by the gateway inside one.)
const UNGATED: [&str; 7] = [
    "ping",
    "tools/list",
    "logging/setLevel",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
];

/// Whether a method is one the policy decides (a client request MCP has):
/// sent without an id, it must be sent again as a request.
pub fn governs(method: &str) -> bool {
    matches!(method, "tools/call" | "initialize")
        || UNGATED.contains(&method)
        || gated_item(method, None).is_some()
}

/// The notifications MCP gives clients: passed on. Any other (a server's
/// own `notifications/admin/…`) is refused like a method that is not MCP's.
pub fn is_client_notification(method: &str) -> bool {
    matches!(
        method,
        "notifications/initialized"
            | "notifications/cancelled"
            | "notifications/progress"
            | "notifications/roots/list_changed"
            | "notifications/tasks/status"
    )
}

/// The grant item a resources/prompts method needs, and the empty answer that hides it.
fn gated_item(method: &str, params: Option<&Value>) -> Option<(&'static str, Option<Value>)> {
    Some(match method {
        "resources/list" => (RESOURCES, Some(json!({"resources": []}))),
        "resources/templates/list" => (RESOURCES, Some(json!({"resourceTemplates": []}))),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => (RESOURCES, None),
        "prompts/list" => (PROMPTS, Some(json!({"prompts": []}))),
        "prompts/get" => (PROMPTS, None),
        "completion/complete" => {
            let kind = params
                .and_then(|p| p.get("ref"))
                .and_then(|r| r.get("type"))
                .and_then(Value::as_str);
            (
                if kind == Some("ref/prompt") {
                    PROMPTS
                } else {
                    RESOURCES
                },
                None,
            )
        }
        _ => return None,
    })
}

/// Whether a request acts (calls a tool, reads, gets a prompt or a task's
/// result…) rather than keeping the session alive, listing, or looking at or
/// cancelling its tasks: what a pause refuses.
pub fn acts(method: &str) -> bool {
    !matches!(
        method,
        "ping"
            | "tools/list"
            | "resources/list"
            | "resources/templates/list"
            | "prompts/list"
            | "logging/setLevel"
            | "tasks/get"
            | "tasks/list"
            | "tasks/cancel"
    )
}

/// Decides a client request before it goes upstream.
pub fn check_request(method: &str, params: Option<&Value>, grantee: &Grantee<'_>) -> Decision {
    if let Some((item, hidden)) = gated_item(method, params) {
        return match (grantee.has(item), hidden) {
            (true, _) => Decision::Forward,
            (false, Some(empty)) => Decision::Answer(empty),
            // Reading what was never granted: ask for it (step-up), as for a tool.
            (false, None) => Decision::StepUp(item.to_string()),
        };
    }
    if method != "tools/call" {
        return if UNGATED.contains(&method) {
            Decision::Forward
        } else {
            Decision::NotMcp
        };
    }
    let Some(params) = params.and_then(Value::as_object) else {
        return Decision::Refuse("tools/call needs params with a tool name".into());
    };
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Decision::Refuse("tools/call needs a string `name`".into());
    };
    if params
        .get("arguments")
        .is_some_and(|a| !a.is_object() && !a.is_null())
    {
        return Decision::Refuse("tools/call `arguments` must be an object".into());
    }
    if name.starts_with('@') {
        // `@resources` and `@prompts` stand for what is not a tool; asking
        // for them as a tool would step up for a grant no call can use.
        return Decision::Refuse(format!("no tool is named {name:?}"));
    }
    if !grantee.has(name) {
        return Decision::StepUp(name.to_string());
    }
    if grantee.suspended.contains(name) {
        return Decision::Refuse(format!(
            "tool {name:?} changed on the server since it was approved; it is blocked until the user re-approves it"
        ));
    }
    if grantee.ask.contains(name) {
        Decision::Hold(name.to_string())
    } else {
        Decision::Call(name.to_string())
    }
}

/// What an agent that may ask for more reads on a tool it was not granted.
pub const ASKABLE_NOTE: &str =
    "[Not granted yet: calling it asks the person to allow it in Gatehouse.]";

/// Marks a tool the agent was not granted but may ask for (its description
/// says so first, so an agent reading it knows a call waits for the person).
pub fn mark_askable(tool: &mut Value) {
    let description = tool
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let marked = if description.is_empty() {
        ASKABLE_NOTE.to_string()
    } else {
        format!("{ASKABLE_NOTE} {description}")
    };
    if let Some(t) = tool.as_object_mut() {
        t.insert("description".into(), Value::String(marked));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grantee<'a>(tools: &'a ToolSet, ask: &'a ToolSet, suspended: &'a ToolSet) -> Grantee<'a> {
        Grantee {
            tools,
            ask,
            suspended,
        }
    }

    fn set(items: &[&str]) -> ToolSet {
        items.iter().collect()
    }

    #[test]
    fn calls_only_granted_tools() {
        let tools = set(&["read", "rm", "changed"]);
        let ask = set(&["rm"]);
        let suspended = set(&["changed"]);
        let g = grantee(&tools, &ask, &suspended);
        let call = |p: Value| check_request("tools/call", Some(&p), &g);
        assert_eq!(
            call(json!({"name": "read", "arguments": {}})),
            Decision::Call("read".into())
        );
        assert_eq!(call(json!({"name": "rm"})), Decision::Hold("rm".into()));
        assert_eq!(
            call(json!({"name": "write"})),
            Decision::StepUp("write".into())
        );
        assert!(matches!(
            call(json!({"name": "@resources"})),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            call(json!({"name": "changed"})),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            call(json!({"name": "read", "arguments": [1]})),
            Decision::Refuse(_)
        ));
        assert!(matches!(call(json!({"name": 5})), Decision::Refuse(_)));
        assert!(matches!(
            check_request("tools/call", None, &g),
            Decision::Refuse(_)
        ));
        assert_eq!(check_request("tools/list", None, &g), Decision::Forward);
        assert_eq!(check_request("tasks/result", None, &g), Decision::Forward);
        for method in ["admin/exec", "sampling/createMessage", "Tools/Call", ""] {
            assert_eq!(
                check_request(method, None, &g),
                Decision::NotMcp,
                "{method}"
            );
        }
    }

    #[test]
    fn resources_and_prompts_are_granted_like_tools() {
        let none = set(&[]);
        let with = set(&[RESOURCES]);
        let g = grantee(&none, &none, &none);
        assert_eq!(
            check_request("resources/list", None, &g),
            Decision::Answer(json!({"resources": []}))
        );
        assert_eq!(
            check_request("prompts/list", None, &g),
            Decision::Answer(json!({"prompts": []}))
        );
        assert_eq!(
            check_request("resources/templates/list", None, &g),
            Decision::Answer(json!({"resourceTemplates": []}))
        );
        assert_eq!(
            check_request(
                "resources/read",
                Some(&json!({"uri": "file:///etc/passwd"})),
                &g
            ),
            Decision::StepUp(RESOURCES.into())
        );
        assert_eq!(
            check_request("prompts/get", Some(&json!({"name": "p"})), &g),
            Decision::StepUp(PROMPTS.into())
        );
        let g = grantee(&with, &none, &none);
        assert_eq!(
            check_request("resources/read", Some(&json!({"uri": "x"})), &g),
            Decision::Forward
        );
        let completion = json!({"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "a", "value": ""}});
        assert_eq!(
            check_request("completion/complete", Some(&completion), &g),
            Decision::StepUp(PROMPTS.into())
        );
    }

    #[test]
    fn marks_a_tool_the_agent_may_ask_for() {
        let mut tool = json!({"name": "rm", "description": "Deletes a file."});
        mark_askable(&mut tool);
        assert_eq!(
            tool["description"],
            format!("{ASKABLE_NOTE} Deletes a file.")
        );
        let mut bare = json!({"name": "rm"});
        mark_askable(&mut bare);
        assert_eq!(bare["description"], ASKABLE_NOTE);
    }
}
