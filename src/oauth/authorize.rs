//! The authorization endpoint (OAuth 2.1 §4.1.1). `/authorize` checks the
//! request ([`parse`], [`validate`]) and turns it into a pending consent
//! request ([`create_request`]); the browser is sent to a waiting page
//! (`oauth::waiting`) that only says "approve this in Gatehouse". The decision
//! is made in the native window or the CLI, never in the page. Every redirect
//! back to the client carries `iss` (RFC 9207).

use serde_json::json;

use super::{redirect, scope, AuthServer, ErrorCode, OAuthError};
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;
use crate::crypto::{self, Secret};
use crate::store::clients::Client;
use crate::store::consent::{self, ConsentRequest, Status};
use crate::store::grants;
use crate::tools::{Instructions, ToolInfo};

/// A second request from the same agent for the same server within this
/// window is refused (one open request per agent and server).
pub const REQUEST_SPACING_MS: i64 = 2 * crate::clock::SECOND;
/// Most consent requests that may wait for the person at once, from all agents.
pub const MAX_OPEN_REQUESTS: usize = 20;

#[derive(Debug, Default, Clone)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: String,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub state: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
}

#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown in the browser, never redirected: the client or redirect URI cannot be trusted.
    Page(OAuthError),
    /// Sent back to the client's redirect URI.
    Redirect(String),
}

/// Reads the query string. A parameter given twice is refused (OAuth 2.1 §3.1).
pub fn parse(query: &str) -> Result<AuthorizeParams, OAuthError> {
    let mut p = AuthorizeParams::default();
    let mut client_id = None;
    let mut seen = std::collections::HashSet::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if !seen.insert(key.to_string()) {
            return Err(OAuthError::invalid_request(format!(
                "parameter `{key}` appears more than once"
            )));
        }
        let value = value.into_owned();
        let slot = match key.as_ref() {
            "response_type" => &mut p.response_type,
            "client_id" => &mut client_id,
            "redirect_uri" => &mut p.redirect_uri,
            "code_challenge" => &mut p.code_challenge,
            "code_challenge_method" => &mut p.code_challenge_method,
            "state" => &mut p.state,
            "scope" => &mut p.scope,
            "resource" => &mut p.resource,
            _ => continue,
        };
        *slot = Some(value);
    }
    p.client_id = client_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
    Ok(p)
}

/// A checked authorization request.
#[derive(Debug)]
pub struct Validated {
    pub client: Client,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scope: Option<String>,
    pub server: String,
}

/// Checks the request against the client's registration, in the order
/// OAuth 2.1 §4.1.2.1 asks: redirect URI problems are never redirected.
pub fn validate(
    auth: &AuthServer,
    client: Client,
    p: AuthorizeParams,
) -> Result<Validated, AuthorizeError> {
    let (redirect_uri, given) = match &p.redirect_uri {
        Some(uri) => {
            if !client
                .redirect_uris
                .iter()
                .any(|r| redirect::matches(r, uri))
            {
                return Err(AuthorizeError::Page(OAuthError::invalid_request(
                    "redirect_uri is not registered for this client",
                )));
            }
            (uri.clone(), true)
        }
        None if client.redirect_uris.len() == 1 => (client.redirect_uris[0].clone(), false),
        None => {
            return Err(AuthorizeError::Page(OAuthError::invalid_request(
                "redirect_uri is required: this client registered several",
            )))
        }
    };
    let fail = |e: OAuthError| {
        AuthorizeError::Redirect(error_redirect(auth, &redirect_uri, p.state.as_deref(), &e))
    };
    match p.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is required",
            )))
        }
        Some(other) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("response_type {other:?} is not supported; use `code`"),
            )))
        }
    }
    let challenge = p.code_challenge.clone().ok_or_else(|| {
        fail(OAuthError::invalid_request(
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ))
    })?;
    if p.code_challenge_method.as_deref() != Some("S256") {
        return Err(fail(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )));
    }
    if !crypto::is_valid_pkce_value(&challenge) {
        return Err(fail(OAuthError::invalid_request(
            "code_challenge is malformed",
        )));
    }
    if p.state.as_ref().is_some_and(|s| s.len() > 2048)
        || p.scope.as_ref().is_some_and(|s| s.len() > 8192)
    {
        return Err(fail(OAuthError::invalid_request("state or scope too long")));
    }
    let server = auth
        .resolve_resource(p.resource.as_deref(), client.bound_server.as_deref())
        .map_err(fail)?;
    Ok(Validated {
        client,
        redirect_uri,
        redirect_uri_given: given,
        state: p.state,
        code_challenge: challenge,
        scope: p.scope,
        server,
    })
}

