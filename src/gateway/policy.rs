//! Per-request policy: a small pure function. Deny by hiding: `tools/list`
//! shows only granted tools, and a call to any other tool is refused before
//! it can reach the upstream.

use serde_json::Value;

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Forward,
    /// Refuse with this message; nothing reaches the upstream.
    Refuse(String),
}

/// Decides a client request before it goes upstream.
pub fn check_request(method: &str, params: Option<&Value>, granted: &[String]) -> Decision {
    if method != "tools/call" {
        return Decision::Forward;
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
    if granted.iter().any(|g| g == name) {
        Decision::Forward
    } else {
        Decision::Refuse(format!("tool {name:?} is not granted to this agent"))
    }
}

/// Removes ungranted tools from a `tools/list` result, in place.
pub fn filter_tools_list(result: &mut Value, granted: &[String]) {
    if let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) {
        tools.retain(|t| {
            t.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| granted.iter().any(|g| g == n))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_only_granted_tools() {
        let granted = vec!["read".to_string()];
        assert_eq!(
            check_request(
                "tools/call",
                Some(&json!({"name": "read", "arguments": {}})),
                &granted
            ),
            Decision::Forward
        );
        assert!(matches!(
            check_request("tools/call", Some(&json!({"name": "write"})), &granted),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            check_request(
                "tools/call",
                Some(&json!({"name": "read", "arguments": [1]})),
                &granted
            ),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            check_request("tools/call", None, &granted),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            check_request("tools/call", Some(&json!({"name": 5})), &granted),
            Decision::Refuse(_)
        ));
        assert_eq!(
            check_request("tools/list", None, &granted),
            Decision::Forward
        );
    }

    #[test]
    fn hides_ungranted_tools() {
        let mut result = json!({"tools": [{"name": "read"}, {"name": "write"}, {"nameless": true}], "nextCursor": "c"});
        filter_tools_list(&mut result, &["read".to_string()]);
        assert_eq!(
            result,
            json!({"tools": [{"name": "read"}], "nextCursor": "c"})
        );
    }
}
