//! Entry points for the fuzz targets (`fuzz/`): one per parser that takes
//! outside input. Each feeds the bytes to exactly the code a request runs
//! and checks what must hold whatever the input (beyond "no panic"): what a
//! parser accepts is safe to act on. Not an API: no face uses them.
#![doc(hidden)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::clock::UnixMs;
use crate::config::Config;
use crate::control::Request;
use crate::gateway::{jsonrpc, policy};
use crate::oauth::{authorize, cimd, redirect, register, token, AuthServer};
use crate::store::Store;
use crate::text;

const NOW: UnixMs = 1_800_000_000_000;

/// A client name as stored: clean, short, nothing hidden.
fn assert_clean_name(name: &str) {
    assert!(name.chars().count() <= text::MAX_NAME_CHARS, "{name:?}");
    assert!(!name.chars().any(text::is_unsafe), "{name:?}");
    assert_eq!(name, name.trim(), "{name:?}");
    assert!(!name.contains("  "), "{name:?}");
}

/// The authorization request's query string (`GET /authorize?…`).
pub fn authorize_query(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(params) = authorize::parse(query) {
        assert!(!params.client_id.is_empty());
        // No parameter appears twice in what was accepted.
        let mut seen = std::collections::HashSet::new();
        for (key, _) in url::form_urlencoded::parse(query.as_bytes()) {
            assert!(seen.insert(key), "a duplicated parameter was accepted");
        }
    }
}

/// The token endpoint's form body (`POST /token`).
pub fn token_form(data: &[u8]) {
    if let Ok(form) = token::parse_form(data) {
        let pairs = url::form_urlencoded::parse(data).count();
        assert_eq!(form.len(), pairs, "a duplicated parameter was accepted");
    }
}

/// A runtime for the targets whose code is async (it writes to the store).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().build();
        runtime.expect("a runtime")
    })
}

fn auth_server() -> &'static AuthServer {
    static AUTH: OnceLock<AuthServer> = OnceLock::new();
    AUTH.get_or_init(|| AuthServer {
        store: Arc::new(Store::open_in_memory().expect("an in-memory store")),
        config: crate::config::Live::new(Config::demo()),
        issuer: "http://127.0.0.1:7390".into(),
        port: 7390,
        user: "fuzz".into(),
    })
}

/// Dynamic client registration's JSON body (`POST /register`).
pub fn registration(data: &[u8]) {
    let Ok(registration) = register::parse(data, NOW) else {
        return;
    };
    let recorded = runtime().block_on(registration.record(auth_server(), None, NOW));
    let answer = &recorded.expect("an accepted registration is recorded");
    let uris = answer["redirect_uris"].as_array().expect("redirect_uris");
    assert!(!uris.is_empty());
    for uri in uris {
        let uri = uri.as_str().expect("a string");
        assert!(redirect::validate_registered(uri).is_ok(), "{uri:?}");
    }
    if let Some(name) = answer["client_name"].as_str() {
        assert_clean_name(name);
    }
}

/// A Client ID Metadata Document, as fetched from its URL.
pub fn cimd_document(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let url = "https://client.example/oauth/client.json";
    if let Ok(client) = cimd::validate(url, &doc, NOW) {
        assert_eq!(client.client_id, url);
        assert!(!client.redirect_uris.is_empty());
        for uri in &client.redirect_uris {
            assert!(redirect::validate_registered(uri).is_ok(), "{uri:?}");
        }
        assert_clean_name(&client.name);
    }
}

/// A JSON-RPC message from an agent, through the gateway's policy, for an
/// agent granted `read` (and `ask`, held) but not `write`; `changed` is blocked.
pub fn jsonrpc_policy(data: &[u8]) {
    let Ok(msg) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if jsonrpc::classify(&msg).is_none() {
        return;
    }
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        return;
    };
    let set = |items: &[&str]| -> crate::store::live::ToolSet { items.iter().collect() };
    let (tools, ask, suspended) = (
        set(&["read", "ask", "changed"]),
        set(&["ask"]),
        set(&["changed"]),
    );
    let grantee = policy::Grantee {
        tools: &tools,
        ask: &ask,
        suspended: &suspended,
    };
    let params = msg.get("params");
    let named = params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    match policy::check_request(method, params, &grantee) {
        policy::Decision::Forward => {
            assert_ne!(method, "tools/call", "a call forwarded unchecked");
            if matches!(method, "resources/read" | "prompts/get") {
                panic!("{method} of an item never granted was forwarded");
            }
        }
        policy::Decision::Call(tool) => {
            assert_eq!(tool, "read");
            assert_eq!(
                named.as_deref(),
                Some("read"),
                "checked one name, sent another"
            );
        }
        policy::Decision::Hold(tool) => assert_eq!(tool, "ask"),
        _ => {}
    }
}

/// The config file (`gatehouse.toml`).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse(text, Path::new("fuzz.toml")) {
        for name in config.servers.keys() {
            assert!(!name.is_empty());
        }
    }
}

/// One line of the control socket's protocol (what the CLI sends the daemon).
pub fn control_request(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<Request>(data) {
        let again = serde_json::to_vec(&request).expect("serializable");
        let back: Request = serde_json::from_slice(&again).expect("what it wrote, it reads");
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&request).unwrap()
        );
    }
}

/// Outside text shown inert: nothing unsafe survives, and the shown text is
/// never shorter than the safe part of the original.
pub fn inert_text(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let shown = text::inert(s);
    assert!(!shown.chars().any(text::is_unsafe), "{shown:?}");
    let json = text::inert_json(&serde_json::to_string(s).unwrap());
    assert!(!json.chars().any(|c| text::is_unsafe(c) && c != '\n'));
    assert_eq!(serde_json::from_str::<String>(&json).unwrap(), s);
    assert_clean_name(&text::clean_name(s));
}
