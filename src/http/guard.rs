//! Guards the local server against web pages and DNS rebinding: the `Host`
//! must be a loopback name with our port, and an `Origin`, when sent, must be
//! a loopback origin, and a browser's `Sec-Fetch-Site` must not say the
//! request comes from another site (a page that manages to send no `Origin`,
//! or a link that navigates the person here). Loopback origins (local tools
//! such as MCP Inspector) get CORS answers; everything else gets 403 before
//! any handler runs.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tower::{Layer, Service};

use crate::oauth::redirect::is_loopback_host;

/// Whether a `Host` header names this server on loopback.
pub fn host_allowed(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    p.parse::<u16>() == Ok(port) && matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

/// Whether an `Origin` header is a loopback origin.
pub fn origin_allowed(origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(is_loopback_host)
}

/// Whether a browser's `Sec-Fetch-Site` allows the request: anything but
/// `cross-site`. A page on another loopback port is `same-site` (a local
/// tool); an agent opening the authorization URL in the browser is `none`.
pub fn fetch_site_allowed(fetch_site: Option<&str>) -> bool {
    fetch_site.is_none_or(|site| !site.eq_ignore_ascii_case("cross-site"))
}

/// The guard, for every route of the server listening on `port`. It is a
/// plain tower layer rather than `from_fn`: it runs on every request, and
/// this way a request it lets through costs no clone of the route and no
/// boxed future.
#[derive(Clone, Copy)]
pub struct LoopbackOnly {
    pub port: u16,
}

impl<S> Layer<S> for LoopbackOnly {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            port: self.port,
        }
    }
}

/// A route behind [`LoopbackOnly`].
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    port: u16,
}

/// What the guard makes of a request.
enum Verdict {
    /// Answered by the guard itself: refused, or a CORS preflight.
    Answered(Response),
    /// Passed on; a loopback `Origin` it had is allowed on the response.
    Passed { origin: Option<HeaderValue> },
}

impl<S> Service<Request<Body>> for Guarded<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        match verdict(&req, self.port) {
            Verdict::Answered(response) => GuardedFuture::Answered {
                response: Some(response),
            },
            Verdict::Passed { origin } => GuardedFuture::Passed {
                inner: self.inner.call(req),
                origin,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's answer, with the guard's headers added.
    #[project = Projected]
    pub enum GuardedFuture<F> {
        Answered { response: Option<Response> },
        Passed { #[pin] inner: F, origin: Option<HeaderValue> },
    }
}

impl<F> Future for GuardedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = match self.project() {
            Projected::Answered { response } => response
                .take()
                .expect("a guarded future polled after it was ready"),
            Projected::Passed { inner, origin } => {
                let Ok(mut response) = ready!(inner.poll(cx));
                add_cors(&mut response, origin.take());
                response
            }
        };
        // Every response, refused or not: `nosniff`, so a browser never
        // reads a JSON error (which may echo input) as something it would run.
        response.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        Poll::Ready(Ok(response))
    }
}

fn forbidden(why: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({"error": "forbidden", "error_description": why})),
    )
        .into_response()
}

fn verdict(req: &Request<Body>, port: u16) -> Verdict {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_allowed(host, port) {
        return Verdict::Answered(forbidden(
            "Host must be 127.0.0.1, localhost or [::1] with Gatehouse's port",
        ));
    }
    // An Origin that is not even text is refused like a foreign one.
    let origin = req.headers().get(header::ORIGIN);
    if let Some(origin) = origin {
        if !origin_allowed(origin.to_str().unwrap_or("")) {
            return Verdict::Answered(forbidden("requests from web pages are not allowed"));
        }
    }
    let fetch_site = req.headers().get("sec-fetch-site");
    // The one page another site sends the browser to: a remote server's
    // authorization server, back from a login Gatehouse started (its state
    // ties it to that login).
    let login_callback = req.method() == Method::GET && req.uri().path() == super::LOGIN_CALLBACK;
    if !login_callback
        && !fetch_site_allowed(fetch_site.map(|s| s.to_str().unwrap_or("cross-site")))
    {
        return Verdict::Answered(forbidden("requests from other web sites are not allowed"));
    }
    let origin = origin.cloned();
    if req.method() == Method::OPTIONS && origin.is_some() {
        let mut response = StatusCode::NO_CONTENT.into_response();
        add_cors(&mut response, origin);
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return Verdict::Answered(response);
    }
    Verdict::Passed { origin }
}

/// CORS for a loopback origin the guard allowed.
fn add_cors(response: &mut Response, origin: Option<HeaderValue>) {
    let Some(origin) = origin else {
        return;
    };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("www-authenticate, mcp-session-id, mcp-protocol-version"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_origins() {
        assert!(host_allowed("127.0.0.1:7390", 7390));
        assert!(host_allowed("localhost:7390", 7390));
        assert!(host_allowed("[::1]:7390", 7390));
        assert!(!host_allowed("127.0.0.1:7391", 7390));
        assert!(!host_allowed("evil.example:7390", 7390));
        assert!(!host_allowed("127.0.0.1", 7390));
        assert!(!host_allowed("", 7390));
        assert!(origin_allowed("http://localhost:6274"));
        assert!(origin_allowed("http://127.0.0.1"));
        assert!(!origin_allowed("null"));
        assert!(!origin_allowed("https://evil.example"));
        assert!(!origin_allowed("http://127.0.0.1.evil.example"));
        assert!(fetch_site_allowed(None));
        assert!(fetch_site_allowed(Some("none")));
        assert!(fetch_site_allowed(Some("same-site")));
        assert!(fetch_site_allowed(Some("same-origin")));
        assert!(!fetch_site_allowed(Some("cross-site")));
        assert!(!fetch_site_allowed(Some("Cross-Site")));
    }
}