/// Records a pending consent request for a validated `/authorize`. A repeat
/// of the same request (same client and PKCE challenge, still pending) does
/// not create a second one: it gets a fresh browser handle for the same request.
/// Returns the browser's handle: its capability to the waiting page.
pub fn create_request(
    auth: &AuthServer,
    v: Validated,
    (tools, instructions): (Vec<ToolInfo>, Option<Instructions>),
    now: UnixMs,
) -> Result<Secret, AuthorizeError> {
    let fail = |e: OAuthError| {
        AuthorizeError::Redirect(error_redirect(
            auth,
            &v.redirect_uri,
            v.state.as_deref(),
            &e,
        ))
    };
    let wanted = scope::tools_for_scope(v.scope.as_deref(), &tools).map_err(|e| {
        fail(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("unknown scope {:?} for server {:?}", e.0, v.server),
        ))
    })?;
    if wanted.is_empty() {
        return Err(fail(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("server {:?} offers no tools for this scope", v.server),
        )));
    }
    let requested_tools: Vec<ToolInfo> = tools
        .into_iter()
        .filter(|t| wanted.contains(&t.name))
        .collect();
    let handle = Secret::generate("gh_wait_");
    let result = auth.store.write(|tx| {
        // A reload of the same request (same challenge, server, scope,
        // redirect and state) gets the same request; anything else is a new one.
        let reload = consent::find_pending_duplicate(
            tx.conn(),
            &v.client.client_id,
            &v.code_challenge,
            now,
        )?
        .filter(|e| {
            e.server == v.server
                && e.scope == v.scope
                && e.redirect_uri == v.redirect_uri
                && e.state == v.state
        });
        if let Some(existing) = reload {
            consent::replace_handle(tx.conn(), &existing.id, &handle.hash())?;
            return Ok::<_, OAuthError>(existing);
        }
        // At most one open request per agent and server: a quick repeat is
        // refused, an older one is superseded by this one.
        let open = consent::pending_for(tx.conn(), &v.client.client_id, &v.server, now)?;
        // And a flood of agents cannot bury the person in questions.
        if open.is_none() && consent::pending(tx.conn(), now)?.len() >= MAX_OPEN_REQUESTS {
            return Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                format!("{MAX_OPEN_REQUESTS} requests are already waiting for the user; try again later"),
            ));
        }
        if let Some(open) = open {
            if open.created_at > now - REQUEST_SPACING_MS {
                return Err(OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "this agent already has a request waiting for the user; try again later",
                ));
            }
            consent::transition(
                tx.conn(),
                &open.id,
                Status::Pending,
                Status::Expired,
                now,
                None,
                None,
            )?;
            tx.record(
                NewEvent::new(EventKind::ConsentExpired, Outcome::Denied)
                    .client(&open.client_id)
                    .server(&open.server)
                    .detail(json!({"request": open.id, "superseded": true})),
                now,
            )?;
        }
        // A step-up: the agent already holds a grant here; ask only about what is new.
        let base = grants::active_for(tx.conn(), &v.client.client_id, &v.server, now)?;
        let (tools, base_grant_id) = match &base {
            Some(grant) => {
                let new: Vec<ToolInfo> = requested_tools
                    .iter()
                    .filter(|t| !grant.tools.contains(&t.name))
                    .cloned()
                    .collect();
                (
                    if new.is_empty() { requested_tools } else { new },
                    Some(grant.id.clone()),
                )
            }
            None => (requested_tools, None),
        };
        let request = ConsentRequest {
            id: crypto::short_id("cr_"),
            handle_hash: handle.hash(),
            client_id: v.client.client_id.clone(),
            server: v.server.clone(),
            resource: auth.resource_url(&v.server),
            redirect_uri: v.redirect_uri.clone(),
            redirect_uri_given: v.redirect_uri_given,
            state: v.state.clone(),
            code_challenge: v.code_challenge.clone(),
            scope: v.scope.clone(),
            tools,
            phrase: crypto::match_phrase(),
            status: Status::Pending,
            created_at: now,
            expires_at: now + auth.config.get().consent_timeout_ms,
            decided_at: None,
            decided_by: None,
            grant_id: None,
            base_grant_id,
            instructions,
        };
        consent::insert(tx.conn(), &request)?;
        tx.record(
            NewEvent::new(EventKind::ConsentRequested, Outcome::Allowed)
                .client(&request.client_id)
                .server(&request.server)
                .detail(json!({
                    "request": request.id,
                    "tools": request.tools.iter().map(|t| &t.name).collect::<Vec<_>>(),
                    "redirect_host": redirect_host(&request.redirect_uri),
                    "step_up": request.base_grant_id,
                })),
            now,
        )?;
        Ok(request)
    });
    let request = result.map_err(fail)?;
    // The agent's rules may decide it at once (no window); else the person does.
    if let Err(e) = super::rules::apply(auth, &request, now) {
        tracing::error!(error = %e, request = %request.id, "could not apply the agent's rules; the person decides");
    }
    Ok(handle)
}

/// An error response to the client's redirect URI (OAuth 2.1 §4.1.2.1, RFC 9207).
pub fn error_redirect(
    auth: &AuthServer,
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return redirect_uri.to_string();
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", error.code.as_str());
        q.append_pair("error_description", &error.description);
        if let Some(state) = state {
            q.append_pair("state", state);
        }
        q.append_pair("iss", &auth.issuer);
    }
    url.into()
}

