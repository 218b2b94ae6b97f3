//! The axum routers. Handlers only extract, call the domain, and convert;
//! [`error`] is the one place protocol errors become HTTP responses, and
//! [`guard`] rejects requests whose `Host` or `Origin` is not loopback.

pub mod error;
pub mod guard;
mod mcp;
mod oauth;
mod pages;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;

use crate::api::Gatehouse;

/// Largest body accepted by the OAuth endpoints.
pub const OAUTH_BODY_LIMIT: usize = 64 * 1024;
/// Largest MCP message accepted from an agent.
pub const MCP_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Where the browser comes back from Gatehouse's own login at a remote server.
pub const LOGIN_CALLBACK: &str = "/oauth/callback";

pub fn router(gatehouse: Arc<Gatehouse>) -> Router {
    let oauth = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::authorization_server_metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server/{*rest}",
            get(oauth::not_served),
        )
        .route("/.well-known/openid-configuration", get(oauth::not_served))
        .route(
            "/.well-known/openid-configuration/{*rest}",
            get(oauth::not_served),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(oauth::protected_resource_root),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp/{server}",
            get(oauth::protected_resource),
        )
        .route(
            "/mcp/{server}/.well-known/oauth-protected-resource",
            get(oauth::protected_resource),
        )
        .route("/register", post(oauth::register))
        .route("/authorize", get(oauth::authorize))
        .route("/authorize/wait/{handle}", get(oauth::wait))
        .route("/token", post(oauth::token))
        .route("/revoke", post(oauth::revoke))
        .route("/introspect", post(oauth::introspect))
        .route("/", get(pages::home))
        .route(LOGIN_CALLBACK, get(oauth::login_callback))
        .route("/oauth/client.json", get(oauth::client_metadata))
        .layer(RequestBodyLimitLayer::new(OAUTH_BODY_LIMIT));
    let mcp = Router::new()
        .route(
            "/mcp/{server}",
            post(mcp::post).get(mcp::get).delete(mcp::delete),
        )
        .layer(RequestBodyLimitLayer::new(MCP_BODY_LIMIT))
        // The extractors' own limit (2 MB by default) would refuse first.
        .layer(DefaultBodyLimit::max(MCP_BODY_LIMIT));
    oauth
        .merge(mcp)
        .fallback(oauth::not_found)
        .layer(guard::LoopbackOnly {
            port: gatehouse.auth().port,
        })
        .with_state(gatehouse)
}
