//! Redirect URI rules: what may be registered (loopback http, https, or a
//! private-use scheme; never `javascript:`, `data:`, fragments or wildcards),
//! and how a requested URI matches a registered one (exactly, except that a
//! loopback http URI may use any port: RFC 8252 §7.3, OAuth 2.1 §8.4.2).

use url::Url;

const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "vbscript",
    "file",
    "blob",
    "about",
    "filesystem",
    "ws",
    "wss",
];

pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "[::1]" | "::1" | "localhost")
}

/// Whether a redirect to `uri` leaves this machine for a named host on the
/// internet: https to a domain (not `localhost`, `*.localhost`, in any
/// spelling) or to a public address (not loopback, unspecified, private,
/// link-local or an IPv4 address mapped into IPv6). Anything else may be
/// answered by a program on this machine or its network.
pub fn leaves_this_machine(uri: &str) -> bool {
    let Ok(url) = Url::parse(uri) else {
        return false;
    };
    if url.scheme() != "https" {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            !name.is_empty() && name != "localhost" && !name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => !super::cimd::is_forbidden_address(ip.into()),
        Some(url::Host::Ipv6(ip)) => !super::cimd::is_forbidden_address(ip.into()),
        None => false,
    }
}

/// Checks a redirect URI a client wants to register.
pub fn validate_registered(uri: &str) -> Result<(), String> {
    if uri.contains('*') {
        return Err(format!("redirect URI {uri:?} has a wildcard"));
    }
    let url =
        Url::parse(uri).map_err(|e| format!("redirect URI {uri:?} is not an absolute URI: {e}"))?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(format!("redirect URI {uri:?} has a fragment"));
    }
    let scheme = url.scheme();
    if FORBIDDEN_SCHEMES.contains(&scheme) {
        return Err(format!("redirect URI scheme {scheme:?} is not allowed"));
    }
    match scheme {
        "http" => {
            let host = url.host_str().unwrap_or_default();
            if !is_loopback_host(host) {
                return Err(format!("http redirect URIs must be loopback (127.0.0.1, [::1] or localhost), not {host:?}"));
            }
        }
        "https" if url.host_str().is_none_or(str::is_empty) => {
            return Err(format!("redirect URI {uri:?} has no host"));
        }
        // A private-use scheme (RFC 8252 §7.1), e.g. cursor:// or com.example.app:/cb.
        _ => {}
    }
    if url.username() != "" || url.password().is_some() {
        return Err(format!("redirect URI {uri:?} carries credentials"));
    }
    Ok(())
}

/// Whether `requested` may be used for a client that registered `registered`.
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    reg.scheme() == "http"
        && req.scheme() == "http"
        && reg.host_str().is_some_and(is_loopback_host)
        && reg.host_str() == req.host_str()
        && reg.path() == req.path()
        && reg.query() == req.query()
        && req.fragment().is_none()
        && req.username().is_empty()
        && req.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        assert!(validate_registered("http://127.0.0.1/callback").is_ok());
        assert!(validate_registered("http://localhost:3000/cb").is_ok());
        assert!(validate_registered("https://app.example.com/cb").is_ok());
        assert!(validate_registered("cursor://anysphere.cursor-retrieval/oauth/callback").is_ok());
        assert!(validate_registered("http://evil.example.com/cb").is_err());
        assert!(validate_registered("javascript:alert(1)").is_err());
        assert!(validate_registered("data:text/html,hi").is_err());
        assert!(validate_registered("https://app.example.com/cb#frag").is_err());
        assert!(validate_registered("https://*.example.com/cb").is_err());
        assert!(validate_registered("/relative").is_err());
    }

    #[test]
    fn loopback_ports_may_vary_nothing_else() {
        assert!(matches("http://127.0.0.1/cb", "http://127.0.0.1:53123/cb"));
        assert!(matches("http://127.0.0.1:80/cb", "http://127.0.0.1:9/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5/other"));
        assert!(!matches("http://127.0.0.1/cb", "http://localhost:5/cb"));
        assert!(!matches("https://a.example/cb", "https://a.example/cb2"));
        assert!(!matches("https://a.example/cb", "https://a.example:444/cb"));
        assert!(matches("https://a.example/cb", "https://a.example/cb"));
        // The query is part of the URI: only the loopback port may vary.
        assert!(!matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5/cb?next=evil"
        ));
        assert!(!matches(
            "http://127.0.0.1/cb?a=1",
            "http://127.0.0.1:5/cb?a=2"
        ));
        assert!(matches(
            "http://127.0.0.1/cb?a=1",
            "http://127.0.0.1:5/cb?a=1"
        ));
        assert!(!matches("https://a.example/cb", "https://a.example/cb?x=1"));
    }
}