/// The host (or scheme, for a private-use URI) the browser will be sent to.
pub fn redirect_host(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(u) => match u.host_str() {
            Some(h) => h.to_string(),
            None => format!("{}:", u.scheme()),
        },
        Err(_) => redirect_uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    use crate::testing::authorize_params as params;

    fn redirected_error(e: AuthorizeError) -> String {
        match e {
            AuthorizeError::Redirect(to) => query(&url::Url::parse(&to).unwrap(), "error").unwrap(),
            AuthorizeError::Page(e) => panic!("shown in the browser, not redirected: {e}"),
        }
    }

    #[test]
    fn parameters_appear_once_and_client_id_is_required() {
        assert!(parse("client_id=a&state=1&state=2").is_err());
        assert!(parse("response_type=code").is_err());
        let p = parse("client_id=a&scope=tools%3Aread&unknown=x").unwrap();
        assert_eq!(
            (p.client_id.as_str(), p.scope.as_deref()),
            ("a", Some("tools:read"))
        );
    }

    #[test]
    fn redirect_uri_problems_are_never_redirected() {
        let auth = auth_server("");
        let client = public_client(&auth, "agent", T0);
        for uri in [
            "http://127.0.0.1:8976/other",
            "https://evil.example/callback",
            "http://127.0.0.1:8976/callback?next=evil",
        ] {
            let p = AuthorizeParams {
                redirect_uri: Some(uri.into()),
                ..params(&client)
            };
            assert!(
                matches!(
                    validate(&auth, client.clone(), p),
                    Err(AuthorizeError::Page(_))
                ),
                "{uri}"
            );
        }
        // Any loopback port is the same registered URI (RFC 8252).
        let p = AuthorizeParams {
            redirect_uri: Some("http://127.0.0.1:51234/callback".into()),
            ..params(&client)
        };
        assert!(validate(&auth, client, p).is_ok());
    }

    #[test]
    fn other_problems_go_back_to_the_client() {
        let auth = auth_server("");
        let client = public_client(&auth, "agent", T0);
        let cases = [
            (
                AuthorizeParams {
                    response_type: Some("token".into()),
                    ..params(&client)
                },
                "unsupported_response_type",
            ),
            (
                AuthorizeParams {
                    code_challenge: None,
                    ..params(&client)
                },
                "invalid_request",
            ),
            (
                AuthorizeParams {
                    code_challenge_method: Some("plain".into()),
                    ..params(&client)
                },
                "invalid_request",
            ),
            (
                AuthorizeParams {
                    code_challenge: Some("short".into()),
                    ..params(&client)
                },
                "invalid_request",
            ),
            (
                AuthorizeParams {
                    resource: Some("http://127.0.0.1:1/mcp/demo".into()),
                    ..params(&client)
                },
                "invalid_target",
            ),
        ];
        for (p, code) in cases {
            assert_eq!(
                redirected_error(validate(&auth, client.clone(), p).unwrap_err()),
                code
            );
        }
        let unknown_scope = AuthorizeParams {
            scope: Some("tool:rm_rf".into()),
            ..params(&client)
        };
        let v = validate(&auth, client, unknown_scope).unwrap();
        assert_eq!(
            redirected_error(create_request(&auth, v, (demo_tools(), None), T0).unwrap_err()),
            "invalid_scope"
        );
    }

    #[test]
    fn one_open_request_per_agent_and_server() {
        let auth = auth_server("");
        let client = public_client(&auth, "agent", T0);
        let (first, _) = request(&auth, &client, None, T0);
        // The same request again (a reload): the same pending request, a new handle.
        let (again, _) = request(&auth, &client, None, T0 + 500);
        assert_eq!(first, again);
        // Another request soon after: refused.
        let other = AuthorizeParams {
            code_challenge: Some("B".repeat(43)),
            ..params(&client)
        };
        let v = validate(&auth, client.clone(), other.clone()).unwrap();
        let refused = create_request(&auth, v, (demo_tools(), None), T0 + 1_000).unwrap_err();
        assert_eq!(redirected_error(refused), "temporarily_unavailable");
        // Later, it supersedes the old one.
        let v = validate(&auth, client, other).unwrap();
        create_request(&auth, v, (demo_tools(), None), T0 + REQUEST_SPACING_MS + 1).unwrap();
        let pending = auth
            .store
            .read(|c| consent::pending(c, T0 + 3_000))
            .unwrap();
        assert_eq!(pending.len(), 1);
        assert_ne!(pending[0].id, first);
    }

    #[test]
    fn a_step_up_asks_only_for_what_is_new() {
        let auth = auth_server("");
        let client = public_client(&auth, "agent", T0);
        let only_read = crate::oauth::consent::ToolChoice::Only(vec!["read_note".into()]);
        let forever = crate::oauth::consent::DurationChoice::Forever;
        approved_code(&auth, &client, only_read, forever, T0);
        let (id, _) = request(
            &auth,
            &client,
            Some("tool:read_note tool:write_note"),
            T0 + 5_000,
        );
        let asked = auth.store.read(|c| consent::get(c, &id)).unwrap().unwrap();
        assert!(
            asked.base_grant_id.is_some(),
            "a step-up of the grant in force"
        );
        let names: Vec<&str> = asked.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["write_note"]);
    }
}
