//! The built-in demo MCP server (`gatehouse demo-server`): a small notes
//! store over stdio with one tool of each risk class, properly annotated, so a
//! new user sees the whole consent flow without configuring anything.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde_json::{json, Value};

use crate::gateway::jsonrpc::{self, Kind};

fn tools() -> Value {
    json!([
        {"name": "list_notes", "title": "List notes", "description": "List the titles of all notes.",
         "inputSchema": {"type": "object", "properties": {}},
         "annotations": {"readOnlyHint": true, "openWorldHint": false}},
        {"name": "read_note", "title": "Read a note", "description": "Read one note by its title.",
         "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
         "annotations": {"readOnlyHint": true, "openWorldHint": false}},
        {"name": "wait", "title": "Wait", "description": "Wait the given number of milliseconds, then answer (for testing timeouts).",
         "inputSchema": {"type": "object", "properties": {"ms": {"type": "integer", "minimum": 0}}, "required": ["ms"]},
         "annotations": {"readOnlyHint": true, "openWorldHint": false}},
        {"name": "write_note", "title": "Write a note", "description": "Create a note or replace its text.",
         "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}, "text": {"type": "string"}}, "required": ["title", "text"]},
         "annotations": {"readOnlyHint": false, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}},
        {"name": "delete_note", "title": "Delete a note", "description": "Delete a note for good.",
         "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
         "annotations": {"readOnlyHint": false, "destructiveHint": true, "openWorldHint": false}}
    ])
}

fn text(s: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": s.into()}]})
}

fn tool_error(s: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": s.into()}], "isError": true})
}

struct Notes(BTreeMap<String, String>);

impl Notes {
    fn call(&mut self, name: &str, args: &Value) -> Value {
        let title = args.get("title").and_then(Value::as_str);
        match (name, title) {
            ("list_notes", _) => text(self.0.keys().cloned().collect::<Vec<_>>().join("\n")),
            ("read_note", Some(t)) => match self.0.get(t) {
                Some(body) => text(body.clone()),
                None => tool_error(format!("no note titled {t:?}")),
            },
            ("write_note", Some(t)) => {
                let body = args.get("text").and_then(Value::as_str).unwrap_or_default();
                self.0.insert(t.to_string(), body.to_string());
                text(format!("saved {t:?}"))
            }
            ("delete_note", Some(t)) => match self.0.remove(t) {
                Some(_) => text(format!("deleted {t:?}")),
                None => tool_error(format!("no note titled {t:?}")),
            },
            ("wait", _) => {
                let ms = args
                    .get("ms")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .min(600_000);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                text(format!("waited {ms} ms"))
            }
            _ => tool_error("missing `title`"),
        }
    }
}

fn answer(notes: &mut Notes, id: Value, method: &str, params: &Value) -> Value {
    let result = match method {
        "initialize" => json!({
            "protocolVersion": params.get("protocolVersion").and_then(Value::as_str).unwrap_or("2025-06-18"),
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "gatehouse-demo", "title": "Gatehouse demo notes", "version": env!("CARGO_PKG_VERSION")}
        }),
        "ping" => json!({}),
        "tools/list" => json!({"tools": tools()}),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or("");
            if !tools()
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["name"] == name)
            {
                return jsonrpc::error(
                    id,
                    jsonrpc::INVALID_PARAMS,
                    format!("unknown tool {name:?}"),
                );
            }
            notes.call(name, params.get("arguments").unwrap_or(&Value::Null))
        }
        other => {
            return jsonrpc::error(
                id,
                jsonrpc::METHOD_NOT_FOUND,
                format!("method {other:?} not found"),
            )
        }
    };
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// Serves MCP on stdin/stdout until stdin closes. Requests are answered in
/// turn, except `wait`, which runs on its own thread so that it holds up no
/// other call. A call with a progress token gets one progress notification
/// before its answer.
pub fn run() -> std::io::Result<()> {
    use std::sync::{Arc, Mutex};
    let mut notes = Notes(BTreeMap::from([(
        "welcome".to_string(),
        "Hello from the Gatehouse demo server.".to_string(),
    )]));
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Err(_) => reply(
                &stdout,
                jsonrpc::error(Value::Null, jsonrpc::PARSE_ERROR, "not JSON"),
            ),
            Ok(msg) => match jsonrpc::classify(&msg) {
                Some(Kind::Request { id, method }) => {
                    let params = msg.get("params").cloned().unwrap_or(Value::Null);
                    if method == "tools/call" && params["name"] == "wait" {
                        // Waiting holds neither the notes nor the next request.
                        let stdout = stdout.clone();
                        std::thread::spawn(move || {
                            let mut none = Notes(BTreeMap::new());
                            serve(&mut none, &stdout, id, &method, &params)
                        });
                    } else {
                        serve(&mut notes, &stdout, id, &method, &params);
                    }
                }
                Some(_) => {}
                None => reply(
                    &stdout,
                    jsonrpc::error(Value::Null, jsonrpc::INVALID_REQUEST, "not JSON-RPC 2.0"),
                ),
            },
        }
    }
    Ok(())
}

/// Writes one message as a line.
fn reply(stdout: &std::sync::Mutex<std::io::Stdout>, msg: Value) {
    let mut out = stdout.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(out, "{msg}").and_then(|_| out.flush());
}

/// Answers one request, after a progress notification when a call asks for one.
fn serve(
    notes: &mut Notes,
    stdout: &std::sync::Mutex<std::io::Stdout>,
    id: Value,
    method: &str,
    params: &Value,
) {
    let token = params
        .pointer("/_meta/progressToken")
        .filter(|t| !t.is_null());
    if let (true, Some(token)) = (method == "tools/call", token) {
        let started =
            json!({"progressToken": token, "progress": 0, "total": 1, "message": "started"});
        let note = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": started});
        reply(stdout, note);
    }
    reply(stdout, answer(notes, id, method, params));
}
