//! Plays the person's browser for one authorization: opens the authorization URL without
//! following redirects, follows Gatehouse's same-origin redirect to its waiting page and
//! reloads that page until the person has decided and it redirects to our redirect URI.
//! Nothing listens at the redirect URI: the browser stops at the redirect and reads the
//! authorization response from its query.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::{StatusCode, Url, header::LOCATION, redirect::Policy};
use serde_json::json;

use crate::events::emit;

const POLL_EVERY: Duration = Duration::from_millis(300);
const DECISION_TIMEOUT: Duration = Duration::from_secs(90);

/// What the authorization server sent back to the redirect URI.
pub struct Callback {
    /// The whole redirect URL, as a browser would hand it to the app.
    pub url: Url,
}

impl Callback {
    pub fn param(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

/// Runs the browser from `authorization_url` until it is redirected to `redirect_uri`.
pub async fn authorize(authorization_url: &str, redirect_uri: &str) -> anyhow::Result<Callback> {
    tokio::time::timeout(DECISION_TIMEOUT, browse(authorization_url, redirect_uri))
        .await
        .map_err(|_| anyhow!("nobody decided within {} s", DECISION_TIMEOUT.as_secs()))?
}

async fn browse(authorization_url: &str, redirect_uri: &str) -> anyhow::Result<Callback> {
    let browser = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut url = Url::parse(authorization_url)?;
    let origin = url.origin();
    let mut announced = false;
    loop {
        let response = browser
            .get(url.clone())
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .ok_or_else(|| anyhow!("{status} without a Location at {url}"))?;
            let next = url.join(location)?;
            if next.as_str().starts_with(&format!("{redirect_uri}?")) {
                return Ok(Callback { url: next });
            }
            if next.origin() != origin {
                bail!("unexpected cross-origin redirect to {next}");
            }
            url = next;
            continue;
        }
        if status != StatusCode::OK {
            bail!("authorization page answered {status} at {url}");
        }
        let body = response.text().await?;
        if !announced {
            emit(
                "waiting_page",
                json!({"path": url.path(), "refreshes": body.contains(r#"http-equiv="refresh""#)}),
            );
            announced = true;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
