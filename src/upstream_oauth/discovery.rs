//! Finding out how to log in to a remote MCP server, in the order the MCP
//! authorization spec gives: the server's challenge (`WWW-Authenticate`),
//! its protected-resource metadata (RFC 9728: the URL in the challenge, then
//! the path-aware well-known URI, then the root one), then its authorization
//! server's metadata (RFC 8414, then OpenID Connect discovery, path-aware
//! first), whose `issuer` must be the one named.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fetch::{self, Reach};

const MAX_METADATA_BYTES: usize = 256 * 1024;

/// What a `WWW-Authenticate: Bearer …` challenge says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
}

impl Challenge {
    /// Reads the Bearer challenge of a `WWW-Authenticate` header.
    pub fn parse(header: &str) -> Challenge {
        let param = |name: &str| {
            let at = header.find(&format!("{name}="))?;
            let rest = &header[at + name.len() + 1..];
            let value = match rest.strip_prefix('"') {
                Some(quoted) => &quoted[..quoted.find('"')?],
                None => rest.split([',', ' ']).next()?,
            };
            Some(value.to_string())
        };
        Challenge {
            resource_metadata: param("resource_metadata"),
            scope: param("scope"),
            error: param("error"),
        }
    }
}

/// A server's protected-resource metadata, as far as logging in needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource {
    /// The resource identifier (sent as `resource`, RFC 8707).
    pub resource: String,
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

/// An authorization server's metadata, as far as Gatehouse uses it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthServer {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

/// Where fetching may go for a server at `server_url`: this machine too when
/// the server itself runs here (the person chose it).
pub fn reach_for(server_url: &url::Url) -> Reach {
    if server_url
        .host_str()
        .is_some_and(crate::oauth::redirect::is_loopback_host)
    {
        Reach::AlsoLoopback
    } else {
        Reach::Public
    }
}

/// `origin` + `/.well-known/<name>` + the path of `url` (RFC 8414 §3.1, RFC 9728 §3.1).
fn well_known(url: &url::Url, name: &str, with_path: bool) -> Option<url::Url> {
    let mut out = url.clone();
    out.set_query(None);
    out.set_fragment(None);
    let path = url.path().trim_end_matches('/');
    let suffix = if with_path { path } else { "" };
    out.set_path(&format!("/.well-known/{name}{suffix}"));
    Some(out)
}

/// The protected-resource metadata of the server at `server_url`.
pub async fn resource(server_url: &url::Url, challenge: &Challenge) -> Result<Resource, String> {
    let reach = reach_for(server_url);
    let mut candidates = Vec::new();
    if let Some(u) = &challenge.resource_metadata {
        candidates.push(url::Url::parse(u).map_err(|e| format!("resource_metadata {u:?}: {e}"))?);
    }
    let has_path = !server_url.path().trim_end_matches('/').is_empty();
    if has_path {
        candidates.extend(well_known(server_url, "oauth-protected-resource", true));
    }
    candidates.extend(well_known(server_url, "oauth-protected-resource", false));
    for url in candidates {
        if let Some(doc) = fetch::json(&url, reach, MAX_METADATA_BYTES).await? {
            let meta: Resource = serde_json::from_value(doc)
                .map_err(|e| format!("{url}: not protected-resource metadata: {e}"))?;
            if meta.authorization_servers.is_empty() {
                return Err(format!("{url} names no authorization server"));
            }
            if !covers(&meta.resource, server_url) {
                return Err(format!(
                    "{url} describes the resource {:?}, not {server_url}: refusing it (a token for it would be another server's)",
                    meta.resource
                ));
            }
            return Ok(meta);
        }
    }
    Err(format!(
        "{server_url} publishes no protected-resource metadata (RFC 9728): it cannot be logged in to"
    ))
}

/// Whether protected-resource metadata for `resource` may speak for the
/// server at `server_url` (RFC 9728 §3.3, MCP "canonical server URI"): the
/// same origin, and the server's path at or under the resource's.
fn covers(resource: &str, server_url: &url::Url) -> bool {
    let Ok(resource) = url::Url::parse(resource) else {
        return false;
    };
    if resource.origin() != server_url.origin()
        || resource.query().is_some()
        || resource.fragment().is_some()
    {
        return false;
    }
    let base = resource.path().trim_end_matches('/');
    let path = server_url.path().trim_end_matches('/');
    path == base || path.starts_with(&format!("{base}/"))
}

