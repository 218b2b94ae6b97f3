//! OAuth protocol errors with their RFC wire names (RFC 6749 §4.1.2.1 and
//! §5.2, RFC 7591 §3.2.2, RFC 8707 §2, RFC 7009 §2.2.1). The HTTP status and
//! body are decided in one place: `crate::http::error`.

use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    InvalidRedirectUri,
    InvalidClientMetadata,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// The client tried HTTP Basic authentication (a 401 then names the scheme).
    pub basic_auth_attempted: bool,
    /// Too many requests: the seconds after which to try again (a 429).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
            basic_auth_attempted: false,
            retry_after: None,
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_target(d: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidTarget, d)
    }
    pub fn access_denied(d: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::AccessDenied, d)
    }
    /// Too many requests: try again in `seconds`.
    pub fn slow_down(d: impl Into<String>, seconds: u64) -> OAuthError {
        OAuthError {
            retry_after: Some(seconds),
            ..OAuthError::new(ErrorCode::TemporarilyUnavailable, d)
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> OAuthError {
        tracing::error!(error = %e, "store failure in the authorization server");
        OAuthError::new(ErrorCode::ServerError, "internal storage error")
    }
}
