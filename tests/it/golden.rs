//! The wire formats, byte for byte: discovery metadata, the challenges that
//! start and widen an authorization, registration and token responses, and
//! the error bodies. Each case is a real response from a real Gatehouse,
//! compared with `tests/it/golden/<case>.json` after the values that change
//! every run (the port, tokens, ids, times) are masked. A change to any of
//! these is a change every client sees: review the diff, then rewrite the
//! files with `UPDATE_GOLDEN=1 cargo test --test it golden` (refused in CI).

use std::path::PathBuf;

use crate::support::*;
use gatehouse::api::{AskChoice, ToolChoice};
use serde_json::{json, Map, Value};

/// A response as the golden file keeps it: status, the headers a client reads, body.
async fn capture(r: reqwest::Response, port: u16) -> Value {
    let mut headers = Map::new();
    for name in [
        "www-authenticate",
        "cache-control",
        "content-type",
        "location",
    ] {
        if let Some(v) = r.headers().get(name) {
            headers.insert(name.into(), json!(v.to_str().unwrap()));
        }
    }
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    mask(
        json!({"status": status, "headers": headers, "body": body}),
        port,
    )
}

/// Masks what differs between runs: the port, secrets and ids, times.
fn mask(v: Value, port: u16) -> Value {
    const MASKED: &[&str] = &[
        "access_token",
        "refresh_token",
        "client_id",
        "client_secret",
        "client_id_issued_at",
    ];
    match v {
        Value::String(s) => Value::String(s.replace(&format!(":{port}"), ":PORT")),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| mask(v, port)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let v = if MASKED.contains(&k.as_str()) {
                        json!(format!("<{k}>"))
                    } else {
                        mask(v, port)
                    };
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

fn check(case: &str, actual: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/golden")
        .join(format!("{case}.json"));
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "UPDATE_GOLDEN is refused in CI: the committed files are what is checked"
        );
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no golden file {}: run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(
        golden, text,
        "{case} changed on the wire (tests/it/golden/{case}.json); if that is meant, UPDATE_GOLDEN=1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wire_formats_are_stable() {
    let fx = Fixture::start("").await;
    let port = fx.port;
    let get = |path: &str| fx.http.get(format!("{}{path}", fx.url)).send();

    let r = get("/.well-known/oauth-authorization-server")
        .await
        .unwrap();
    check("authorization_server_metadata", &capture(r, port).await);
    let r = get("/.well-known/oauth-protected-resource/mcp/demo")
        .await
        .unwrap();
    check("protected_resource_metadata", &capture(r, port).await);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}});
    let r = fx.mcp("demo", None, None, &init).await;
    check("challenge_without_token", &capture(r, port).await);
    let r = fx.mcp("demo", Some("gh_at_forged"), None, &init).await;
    check("challenge_invalid_token", &capture(r, port).await);

    let r = fx
        .http
        .post(format!("{}/register", fx.url))
        .json(&json!({"client_name": "Golden", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    check("registration", &capture(r, port).await);
    let r = fx
        .http
        .post(format!("{}/register", fx.url))
        .json(&json!({"redirect_uris": ["javascript:alert(1)"]}))
        .send()
        .await
        .unwrap();
    check("registration_error", &capture(r, port).await);

    let only_read = ToolChoice::Only(vec!["read_note".into()]);
    let agent = fx
        .grant("Golden Agent", "demo", only_read, AskChoice::None)
        .await;
    check("token_response", &mask(agent.tokens.clone(), port));
    let r = fx
        .http
        .post(format!("{}/token", fx.url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "gh_rt_forged"),
            ("client_id", &agent.client_id),
        ])
        .send()
        .await
        .unwrap();
    check("token_error", &capture(r, port).await);

    let session = fx.session("demo", agent.access()).await;
    let r = session
        .post(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "write_note", "arguments": {}}}))
        .await;
    check("step_up_challenge", &capture(r, port).await);
    let r = fx
        .mcp(
            "demo",
            Some(agent.access()),
            Some("gh_sess_forged"),
            &json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"}),
        )
        .await;
    check("session_not_found", &capture(r, port).await);
    let r = fx
        .http
        .post(fx.resource("demo"))
        .bearer_auth(agent.access())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    check("parse_error", &capture(r, port).await);
    fx.stop().await;
}
