//! A held call's arguments as the person reads them before allowing it: what
//! the call acts on first (the tool's required fields, in its schema's
//! order), then the short fields, then the long ones; each shown up to a
//! preview length, and when anything is cut the view says how much. The
//! whole (redacted) arguments stay available: the window shows them all on
//! request, and `gatehouse pending --json` prints them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How much of one argument's value the first view shows (characters of its JSON).
pub const PREVIEW_CHARS: usize = 200;

/// One argument of a held call, in the order the person should read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct ArgumentField {
    pub name: String,
    /// The tool's schema lists it as required (what the call acts on).
    pub required: bool,
    /// The value's JSON, up to [`PREVIEW_CHARS`] characters.
    pub preview: String,
    /// Characters of the value's JSON left out of `preview` (0: nothing cut).
    #[ts(type = "number")]
    pub cut: usize,
}

/// The arguments' fields in reading order. Anything that is not an object
/// is one field named `(arguments)`.
pub fn fields(arguments: &Value, input_schema: Option<&Value>) -> Vec<ArgumentField> {
    let Some(map) = arguments.as_object() else {
        return if arguments.is_null() {
            Vec::new()
        } else {
            vec![field("(arguments)", arguments, false)]
        };
    };
    let required: Vec<&str> = input_schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out: Vec<ArgumentField> = required
        .iter()
        .filter_map(|name| map.get(*name).map(|v| field(name, v, true)))
        .collect();
    let mut rest: Vec<ArgumentField> = map
        .iter()
        .filter(|(k, _)| !required.contains(&k.as_str()))
        .map(|(k, v)| field(k, v, false))
        .collect();
    rest.sort_by_key(|f| (f.preview.chars().count() + f.cut, f.name.clone()));
    out.extend(rest);
    out
}

fn field(name: &str, value: &Value, required: bool) -> ArgumentField {
    let text = value.to_string();
    let total = text.chars().count();
    let preview: String = text.chars().take(PREVIEW_CHARS).collect();
    ArgumentField {
        name: name.to_string(),
        required,
        cut: total - preview.chars().count(),
        preview,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_the_call_acts_on_comes_first_and_padding_cannot_hide_it() {
        let schema = json!({"type": "object", "required": ["title"], "properties": {"title": {}, "aaaa": {}}});
        // An agent pads the call so that, sorted by name and cut at a size, `title` would vanish.
        let args = json!({"aaaa": "x".repeat(100_000), "title": "taxes-2026", "force": true});
        let shown = fields(&args, Some(&schema));
        assert_eq!(shown[0].name, "title");
        assert!(shown[0].required);
        assert_eq!(
            (shown[0].preview.as_str(), shown[0].cut),
            ("\"taxes-2026\"", 0)
        );
        assert_eq!(shown[1].name, "force", "short before long");
        assert_eq!(shown[2].name, "aaaa");
        assert_eq!(shown[2].preview.chars().count(), PREVIEW_CHARS);
        assert_eq!(
            shown[2].cut,
            100_002 - PREVIEW_CHARS,
            "it says how much is cut"
        );
    }

    #[test]
    fn without_a_schema_short_fields_come_first() {
        let args = json!({"path": "/a/b", "content": "y".repeat(500)});
        let names: Vec<String> = fields(&args, None).into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["path", "content"]);
        assert_eq!(fields(&json!([1, 2]), None)[0].name, "(arguments)");
        assert!(fields(&Value::Null, None).is_empty());
    }
}
