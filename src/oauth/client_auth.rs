//! Client authentication at the token, revocation and introspection
//! endpoints (RFC 6749 §2.3.1): `none` for public clients, or a secret sent
//! with HTTP Basic or in the form body.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rusqlite::Connection;

use super::OAuthError;
use crate::store::clients::{self, AuthMethod, Client};

/// What the request carried.
#[derive(Default)]
pub struct PresentedCredentials {
    pub basic: Option<(String, String)>,
    pub form_client_id: Option<String>,
    pub form_secret: Option<String>,
}

impl std::fmt::Debug for PresentedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedCredentials")
            .field("basic_client_id", &self.basic.as_ref().map(|b| &b.0))
            .field("form_client_id", &self.form_client_id)
            .finish_non_exhaustive()
    }
}

impl PresentedCredentials {
    /// Reads an `Authorization: Basic` header value (client id and secret are form-encoded first).
    pub fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
        let bad = || OAuthError::invalid_client("malformed Basic credentials");
        let encoded = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
            .ok_or_else(bad)?;
        let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Ok((unescape(id), unescape(secret)))
    }
}

/// Authenticates the client; `invalid_client` on any mismatch.
pub fn authenticate(conn: &Connection, creds: &PresentedCredentials) -> Result<Client, OAuthError> {
    let err = |d: &str| {
        let mut e = OAuthError::invalid_client(d);
        e.basic_auth_attempted = creds.basic.is_some();
        e
    };
    if creds.basic.is_some() && creds.form_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        ));
    }
    let (client_id, secret) = match (&creds.basic, &creds.form_client_id) {
        (Some((id, secret)), form_id) => {
            if form_id.as_ref().is_some_and(|f| f != id) {
                return Err(err(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            (id.clone(), Some(secret.clone()))
        }
        (None, Some(id)) => (id.clone(), creds.form_secret.clone()),
        (None, None) => return Err(err("client authentication is required (client_id)")),
    };
    let client = clients::get(conn, &client_id)?.ok_or_else(|| err("unknown client"))?;
    match (client.auth_method, &client.secret_hash, secret) {
        (AuthMethod::None, _, None) => Ok(client),
        (AuthMethod::None, _, Some(_)) => Err(err("this client is public and has no secret")),
        (_, Some(stored), Some(given)) => {
            let given = crate::crypto::hash(&given);
            if subtle::ConstantTimeEq::ct_eq(given.as_bytes(), stored.as_bytes()).into() {
                Ok(client)
            } else {
                Err(err("client authentication failed"))
            }
        }
        _ => Err(err("client authentication failed")),
    }
}
