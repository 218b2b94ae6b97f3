//! One OAuth authorization with rmcp's own client support (`rmcp::transport::auth`):
//! discovery (seeded by the server's 401/403 challenge), dynamic client registration or
//! the kept registration, PKCE and the authorization URL come from rmcp's `OAuthState`;
//! the browser is played by [`crate::browser`]; the code exchange (with its `state` and
//! RFC 9207 `iss` checks) is rmcp's again. The result is an authorized
//! `AuthorizationManager`, ready to be put in the `AuthClient` that the MCP transport uses.

use anyhow::{Context, bail};
use rmcp::transport::auth::{
    AuthorizationManager, AuthorizationRequest, CredentialStore, OAuthState, StoredCredentials,
};
use serde_json::json;

use crate::browser;
use crate::events::emit;
use crate::store::Credentials;

/// How an authorization ended, when nothing went wrong.
pub enum Outcome {
    Authorized(Box<AuthorizationManager>),
    /// The person (or the server) said no: the redirect carried an `error`.
    Denied,
}

pub struct Authorizer {
    /// The MCP server URL (the protected resource).
    pub server_url: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub credentials: Credentials,
}

impl Authorizer {
    /// A manager for the server that keeps its credentials in our store.
    pub async fn manager(&self) -> anyhow::Result<AuthorizationManager> {
        let mut manager = AuthorizationManager::new(self.server_url.as_str()).await?;
        manager.set_credential_store(self.credentials.clone());
        Ok(manager)
    }

    /// Authorizes from scratch. `challenge` is the `WWW-Authenticate` value of the response
    /// that refused us; rmcp starts its discovery from its `resource_metadata` and `scope`.
    pub async fn authorize(&self, challenge: Option<&str>) -> anyhow::Result<Outcome> {
        let mut request =
            AuthorizationRequest::new(&self.redirect_uri).with_client_name(&self.client_name);
        if let Some(challenge) = challenge {
            request = request.with_challenge(challenge);
        }
        // A registration from before (this run or, with --store, an earlier one) is reused
        // rather than a new client registered each time.
        let known_client = self.credentials.client_id();
        if let Some(client_id) = &known_client {
            request = request.with_preregistered_client(client_id);
        }

        let mut state = OAuthState::Unauthorized(self.manager().await?);
        state
            .start_authorization(request)
            .await
            .context("starting the authorization")?;
        if known_client.is_none() {
            let (client_id, _) = state.get_credentials().await?;
            emit("registered", json!({"client_id": client_id}));
            // rmcp stores the client id only with the first tokens; keep it now, so the
            // registration outlives a denial.
            self.credentials
                .save(StoredCredentials::new(client_id, None, Vec::new(), None))
                .await?;
        }

        let authorization_url = state.get_authorization_url().await?;
        let sent = reqwest::Url::parse(&authorization_url)?;
        let sent_param = |name: &str| {
            sent.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        emit(
            "authorize",
            json!({"scope": sent_param("scope"), "resource": sent_param("resource")}),
        );

        let callback = browser::authorize(&authorization_url, &self.redirect_uri).await?;
        // rmcp checks `state` for a code (its PKCE verifier is stored under it); an error
        // response never reaches rmcp, so check it here for both.
        if callback.param("state") != sent_param("state") {
            bail!(
                "state mismatch: sent {:?}, got {:?}",
                sent_param("state"),
                callback.param("state")
            );
        }
        if let Some(error) = callback.param("error") {
            emit(
                "denied",
                json!({"error": error, "description": callback.param("error_description")}),
            );
            return Ok(Outcome::Denied);
        }

        // The person allowed it. rmcp checks `iss` (RFC 9207) against the issuer it
        // discovered before it exchanges the code.
        emit("authorized", json!({"issuer": callback.param("iss")}));
        state
            .handle_callback_url(callback.url.as_str())
            .await
            .context("exchanging the authorization code")?;
        let manager = state
            .into_authorization_manager()
            .context("rmcp did not end in the authorized state")?;
        Ok(Outcome::Authorized(Box::new(manager)))
    }
}
