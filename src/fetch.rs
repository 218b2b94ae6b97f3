//! Fetching a JSON document from a URL someone else chose (a client's
//! metadata document, a remote server's OAuth metadata) without letting that
//! someone point Gatehouse inside the machine or the network (SSRF): https
//! only (plain http to loopback only where the caller allows it), every
//! address the name resolves to is checked against the special-purpose
//! blocks, the connection goes to the address checked, no redirects are
//! followed, the answer is capped and must be JSON.

use std::net::SocketAddr;

use serde_json::Value;

use crate::oauth::cimd::is_forbidden_address;

/// Where fetching may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public https only.
    Public,
    /// Also http and https on this machine (a server the person runs here).
    AlsoLoopback,
}

/// An HTTP client pinned to the checked address of `url`'s host.
pub async fn client_for(url: &url::Url, reach: Reach) -> Result<reqwest::Client, String> {
    let loopback = url
        .host_str()
        .is_some_and(crate::oauth::redirect::is_loopback_host);
    let allowed_loopback = reach == Reach::AlsoLoopback && loopback;
    if url.scheme() != "https" && !(allowed_loopback && url.scheme() == "http") {
        return Err(format!("{url}: only https URLs are fetched"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{url}: a URL with credentials is not fetched"));
    }
    let port = url.port_or_known_default().unwrap_or(443);
    // An address literal is checked as it is; a name is resolved once, every
    // address it has is checked, and the fetch goes to the one checked.
    let (host, addrs): (String, Vec<SocketAddr>) = match url.host() {
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
        Some(url::Host::Ipv6(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
        Some(url::Host::Domain(name)) => {
            let addrs = tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("cannot resolve {name}: {e}"))?
                .collect();
            (name.to_string(), addrs)
        }
        None => return Err(format!("{url} has no host")),
    };
    let Some(addr) = addrs.first().copied() else {
        return Err(format!("{host} has no address"));
    };
    let forbidden = |a: &SocketAddr| {
        is_forbidden_address(a.ip()) && !(allowed_loopback && a.ip().is_loopback())
    };
    if addrs.iter().any(forbidden) {
        return Err(format!(
            "{host} is or resolves to a private or local address; refusing to fetch there"
        ));
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .resolve(&host, addr)
        .user_agent(concat!("Gatehouse/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// GETs `url` (see the module) and parses the answer as JSON: `Ok(None)`
/// for a 404 (a well-known URL that is not there), an error for anything
/// else that is not a success.
pub async fn json(url: &url::Url, reach: Reach, max_bytes: usize) -> Result<Option<Value>, String> {
    let http = client_for(url, reach).await?;
    let mut response = http
        .get(url.clone())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("cannot fetch {url}: {e}"))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if status.is_redirection() {
        return Err(format!(
            "{url} answered a redirect ({status}); redirects are not followed"
        ));
    }
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    let body = capped_body(&mut response, max_bytes)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|_| format!("{url}: the answer is not JSON"))
}

/// Reads a response's body, stopping (with an error) once it passes
/// `max_bytes`: a server cannot make Gatehouse hold more.
pub async fn capped_body(
    response: &mut reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > max_bytes {
            return Err("the answer is too large".into());
        }
    }
    Ok(body)
}
