//! The bridge as an OAuth client of Gatehouse: dynamic registration, the
//! authorization code flow with PKCE (it follows the waiting page itself, so
//! no browser is needed: the person decides in Gatehouse), refresh.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Digest;

/// Where the authorization answer is sent. The bridge never listens there:
/// it reads the answer from the waiting page's redirect.
const REDIRECT: &str = "http://127.0.0.1/gatehouse-bridge";

/// What the bridge keeps (in the keychain) between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub client_id: String,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
}

pub struct Client<'a> {
    pub http: &'a reqwest::Client,
    pub base: &'a str,
    pub resource: String,
    pub name: &'a str,
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A parameter of a `WWW-Authenticate` challenge (`scope="tool:x"`).
pub fn param(challenge: &str, name: &str) -> Option<String> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let end = challenge[start..].find('"')? + start;
    Some(challenge[start..end].to_string())
}

fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl Client<'_> {
    async fn register(&self) -> Result<String, String> {
        let body = json!({
            "client_name": self.name,
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        });
        let r = self
            .http
            .post(format!("{}/register", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("cannot register with Gatehouse: {e}"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or_default();
        match body["client_id"].as_str() {
            Some(id) if status.is_success() => Ok(id.to_string()),
            _ => Err(format!(
                "Gatehouse refused the registration ({status}): {}",
                describe(&body)
            )),
        }
    }

    /// Runs the authorization flow (registering first when `client_id` is
    /// unknown), waiting for the person's decision; `say` tells the person
    /// (on stderr) what to do.
    pub async fn authorize(
        &self,
        client_id: Option<String>,
        scope: Option<&str>,
        say: impl Fn(&str),
    ) -> Result<Tokens, String> {
        let mut client_id = match client_id {
            Some(id) => id,
            None => self.register().await?,
        };
        let verifier = random();
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let state = random();
        let mut waiting = None;
        for _ in 0..2 {
            let mut url =
                url::Url::parse(&format!("{}/authorize", self.base)).map_err(|e| e.to_string())?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("response_type", "code")
                    .append_pair("client_id", &client_id)
                    .append_pair("redirect_uri", REDIRECT)
                    .append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256")
                    .append_pair("state", &state)
                    .append_pair("resource", &self.resource);
                if let Some(scope) = scope {
                    q.append_pair("scope", scope);
                }
            }
            let r = self.http.get(url).send().await.map_err(|e| e.to_string())?;
            let location = r
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_string);
            match (r.status().as_u16(), location) {
                (303, Some(wait)) => {
                    waiting = Some(wait);
                    break;
                }
                (302, Some(back)) => return Err(refused(&back)),
                // An unknown client (Gatehouse's database was reset): register anew.
                (400, _) => client_id = self.register().await?,
                (status, _) => {
                    return Err(format!(
                        "Gatehouse answered the authorization request with {status}"
                    ))
                }
            }
        }
        let wait = waiting.ok_or("Gatehouse does not know this client even after registering")?;
        let wait = format!("{}{wait}", self.base);
        let mut told = false;
        let code = loop {
            let r = self
                .http
                .get(&wait)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if r.status().as_u16() == 302 {
                let back = r.headers()["location"]
                    .to_str()
                    .unwrap_or_default()
                    .to_string();
                let url = url::Url::parse(&back).map_err(|e| e.to_string())?;
                if query(&url, "state").as_deref() != Some(state.as_str()) {
                    return Err("the authorization answer came back with another state".into());
                }
                match query(&url, "code") {
                    Some(code) => break code,
                    None => return Err(refused(&back)),
                }
            }
            if !told {
                let page = r.text().await.unwrap_or_default();
                let phrase = phrase_in(&page).unwrap_or_default();
                say(&format!(
                    "waiting for you to allow \"{}\" in Gatehouse (the consent window, or `gatehouse pending`); match phrase: {phrase}",
                    self.name
                ));
                told = true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
            ("client_id", client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("resource", self.resource.as_str()),
        ];
        let body = token_request(self.http, self.base, &form).await?;
        say("allowed");
        Ok(Tokens {
            client_id,
            access_token: body["access_token"].as_str().map(str::to_string),
            refresh_token: body["refresh_token"].as_str().map(str::to_string),
        })
    }
}

/// Refreshes the tokens; `None` when there is nothing to refresh with or
/// Gatehouse refuses (the grant ended): the caller asks the person again.
pub async fn refresh(
    http: &reqwest::Client,
    base: &str,
    tokens: Option<&Tokens>,
) -> Option<Tokens> {
    let tokens = tokens?;
    let refresh = tokens.refresh_token.as_deref()?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", tokens.client_id.as_str()),
    ];
    let body = token_request(http, base, &form).await.ok()?;
    Some(Tokens {
        client_id: tokens.client_id.clone(),
        access_token: body["access_token"].as_str().map(str::to_string),
        refresh_token: body["refresh_token"]
            .as_str()
            .map(str::to_string)
            .or(tokens.refresh_token.clone()),
    })
}

async fn token_request(
    http: &reqwest::Client,
    base: &str,
    form: &[(&str, &str)],
) -> Result<Value, String> {
    let r = http
        .post(format!("{base}/token"))
        .form(form)
        .send()
        .await
        .map_err(|e| format!("cannot reach Gatehouse's token endpoint: {e}"))?;
    let status = r.status();
    let body: Value = r.json().await.unwrap_or_default();
    if status.is_success() && body["access_token"].is_string() {
        Ok(body)
    } else {
        Err(format!(
            "Gatehouse refused the token request ({status}): {}",
            describe(&body)
        ))
    }
}

fn describe(body: &Value) -> String {
    let error = body["error"].as_str().unwrap_or("error");
    match body["error_description"].as_str() {
        Some(d) => format!("{error}: {d}"),
        None => error.to_string(),
    }
}

/// The redirect that ended an authorization without a code, said plainly.
fn refused(back: &str) -> String {
    let url = url::Url::parse(back).ok();
    let get = |k| url.as_ref().and_then(|u| query(u, k));
    match get("error").as_deref() {
        Some("access_denied") => {
            "the person did not allow it (denied, or no answer in time)".into()
        }
        Some(e) => format!(
            "Gatehouse refused the authorization: {e}: {}",
            get("error_description").unwrap_or_default()
        ),
        None => "Gatehouse sent the authorization back without a code".into(),
    }
}

/// The match phrase on the waiting page (`<… class="phrase">…<`).
fn phrase_in(page: &str) -> Option<String> {
    let start = page.find("class=\"phrase\">")? + "class=\"phrase\">".len();
    let end = page[start..].find('<')? + start;
    Some(page[start..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_and_pages_are_read() {
        let c = r#"Bearer error="insufficient_scope", scope="tool:delete_note", resource_metadata="http://x""#;
        assert_eq!(param(c, "scope").as_deref(), Some("tool:delete_note"));
        assert_eq!(param(c, "realm"), None);
        let page = r#"<p>Phrase</p><p class="phrase">amber otter 42</p>"#;
        assert_eq!(phrase_in(page).as_deref(), Some("amber otter 42"));
        assert!(refused("http://127.0.0.1/cb?error=access_denied").contains("did not allow"));
    }
}
