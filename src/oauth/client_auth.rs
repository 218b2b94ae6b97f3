//! Client authentication at the token, revocation and introspection
//! endpoints (RFC 6749 §2.3.1): `none` for public clients, or a secret sent
//! with HTTP Basic or in the form body.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::OAuthError;
use crate::store::clients::{self, AuthMethod};
use crate::store::live::ClientKey;
use crate::store::Store;

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
        Ok((form_unescape(id), form_unescape(secret)))
    }
}

/// Undoes the form encoding of a Basic credential (RFC 6749 §2.3.1): `+`
/// is a space and `%XX` a byte; anything else, `&` and `=` included, is
/// itself. Bytes that are not UTF-8 are replaced, so a bad secret fails the
/// comparison rather than the request.
fn form_unescape(s: &str) -> String {
    if !s.contains(['+', '%']) {
        return s.to_owned();
    }
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// An authenticated client.
pub struct Authenticated {
    pub client_id: String,
    /// It has a secret (it authenticated with it).
    pub confidential: bool,
}

/// Authenticates the client; `invalid_client` on any mismatch. From the
/// store's live state when it holds the client (no database read, and no
/// work on the store's writer), else from the database (the live state was
/// emptied after a failed reload, or the client is unknown). A client
/// removed after this check cannot use it: its removal revoked what it
/// holds in the same write (`agents::remove_client`), and every operation
/// that follows reads that in its own write.
pub fn authenticate(
    store: &Store,
    creds: &PresentedCredentials,
) -> Result<Authenticated, OAuthError> {
    let (client_id, secret) = presented(creds)?;
    let key = match store.live().client(client_id) {
        Some(key) => key,
        None => store
            .read(|c| clients::get(c, client_id))?
            .map(|c| ClientKey {
                auth_method: c.auth_method,
                secret_hash: c.secret_hash.map(Arc::from),
            })
            .ok_or_else(|| refused(creds, "unknown client"))?,
    };
    check(creds, key.auth_method, key.secret_hash.as_deref(), secret)?;
    Ok(Authenticated {
        client_id: client_id.to_owned(),
        confidential: key.secret_hash.is_some(),
    })
}

/// Authenticates a confidential client (one with a secret); its client id.
pub fn authenticate_confidential(
    store: &Store,
    creds: &PresentedCredentials,
    needed_for: &str,
) -> Result<String, OAuthError> {
    let client = authenticate(store, creds)?;
    if !client.confidential {
        return Err(OAuthError::invalid_client(format!(
            "{needed_for} needs a confidential client (with a secret)"
        )));
    }
    Ok(client.client_id)
}

fn refused(creds: &PresentedCredentials, why: &str) -> OAuthError {
    let mut e = OAuthError::invalid_client(why);
    e.basic_auth_attempted = creds.basic.is_some();
    e
}

/// The client id the request names and the secret it gave, if any.
fn presented(creds: &PresentedCredentials) -> Result<(&str, Option<&str>), OAuthError> {
    if creds.basic.is_some() && creds.form_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        ));
    }
    match (&creds.basic, &creds.form_client_id) {
        (Some((id, secret)), form_id) => {
            if form_id.as_ref().is_some_and(|f| f != id) {
                return Err(refused(
                    creds,
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            Ok((id, Some(secret)))
        }
        (None, Some(id)) => Ok((id, creds.form_secret.as_deref())),
        (None, None) => Err(refused(
            creds,
            "client authentication is required (client_id)",
        )),
    }
}

/// The secret given against the client's way of authenticating.
fn check(
    creds: &PresentedCredentials,
    method: AuthMethod,
    stored: Option<&str>,
    given: Option<&str>,
) -> Result<(), OAuthError> {
    match (method, stored, given) {
        (AuthMethod::None, _, None) => Ok(()),
        (AuthMethod::None, _, Some(_)) => {
            Err(refused(creds, "this client is public and has no secret"))
        }
        (_, Some(stored), Some(given)) => {
            let given = crate::crypto::hash(given);
            if subtle::ConstantTimeEq::ct_eq(given.as_bytes(), stored.as_bytes()).into() {
                Ok(())
            } else {
                Err(refused(creds, "client authentication failed"))
            }
        }
        _ => Err(refused(creds, "client authentication failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> Result<(String, String), OAuthError> {
        PresentedCredentials::parse_basic(&format!(
            "Basic {}",
            STANDARD.encode(format!("{id}:{secret}"))
        ))
    }

    #[test]
    fn basic_credentials_are_form_decoded_and_split_at_the_first_colon() {
        // (id, secret) as sent inside the header, and as read.
        let cases = [
            (("my%20client", "a+b%3Ac%2B%26"), ("my client", "a b:c+&")),
            // A raw `&` or `=` is itself: the header is not a form.
            (("cli", "x&y=z"), ("cli", "x&y=z")),
            (("cli", "p:q"), ("cli", "p:q")),
        ];
        for ((id, secret), want) in cases {
            let (got_id, got_secret) = basic(id, secret).unwrap();
            assert_eq!((got_id.as_str(), got_secret.as_str()), want);
        }
    }

    #[test]
    fn malformed_basic_credentials_are_refused() {
        for header in [
            "Bearer abc",
            "Basic !!!",
            &format!("Basic {}", STANDARD.encode("no-colon")),
        ] {
            let e = PresentedCredentials::parse_basic(header).unwrap_err();
            assert_eq!(e.code, crate::oauth::ErrorCode::InvalidClient, "{header}");
        }
    }
}
