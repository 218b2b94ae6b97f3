//! Protocol errors to HTTP responses, decided here and nowhere else:
//! OAuth errors (RFC 6749 §5.2) as JSON with `no-store`, bearer challenges
//! (RFC 6750 §3, RFC 9728 §5.1), and the gateway's [`McpError`]s as JSON-RPC
//! errors with their status (a step-up as `403 insufficient_scope`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

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

/// Bytes set aside for an answer before it is written: a token response or
/// an introspection fits, where axum's `Json` starts at 128 and grows twice.
const ANSWER_CAPACITY: usize = 512;

/// A JSON body that must not be cached (token responses, registration,
/// introspection).
pub fn json_no_store(status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut bytes = Vec::with_capacity(ANSWER_CAPACITY);
    if let Err(e) = serde_json::to_writer(&mut bytes, &body) {
        tracing::error!(error = %e, "an answer could not be written as JSON");
        return OAuthError::new(ErrorCode::ServerError, "the answer could not be written")
            .into_response();
    }
    let json = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    (status, no_store(), json, bytes).into_response()
}

/// A scope as a challenge's `scope` parameter: its tokens that are scope
/// tokens (RFC 6750 §3: visible ASCII but `"` and `\\`). A tool's name comes
/// from its server: one holding a quote would otherwise end the parameter
/// and add others (a second `resource_metadata`, pointing elsewhere), and a
/// character outside ASCII would leave the response with no challenge at all.
fn scope_param(scope: &str) -> String {
    let token = |t: &&str| {
        t.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\'))
    };
    let tokens: Vec<&str> = scope
        .split(' ')
        .filter(|t| !t.is_empty())
        .filter(token)
        .collect();
    tokens.join(" ")
}

/// A text as a challenge's `error_description`: visible ASCII and spaces,
/// without `"` and `\\` (RFC 6750 §3); anything else is left out.
fn description_param(text: &str) -> String {
    let kept = |c: &char| (c.is_ascii_graphic() || *c == ' ') && !matches!(c, '"' | '\\');
    text.chars().filter(kept).collect()
}

/// `401` with the RFC 9728 challenge that starts a client's authorization.
pub fn bearer_challenge(resource_metadata: &str, scope: &str, invalid: Option<&str>) -> Response {
    let scope = scope_param(scope);
    let mut value = format!("Bearer resource_metadata=\"{resource_metadata}\", scope=\"{scope}\"");
    if let Some(why) = invalid {
        value.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{}\"",
            description_param(why)
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
        "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{resource_metadata}\", error_description=\"{}\"",
        scope_param(scope),
        description_param(message)
    );
    let body = json!({"error": "insufficient_scope", "error_description": message, "scope": scope});
    let mut response = (StatusCode::FORBIDDEN, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(r: &Response) -> &str {
        r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap()
    }

    #[test]
    fn a_tool_name_from_a_server_cannot_add_parameters_to_a_step_up_challenge() {
        let prm = "http://127.0.0.1:7390/.well-known/oauth-protected-resource/mcp/x";
        let forged = r#"tool:x", resource_metadata="https://evil.example/prm"#;
        let scope = format!("tool:read {forged} tool:caf\u{e9}");
        let message = format!("tool {forged:?} is not granted yet");
        let r = insufficient_scope(prm, &scope, &message);
        let value = challenge(&r);
        assert_eq!(value.matches("resource_metadata=\"").count(), 1, "{value}");
        assert!(
            value.starts_with(r#"Bearer error="insufficient_scope", scope="tool:read", resource_metadata="http://127.0.0.1:7390/"#),
            "{value}"
        );
        // Outside ASCII: still a challenge, without that token.
        let r = insufficient_scope(prm, "tool:caf\u{e9} tool:read", "tool \"caf\u{e9}\"");
        assert!(
            challenge(&r).contains(r#"scope="tool:read""#),
            "{}",
            challenge(&r)
        );
    }
}
