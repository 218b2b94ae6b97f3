//! Handlers for the MCP endpoint `/mcp/<server>` (streamable HTTP). Each
//! request is authenticated with its bearer token, then handed to the gateway.
#![allow(clippy::disallowed_methods)] // the HTTP edge reads the clock

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde_json::Value;

use super::error;
use crate::api::Gatehouse;
use crate::clock;
use crate::gateway::jsonrpc::{self, Message};
use crate::gateway::upstream::UpstreamHeaders;
use crate::gateway::{Incoming, McpError, Reply};
use crate::oauth::bearer::{self, AccessGrant, BearerError};
use crate::oauth::metadata::protected_resource_metadata_url;
use crate::oauth::programs;
use crate::peer::Peer;

const SESSION_HEADER: &str = "mcp-session-id";

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What the client's request tells the upstream (never its token).
fn upstream_headers(headers: &HeaderMap) -> UpstreamHeaders {
    UpstreamHeaders {
        protocol_version: header_str(headers, "mcp-protocol-version").map(str::to_string),
        ..UpstreamHeaders::default()
    }
}

/// The RFC 9728 metadata URL for this server, spelled for the host the client used.
fn metadata_url(headers: &HeaderMap, server: &str) -> String {
    let host = header_str(headers, header::HOST.as_str()).unwrap_or("127.0.0.1");
    protected_resource_metadata_url(host, server)
}

/// A gateway refusal as the client sees it.
fn refused(e: &McpError, headers: &HeaderMap, server: &str) -> Response {
    error::mcp(e, &metadata_url(headers, server))
}

/// The bearer check every MCP request passes; a refusal is the RFC 9728 challenge.
async fn authenticate(
    g: &Gatehouse,
    peer: &Peer,
    headers: &HeaderMap,
    server: &str,
) -> Result<AccessGrant, Response> {
    if !g.config().servers.contains_key(server) {
        let unknown = McpError::UnknownServer(server.to_string());
        return Err(refused(&unknown, headers, server));
    }
    let token = header_str(headers, header::AUTHORIZATION.as_str())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let result = match token {
        Some(t) if !t.is_empty() => bearer::authenticate(g.auth(), t, server, clock::now()),
        _ => Err(BearerError::Missing),
    };
    let result = match result {
        Ok(mut access) => programs::check(g.auth(), &mut access, peer, clock::now())
            .await
            .map(|()| access),
        Err(e) => Err(e),
    };
    match result {
        Ok(access) => Ok(access),
        Err(e) => {
            let metadata = metadata_url(headers, server);
            let scope = g.challenge_scope(server).await;
            Err(match e {
                BearerError::Missing => error::bearer_challenge(&metadata, &scope, None),
                BearerError::Invalid(why) => error::bearer_challenge(&metadata, &scope, Some(why)),
            })
        }
    }
}

pub async fn post(
    State(g): State<Arc<Gatehouse>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let access = match authenticate(&g, &peer, &headers, &server).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let reply = g
        .gateway()
        .handle(Incoming {
            access: &access,
            server: &server,
            session_id: header_str(&headers, SESSION_HEADER),
            headers: upstream_headers(&headers),
            body: &body,
        })
        .await;
    match reply {
        Reply::Accepted => StatusCode::ACCEPTED.into_response(),
        Reply::Refused(McpError::SessionNotFound) => {
            session_gone(&g, &peer, &headers, &server).await
        }
        Reply::Refused(e) => refused(&e, &headers, &server),
        Reply::Messages {
            session_id,
            mut messages,
        } => {
            let first = messages.recv().await;
            let mut response = match first {
                // The answer came first: a plain JSON response.
                Some(first) if first.is_response() => json(first),
                // Server messages precede the answer: stream them all (SSE).
                Some(first) => {
                    let stream = futures::stream::once(async move { first }).chain(messages);
                    sse(stream)
                }
                None => (
                    StatusCode::BAD_GATEWAY,
                    Json(jsonrpc::error(
                        Value::Null,
                        jsonrpc::UPSTREAM_FAILED,
                        "no answer from upstream",
                    )),
                )
                    .into_response(),
            };
            if let Some(sid) = session_id.and_then(|s| HeaderValue::from_str(&s).ok()) {
                response.headers_mut().insert(SESSION_HEADER, sid);
            }
            response
        }
    }
}

/// A session that is not there. If the agent was revoked while its request
/// was in flight (the token passed, then revocation ended the session), the
/// answer is the bearer challenge its next request would get: the client
/// learns its token is dead instead of opening a session it cannot use.
async fn session_gone(g: &Gatehouse, peer: &Peer, headers: &HeaderMap, server: &str) -> Response {
    match authenticate(g, peer, headers, server).await {
        Ok(_) => refused(&McpError::SessionNotFound, headers, server),
        Err(challenge) => challenge,
    }
}

/// One message as a plain JSON response.
fn json(message: Message) -> Response {
    let content_type = [(header::CONTENT_TYPE, "application/json")];
    (content_type, message.into_text()).into_response()
}

fn sse(messages: impl futures::Stream<Item = Message> + Send + 'static) -> Response {
    let events =
        messages.map(|m| Ok::<_, Infallible>(Event::default().event("message").data(m.text())));
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `GET`: the session's stream of server messages outside any request.
pub async fn get(
    State(g): State<Arc<Gatehouse>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    let access = match authenticate(&g, &peer, &headers, &server).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(sid) = header_str(&headers, SESSION_HEADER) else {
        let e = McpError::NoSession {
            id: Value::Null,
            message: "Mcp-Session-Id header is required",
        };
        return refused(&e, &headers, &server);
    };
    let opened = g
        .gateway()
        .open_stream(sid, &access.client_id, &server, &upstream_headers(&headers))
        .await;
    match opened {
        Ok(stream) => sse(stream),
        Err(McpError::SessionNotFound) => session_gone(&g, &peer, &headers, &server).await,
        Err(e) => refused(&e, &headers, &server),
    }
}

/// `DELETE`: the client ends its session.
pub async fn delete(
    State(g): State<Arc<Gatehouse>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    let access = match authenticate(&g, &peer, &headers, &server).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match header_str(&headers, SESSION_HEADER) {
        Some(sid) if g.gateway().end_own_session(sid, &access.client_id, &server) => {
            StatusCode::NO_CONTENT.into_response()
        }
        _ => session_gone(&g, &peer, &headers, &server).await,
    }
}
