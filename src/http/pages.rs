//! The few HTML pages a browser sees. They never offer a way to approve:
//! consent happens only in the native window or the CLI. Client-supplied text
//! is escaped; pages load nothing remote and send no referrer.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::oauth::waiting::WaitingPage;
use crate::oauth::OAuthError;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:34em;margin:4em auto;padding:0 1em;color:#222}\
@media(prefers-color-scheme:dark){body{background:#1b1b1b;color:#eee}}\
.phrase{font:600 1.4em ui-monospace,monospace;letter-spacing:.03em}.muted{opacity:.7}.warn{color:#b26b00}";

fn page(status: StatusCode, title: &str, body: &str, refresh: bool) -> Response {
    let meta = if refresh {
        "<meta http-equiv=\"refresh\" content=\"2\">"
    } else {
        ""
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{meta}<title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'"),
    );
    response
}

/// "Approve this in Gatehouse": refreshes itself until the person decides.
pub fn waiting(request: &WaitingPage) -> Response {
    let name = request.client_name.as_deref().unwrap_or("An application");
    let badge = if request.verified {
        ""
    } else {
        " <span class=\"warn\">(unverified: it named itself)</span>"
    };
    let body = format!(
        "<h1>Approve this in Gatehouse</h1>\
         <p><strong>{}</strong>{badge} wants to use <strong>{}</strong> on this computer.</p>\
         <p>Open the Gatehouse window (or run <code>gatehouse pending</code>) and check that it shows this phrase:</p>\
         <p class=\"phrase\">{}</p>\
         <p class=\"muted\">This page continues by itself once you decide. It will return you to {}.</p>",
        escape(name),
        escape(&request.server),
        escape(&request.phrase),
        escape(&request.redirect_host),
    );
    page(
        StatusCode::OK,
        "Waiting for approval — Gatehouse",
        &body,
        true,
    )
}

pub fn finished() -> Response {
    page(
        StatusCode::OK,
        "Gatehouse",
        "<h1>This sign-in is finished</h1><p>You can close this tab.</p>",
        false,
    )
}

pub fn error(status: StatusCode, e: &OAuthError) -> Response {
    let body = format!(
        "<h1>Gatehouse cannot continue</h1><p>{}</p><p class=\"muted\">Error: <code>{}</code>. Nothing was granted.</p>",
        escape(&e.description),
        e.code.as_str()
    );
    page(status, "Gatehouse: error", &body, false)
}

/// A page that says one thing (`text` is escaped).
pub fn info(title: &str, text: &str) -> Response {
    let body = format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text));
    page(StatusCode::OK, title, &body, false)
}

/// An error page that says what went wrong (`text` is escaped).
pub fn error_text(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text));
    page(status, title, &body, false)
}

pub async fn home() -> Response {
    page(
        StatusCode::OK,
        "Gatehouse",
        "<h1>Gatehouse is running</h1><p>Point an MCP client at <code>/mcp/&lt;server&gt;</code> on this address. \
         Approve requests in the Gatehouse window or with <code>gatehouse pending</code> and <code>gatehouse approve</code>.</p>",
        false,
    )
}
