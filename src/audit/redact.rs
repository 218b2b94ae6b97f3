//! What of a tool call's arguments may be written down or shown: values under
//! secret-looking keys are redacted, and the summary is size-capped.

/// Keys whose values are never written to the audit log.
fn is_secret_key(key: &str) -> bool {
    let k = key.as_bytes();
    let contains = |s: &str| {
        k.windows(s.len())
            .any(|w| w.eq_ignore_ascii_case(s.as_bytes()))
    };
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
    .into_iter()
    .any(contains)
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
    let bytes = json_len(&redacted);
    if bytes <= max_bytes {
        redacted
    } else {
        let text = redacted.to_string();
        let truncated = crate::text::cut(&text, max_bytes);
        serde_json::json!({ "truncated": truncated, "bytes": bytes })
    }
}

/// The length of `v` as compact JSON, counted as it is written, not kept.
fn json_len(v: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // A `Value` always serializes, and counting never fails.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
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

    #[test]
    fn secret_keys_are_found_in_any_case_anywhere_in_the_key() {
        let s = summarize_arguments(
            &json!({"GitHub_API_KEY": 1, "x-Password-2": [2], "passage": 3, "tok": 4}),
            1024,
        );
        assert_eq!(
            s,
            json!({"GitHub_API_KEY": "[redacted]", "x-Password-2": "[redacted]", "passage": 3, "tok": 4})
        );
    }

    #[test]
    fn the_size_counted_is_the_compact_json_length() {
        let v = json!({"a": [1, "é\"", {"b": null}], "c": 1.5});
        assert_eq!(json_len(&v), v.to_string().len());
    }
}
