//! Entry points for the benchmark (`benches/gateway.rs`) to time single
//! internal steps of a running Gatehouse in-process: each runs exactly the
//! code a request runs, and returns only what the benchmark checks. They are
//! not an API: no face uses them, and they hand out no internal type.
#![doc(hidden)]
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock like an edge

use std::collections::HashMap;

use serde_json::Value;

use crate::api::Gatehouse;
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock;
use crate::gateway::{pinning, policy};
use crate::oauth::client_auth::PresentedCredentials;
use crate::oauth::{bearer, token};
use crate::store::pins;

fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The gateway's bearer check; returns the grant's id and tool count.
pub fn bearer_check(g: &Gatehouse, token: &str, server: &str) -> Result<(String, usize), String> {
    let access = bearer::authenticate(g.auth(), token, server, clock::now())
        .map_err(|e| format!("{e:?}"))?;
    Ok((access.grant.id, access.grant.tools.len()))
}

/// Reads every pin of a grant (what a `tools/list` reads); returns how many.
pub fn read_pins(g: &Gatehouse, grant_id: &str) -> Result<usize, String> {
    let pins = g.store().read(|c| pins::heads_for_grant(c, grant_id));
    pins.map(|p| p.len()).map_err(|e| e.to_string())
}

/// The policy's decision on a `tools/call` of `tool` for a grant of `granted`:
/// whether it may go upstream.
pub fn policy_allows_call(granted: &[String], tool: &str, params: &Value) -> bool {
    let grantee = policy::Grantee {
        tools: granted,
        ask: &[],
        suspended: &[],
    };
    policy::check_request("tools/call", Some(params), &grantee)
        == policy::Decision::Call(tool.to_string())
}

/// The grant part of filtering a `tools/list` result, in place.
pub fn filter_listing(result: &mut Value, granted: &[String]) {
    policy::filter_tools_list(result, |tool| {
        let name = tool.get("name").and_then(Value::as_str);
        name.is_some_and(|name| granted.iter().any(|g| g == name))
    });
}

/// The pin of one tool definition.
pub fn pin_of(tool: &Value) -> String {
    pinning::pin_of(tool)
}

/// Writes one tool-call audit event, committed.
pub fn audit_write(g: &Gatehouse, client_id: &str) -> Result<(), String> {
    let event = NewEvent::new(EventKind::ToolCall, Outcome::Allowed)
        .client(client_id)
        .server("demo")
        .tool("read_note")
        .detail(serde_json::json!({"arguments": {"title": "welcome"}}));
    g.store()
        .write(|tx| tx.record(event, clock::now()))
        .map_err(|e| e.to_string())
}

/// Finds the program on the client end of a loopback connection (what each
/// new HTTP connection costs, once); its pid.
pub fn peer_lookup(server: std::net::SocketAddr, client: std::net::SocketAddr) -> Option<u32> {
    crate::peer::lookup(server, client).map(|p| p.pid)
}

/// Seals one tool-call event's content after a previous seal: the whole
/// cost that chaining adds to an audit write (the rest is the same insert).
pub fn audit_seal(prev: &str) -> String {
    let content = crate::audit::chain::content(
        1,
        clock::now(),
        "tool_call",
        "allowed",
        [
            &Some("gh_client_0123456789abcdef".into()),
            &Some("Agent".into()),
            &Some("demo".into()),
            &Some("read_note".into()),
            &Some("gr_0123456789ab".into()),
            &None,
        ],
        Some(3),
        r#"{"arguments":{"title":"welcome"}}"#,
    );
    crate::audit::chain::seal(&crate::audit::chain::Key::new([7; 32]), prev, &content)
}

/// The token endpoint's refresh grant for a public client; returns the response body.
pub fn refresh(g: &Gatehouse, client_id: &str, refresh_token: &str) -> Result<Value, String> {
    let creds = PresentedCredentials {
        form_client_id: Some(client_id.to_string()),
        ..Default::default()
    };
    let grant = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ]);
    token::exchange(g.auth(), &grant, &creds, clock::now()).map_err(|e| e.to_string())
}

/// Introspection by a confidential client; returns the response body.
pub fn introspect(g: &Gatehouse, id: &str, secret: &str, token: &str) -> Result<Value, String> {
    let creds = PresentedCredentials {
        basic: Some((id.to_string(), secret.to_string())),
        ..Default::default()
    };
    token::introspect(g.auth(), &form(&[("token", token)]), &creds, clock::now())
        .map_err(|e| e.to_string())
}
