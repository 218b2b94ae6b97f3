//! A caller that floods: registrations, consent requests, sessions (see
//! `gateway`), big bodies. Each flood is capped with a clear, standard
//! answer, and what was refused stored nothing.

use std::net::IpAddr;

use super::{assert_unchanged, stored};
use crate::support::*;
use serde_json::{json, Value};

/// An HTTP client whose requests come from this loopback address.
fn from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Registers from `http`: the status and the response.
async fn register(fx: &Fixture, http: &reqwest::Client, name: &str) -> reqwest::Response {
    http.post(format!("{}/register", fx.url))
        .json(&json!({"client_name": name, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
}

fn clients(fx: &Fixture) -> usize {
    stored(fx)["clients"].len()
}

/// How many more a bucket refilling at `per_minute` may have allowed since `started`.
fn refilled(started: std::time::Instant, per_minute: f64) -> usize {
    (started.elapsed().as_secs_f64() * per_minute / 60.0).ceil() as usize
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_flood_from_one_source() {
    let fx = Fixture::start("").await;
    let started = std::time::Instant::now();
    let mut accepted = 0;
    let mut refused = 0;
    for i in 0..40 {
        let r = register(&fx, &fx.http, &format!("Flood {i}")).await;
        match r.status().as_u16() {
            201 => accepted += 1,
            429 => {
                let wait = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
                assert!(wait >= 1, "{wait}");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"], "temporarily_unavailable", "{body}");
                refused += 1;
            }
            other => panic!("{other}"),
        }
    }
    // A burst of 20, then 10 a minute (a slow machine sees some refill).
    assert!(
        (20..=20 + refilled(started, 10.0)).contains(&accepted),
        "{accepted}"
    );
    assert_eq!(accepted + refused, 40);
    assert_eq!(clients(&fx), accepted, "nothing refused was stored");
    // Another local address is another source.
    assert_eq!(
        register(&fx, &from("127.0.0.2"), "Other").await.status(),
        201
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_flood_from_many_sources() {
    let fx = Fixture::start("").await;
    let started = std::time::Instant::now();
    let mut accepted = 0;
    for source in 2..=9 {
        let http = from(&format!("127.0.0.{source}"));
        for i in 0..10 {
            if register(&fx, &http, &format!("Flood {source}.{i}"))
                .await
                .status()
                == 201
            {
                accepted += 1;
            }
        }
    }
    // All sources together: a burst of 60, then 30 a minute.
    assert!(
        (60..=60 + refilled(started, 30.0)).contains(&accepted),
        "{accepted}"
    );
    assert_eq!(clients(&fx), accepted);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_request_flood() {
    let fx = Fixture::start("").await;
    let mut urls = Vec::new();
    for i in 0..21 {
        // Spread over sources so the registration limit is not what stops them.
        let http = from(&format!("127.0.1.{}", i % 3 + 1));
        let r = register(&fx, &http, &format!("Asker {i}")).await;
        let body: Value = r.json().await.unwrap();
        urls.push(fx.authorize_url(body["client_id"].as_str().unwrap(), &[]));
    }
    for url in &urls[..20] {
        assert_eq!(fx.authorize(url).await.0, 303);
    }
    let before = stored(&fx);
    let (status, location) = fx.authorize(&urls[20]).await;
    assert_eq!(status, 302);
    let back = url::Url::parse(&location).unwrap();
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("temporarily_unavailable")
    );
    assert!(
        query(&back, "error_description").unwrap().contains("20"),
        "{location}"
    );
    assert_unchanged(&fx, &before);
    assert_eq!(fx.pending().await.len(), 20);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_registration() {
    let fx = Fixture::start("").await;
    let before = stored(&fx);
    let r = fx
        .http
        .post(format!("{}/register", fx.url))
        .json(&json!({"client_name": "x".repeat(200_000), "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_unchanged(&fx, &before);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_authorization_request() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fx = Fixture::start("").await;
    let client_id = fx.register("Agent").await;
    let before = stored(&fx);
    let url = fx.authorize_url(&client_id, &[("scope", &"s".repeat(200_000))]);
    let path = &url[fx.url.len()..];
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", fx.port))
        .await
        .unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        fx.port
    );
    // The server may answer and close before it has read all of it.
    let _ = tcp.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    let status: u16 = answer.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    assert!(
        (400..500).contains(&status),
        "{}",
        answer.lines().next().unwrap_or("")
    );
    assert!(!answer.to_lowercase().contains("location:"), "{answer}");
    assert_unchanged(&fx, &before);
    fx.stop().await;
}

/// Gatehouse (with this config besides the demo server) and an agent
/// granted the demo server's read-only tools, and its session.
async fn read_only_demo_agent(config: &str) -> (Fixture, Session) {
    let fx = Fixture::start(config).await;
    let (_, session) = fx
        .agent(
            "Agent",
            "demo",
            gatehouse::api::ToolChoice::ReadOnly,
            gatehouse::api::AskChoice::default(),
        )
        .await;
    (fx, session)
}

/// An agent's refused requests with a method or a tool name of a megabyte:
/// the log keeps a bounded part of each (the name, and the reason that
/// quotes it), not the megabyte (six times over, escaped).
#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_with_huge_names_keep_a_bounded_record() {
    let (fx, session) = read_only_demo_agent("").await;
    let huge = "\u{7f}".repeat(1024 * 1024);
    let r = session
        .post(&json!({"jsonrpc": "2.0", "method": huge}))
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let (status, body) = session.call(&huge, json!({})).await;
    assert_eq!(status, 200, "a JSON-RPC error: {body}");
    assert!(body["error"].is_object(), "{body}");
    let refused: Vec<Value> = fx
        .audit_rows()
        .into_iter()
        .filter(|(_, outcome, _, _)| outcome == "denied")
        .map(|(_, _, _, detail)| detail)
        .collect();
    assert_eq!(refused.len(), 2, "{}", refused.len());
    for detail in refused {
        let text = detail.to_string();
        assert!(text.len() < 8 * 1024, "{} bytes kept", text.len());
        let reason = detail["reason"].as_str().unwrap();
        assert!(reason.ends_with('…'), "the cut is said");
    }
    fx.stop().await;
}

/// The MCP body limit is the one documented (4 MiB), not a smaller one of
/// the HTTP framework's: a 3 MiB call goes through.
#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_message_under_the_limit_is_read_whole() {
    let (fx, session) = read_only_demo_agent("").await;
    let title = "t".repeat(3 * 1024 * 1024);
    let (status, body) = session.call("read_note", json!({"title": title})).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["result"].is_object() || body["error"].is_object(),
        "{body}"
    );
    fx.stop().await;
}

/// An agent cannot pile up requests waiting on its server (a task's result
/// may wait an hour): with 32 of a session's requests waiting, the next is
/// refused at once, audited, and sent nowhere, while a look at the tasks
/// (or a cancel) still has room; once one ends (here at the call timeout), the
/// session goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_has_at_most_32_requests_waiting_on_its_server() {
    const MOST: usize = 32; // gateway::MAX_WAITING_PER_SESSION
    let (fx, session) = read_only_demo_agent("call_timeout = \"10s\"").await;
    let mut waits: Vec<_> = (0..MOST)
        .map(|_| session.call_later("wait", json!({"ms": 60_000})))
        .collect();
    let started = || {
        fx.audit_rows()
            .iter()
            .filter(|(kind, _, tool, _)| kind == "call_started" && tool.as_deref() == Some("wait"))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(9);
    while started() < MOST {
        assert!(
            std::time::Instant::now() < deadline,
            "{} calls started",
            started()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, body) = session.call("read_note", json!({"title": "welcome"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["error"]["code"], -32004, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("32 requests of this session already wait"),
        "{message}"
    );
    let refused = fx.audit_rows();
    let (kind, outcome, tool, detail) = refused.last().unwrap();
    assert_eq!(
        (kind.as_str(), outcome.as_str()),
        ("tool_call", "denied"),
        "{detail}"
    );
    assert_eq!(tool.as_deref(), Some("read_note"));
    assert_eq!(started(), MOST, "the refused call was not started");
    // A look at the tasks still has room: it reaches the server (which has
    // no tasks/list).
    let (_, body) = session.request("tasks/list", json!({})).await;
    assert_eq!(body["error"]["code"], -32601, "{body}");

    let first = waits.remove(0).await.unwrap();
    let timed_out = first["error"]["message"].as_str().unwrap_or_default();
    assert!(timed_out.contains("did not answer within 10 s"), "{first}");
    let text = session
        .call_text("read_note", json!({"title": "welcome"}))
        .await;
    assert!(text.contains("Hello"), "{text}");
    fx.stop().await;
}
