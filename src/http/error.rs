//! Protocol errors to HTTP responses, decided here and nowhere else:
//! OAuth errors (RFC 6749 §5.2) as JSON with `no-store`, bearer challenges
//! (RFC 6750 §3, RFC 9728 §5.1), and the gateway's [`McpError`]s as JSON-RPC
//! errors with their status (a step-up as `403 insufficient_scope`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::gateway::McpError;
use crate::oauth::{ErrorCode, OAuthError};

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self.code {
            _ if self.retry_after.is_some() => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = (
            status,
            no_store(),
            Json(json!({"error": self.code.as_str(), "error_description": self.description})),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == ErrorCode::InvalidClient && self.basic_auth_attempted {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse\""),
            );
        }
        response
    }
}

pub fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// A `200` JSON body that must not be cached (token responses, registration).
pub fn json_no_store(status: StatusCode, body: Value) -> Response {
    (status, no_store(), Json(body)).into_response()
}

/// `401` with the RFC 9728 challenge that starts a client's authorization.
pub fn bearer_challenge(resource_metadata: &str, scope: &str, invalid: Option<&str>) -> Response {
    let mut value = format!("Bearer resource_metadata=\"{resource_metadata}\", scope=\"{scope}\"");
    if let Some(why) = invalid {
        value.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{}\"",
            why.replace(['"', '\\'], "")
        ));
    }
    let body = json!({
        "error": if invalid.is_some() { "invalid_token" } else { "unauthorized" },
        "error_description": invalid.unwrap_or("this MCP server needs an access token from Gatehouse"),
    });
    let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// An MCP refusal. `resource_metadata` is the PRM URL a step-up challenge names.
pub fn mcp(error: &McpError, resource_metadata: &str) -> Response {
    if let McpError::InsufficientScope { scope, message } = error {
        return insufficient_scope(resource_metadata, scope, message);
    }
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(error.to_message())).into_response()
}

/// `403` asking for more scope (RFC 6750 §3.1, MCP step-up authorization).
fn insufficient_scope(resource_metadata: &str, scope: &str, message: &str) -> Response {
    let value = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{resource_metadata}\", error_description=\"{}\"",
        message.replace(['"', '\\'], "")
    );
    let body = json!({"error": "insufficient_scope", "error_description": message, "scope": scope});
    let mut response = (StatusCode::FORBIDDEN, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}
