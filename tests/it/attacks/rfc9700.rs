//! RFC 9700 (OAuth 2.0 Security Best Current Practice), §4: the attacks on
//! the flow itself. The attacker holds a stolen code or token, registers a
//! client of its own, or sits where a redirect goes.

use super::{assert_unchanged, stored};
use crate::support::*;
use gatehouse::api::{DurationChoice, ToolChoice};

/// A code the person approved for "Victim", not yet redeemed.
async fn victim_code(fx: &Fixture) -> (String, String) {
    fx.code_for("Victim", ToolChoice::All, DurationChoice::Forever)
        .await
}

/// A code redeemed with this verifier (or none).
async fn redeem(
    fx: &Fixture,
    client_id: &str,
    code: &str,
    verifier: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
    ];
    form.extend(verifier.map(|v| ("code_verifier", v)));
    fx.token_request(&form).await
}

fn assert_invalid_grant(status: u16, body: &serde_json::Value) {
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(body.get("access_token").is_none(), "{body}");
}

/// §4.5: an attacker's own client redeems the victim's code (with the
/// victim's verifier, even).
#[tokio::test(flavor = "multi_thread")]
async fn code_injection_into_another_client() {
    let fx = Fixture::start("").await;
    let (_, code) = victim_code(&fx).await;
    let attacker = fx.register("Attacker").await;
    let before = stored(&fx);
    let (status, body) = fx.exchange_code(&attacker, &code).await;
    assert_invalid_grant(status, &body);
    let after = stored(&fx);
    assert_eq!(after["tokens"], before["tokens"], "no token issued");
    assert_eq!(
        after["grants"], before["grants"],
        "no grant for the attacker"
    );
    fx.stop().await;
}

/// §4.5 / §2.1.1: a stolen code without its PKCE verifier is worth nothing,
/// and the failed attempt spends it (a code is used once, RFC 6749 §4.1.2).
#[tokio::test(flavor = "multi_thread")]
async fn stolen_code_without_the_verifier() {
    let fx = Fixture::start("").await;
    let (client_id, code) = victim_code(&fx).await;
    let tokens_before = stored(&fx)["tokens"].clone();
    let guess = "guessed-verifier-guessed-verifier-guessed-verifier";
    let (status, body) = redeem(&fx, &client_id, &code, Some(guess)).await;
    assert_invalid_grant(status, &body);
    let (status, body) = fx.exchange_code(&client_id, &code).await;
    assert_invalid_grant(status, &body);
    assert_eq!(stored(&fx)["tokens"], tokens_before);
    fx.stop().await;
}

/// §4.8 (PKCE downgrade): the verifier left out of the token request.
#[tokio::test(flavor = "multi_thread")]
async fn pkce_downgrade_by_leaving_out_the_verifier() {
    let fx = Fixture::start("").await;
    let (client_id, code) = victim_code(&fx).await;
    let tokens_before = stored(&fx)["tokens"].clone();
    let (status, body) = redeem(&fx, &client_id, &code, None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.get("access_token").is_none());
    assert_eq!(stored(&fx)["tokens"], tokens_before);
    fx.stop().await;
}

