//! Every malformed or hostile request gets the standard error and changes
//! nothing stored: OAuth error codes on the authorization server, JSON-RPC
//! errors on the MCP side, 403 for non-loopback Host/Origin, 413 for bodies
//! over the limit.

use crate::support::*;
use gatehouse::api::{DurationChoice, ToolChoice};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn hostile_http_is_refused_before_any_handler() {
    let fx = Fixture::start("").await;
    let port = fx.port;
    let raw = |host: String, origin: Option<&'static str>| {
        let http = fx.http.clone();
        let url = fx.url.clone();
        async move {
            let mut r = http
                .get(format!("{url}/.well-known/oauth-authorization-server"))
                .header("host", host);
            if let Some(o) = origin {
                r = r.header("origin", o);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(raw(format!("127.0.0.1:{port}"), None).await, 200);
    assert_eq!(raw(format!("localhost:{port}"), None).await, 200);
    assert_eq!(
        raw(format!("evil.example:{port}"), None).await,
        403,
        "DNS rebinding"
    );
    assert_eq!(raw("127.0.0.1:1".into(), None).await, 403);
    assert_eq!(
        raw(format!("127.0.0.1:{port}"), Some("https://evil.example")).await,
        403,
        "a web page"
    );
    assert_eq!(raw(format!("127.0.0.1:{port}"), Some("null")).await, 403);
    assert_eq!(
        raw(format!("127.0.0.1:{port}"), Some("http://localhost:6274")).await,
        200,
        "a local tool"
    );

    // An evil page cannot even start a registration or an authorization.
    let r = fx
        .http
        .post(format!("{}/register", fx.url))
        .header("origin", "https://evil.example")
        .json(&json!({"redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // An Origin that is not text is not taken for no Origin.
    let r = fx
        .http
        .post(format!("{}/register", fx.url))
        .header(
            "origin",
            reqwest::header::HeaderValue::from_bytes(b"http://127.0.0.1\xff").unwrap(),
        )
        .json(&json!({"redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let big = "x".repeat(100 * 1024);
    let r = fx
        .http
        .post(format!("{}/token", fx.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // A 5 MiB MCP message is refused on its declared length, before a byte of it is read.
    let status_line = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let head = format!("POST /mcp/demo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", 5 * 1024 * 1024);
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 64];
        let n = tcp.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(status_line, "HTTP/1.1 413 Payload Too Large");
    assert!(
        fx.counts().iter().all(|(_, n)| *n == 0),
        "{:?}",
        fx.counts()
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_has_no_nulls_and_one_issuer() {
    let fx = Fixture::start("").await;
    let get = |path: &str| fx.http.get(format!("{}{path}", fx.url)).send();
    let meta = fx.get_json("/.well-known/oauth-authorization-server").await;
    let prm = fx
        .get_json("/.well-known/oauth-protected-resource/mcp/demo")
        .await;
    let root = fx.get_json("/.well-known/oauth-protected-resource").await;
    let appended = fx
        .get_json("/mcp/demo/.well-known/oauth-protected-resource")
        .await;
    assert!(!has_null(&meta) && !has_null(&prm));
    assert_eq!(meta["issuer"], json!(fx.url));
    assert_eq!(prm["authorization_servers"], json!([fx.url]));
    assert_eq!(prm, root);
    assert_eq!(prm, appended);
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/mcp/demo",
        "/.well-known/oauth-protected-resource/mcp/nope",
    ] {
        assert_eq!(get(path).await.unwrap().status(), 404, "{path}");
    }
    // The PRM names the resource as the client spelled the host.
    let local: Value = fx
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp/demo",
            fx.url
        ))
        .header("host", format!("localhost:{}", fx.port))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        local["resource"],
        json!(format!("http://localhost:{}/mcp/demo", fx.port))
    );
    assert_eq!(
        local["authorization_servers"],
        json!([fx.url]),
        "one issuer, byte for byte"
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_refuses_dangerous_metadata() {
    let fx = Fixture::start("").await;
    let cases = [
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["data:text/html,<script>"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://*.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://attacker.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({"client_name": "x"}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["password"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": "http://127.0.0.1/cb"}),
            "invalid_client_metadata",
        ),
    ];
    for (body, code) in cases {
        let r = fx
            .http
            .post(format!("{}/register", fx.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_oauth_error(r, 400, code).await;
    }
    let r = fx
        .http
        .post(format!("{}/register", fx.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, 400, "invalid_client_metadata").await;
    // Control characters in a name are dropped (a lying name cannot fake lines in the prompt).
    let r: Value = fx
        .http
        .post(format!("{}/register", fx.url))
        .json(&json!({"client_name": "Claude\n[verified]\u{1b}[0m", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["client_name"], "Claude [verified][0m");
    assert_eq!(fx.counts()[0].1, 1, "only the good registration was stored");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_errors_follow_oauth_rules() {
    let fx = Fixture::start("").await;
    let client_id = fx.register("Agent").await;
    let before = fx.counts();

    // Never redirected: unknown client, missing client, unregistered redirect URI, duplicated parameters.
    for url in [
        fx.authorize_url("gh_client_unknown", &[]),
        format!("{}/authorize?response_type=code", fx.url),
        fx.authorize_url(&client_id, &[])
            .replace("8976%2Fcallback", "8976%2Fother"),
        fx.authorize_url(&client_id, &[]).replacen(
            "redirect_uri=http%3A%2F%2F127.0.0.1",
            "redirect_uri=https%3A%2F%2Fevil.example",
            1,
        ),
        fx.authorize_url(&client_id, &[("state", "again")]),
        // The registered URI has no query: one with a query is another URI.
        fx.authorize_url(&client_id, &[])
            .replace("8976%2Fcallback", "8976%2Fcallback%3Fnext%3Devil"),
    ] {
        let (status, location) = fx.authorize(&url).await;
        assert_eq!((status, location.as_str()), (400, ""), "{url}");
    }

    // Redirected with error, state and iss.
    let cases: Vec<(String, &str)> = vec![
        (
            fx.authorize_url(&client_id, &[])
                .replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            fx.authorize_url(&client_id, &[])
                .replace("&code_challenge_method=S256", ""),
            "invalid_request",
        ),
        (
            fx.authorize_url(&client_id, &[])
                .replace("code_challenge=", "cc="),
            "invalid_request",
        ),
        (
            fx.authorize_url(&client_id, &[])
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            fx.authorize_url(&client_id, &[("resource", "http://127.0.0.1:1/mcp/demo")]),
            "invalid_target",
        ),
        (
            fx.authorize_url(&client_id, &[("resource", &fx.resource("nope"))]),
            "invalid_target",
        ),
        (
            fx.authorize_url(&client_id, &[("resource", "https://evil.example/mcp")]),
            "invalid_target",
        ),
        (
            fx.authorize_url(&client_id, &[("scope", "admin")]),
            "invalid_scope",
        ),
        (
            fx.authorize_url(&client_id, &[("scope", "tool:rm_rf")]),
            "invalid_scope",
        ),
    ];
    for (url, code) in cases {
        let (status, location) = fx.authorize(&url).await;
        assert_eq!(status, 302, "{url}");
        let back = url::Url::parse(&location).unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(query(&back, "error").as_deref(), Some(code), "{url}");
        assert_eq!(query(&back, "state").as_deref(), Some("st4te"));
        assert_eq!(query(&back, "iss").as_deref(), Some(fx.url.as_str()));
    }
    assert_eq!(
        fx.counts(),
        before,
        "no bad authorize request stored anything"
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token_endpoint_errors() {
    let fx = Fixture::start("").await;
    let other = fx.register("Other").await;
    // (what the request changes, status, error, whether the code was presented and so is spent)
    type Change = Vec<(&'static str, String)>;
    let cases: Vec<(Change, u16, &str, bool)> = vec![
        (
            vec![("code_verifier", "A".repeat(43))],
            400,
            "invalid_grant",
            true,
        ),
        (
            vec![("code_verifier", "short".into())],
            400,
            "invalid_grant",
            true,
        ),
        (
            vec![("code", "gh_code_forged".into())],
            400,
            "invalid_grant",
            false,
        ),
        (
            vec![("redirect_uri", "http://127.0.0.1:9/elsewhere".into())],
            400,
            "invalid_grant",
            true,
        ),
        (
            vec![("client_id", other.clone())],
            400,
            "invalid_grant",
            true,
        ),
        // A client that fails to authenticate changes nothing, not even the code.
        (
            vec![("client_id", "gh_client_nobody".into())],
            401,
            "invalid_client",
            false,
        ),
        (
            vec![("grant_type", "password".into())],
            400,
            "unsupported_grant_type",
            false,
        ),
        (
            vec![("grant_type", "client_credentials".into())],
            400,
            "unsupported_grant_type",
            false,
        ),
        (
            vec![("resource", "http://127.0.0.1:1/mcp/demo".into())],
            400,
            "invalid_target",
            true,
        ),
        (
            vec![("client_secret", "guess".into())],
            401,
            "invalid_client",
            false,
        ),
        (
            vec![("code_verifier", String::new())],
            400,
            "invalid_request",
            false,
        ),
    ];
    for (i, (change, status, error)) in cases.iter().map(|(c, s, e, _)| (c, *s, *e)).enumerate() {
        let name = format!("Agent {i}");
        let (client_id, code) = fx
            .code_for(&name, ToolChoice::All, DurationChoice::Forever)
            .await;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.clone()),
            ("code_verifier", VERIFIER.into()),
            ("client_id", client_id.clone()),
            ("redirect_uri", REDIRECT.into()),
        ];
        for (k, v) in change {
            form.retain(|(fk, _)| fk != k);
            form.push((k, v.clone()));
        }
        let before = fx.counts();
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, body) = fx.token_request(&pairs).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (status, Some(error)),
            "{form:?}: {body}"
        );
        assert!(!has_null(&body), "{body}");
        assert_eq!(
            fx.counts(),
            before,
            "a refusal stores nothing new: {form:?}"
        );
        // RFC 6749 §4.1.2: a code is used once. A refused redemption that
        // presented it spent it; the right request afterwards is a replay.
        let (s, retry) = fx.exchange_code(&client_id, &code).await;
        if cases[i].3 {
            assert_eq!(
                (s, retry["error"].as_str()),
                (400, Some("invalid_grant")),
                "{form:?} spends the code: {retry}"
            );
        } else {
            assert_eq!(s, 200, "{form:?} never presented the code: {retry}");
        }
    }
    let (s, body) = fx
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("client_id", &other),
            ("refresh_token", "gh_rt_forged"),
        ])
        .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let (s, body) = fx.token_request(&[("code", "x")]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
    let r = fx
        .http
        .post(format!("{}/token", fx.url))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, 400, "invalid_request").await;
    let r = fx
        .http
        .post(format!("{}/token", fx.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=a&grant_type=b")
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, 400, "invalid_request").await;

    // A code works once, then never again, and its replay revokes what it issued.
    let (client_id, code) = fx
        .code_for("Replayer", ToolChoice::All, DurationChoice::Forever)
        .await;
    let (status, first) = fx.exchange_code(&client_id, &code).await;
    assert_eq!(status, 200, "{first}");
    let (status, replay) = fx.exchange_code(&client_id, &code).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let r = fx
        .mcp("demo", first["access_token"].as_str(), None, &initialize())
        .await;
    assert_eq!(r.status(), 401, "a replayed code revokes what it issued");
    assert!(fx.audit_kinds().contains(&"code_replayed".to_string()));
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_endpoint_errors() {
    let fx = Fixture::start("[servers.other]\ncommand = \"true\"\n").await;
    let agent = fx.tokens_for("Agent", ToolChoice::All).await;
    let token = agent.access();
    let init = initialize();

    let r = fx.mcp("demo", None, None, &init).await;
    assert_eq!(r.status(), 401);
    assert!(!r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error="));
    let r = fx.mcp("demo", Some("gh_at_forged"), None, &init).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    let r = fx.mcp("other", Some(token), None, &init).await;
    assert_eq!(
        r.status(),
        401,
        "a token for demo is not a token for other (audience)"
    );
    let r = fx.mcp("nope", Some(token), None, &init).await;
    assert_eq!(r.status(), 404);

    let send = |body: &'static str, session: Option<String>| {
        let mut r = fx
            .http
            .post(fx.resource("demo"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        async move {
            let r = r.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let session = fx.session("demo", token).await;
    let sid = session.id.clone();
    let (s, b) = send("{not json", Some(sid.clone())).await;
    assert_eq!((s, b["error"]["code"].as_i64()), (400, Some(-32700)));
    let (s, b) = send(
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
        Some(sid.clone()),
    )
    .await;
    assert_eq!((s, b["error"]["code"].as_i64()), (400, Some(-32600)));
    let (s, b) = send(
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
        Some(sid.clone()),
    )
    .await;
    assert_eq!((s, b["error"]["code"].as_i64()), (400, Some(-32600)));
    let (s, b) = send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, None).await;
    assert_eq!(
        (s, b["error"]["code"].as_i64()),
        (400, Some(-32600)),
        "no session"
    );
    let (s, _) = send(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        Some("gh_sess_forged".into()),
    )
    .await;
    assert_eq!(s, 404);
    let (s, b) = send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_note","arguments":[1,2]}}"#, Some(sid.clone())).await;
    assert_eq!(
        (s, b["error"]["code"].as_i64()),
        (200, Some(-32001)),
        "arguments must be an object"
    );
    let (s, b) = send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_note\u0000\u202e"}}"#, Some(sid.clone())).await;
    assert_eq!(
        (s, b["error"]["code"].as_i64()),
        (200, Some(-32001)),
        "odd unicode is just an ungranted name"
    );
    let (s, b) = send(
        r#"{"jsonrpc":"2.0","id":4,"method":"no/such/method"}"#,
        Some(sid.clone()),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_i64()),
        (200, Some(-32601)),
        "a method that is not MCP's is refused before the upstream"
    );
    let refusal = b["error"]["message"].as_str().unwrap_or_default();
    assert!(
        refusal.contains("not an MCP method"),
        "Gatehouse's refusal: {b}"
    );
    let (s, b) = send(
        r#"{"jsonrpc":"2.0","id":5,"method":"server/discover"}"#,
        None,
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_i64()),
        (200, Some(-32601)),
        "answered promptly, so newer clients fall back"
    );

    // Another agent cannot use this agent's session.
    let intruder = fx.tokens_for("Intruder", ToolChoice::All).await;
    let (status, _) = session
        .with_token(intruder.access())
        .request("tools/list", json!({}))
        .await;
    assert_eq!(status, 404);
    // The gateway still works after all of it.
    assert!(!session.tool_names().await.is_empty());
    fx.stop().await;
}
