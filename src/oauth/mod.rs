//! The authorization server (OAuth 2.1 for the MCP authorization spec).
//!
//! Each RFC step and the function that does it:
//! - RFC 8414 metadata, RFC 9728 protected-resource metadata: [`metadata`].
//! - RFC 7591 dynamic registration: [`register::parse`], [`register::Registration::record`]; Client ID
//!   Metadata Documents: [`cimd`].
//! - `/authorize` (OAuth 2.1 §4.1.1, PKCE S256, RFC 8707 `resource`, RFC 9207
//!   `iss`): [`authorize::parse`], [`authorize::validate`], [`authorize::create_request`];
//!   the authorization response through the waiting page: [`waiting::poll`].
//!   Redirect URI rules (RFC 8252 loopback ports): [`redirect`].
//! - Scopes that mean tools: [`scope`].
//! - The person's decision: [`consent::approve`], [`consent::deny`], [`consent::expire_overdue`];
//!   the decisions they keep for an agent, applied when it asks: [`rules`].
//! - `/token` (§4.1.3 code exchange, §4.3 refresh with rotation): [`token::exchange`];
//!   client authentication (§2.3.1): [`client_auth`].
//! - Bearer checks for the gateway (RFC 6750, audience per RFC 8707): [`bearer::authenticate`].
//! - RFC 7009 revocation: [`token::revoke`]; RFC 7662 introspection: [`token::introspect`].
//! - Revocation by the person (an agent, a grant, everything): [`agents`].
//! - Which program an agent is (kept at registration, compared on each MCP request): [`programs`].

pub mod agents;
pub mod authorize;
pub mod bearer;
pub mod cimd;
pub mod client_auth;
pub mod consent;
pub mod error;
pub mod metadata;
pub mod programs;
pub mod redirect;
pub mod register;
pub mod rules;
pub mod scope;
pub mod token;
pub mod waiting;

use std::sync::Arc;

pub use error::{ErrorCode, OAuthError};

use crate::store::Store;

/// Authorization codes live a minute at most and are single-use.
pub const CODE_TTL_MS: i64 = crate::clock::MINUTE;
/// Refresh tokens of an until-revoked grant live 30 days past their last use.
pub const REFRESH_TOKEN_TTL_MS: i64 = 30 * crate::clock::DAY;
/// A refresh token presented again within this window after its rotation is
/// refused without revoking its family (two racing refreshes of one client).
pub const REFRESH_REUSE_GRACE_MS: i64 = 10 * crate::clock::SECOND;

/// A fronted server's resource URL, `<origin>/mcp/<server>` (the origin is
/// the issuer's, or the loopback host a client used): the one place the
/// authorization server spells it. It writes itself out (as text, or as a
/// JSON string) with no `String` made first.
pub struct ResourceUrl<'a> {
    pub origin: &'a str,
    pub server: &'a str,
}

impl std::fmt::Display for ResourceUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/mcp/{}", self.origin, self.server)
    }
}

impl serde::Serialize for ResourceUrl<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The authorization server's shared state (cheap to clone: the store and
/// config are shared).
#[derive(Clone)]
pub struct AuthServer {
    pub store: Arc<Store>,
    pub config: crate::config::Live,
    /// `http://127.0.0.1:<port>`: byte-identical in metadata, PRM and `iss`.
    /// Shared, like the rest, so a clone for a queued write allocates nothing.
    pub issuer: Arc<str>,
    pub port: u16,
    /// The OS user who runs Gatehouse; the "user" of every grant.
    pub user: Arc<str>,
}

impl AuthServer {
    /// The canonical resource URL of a fronted server.
    pub fn resource_url(&self, server: &str) -> String {
        ResourceUrl {
            origin: &self.issuer,
            server,
        }
        .to_string()
    }

    /// The resource URL as seen by a client that used `host` (already checked to be loopback).
    pub fn resource_url_for_host(&self, host: &str, server: &str) -> String {
        let origin = format!("http://{host}");
        ResourceUrl {
            origin: &origin,
            server,
        }
        .to_string()
    }

    /// RFC 8707: which fronted server a `resource` names. `None` (or the bare
    /// origin) is accepted only when unambiguous: one fronted server, or a
    /// client bound to one server in the config.
    pub fn resolve_resource(
        &self,
        resource: Option<&str>,
        bound_server: Option<&str>,
    ) -> Result<String, OAuthError> {
        let unambiguous = || {
            if let Some(server) = bound_server {
                return Ok(server.to_string());
            }
            let config = self.config.get();
            let mut names = config.servers.keys();
            match (names.next(), names.next()) {
                (Some(only), None) => Ok(only.clone()),
                _ => Err(OAuthError::invalid_target(format!(
                    "`resource` is required: Gatehouse fronts several servers; use {}",
                    self.resource_url("<server>")
                ))),
            }
        };
        let Some(resource) = resource else {
            return unambiguous();
        };
        let url = url::Url::parse(resource).map_err(|_| {
            OAuthError::invalid_target(format!("resource {resource:?} is not an absolute URI"))
        })?;
        let host_ok = url.host_str().is_some_and(redirect::is_loopback_host);
        if url.scheme() != "http"
            || !host_ok
            || url.port() != Some(self.port)
            || url.fragment().is_some()
            || url.query().is_some()
        {
            return Err(OAuthError::invalid_target(format!(
                "resource {resource:?} is not served by this Gatehouse"
            )));
        }
        let path = url.path().trim_end_matches('/');
        if path.is_empty() {
            return unambiguous();
        }
        let name = path
            .strip_prefix("/mcp/")
            .filter(|n| self.config.get().servers.contains_key(*n))
            .ok_or_else(|| {
                OAuthError::invalid_target(format!("no MCP server at resource {resource:?}"))
            })?;
        if bound_server.is_some_and(|b| b != name) {
            return Err(OAuthError::invalid_target(format!(
                "this client is bound to server {:?}",
                bound_server.unwrap_or_default()
            )));
        }
        Ok(name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::auth_server as server;

    #[test]
    fn resource_resolution() {
        let one = server("");
        assert_eq!(one.resolve_resource(None, None).unwrap(), "demo");
        assert_eq!(
            one.resolve_resource(Some("http://127.0.0.1:7390/"), None)
                .unwrap(),
            "demo"
        );
        assert_eq!(
            one.resolve_resource(Some("http://localhost:7390/mcp/demo"), None)
                .unwrap(),
            "demo"
        );
        assert_eq!(
            one.resolve_resource(Some("http://127.0.0.1:7390/mcp/demo/"), None)
                .unwrap(),
            "demo"
        );
        for bad in [
            "http://127.0.0.1:7391/mcp/demo",
            "https://127.0.0.1:7390/mcp/demo",
            "http://evil.com:7390/mcp/demo",
            "http://127.0.0.1:7390/mcp/nope",
            "http://127.0.0.1:7390/mcp/demo?x=1",
            "http://127.0.0.1:7390/mcp/demo#top",
            "nonsense",
        ] {
            assert_eq!(
                one.resolve_resource(Some(bad), None).unwrap_err().code,
                ErrorCode::InvalidTarget,
                "{bad}"
            );
        }
        let two = server("[servers.a]\ncommand=\"x\"\n[servers.b]\ncommand=\"y\"\n");
        assert_eq!(
            two.resolve_resource(None, None).unwrap_err().code,
            ErrorCode::InvalidTarget
        );
        assert_eq!(two.resolve_resource(None, Some("b")).unwrap(), "b");
        assert_eq!(
            two.resolve_resource(Some("http://127.0.0.1:7390/mcp/a"), Some("b"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidTarget
        );
    }
}
