//! A web page in the person's browser: it can send simple requests (a form
//! POST, `text/plain`), navigate the person to Gatehouse's pages, frame them,
//! and rebind its own DNS name to 127.0.0.1. Each case has an agent with a
//! grant, so a request that got through would change something.

use super::{assert_unchanged, stored};
use crate::support::*;
use gatehouse::api::ToolChoice;
use serde_json::json;

const EVIL: &str = "https://evil.example";

/// Gatehouse with one agent holding tokens (a state worth attacking).
async fn with_agent() -> (Fixture, Grantee) {
    let fx = Fixture::start("").await;
    let agent = fx.tokens_for("Agent", ToolChoice::All).await;
    (fx, agent)
}

/// The agent's tokens still work: its access token opens a session.
async fn assert_still_works(fx: &Fixture, agent: &Grantee) {
    let r = fx
        .mcp("demo", Some(agent.access()), None, &initialize())
        .await;
    assert_eq!(r.status(), 200, "the agent's token stopped working");
}

// DNS rebinding: a page whose name now resolves to 127.0.0.1 sends its own
// Host. Each Host is tried on a refresh (which would rotate the tokens) and a
// registration (which would add a client).
macro_rules! rebinding {
    ($($name:ident: $host:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            let (fx, agent) = with_agent().await;
            let before = stored(&fx);
            let host_of: fn(u16) -> String = $host;
            let host = host_of(fx.port);
            let r = fx.http.post(format!("{}/token", fx.url)).header("host", &host)
                .form(&[("grant_type", "refresh_token"), ("refresh_token", agent.refresh()), ("client_id", &agent.client_id)])
                .send().await.unwrap();
            assert_eq!(r.status(), 403, "Host {host:?}");
            let r = fx.http.post(format!("{}/register", fx.url)).header("host", &host)
                .json(&json!({"client_name": "Rebound", "redirect_uris": [REDIRECT]}))
                .send().await.unwrap();
            assert_eq!(r.status(), 403, "Host {host:?}");
            assert_unchanged(&fx, &before);
            assert_still_works(&fx, &agent).await;
            fx.stop().await;
        }
    )*};
}

rebinding! {
    rebinding_evil_name: |p| format!("evil.example:{p}");
    rebinding_name_ending_in_loopback_ip: |p| format!("127.0.0.1.nip.io:{p}");
    rebinding_subdomain_of_localhost: |p| format!("gatehouse.localhost:{p}");
    rebinding_localhost_with_trailing_dot: |p| format!("localhost.:{p}");
    rebinding_decimal_ip: |p| format!("2130706433:{p}");
    rebinding_octal_ip: |p| format!("0177.0.0.1:{p}");
    rebinding_short_ip: |p| format!("127.1:{p}");
    rebinding_unspecified_address: |p| format!("0.0.0.0:{p}");
    rebinding_ipv4_mapped_ipv6: |p| format!("[::ffff:127.0.0.1]:{p}");
    rebinding_other_port: |_| "127.0.0.1:1".to_string();
    rebinding_no_port: |_| "localhost".to_string();
    rebinding_empty_host: |_| String::new();
}

/// A cross-site request from a page: its `Origin`, or (when a browser sends
/// none) its `Sec-Fetch-Site`.
#[derive(Clone, Copy)]
enum From {
    Origin(&'static str),
    CrossSite,
}

impl From {
    fn apply(self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            From::Origin(origin) => r.header("origin", origin),
            From::CrossSite => r.header("sec-fetch-site", "cross-site"),
        }
    }
}

