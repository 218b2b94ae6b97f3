//! Bearer checks for the gateway (RFC 6750 §2.1; audience per RFC 8707):
//! the token is an unexpired, unrevoked access token whose grant is in force,
//! issued for the server it is presented to. Tokens are looked up by hash in
//! the store's live state ([`crate::store::live`]), which every write keeps
//! current, so a revocation is effective on the very next request; only a
//! token that is not live reads the database, to say why.

use std::sync::Arc;

use super::AuthServer;
use crate::clock::UnixMs;
use crate::store::grants::{self, Grant};
use crate::store::live::LiveGrant;
use crate::store::tokens::{self, TokenKind};

/// Who a valid access token speaks for, and what it may use.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    pub client_id: String,
    /// The grant with its tool sets and pins, as of this request.
    pub live: Arc<LiveGrant>,
    /// The program presenting the token, when known ([`super::programs::check`]).
    pub program: Option<crate::peer::Program>,
    /// The program the grant was given to, when another one presents it.
    pub granted_program: Option<crate::peer::Program>,
}

impl AccessGrant {
    pub fn grant(&self) -> &Grant {
        &self.live.grant
    }
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
    let token = tokens::TokenKey::of(token);
    let holder = auth.store.live().access(token.hash(), now);
    if let Some(holder) = holder {
        if holder.grant.grant.server != server {
            return Err(BearerError::Invalid("token was issued for another server"));
        }
        return Ok(AccessGrant {
            client_id: holder.client_id.to_string(),
            live: holder.grant,
            program: None,
            granted_program: None,
        });
    }
    refused_why(auth, &token, server, now)
}

/// Why a token that is not live was refused, read from the database. (Were
/// it valid there, the live state missed a write: the database is the truth.)
fn refused_why(
    auth: &AuthServer,
    token: &tokens::TokenKey,
    server: &str,
    now: UnixMs,
) -> Result<AccessGrant, BearerError> {
    let found: Result<_, crate::store::StoreError> = auth.store.read(|c| {
        let Some(row) = tokens::get_token(c, token)? else {
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
    tracing::error!(grant = %grant.id, "a valid token was missing from the live state");
    let live = auth
        .store
        .read(|c| LiveGrant::load(c, grant))
        .map_err(|e| {
            tracing::error!(error = %e, "store failure checking a bearer token");
            BearerError::Invalid("token could not be checked")
        })?;
    Ok(AccessGrant {
        client_id: row.client_id,
        live: Arc::new(live),
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
