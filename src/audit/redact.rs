//! What of a tool call's arguments may be written down or shown: values under
//! secret-looking keys are redacted, and the summary is size-capped.

/// Keys whose values are never written to the audit log.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "authorization",
        "cookie",
        "api_key",
        "apikey",
        "credential",
        "private_key",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Tool arguments with the values of secret-looking keys redacted, whole.
pub fn redact(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) {
                        serde_json::json!("[redacted]")
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(redact).collect())
        }
        other => other.clone(),
    }
}

/// A size-capped summary of tool arguments with secret-looking values
/// redacted (for the audit log; it says so when it cut).
pub fn summarize_arguments(args: &serde_json::Value, max_bytes: usize) -> serde_json::Value {
    let redacted = redact(args);
    let text = redacted.to_string();
    if text.len() <= max_bytes {
        redacted
    } else {
        let truncated = crate::text::cut(&text, max_bytes);
        serde_json::json!({ "truncated": truncated, "bytes": text.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argument_summary_redacts_and_caps() {
        let s = summarize_arguments(&json!({"path": "a", "nested": {"api_token": "xyz"}}), 1024);
        assert_eq!(
            s,
            json!({"path": "a", "nested": {"api_token": "[redacted]"}})
        );
        let big = json!({"text": "x".repeat(5000)});
        let s = summarize_arguments(&big, 100);
        assert_eq!(s["bytes"], json!(5011));
        assert!(s["truncated"].as_str().unwrap().len() < 120);
    }
}
