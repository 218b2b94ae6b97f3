//! The whole flow as a real OAuth client (the `oauth2` crate) and a person
//! with the CLI's control channel would run it: discovery from the 401,
//! registration, authorize, approval, token, a tool call through the gateway
//! to the real demo upstream, refresh with rotation, revocation.

use crate::support::*;
use gatehouse::api::{DurationChoice, ToolChoice};
use gatehouse::control::{LogFilter, Request};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, IntrospectionUrl, PkceCodeChallenge,
    RedirectUrl, Scope, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn full_flow_with_the_oauth2_crate() {
    let fx = Fixture::start("").await;
    let http = http_client();

    // 1. The MCP endpoint challenges; the challenge leads to the PRM, the PRM to the AS.
    let r = fx
        .mcp(
            "demo",
            None,
            None,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
        )
        .await;
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let prm_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        prm_url,
        format!("{}/.well-known/oauth-protected-resource/mcp/demo", fx.url)
    );
    assert!(
        challenge.contains("scope=\"tools:read tools:write tools:destructive\""),
        "{challenge}"
    );
    let prm: Value = http
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], json!(fx.resource("demo")));
    let issuer = prm["authorization_servers"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(issuer, fx.url);
    let meta: Value = http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], json!(issuer));
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));

    // 2. Dynamic registration.
    let reg: Value = http
        .post(meta["registration_endpoint"].as_str().unwrap())
        .json(&json!({"client_name": "Rust Agent", "redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = reg["client_id"].as_str().unwrap().to_string();

    // 3. The oauth2 crate builds the authorization request (PKCE S256, RFC 8707 resource).
    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(meta["authorization_endpoint"].as_str().unwrap().into()).unwrap(),
        )
        .set_token_uri(TokenUrl::new(meta["token_endpoint"].as_str().unwrap().into()).unwrap())
        .set_redirect_uri(RedirectUrl::new("http://127.0.0.1:40123/callback".into()).unwrap());
    let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("tools:read".into()))
        .add_scope(Scope::new("tools:write".into()))
        .add_extra_param("resource", fx.resource("demo"))
        .set_pkce_challenge(pkce_challenge)
        .url();
    let (status, wait) = fx.authorize(auth_url.as_str()).await;
    assert_eq!(status, 303);
    assert!(wait.starts_with("/authorize/wait/"));
    let page = http
        .get(format!("{}{wait}", fx.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Approve this in Gatehouse"));

    // 4. The person sees the request and approves two of its tools.
    let pending = fx.pending().await;
    assert_eq!(pending.len(), 1);
    let request = &pending[0];
    assert_eq!(request["client_name"], "Rust Agent");
    assert_eq!(request["verified"], false);
    assert_eq!(request["redirect_host"], "127.0.0.1");
    assert!(
        page.contains(request["phrase"].as_str().unwrap()),
        "the browser shows the same match phrase"
    );
    let asked: Vec<&str> = request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        asked,
        ["list_notes", "read_note", "wait", "write_note"],
        "read + write scopes, not destructive"
    );
    let granted = fx
        .approve(
            "Rust Agent",
            ToolChoice::Only(vec!["read_note".into(), "write_note".into()]),
            DurationChoice::Forever,
        )
        .await;
    assert_eq!(
        granted["value"]["tools"],
        json!(["read_note", "write_note"])
    );

    // 5. The browser is sent back with code, state and iss.
    let back = fx.wait_for_redirect(&wait).await;
    assert_eq!(back.host_str(), Some("127.0.0.1"));
    assert_eq!(back.port(), Some(40123));
    assert_eq!(
        query(&back, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(query(&back, "iss").as_deref(), Some(issuer.as_str()));
    let code = query(&back, "code").unwrap();

    // 6. Token exchange with the oauth2 crate.
    let oauth_http = oauth2::reqwest::Client::builder()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(pkce_verifier)
        .add_extra_param("resource", fx.resource("demo"))
        .request_async(&oauth_http)
        .await
        .unwrap();
    let access = tokens.access_token().secret().clone();
    let expires_in = tokens.expires_in().unwrap().as_secs();
    assert!((3590..=3600).contains(&expires_in), "{expires_in}");
    assert_eq!(
        tokens
            .scopes()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        ["tool:read_note", "tool:write_note"]
    );

    // 7. Through the gateway to the real upstream: the listing is filtered, an ungranted call is refused.
    let session = fx.session("demo", &access).await;
    assert_eq!(session.tool_names().await, ["read_note", "write_note"]);
    let wrote = session
        .call_text("write_note", json!({"title": "t", "text": "hi"}))
        .await;
    assert_eq!(wrote, "saved \"t\"");
    assert_eq!(
        session.call_text("read_note", json!({"title": "t"})).await,
        "hi"
    );
    // A tool it was never granted: 403 with a step-up challenge for the union.
    let refused = session
        .post(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "delete_note", "arguments": {"title": "t"}}}))
        .await;
    assert_eq!(refused.status(), 403);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"tool:read_note tool:write_note tool:delete_note\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("resource_metadata=\"{prm_url}\"")),
        "{challenge}"
    );
    assert_eq!(
        session.call_text("read_note", json!({"title": "t"})).await,
        "hi",
        "the refused delete never reached the upstream"
    );

    // 8. Refresh rotates; the old refresh token is then refused with invalid_grant.
    let old_refresh = tokens.refresh_token().unwrap().clone();
    let refreshed = client
        .exchange_refresh_token(&old_refresh)
        .request_async(&oauth_http)
        .await
        .unwrap();
    assert_ne!(refreshed.access_token().secret(), &access);
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        old_refresh.secret()
    );
    let reused = client
        .exchange_refresh_token(&old_refresh)
        .request_async(&oauth_http)
        .await;
    assert_invalid_grant(reused);
    let new_access = refreshed.access_token().secret().clone();
    let refreshed_session = session.with_token(&new_access);
    assert_eq!(
        refreshed_session
            .call_text("read_note", json!({"title": "t"}))
            .await,
        "hi"
    );

    // 9. RFC 7009 revocation of the new refresh token ends its family. (The
    // oauth2 crate refuses a non-https revocation URL, so this is a plain form POST.)
    let r = http
        .post(meta["revocation_endpoint"].as_str().unwrap())
        .form(&[
            (
                "token",
                refreshed.refresh_token().unwrap().secret().as_str(),
            ),
            ("token_type_hint", "refresh_token"),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let after_revoke = client
        .exchange_refresh_token(refreshed.refresh_token().unwrap())
        .request_async(&oauth_http)
        .await;
    assert_invalid_grant(after_revoke);
    let (status, _) = refreshed_session.request("tools/list", json!({})).await;
    assert_eq!(status, 401, "the family's access token went with it");

    // 10. The audit log tells the story.
    let kinds = fx.audit_kinds();
    for kind in [
        "client_registered",
        "consent_requested",
        "consent_approved",
        "token_issued",
        "tool_call",
        "token_refreshed",
        "token_revoked",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "missing {kind} in {kinds:?}"
        );
    }
    let log = fx
        .control(Request::Log {
            limit: 100,
            follow: false,
            filter: LogFilter {
                agent: Some("Rust Agent".into()),
                ..Default::default()
            },
        })
        .await
        .unwrap();
    let calls: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "tool_call")
        .collect();
    assert_eq!(calls.len(), 5);
    let denied: Vec<&&Value> = calls.iter().filter(|e| e["outcome"] == "denied").collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["tool"], "delete_note");
    assert!(
        calls
            .iter()
            .all(|e| e["grant_id"] == granted["value"]["id"]),
        "each call names the grant that decided it"
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_an_agent_fails_its_very_next_request_and_its_refresh() {
    let fx = Fixture::start("").await;
    let agent = fx.tokens_for("Doomed Agent", ToolChoice::All).await;
    let client_id = &agent.client_id;
    let session = fx.session("demo", agent.access()).await;
    assert!(session.ok("tools/list", json!({})).await["result"].is_object());

    let revoked = fx
        .control(Request::RevokeAgent {
            agent: "Doomed Agent".into(),
        })
        .await
        .unwrap();
    assert_eq!(revoked["client_ids"], json!([client_id]));

    let r = session
        .post(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    let (status, body) = fx.refresh(client_id, agent.refresh()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        fx.api().status().unwrap().sessions,
        0,
        "its sessions were ended"
    );
    assert!(fx.audit_kinds().contains(&"agent_revoked".to_string()));
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_for_confidential_clients() {
    let fx = Fixture::start("").await;
    let agent = fx.tokens_for("Agent", ToolChoice::ReadOnly).await;
    let reg: Value = fx
        .http
        .post(format!("{}/register", fx.url))
        .json(&json!({"client_name": "Resource Server", "redirect_uris": ["https://rs.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rs = BasicClient::new(ClientId::new(reg["client_id"].as_str().unwrap().into()))
        .set_client_secret(oauth2::ClientSecret::new(
            reg["client_secret"].as_str().unwrap().into(),
        ))
        .set_token_uri(TokenUrl::new(format!("{}/token", fx.url)).unwrap())
        .set_introspection_url(IntrospectionUrl::new(format!("{}/introspect", fx.url)).unwrap());
    let oauth_http = oauth2::reqwest::Client::new();
    let access = oauth2::AccessToken::new(agent.access().into());
    let info = rs
        .introspect(&access)
        .request_async(&oauth_http)
        .await
        .unwrap();
    assert!(info.active());
    assert_eq!(info.aud().unwrap(), &vec![fx.resource("demo")]);
    assert_eq!(info.iss(), Some(fx.url.as_str()));
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(agent.client_id.as_str())
    );
    assert_eq!(
        info.token_type(),
        Some(&oauth2::basic::BasicTokenType::Bearer)
    );
    let scopes: Vec<&str> = info.scopes().unwrap().iter().map(|s| s.as_str()).collect();
    let granted = agent.tokens["scope"].as_str().unwrap();
    assert_eq!(scopes.join(" "), granted);
    assert!(info.exp().unwrap() > info.iat().unwrap());
    assert!(!info.sub().unwrap().is_empty());
    // A refresh token is answered from the database, not the live state.
    let refresh = rs
        .introspect(&oauth2::AccessToken::new(agent.refresh().into()))
        .request_async(&oauth_http)
        .await
        .unwrap();
    assert!(refresh.active());
    assert_eq!(refresh.aud().unwrap(), &vec![fx.resource("demo")]);
    assert_eq!(refresh.iss(), Some(fx.url.as_str()));
    assert_eq!(refresh.sub(), info.sub());
    assert_eq!(
        refresh.token_type(),
        Some(&oauth2::basic::BasicTokenType::Extension(
            "refresh_token".into()
        ))
    );
    let bogus = rs
        .introspect(&oauth2::AccessToken::new("gh_at_nope".into()))
        .request_async(&oauth_http)
        .await
        .unwrap();
    assert!(!bogus.active());

    // A public client (a real, registered one: the agent itself) may not introspect.
    let r = fx
        .http
        .post(format!("{}/introspect", fx.url))
        .form(&[
            ("token", access.secret().as_str()),
            ("client_id", agent.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("confidential client"),
        "refused because it is public, not because it is unknown: {body}"
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_is_not_a_bearer_token() {
    let fx = Fixture::start("").await;
    let agent = fx.tokens_for("Agent", ToolChoice::ReadOnly).await;
    let init = initialize();
    let r = fx.mcp("demo", Some(agent.refresh()), None, &init).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    assert_eq!(
        fx.mcp("demo", Some(agent.access()), None, &init)
            .await
            .status(),
        200,
        "the access token of the same grant works"
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_cannot_change_the_audience() {
    let fx = Fixture::start(&format!(
        "[servers.second]\ncommand = {:?}\nargs = [\"demo-server\"]\n",
        gatehouse_bin()
    ))
    .await;
    let agent = fx.tokens_for("Agent", ToolChoice::ReadOnly).await;
    let (status, body) = fx
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", agent.refresh()),
            ("client_id", &agent.client_id),
            ("resource", &fx.resource("second")),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target")),
        "{body}"
    );
    let (status, body) = fx
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", agent.refresh()),
            ("client_id", &agent.client_id),
            ("resource", &fx.resource("demo")),
        ])
        .await;
    assert_eq!(status, 200, "the same audience refreshes: {body}");
    fx.stop().await;
}

/// The oauth2 crate's token request failed with the server's `invalid_grant`.
fn assert_invalid_grant<T: std::fmt::Debug, E: std::error::Error + 'static>(
    result: Result<
        T,
        oauth2::RequestTokenError<E, oauth2::StandardErrorResponse<BasicErrorResponseType>>,
    >,
) {
    match result {
        Err(oauth2::RequestTokenError::ServerResponse(r)) => {
            assert_eq!(r.error(), &BasicErrorResponseType::InvalidGrant, "{r:?}")
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}
