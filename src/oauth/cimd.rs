//! Client ID Metadata Documents: a client whose `client_id` is an https URL
//! publishes its metadata there. Gatehouse fetches it (no redirects, small
//! size cap, short timeout), checks that `client_id` equals the URL and that
//! the redirect URIs are acceptable, and caches it as a client whose domain is
//! verified. SSRF guards: the host must resolve only to public addresses, and
//! the connection goes to the address that was checked (no DNS rebinding).

use std::net::IpAddr;

use serde_json::Value;

use super::{redirect, ErrorCode, OAuthError};
use crate::clock::UnixMs;
use crate::store::clients::{AuthMethod, Client, ClientKind};
use crate::text::clean_name;

/// How long a fetched document is trusted before it is fetched again.
pub const CACHE_MS: i64 = crate::clock::HOUR;
const MAX_BYTES: usize = 64 * 1024;

/// Whether a `client_id` is a metadata document URL (to be fetched).
/// Any `http://` URL counts, so that it is refused with a reason (it must be
/// https), not taken for an unregistered client.
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

fn invalid(d: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, d)
}

/// Special-purpose IPv4 blocks (IANA IPv4 Special-Purpose Address Registry,
/// RFC 6890 and successors) that are not globally reachable, plus multicast:
/// a metadata fetch never goes there.
const FORBIDDEN_V4: &[(&str, u8)] = &[
    ("0.0.0.0", 8),       // "this network"
    ("10.0.0.0", 8),      // private
    ("100.64.0.0", 10),   // shared address space (CGN)
    ("127.0.0.0", 8),     // loopback
    ("169.254.0.0", 16),  // link local (cloud metadata services)
    ("172.16.0.0", 12),   // private
    ("192.0.0.0", 24),    // IETF protocol assignments
    ("192.0.2.0", 24),    // documentation (TEST-NET-1)
    ("192.88.99.0", 24),  // 6to4 relay anycast (deprecated)
    ("192.168.0.0", 16),  // private
    ("198.18.0.0", 15),   // benchmarking
    ("198.51.100.0", 24), // documentation (TEST-NET-2)
    ("203.0.113.0", 24),  // documentation (TEST-NET-3)
    ("224.0.0.0", 4),     // multicast
    ("240.0.0.0", 4),     // reserved, and 255.255.255.255
];

/// Special-purpose IPv6 blocks (IANA IPv6 Special-Purpose Address Registry)
/// that are not globally reachable or that embed an IPv4 address (which could
/// be a private one), plus multicast.
const FORBIDDEN_V6: &[(&str, u8)] = &[
    ("::", 96),          // unspecified, loopback, IPv4-compatible (deprecated)
    ("64:ff9b::", 96),   // IPv4/IPv6 translation: embeds an IPv4 address
    ("64:ff9b:1::", 48), // local-use IPv4/IPv6 translation
    ("100::", 64),       // discard-only
    ("2001::", 23),      // IETF protocol assignments (Teredo, ORCHID, …)
    ("2001:db8::", 32),  // documentation
    ("2002::", 16),      // 6to4: embeds an IPv4 address
    ("3fff::", 20),      // documentation
    ("5f00::", 16),      // segment routing (SRv6) SIDs
    ("fc00::", 7),       // unique local
    ("fe80::", 10),      // link local
    ("fec0::", 10),      // site local (deprecated)
    ("ff00::", 8),       // multicast
];

fn in_block(addr: u128, bits: u32, network: u128, prefix: u8) -> bool {
    let shift = bits - u32::from(prefix);
    prefix == 0 || addr >> shift == network >> shift
}

/// Addresses a metadata fetch must never reach.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => FORBIDDEN_V4.iter().any(|(net, prefix)| {
            let net: std::net::Ipv4Addr = net.parse().expect("a valid block");
            in_block(u32::from(v4).into(), 32, u32::from(net).into(), *prefix)
        }),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_address(IpAddr::V4(v4));
            }
            FORBIDDEN_V6.iter().any(|(net, prefix)| {
                let net: std::net::Ipv6Addr = net.parse().expect("a valid block");
                in_block(u128::from(v6), 128, u128::from(net), *prefix)
            })
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
    let reach = if loopback_test {
        crate::fetch::Reach::AlsoLoopback
    } else {
        crate::fetch::Reach::Public
    };
    let doc = crate::fetch::json(&url, reach, MAX_BYTES)
        .await
        .map_err(|e| invalid(format!("client metadata: {e}")))?
        .ok_or_else(|| invalid(format!("client metadata at {client_id} answered 404")))?;
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
        removed_at: None,
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
            // Found missing by attacking it: the rest of 0/8, benchmarking, IETF assignments.
            "0.1.2.3",
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "192.88.99.1",
            "255.255.255.255",
            "224.0.0.251",
            "203.0.113.7",
            // IPv6 blocks that embed IPv4 or are special-purpose.
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "100::1",
            "::7f00:1",
            "fec0::1",
            "ff02::1",
            "::ffff:169.254.169.254",
            "3fff::1",
        ] {
            assert!(is_forbidden_address(a.parse().unwrap()), "{a}");
        }
        for a in [
            "93.184.216.34",
            "2606:4700::1111",
            "1.1.1.1",
            "8.8.8.8",
            "198.20.0.1",
            "100.128.0.1",
            "2a00:1450:4001::200e",
        ] {
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
