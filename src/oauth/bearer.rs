//! Bearer checks for the gateway (RFC 6750 §2.1; audience per RFC 8707):
//! the token is an unexpired, unrevoked access token whose grant is in force,
//! issued for the server it is presented to. Tokens are looked up by hash, so
//! a revocation is effective on the very next request.

use super::AuthServer;
use crate::clock::UnixMs;
use crate::crypto;
use crate::store::grants::{self, Grant};
use crate::store::tokens::{self, TokenKind};

/// Who a valid access token speaks for, and what it may use.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    pub client_id: String,
    pub grant: Grant,
    /// The program presenting the token, when known ([`super::programs::check`]).
    pub program: Option<crate::peer::Program>,
    /// The program the grant was given to, when another one presents it.
    pub granted_program: Option<crate::peer::Program>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Unknown, expired or revoked token, or one for another server.
    Invalid(&'static str),
}

/// RFC 6750 bearer check for the gateway: valid, unexpired, unrevoked, its
/// grant in force, and issued for this server (audience).
pub fn authenticate(
    auth: &AuthServer,
    token: &str,
    server: &str,
    now: UnixMs,
) -> Result<AccessGrant, BearerError> {
    let hash = crypto::hash(token);
    let found: Result<_, crate::store::StoreError> = auth.store.read(|c| {
        let Some(row) = tokens::get_token(c, &hash)? else {
            return Ok(None);
        };
        let grant = grants::get(c, &row.grant_id)?;
        Ok(grant.map(|g| (row, g)))
    });
    let (row, grant) = match found {
        Ok(Some(pair)) => pair,
        Ok(None) => return Err(BearerError::Invalid("unknown token")),
        Err(e) => {
            tracing::error!(error = %e, "store failure checking a bearer token");
            return Err(BearerError::Invalid("token could not be checked"));
        }
    };
    if row.kind != TokenKind::Access {
        return Err(BearerError::Invalid("not an access token"));
    }
    if row.revoked_at.is_some() || !grant.is_active(now) {
        return Err(BearerError::Invalid("token was revoked"));
    }
    if row.expires_at <= now {
        return Err(BearerError::Invalid("token expired"));
    }
    if grant.server != server {
        return Err(BearerError::Invalid("token was issued for another server"));
    }
    Ok(AccessGrant {
        client_id: row.client_id,
        grant,
        program: None,
        granted_program: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn an_access_token_works_for_its_server_until_it_expires() {
        let auth =
            auth_server("[servers.demo]\ncommand = \"x\"\n[servers.other]\ncommand = \"y\"\n");
        let (client, body) = tokens(&auth, "agent", T0);
        let access = body["access_token"].as_str().unwrap();
        let ok = authenticate(&auth, access, "demo", T0 + 1).unwrap();
        assert_eq!(ok.client_id, client.client_id);
        assert_eq!(
            authenticate(&auth, access, "other", T0 + 1).unwrap_err(),
            BearerError::Invalid("token was issued for another server")
        );
        assert!(authenticate(
            &auth,
            access,
            "demo",
            T0 + auth.config.get().access_token_ttl_ms - 1
        )
        .is_ok());
        assert_eq!(
            authenticate(
                &auth,
                access,
                "demo",
                T0 + auth.config.get().access_token_ttl_ms
            )
            .unwrap_err(),
            BearerError::Invalid("token expired")
        );
    }

    #[test]
    fn a_refresh_token_or_an_unknown_token_is_no_bearer_token() {
        let auth = auth_server("");
        let (_, body) = tokens(&auth, "agent", T0);
        let refresh = body["refresh_token"].as_str().unwrap();
        assert_eq!(
            authenticate(&auth, refresh, "demo", T0).unwrap_err(),
            BearerError::Invalid("not an access token")
        );
        assert_eq!(
            authenticate(&auth, "gh_at_forged", "demo", T0).unwrap_err(),
            BearerError::Invalid("unknown token")
        );
    }

    #[test]
    fn a_revoked_grant_ends_its_tokens_at_once() {
        let auth = auth_server("");
        let (client, body) = tokens(&auth, "agent", T0);
        let access = body["access_token"].as_str().unwrap();
        crate::oauth::agents::revoke_agent(&auth, &client.client_id, "me", T0 + 1).unwrap();
        assert_eq!(
            authenticate(&auth, access, "demo", T0 + 2).unwrap_err(),
            BearerError::Invalid("token was revoked")
        );
    }
}
