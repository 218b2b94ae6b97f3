//! Client ID Metadata Documents: a client whose `client_id` is an https URL
//! publishes its metadata there. Gatehouse fetches it (no redirects, small
//! size cap, short timeout), checks that `client_id` equals the URL and that
//! the redirect URIs are acceptable, and caches it as a client whose domain is
//! verified. SSRF guards: the host must resolve only to public addresses, and
//! the connection goes to the address that was checked (no DNS rebinding).

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;

use super::{redirect, register::clean_name, ErrorCode, OAuthError};
use crate::clock::UnixMs;
use crate::store::clients::{AuthMethod, Client, ClientKind};

/// How long a fetched document is trusted before it is fetched again.
pub const CACHE_MS: i64 = crate::clock::HOUR;
const MAX_BYTES: usize = 64 * 1024;

/// Whether a `client_id` is a metadata document URL (to be fetched).
pub fn is_document_url(client_id: &str, allow_loopback: bool) -> bool {
    client_id.starts_with("https://")
        || (allow_loopback && client_id.starts_with("http://127.0.0.1:"))
}

fn invalid(d: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, d)
}

/// Addresses a metadata fetch must never reach.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10 shared
                || v4.octets()[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_address(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

/// Fetches and validates the document at `client_id`.
pub async fn fetch(
    client_id: &str,
    allow_loopback: bool,
    now: UnixMs,
) -> Result<Client, OAuthError> {
    let url = url::Url::parse(client_id).map_err(|_| invalid("client_id is not a valid URL"))?;
    let loopback_test =
        allow_loopback && url.scheme() == "http" && url.host_str() == Some("127.0.0.1");
    if url.scheme() != "https" && !loopback_test {
        return Err(invalid("a URL client_id must use https"));
    }
    if url.path() == "/"
        || url.path().is_empty()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(invalid(
            "a client_id URL needs a path and no fragment or credentials",
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| invalid("client_id URL has no host"))?
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| invalid(format!("cannot resolve {host}: {e}")))?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        return Err(invalid(format!("{host} has no address")));
    };
    if !loopback_test && addrs.iter().any(|a| is_forbidden_address(a.ip())) {
        return Err(invalid(format!("{host} resolves to a private or local address; refusing to fetch client metadata there")));
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(5))
        .resolve(&host, addr)
        .user_agent(concat!("Gatehouse/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| invalid(format!("cannot build HTTP client: {e}")))?;
    let mut response = http
        .get(url.clone())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            invalid(format!(
                "cannot fetch client metadata from {client_id}: {e}"
            ))
        })?;
    if !response.status().is_success() {
        return Err(invalid(format!(
            "client metadata at {client_id} answered {}",
            response.status()
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| invalid(format!("reading client metadata: {e}")))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BYTES {
            return Err(invalid("client metadata document is too large"));
        }
    }
    let doc: Value =
        serde_json::from_slice(&body).map_err(|_| invalid("client metadata is not JSON"))?;
    validate(client_id, &doc, now)
}

/// Checks a fetched document and turns it into a client.
pub fn validate(client_id: &str, doc: &Value, now: UnixMs) -> Result<Client, OAuthError> {
    if doc.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(invalid(
            "the metadata document's client_id differs from its URL",
        ));
    }
    let redirect_uris: Vec<String> = doc
        .get("redirect_uris")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(invalid("the metadata document lists no redirect_uris"));
    }
    for uri in &redirect_uris {
        redirect::validate_registered(uri).map_err(invalid)?;
    }
    let method = doc
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        .unwrap_or("none");
    if method != "none" {
        return Err(invalid(format!("token_endpoint_auth_method {method:?} is not supported for metadata-document clients; use none")));
    }
    let name = clean_name(doc.get("client_name").and_then(Value::as_str).unwrap_or(""));
    Ok(Client {
        client_id: client_id.to_string(),
        name,
        kind: ClientKind::MetadataDocument,
        redirect_uris,
        auth_method: AuthMethod::None,
        secret_hash: None,
        bound_server: None,
        metadata: doc.clone(),
        created_at: now,
        last_seen_at: None,
        fetched_at: Some(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forbidden_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "100.64.0.1",
        ] {
            assert!(is_forbidden_address(a.parse().unwrap()), "{a}");
        }
        for a in ["93.184.216.34", "2606:4700::1111"] {
            assert!(!is_forbidden_address(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn document_must_name_itself() {
        let id = "https://app.example.com/oauth/client.json";
        let ok = json!({"client_id": id, "client_name": "App", "redirect_uris": ["http://127.0.0.1:3000/cb"]});
        assert_eq!(
            validate(id, &ok, 0).unwrap().kind,
            ClientKind::MetadataDocument
        );
        let other = json!({"client_id": "https://evil.example/c.json", "redirect_uris": ["http://127.0.0.1/cb"]});
        assert!(validate(id, &other, 0).is_err());
        let bad_redirect = json!({"client_id": id, "redirect_uris": ["javascript:alert(1)"]});
        assert!(validate(id, &bad_redirect, 0).is_err());
        let secret = json!({"client_id": id, "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "client_secret_basic"});
        assert!(validate(id, &secret, 0).is_err());
    }
}