/// An authorization request that asks for a weaker or no challenge.
async fn downgraded_authorize(edit: fn(String) -> String) {
    let fx = Fixture::start("").await;
    let client_id = fx.register("Agent").await;
    let before = stored(&fx);
    let (status, location) = fx.authorize(&edit(fx.authorize_url(&client_id, &[]))).await;
    assert_eq!(status, 302);
    let back = url::Url::parse(&location).unwrap();
    assert_eq!(query(&back, "error").as_deref(), Some("invalid_request"));
    assert!(query(&back, "code").is_none());
    assert_unchanged(&fx, &before);
    assert!(fx.pending().await.is_empty(), "the person is not asked");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_downgrade_to_plain() {
    downgraded_authorize(|u| {
        u.replace("code_challenge_method=S256", "code_challenge_method=plain")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_downgrade_to_no_challenge() {
    downgraded_authorize(|u| {
        let u = u.replace("&code_challenge_method=S256", "");
        let start = u.find("&code_challenge=").unwrap();
        let end = u[start + 1..].find('&').map_or(u.len(), |e| start + 1 + e);
        format!("{}{}", &u[..start], &u[end..])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_downgrade_to_an_implied_method() {
    downgraded_authorize(|u| u.replace("&code_challenge_method=S256", "")).await;
}

/// A replayed code (RFC 6749 §4.1.2): refused, and the tokens it issued die.
#[tokio::test(flavor = "multi_thread")]
async fn authorization_code_replay() {
    let fx = Fixture::start("").await;
    let (client_id, code) = victim_code(&fx).await;
    let (status, first) = fx.exchange_code(&client_id, &code).await;
    assert_eq!(status, 200, "{first}");
    let (status, body) = fx.exchange_code(&client_id, &code).await;
    assert_invalid_grant(status, &body);
    let token = first["access_token"].as_str().unwrap();
    let r = fx.mcp("demo", Some(token), None, &initialize()).await;
    assert_eq!(r.status(), 401, "what the replayed code issued is revoked");
    fx.stop().await;
}

/// A code replayed by another client (it leaked) is a replay all the same:
/// refused, and what it issued revoked; the log names who presented it, not
/// only the client it was issued to.
#[tokio::test(flavor = "multi_thread")]
async fn authorization_code_replayed_by_another_client_is_logged_with_the_presenter() {
    let fx = Fixture::start("").await;
    let (client_id, code) = victim_code(&fx).await;
    let (status, first) = fx.exchange_code(&client_id, &code).await;
    assert_eq!(status, 200, "{first}");
    let attacker = fx.register("Attacker").await;
    let (status, body) = fx.exchange_code(&attacker, &code).await;
    assert_invalid_grant(status, &body);
    let token = first["access_token"].as_str().unwrap();
    let r = fx.mcp("demo", Some(token), None, &initialize()).await;
    assert_eq!(r.status(), 401, "what the replayed code issued is revoked");
    let replayed: Vec<_> = fx
        .audit_rows()
        .into_iter()
        .filter(|(kind, ..)| kind == "code_replayed")
        .collect();
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(
        replayed[0].3["presented_by"],
        attacker.as_str(),
        "{replayed:?}"
    );
    fx.stop().await;
}

/// §4.3.4 / §2.2.2: a refresh token replayed (by a thief, after the client
/// rotated it) gets nothing.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_token_replay() {
    let fx = Fixture::start("").await;
    let agent = fx.tokens_for("Agent", ToolChoice::All).await;
    let (status, rotated) = fx.refresh(&agent.client_id, agent.refresh()).await;
    assert_eq!(status, 200, "{rotated}");
    let before = stored(&fx);
    let (status, body) = fx.refresh(&agent.client_id, agent.refresh()).await;
    assert_invalid_grant(status, &body);
    assert_eq!(
        stored(&fx)["tokens"].len(),
        before["tokens"].len(),
        "nothing issued"
    );
    fx.stop().await;
}

/// A refresh token presented by another client (sender constraint of public
/// clients: the client id is bound to the token).
#[tokio::test(flavor = "multi_thread")]
async fn refresh_token_of_another_client() {
    let fx = Fixture::start("").await;
    let victim = fx.tokens_for("Victim", ToolChoice::All).await;
    let attacker = fx.register("Attacker").await;
    let before = stored(&fx);
    let (status, body) = fx.refresh(&attacker, victim.refresh()).await;
    assert_invalid_grant(status, &body);
    assert_unchanged(&fx, &before);
    fx.stop().await;
}

/// §4.4 (mix-up): every authorization response names its issuer, and the
/// metadata says so, so a client that talks to several servers can tell.
#[tokio::test(flavor = "multi_thread")]
async fn mix_up_every_response_names_its_issuer() {
    let fx = Fixture::start("").await;
    let meta = fx.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert_eq!(meta["issuer"], fx.url.as_str());
    let client_id = fx.register("Agent").await;
    let (_, wait) = fx.authorize(&fx.authorize_url(&client_id, &[])).await;
    fx.approve("Agent", ToolChoice::All, DurationChoice::Once)
        .await;
    let success = fx.wait_for_redirect(&wait).await;
    assert_eq!(query(&success, "iss").as_deref(), Some(fx.url.as_str()));
    let (_, error) = fx
        .authorize(&fx.authorize_url(&client_id, &[("scope", "tool:nope")]))
        .await;
    let error = url::Url::parse(&error).unwrap();
    assert_eq!(query(&error, "error").as_deref(), Some("invalid_scope"));
    assert_eq!(query(&error, "iss").as_deref(), Some(fx.url.as_str()));
    fx.stop().await;
}

/// §4.1 / §4.11 (open redirectors): a redirect URI that is not exactly a
/// registered one is never followed, not even to say there was an error.
async fn open_redirect(requested: &str) {
    let fx = Fixture::start("").await;
    let client_id = fx.register("Agent").await;
    let before = stored(&fx);
    let url = fx.authorize_url(&client_id, &[]).replace(
        &url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
        &url::form_urlencoded::byte_serialize(requested.as_bytes()).collect::<String>(),
    );
    assert!(url.contains("redirect_uri="), "{url}");
    let (status, location) = fx.authorize(&url).await;
    assert_eq!((status, location.as_str()), (400, ""), "{requested}");
    assert_unchanged(&fx, &before);
    assert!(fx.pending().await.is_empty());
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn open_redirect_to_another_host() {
    open_redirect("https://evil.example/callback").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn open_redirect_through_userinfo() {
    open_redirect("http://127.0.0.1:8976@evil.example/callback").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn open_redirect_to_another_path() {
    open_redirect("http://127.0.0.1:8976/callback/../evil").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn open_redirect_with_an_added_query() {
    open_redirect("http://127.0.0.1:8976/callback?next=https://evil.example").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn open_redirect_with_a_fragment() {
    open_redirect("http://127.0.0.1:8976/callback#evil").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn open_redirect_to_a_script() {
    open_redirect("javascript:alert(document.domain)").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn open_redirect_to_a_name_that_starts_like_loopback() {
    open_redirect("http://127.0.0.1.evil.example:8976/callback").await;
}

/// §4.3.2: tokens never travel in a URL query.
#[tokio::test(flavor = "multi_thread")]
async fn access_token_in_the_query_string() {
    let fx = Fixture::start("").await;
    let agent = fx.tokens_for("Agent", ToolChoice::All).await;
    let r = fx
        .http
        .post(format!(
            "{}?access_token={}",
            fx.resource("demo"),
            agent.access()
        ))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    fx.stop().await;
}

/// §2.3 (audience restriction): a token for one server is refused by another.
#[tokio::test(flavor = "multi_thread")]
async fn token_replayed_at_another_server() {
    let fx = Fixture::start(&format!(
        "[servers.other]\ncommand = {:?}\nargs = [\"demo-server\"]\n",
        gatehouse_bin()
    ))
    .await;
    let agent = fx.tokens_for("Agent", ToolChoice::All).await;
    let r = fx
        .mcp("other", Some(agent.access()), None, &initialize())
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    fx.stop().await;
}

/// The `state` a client sent comes back untouched (CSRF protection of the client).
#[tokio::test(flavor = "multi_thread")]
async fn state_comes_back_unchanged() {
    let fx = Fixture::start("").await;
    let client_id = fx.register("Agent").await;
    let state = "a b&c=d/é";
    let url = fx.authorize_url(&client_id, &[]).replace(
        "state=st4te",
        &format!(
            "state={}",
            url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
        ),
    );
    let (_, wait) = fx.authorize(&url).await;
    fx.approve("Agent", ToolChoice::All, DurationChoice::Once)
        .await;
    let back = fx.wait_for_redirect(&wait).await;
    assert_eq!(query(&back, "state").as_deref(), Some(state));
    fx.stop().await;
}
