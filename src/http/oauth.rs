//! Handlers for the authorization server's endpoints.
#![allow(clippy::disallowed_methods)] // the HTTP edge reads the clock

use std::sync::Arc;

use axum::body::Bytes;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde_json::json;

use super::error::json_no_store;
use super::pages;
use crate::api::Gatehouse;
use crate::clock;
use crate::oauth::authorize::AuthorizeError;
use crate::oauth::waiting::{self, PollOutcome};
use crate::oauth::{metadata, programs, register as registration, token, ErrorCode, OAuthError};
use crate::peer::Peer;

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn host(headers: &HeaderMap) -> &str {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
}

pub async fn authorization_server_metadata(State(g): State<Arc<Gatehouse>>) -> Response {
    Json(metadata::authorization_server(g.auth())).into_response()
}

pub async fn not_served() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not_found", "error_description": "not served: Gatehouse's metadata is at /.well-known/oauth-authorization-server"}))).into_response()
}

pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response()
}

async fn prm(g: &Gatehouse, headers: &HeaderMap, server: &str) -> Response {
    if !g.config().servers.contains_key(server) {
        return not_found().await;
    }
    let resource = g.auth().resource_url_for_host(host(headers), server);
    let scopes = g.scopes_for(server).await;
    Json(metadata::protected_resource(
        g.auth(),
        &resource,
        server,
        &scopes,
    ))
    .into_response()
}

pub async fn protected_resource(
    State(g): State<Arc<Gatehouse>>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    prm(&g, &headers, &server).await
}

/// The root form: meaningful only when one server is fronted.
pub async fn protected_resource_root(
    State(g): State<Arc<Gatehouse>>,
    headers: HeaderMap,
) -> Response {
    let config = g.config();
    let mut names = config.servers.keys();
    match (names.next(), names.next()) {
        (Some(only), None) => prm(&g, &headers, &only.clone()).await,
        _ => not_found().await,
    }
}

pub async fn register(
    State(g): State<Arc<Gatehouse>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = clock::now();
    // RFC 7591 §3.1: the metadata is sent as JSON. A form or `text/plain` is
    // what a web page can send without asking (a CSRF "simple request").
    if !is_json(&headers) {
        return OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "send the registration as JSON (Content-Type: application/json)",
        )
        .into_response();
    }
    if let Err(seconds) = g.registrations().allow(peer.addr.ip(), now) {
        let why = format!("too many clients registered just now; try again in {seconds} s");
        return OAuthError::slow_down(why, seconds).into_response();
    }
    let registration = match registration::parse(&body, now) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    // The program that registers a client is kept with it (the first sighting counts).
    let program = peer.program().await;
    match registration.record(g.auth(), program, now).await {
        Ok(body) => json_no_store(StatusCode::CREATED, body),
        Err(e) => e.into_response(),
    }
}

/// Whether the request says its body is JSON (`application/json`, any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

pub async fn authorize(State(g): State<Arc<Gatehouse>>, RawQuery(query): RawQuery) -> Response {
    match g
        .authorize(query.as_deref().unwrap_or(""), clock::now())
        .await
    {
        Ok(handle) => Redirect::to(&format!("/authorize/wait/{}", handle.expose())).into_response(),
        Err(AuthorizeError::Redirect(url)) => found(&url),
        Err(AuthorizeError::Page(e)) => pages::error(StatusCode::BAD_REQUEST, &e),
    }
}

pub async fn wait(State(g): State<Arc<Gatehouse>>, Path(handle): Path<String>) -> Response {
    match waiting::poll(g.auth(), &handle, clock::now()) {
        Ok(PollOutcome::Waiting(page)) => pages::waiting(&page),
        Ok(PollOutcome::Redirect(url)) => found(&url),
        Ok(PollOutcome::Finished) => pages::finished(),
        Err(e) => pages::error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// `302 Found` to the client (a private-use scheme too), never cached.
fn found(url: &str) -> Response {
    let mut response = Redirect::to(url).into_response();
    *response.status_mut() = StatusCode::FOUND;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn form_request(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<
    (
        std::collections::HashMap<String, String>,
        crate::oauth::client_auth::PresentedCredentials,
    ),
    OAuthError,
> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let form = token::parse_form(body)?;
    let creds = token::credentials(&form, authorization(headers))?;
    Ok((form, creds))
}

pub async fn token(
    State(g): State<Arc<Gatehouse>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = clock::now();
    let (form, creds) = match form_request(&headers, &body) {
        Ok(parsed) => parsed,
        Err(e) => return e.into_response(),
    };
    let code_exchange = form
        .get("grant_type")
        .is_some_and(|t| t == "authorization_code");
    if let (true, Some(code)) = (code_exchange, form.get("code")) {
        // A code the agent's rules approved comes back only from its program.
        if let Err(e) = programs::may_redeem(g.auth(), code, &peer, now).await {
            return e.into_response();
        }
    }
    let result = token::exchange_queued(g.auth(), &form, creds, now).await;
    match result {
        Ok(body) => {
            // A grant whose client never registered here is given to the
            // program that redeems its code (a refresh needs no lookup).
            let program = match code_exchange {
                true => peer.program().await,
                false => None,
            };
            if let Some(program) = program {
                if let Err(e) = programs::redeemed(g.auth(), &body.access_token, &program, now) {
                    tracing::error!(error = %e, "could not keep the program that redeemed a code");
                }
            }
            json_no_store(StatusCode::OK, body)
        }
        Err(e) => e.into_response(),
    }
}

pub async fn revoke(State(g): State<Arc<Gatehouse>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = match form_request(&headers, &body) {
        Ok((form, creds)) => token::revoke(g.auth(), form, creds, clock::now()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => json_no_store(StatusCode::OK, json!({})),
        Err(e) => e.into_response(),
    }
}

pub async fn introspect(
    State(g): State<Arc<Gatehouse>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = form_request(&headers, &body)
        .and_then(|(form, creds)| token::introspect(g.auth(), &form, &creds, clock::now()));
    match result {
        Ok(body) => json_no_store(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
}

/// The browser comes back from Gatehouse's login at a remote server.
pub async fn login_callback(
    State(g): State<Arc<Gatehouse>>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    match g.finish_login(&query).await {
        Ok(server) => pages::info(
            "Gatehouse: logged in",
            &format!("Gatehouse is logged in to {server}. You can close this page."),
        ),
        Err(e) => pages::error_text(
            StatusCode::BAD_REQUEST,
            "Gatehouse could not log in",
            &e.message,
        ),
    }
}

/// Gatehouse's own Client ID Metadata Document, for authorization servers that take them.
pub async fn client_metadata(State(g): State<Arc<Gatehouse>>) -> Response {
    Json(g.upstream_client_metadata()).into_response()
}
