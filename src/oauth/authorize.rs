//! The authorization endpoint (OAuth 2.1 §4.1.1). `/authorize` checks the
//! request and turns it into a pending consent request; the browser is sent
//! to a waiting page that only says "approve this in Gatehouse" and polls
//! [`poll`]. The decision is made in the native window or the CLI, never in
//! the page. Every redirect back to the client carries `iss` (RFC 9207).

use serde_json::json;

use super::scope;
use super::{redirect, AuthServer, ErrorCode, OAuthError, CODE_TTL_MS};
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;
use crate::crypto::{self, Secret};
use crate::store::clients::{self, Client};
use crate::store::consent::{self, ConsentRequest, Status};
use crate::store::grants;
use crate::store::tokens::{self, CodeRow};
use crate::tools::ToolInfo;

/// A second request from the same agent for the same server within this
/// window is refused (one open request per agent and server).
pub const REQUEST_SPACING_MS: i64 = 2 * crate::clock::SECOND;

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
    tools: Vec<ToolInfo>,
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
        if let Some(existing) =
            consent::find_pending_duplicate(tx.conn(), &v.client.client_id, &v.code_challenge, now)?
        {
            consent::replace_handle(tx.conn(), &existing.id, &handle.hash())?;
            return Ok::<_, OAuthError>(existing);
        }
        // At most one open request per agent and server: a quick repeat is
        // refused, an older one is superseded by this one.
        if let Some(open) = consent::pending_for(tx.conn(), &v.client.client_id, &v.server, now)? {
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
            expires_at: now + auth.config.consent_timeout_ms,
            decided_at: None,
            decided_by: None,
            grant_id: None,
            base_grant_id,
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
    result.map_err(fail)?;
    Ok(handle)
}

/// What the waiting page should do now.
#[derive(Debug)]
pub enum PollOutcome {
    /// Still waiting for the person.
    Waiting(WaitingPage),
    /// Decided: send the browser back to the client.
    Redirect(String),
    /// Unknown handle, or the code was already handed out.
    Finished,
}

/// What the browser's waiting page shows: who asks for which server, and the
/// phrase the consent window shows too.
#[derive(Debug, Clone)]
pub struct WaitingPage {
    /// What the agent calls itself; `None` if it is unknown.
    pub client_name: Option<String>,
    pub verified: bool,
    pub server: String,
    pub phrase: String,
    pub redirect_host: String,
}

/// Checks the waiting page's request. On approval the authorization code is
/// minted now (so its short life starts when the browser collects it) and
/// handed out once.
pub fn poll(auth: &AuthServer, handle: &str, now: UnixMs) -> Result<PollOutcome, OAuthError> {
    let Some(request) = auth
        .store
        .read(|c| consent::by_handle(c, &crypto::hash(handle)))?
    else {
        return Ok(PollOutcome::Finished);
    };
    match request.status {
        Status::Pending if request.expires_at > now => {
            let client = auth.store.read(|c| clients::get(c, &request.client_id))?;
            Ok(PollOutcome::Waiting(WaitingPage {
                client_name: client.as_ref().map(|c| c.name.clone()),
                verified: client.is_some_and(|c| c.kind.is_verified()),
                server: request.server,
                phrase: request.phrase,
                redirect_host: redirect_host(&request.redirect_uri),
            }))
        }
        Status::Pending => {
            super::consent::expire(auth, &request, now)?;
            Ok(PollOutcome::Redirect(denied_redirect(
                auth,
                &request,
                "nobody approved the request in time",
            )))
        }
        Status::Denied => Ok(PollOutcome::Redirect(denied_redirect(
            auth,
            &request,
            "the user denied the request",
        ))),
        Status::Expired => Ok(PollOutcome::Redirect(denied_redirect(
            auth,
            &request,
            "nobody approved the request in time",
        ))),
        Status::Delivered => Ok(PollOutcome::Finished),
        Status::Approved => {
            let code = Secret::generate("gh_code_");
            let grant_id = request.grant_id.clone().ok_or_else(|| {
                OAuthError::new(ErrorCode::ServerError, "approved request without a grant")
            })?;
            let delivered = auth.store.write(|tx| {
                if !consent::transition(
                    tx.conn(),
                    &request.id,
                    Status::Approved,
                    Status::Delivered,
                    now,
                    None,
                    None,
                )? {
                    return Ok::<_, OAuthError>(false);
                }
                tokens::insert_code(
                    tx.conn(),
                    &CodeRow {
                        code_hash: code.hash(),
                        request_id: request.id.clone(),
                        grant_id,
                        client_id: request.client_id.clone(),
                        created_at: now,
                        expires_at: now + CODE_TTL_MS,
                        used_at: None,
                    },
                )?;
                Ok(true)
            })?;
            if !delivered {
                return Ok(PollOutcome::Finished);
            }
            let mut url = url::Url::parse(&request.redirect_uri).map_err(|_| {
                OAuthError::new(ErrorCode::ServerError, "stored redirect URI is invalid")
            })?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("code", code.expose());
                if let Some(state) = &request.state {
                    q.append_pair("state", state);
                }
                q.append_pair("iss", &auth.issuer);
            }
            Ok(PollOutcome::Redirect(url.into()))
        }
    }
}

fn denied_redirect(auth: &AuthServer, request: &ConsentRequest, why: &str) -> String {
    error_redirect(
        auth,
        &request.redirect_uri,
        request.state.as_deref(),
        &OAuthError::access_denied(why),
    )
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