/// A page posts a form to /token with the agent's refresh token.
async fn forged_refresh(from: From) {
    let (fx, agent) = with_agent().await;
    let before = stored(&fx);
    let r = from
        .apply(fx.http.post(format!("{}/token", fx.url)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token={}&client_id={}",
            agent.refresh(),
            agent.client_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_unchanged(&fx, &before);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_refresh_from_a_page() {
    forged_refresh(From::Origin(EVIL)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_refresh_from_a_sandboxed_frame() {
    forged_refresh(From::Origin("null")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_refresh_from_a_name_that_starts_like_loopback() {
    forged_refresh(From::Origin("http://127.0.0.1.evil.example")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_refresh_from_a_file_page() {
    forged_refresh(From::Origin("file://")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_refresh_without_origin() {
    forged_refresh(From::CrossSite).await;
}

/// A page posts a form to /revoke with the agent's access token.
async fn forged_revocation(from: From) {
    let (fx, agent) = with_agent().await;
    let before = stored(&fx);
    let r = from
        .apply(fx.http.post(format!("{}/revoke", fx.url)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={}&client_id={}",
            agent.access(),
            agent.client_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_unchanged(&fx, &before);
    assert_still_works(&fx, &agent).await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_revoke_from_a_page() {
    forged_revocation(From::Origin(EVIL)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_revoke_without_origin() {
    forged_revocation(From::CrossSite).await;
}

/// A page posts `text/plain` JSON to /register (no preflight needed).
async fn forged_registration(from: Option<From>) {
    let (fx, _agent) = with_agent().await;
    let before = stored(&fx);
    let mut r = fx
        .http
        .post(format!("{}/register", fx.url))
        .header("content-type", "text/plain")
        .body(json!({"client_name": "Page", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}).to_string());
    if let Some(from) = from {
        r = from.apply(r);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    match from {
        Some(_) => assert_eq!(status, 403),
        // Even with no browser header at all, a simple request is not JSON.
        None => assert_eq!(status, 400),
    }
    assert_unchanged(&fx, &before);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_register_from_a_page() {
    forged_registration(Some(From::Origin(EVIL))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_register_without_origin() {
    forged_registration(Some(From::CrossSite)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrf_register_as_plain_text() {
    forged_registration(None).await;
}

/// A page posts a `tools/call` to the MCP endpoint as `text/plain`.
#[tokio::test(flavor = "multi_thread")]
async fn csrf_tool_call_from_a_page() {
    let (fx, agent) = with_agent().await;
    let before = stored(&fx);
    let events = fx.audit_kinds().len();
    for from in [From::Origin(EVIL), From::CrossSite] {
        let r = from
            .apply(fx.http.post(fx.resource("demo")))
            .header("content-type", "text/plain")
            .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    assert_unchanged(&fx, &before);
    assert_eq!(fx.audit_kinds().len(), events, "no call was even seen");
    assert_still_works(&fx, &agent).await;
    fx.stop().await;
}

/// A page tries to end the agent's MCP session (DELETE).
#[tokio::test(flavor = "multi_thread")]
async fn csrf_session_delete_from_a_page() {
    let (fx, agent) = with_agent().await;
    let session = fx.session("demo", agent.access()).await;
    let r = fx
        .http
        .delete(fx.resource("demo"))
        .header("origin", EVIL)
        .header("mcp-session-id", &session.id)
        .bearer_auth(agent.access())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        !session.tool_names().await.is_empty(),
        "the session lives on"
    );
    fx.stop().await;
}

/// A page navigates the person to /authorize for a client it controls: no
/// consent request appears.
#[tokio::test(flavor = "multi_thread")]
async fn csrf_authorize_navigation_from_a_page() {
    let (fx, _agent) = with_agent().await;
    let client_id = fx.register("Page's client").await;
    let before = stored(&fx);
    let r = fx
        .http
        .get(fx.authorize_url(&client_id, &[]))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("location").is_none());
    assert_unchanged(&fx, &before);
    assert!(fx.pending().await.is_empty());
    fx.stop().await;
}

/// A page asks the browser whether it may call Gatehouse (a preflight): no.
#[tokio::test(flavor = "multi_thread")]
async fn cors_preflight_from_a_page_is_refused() {
    let fx = Fixture::start("").await;
    let r = fx
        .http
        .request(reqwest::Method::OPTIONS, fx.resource("demo"))
        .header("origin", EVIL)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    fx.stop().await;
}

/// A page reads a response it should not: introspection from a page is refused
/// before any handler sees the token.
#[tokio::test(flavor = "multi_thread")]
async fn cross_origin_read_of_introspection_is_refused() {
    let (fx, agent) = with_agent().await;
    let r = fx
        .http
        .post(format!("{}/introspect", fx.url))
        .header("origin", EVIL)
        .form(&[("token", agent.access())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(!body.contains("active"), "{body}");
    fx.stop().await;
}

/// Every HTML page Gatehouse serves forbids framing (clickjacking) and runs no script.
async fn assert_unframeable(r: reqwest::Response) {
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
}

#[tokio::test(flavor = "multi_thread")]
async fn clickjacking_the_home_page() {
    let fx = Fixture::start("").await;
    let r = fx.http.get(format!("{}/", fx.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_unframeable(r).await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clickjacking_the_waiting_page() {
    let fx = Fixture::start("").await;
    let client_id = fx.register("Agent").await;
    let (status, wait) = fx.authorize(&fx.authorize_url(&client_id, &[])).await;
    assert_eq!(status, 303);
    let r = fx
        .http
        .get(format!("{}{wait}", fx.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_unframeable(r).await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clickjacking_the_error_page() {
    let fx = Fixture::start("").await;
    let r = fx
        .http
        .get(fx.authorize_url("gh_client_unknown", &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_unframeable(r).await;
    fx.stop().await;
}
