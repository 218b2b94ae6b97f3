//! The client's output: one JSON object per line on stdout, `{"event": NAME, ...fields}`.

use std::io::Write;

use serde_json::{Map, Value};

/// Prints one event. `fields` must be a JSON object (or null for none).
pub fn emit(event: &str, fields: Value) {
    let mut line = Map::new();
    line.insert("event".into(), Value::from(event));
    if let Value::Object(fields) = fields {
        line.extend(fields);
    }
    let mut out = std::io::stdout().lock();
    // A closed stdout leaves nobody to tell; the exit code still says how the run went.
    let _ = writeln!(out, "{}", Value::Object(line));
    let _ = out.flush();
}