/// The metadata of the authorization server `issuer`.
pub async fn auth_server(issuer: &str, reach: Reach) -> Result<AuthServer, String> {
    let url =
        url::Url::parse(issuer).map_err(|e| format!("authorization server {issuer:?}: {e}"))?;
    let has_path = !url.path().trim_end_matches('/').is_empty();
    let mut candidates = Vec::new();
    if has_path {
        candidates.extend(well_known(&url, "oauth-authorization-server", true));
        candidates.extend(well_known(&url, "openid-configuration", true));
        let mut appended = url.clone();
        appended.set_path(&format!(
            "{}/.well-known/openid-configuration",
            url.path().trim_end_matches('/')
        ));
        candidates.push(appended);
    } else {
        candidates.extend(well_known(&url, "oauth-authorization-server", false));
        candidates.extend(well_known(&url, "openid-configuration", false));
    }
    for candidate in candidates {
        if let Some(doc) = fetch::json(&candidate, reach, MAX_METADATA_BYTES).await? {
            return check(issuer, doc, &candidate);
        }
    }
    Err(format!(
        "{issuer} publishes no authorization server metadata"
    ))
}

/// Metadata that names another issuer is refused (RFC 8414 §3.3: a mix-up).
fn check(issuer: &str, doc: Value, from: &url::Url) -> Result<AuthServer, String> {
    let meta: AuthServer = serde_json::from_value(doc)
        .map_err(|e| format!("{from}: not authorization server metadata: {e}"))?;
    if meta.issuer != issuer {
        return Err(format!(
            "{from} says its issuer is {:?}, not {issuer:?}: refusing it (it could be another server's)",
            meta.issuer
        ));
    }
    if !meta
        .code_challenge_methods_supported
        .iter()
        .any(|m| m == "S256")
    {
        return Err(format!(
            "{issuer} does not say it supports PKCE with S256: refusing to log in there"
        ));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read() {
        let c = Challenge::parse(
            r#"Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp""#,
        );
        assert_eq!(c.scope.as_deref(), Some("files:read files:write"));
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert!(c.resource_metadata.unwrap().ends_with("/mcp"));
        assert_eq!(Challenge::parse("Bearer realm=x"), Challenge::default());
    }

    #[test]
    fn well_known_urls_insert_the_path() {
        let u = url::Url::parse("https://mcp.example/tenant/mcp?x=1").unwrap();
        assert_eq!(
            well_known(&u, "oauth-protected-resource", true)
                .unwrap()
                .as_str(),
            "https://mcp.example/.well-known/oauth-protected-resource/tenant/mcp"
        );
        assert_eq!(
            well_known(&u, "oauth-authorization-server", false)
                .unwrap()
                .as_str(),
            "https://mcp.example/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn resource_metadata_speaks_only_for_its_own_server() {
        let server = url::Url::parse("https://mcp.example/tenant/mcp").unwrap();
        for ok in [
            "https://mcp.example/tenant/mcp",
            "https://mcp.example/tenant/mcp/",
            "https://mcp.example/tenant",
            "https://mcp.example/",
            "https://mcp.example",
            "HTTPS://MCP.EXAMPLE/tenant/mcp",
        ] {
            assert!(covers(ok, &server), "{ok}");
        }
        for bad in [
            "https://evil.example/tenant/mcp",
            "http://mcp.example/tenant/mcp",
            "https://mcp.example:8443/tenant/mcp",
            "https://mcp.example/tenant/mc",
            "https://mcp.example/tenant/mcp/more",
            "https://mcp.example/other",
            "https://mcp.example/tenant/mcp?x=1",
            "not a url",
        ] {
            assert!(!covers(bad, &server), "{bad}");
        }
    }

    #[test]
    fn metadata_for_another_issuer_or_without_s256_is_refused() {
        let doc = |issuer: &str, methods: &[&str]| {
            serde_json::json!({"issuer": issuer, "authorization_endpoint": "https://a/authorize",
                "token_endpoint": "https://a/token", "code_challenge_methods_supported": methods})
        };
        let from = url::Url::parse("https://a/.well-known/oauth-authorization-server").unwrap();
        assert!(check("https://a", doc("https://a", &["S256"]), &from).is_ok());
        assert!(check("https://a", doc("https://evil", &["S256"]), &from)
            .unwrap_err()
            .contains("issuer"));
        assert!(check("https://a", doc("https://a", &["plain"]), &from)
            .unwrap_err()
            .contains("S256"));
    }
}
