//! What the HTTP edge asks of the whole, where the authorization server
//! needs the gateway: a consent request lists the server's tools, and the
//! metadata and challenges name the scopes a server offers.

use super::Gatehouse;
use crate::clock::UnixMs;
use crate::crypto::Secret;
use crate::oauth::authorize::{self, AuthorizeError};
use crate::oauth::{cimd, scope, ErrorCode, OAuthError};
use crate::store::clients::{self, Client, ClientKind};

impl Gatehouse {
    /// `GET /authorize`: checks the request, lists the server's tools, and
    /// records a pending consent request; returns the waiting page's handle.
    pub(crate) async fn authorize(
        &self,
        query: &str,
        now: UnixMs,
    ) -> Result<Secret, AuthorizeError> {
        let params = authorize::parse(query).map_err(AuthorizeError::Page)?;
        let client = self
            .resolve_client(&params.client_id, now)
            .await
            .map_err(AuthorizeError::Page)?;
        let validated = authorize::validate(self.auth(), client, params)?;
        let (tools, instructions) = match self.gateway().offer(&validated.server).await {
            Ok(offer) => offer,
            Err(reason) => {
                tracing::warn!(server = %validated.server, %reason, "cannot list the tools for a consent request");
                let error = OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    format!(
                        "the MCP server {:?} could not be reached to list its tools",
                        validated.server
                    ),
                );
                return Err(AuthorizeError::Redirect(authorize::error_redirect(
                    self.auth(),
                    &validated.redirect_uri,
                    validated.state.as_deref(),
                    &error,
                )));
            }
        };
        // Recording the request waits for the store's writer: off the async workers.
        let auth = self.auth().clone();
        let offer = (tools, instructions);
        let recorded = move || authorize::create_request(&auth, validated, offer, now);
        tokio::task::spawn_blocking(recorded).await.map_err(|e| {
            let e = OAuthError::new(ErrorCode::ServerError, e.to_string());
            AuthorizeError::Page(e)
        })?
    }

    /// A registered client, or a Client ID Metadata Document fetched (and cached) now.
    pub(crate) async fn resolve_client(
        &self,
        client_id: &str,
        now: UnixMs,
    ) -> Result<Client, OAuthError> {
        let stored = self.store().read(|c| clients::get(c, client_id))?;
        let allow_loopback = self.config().allow_loopback_client_metadata;
        let is_document = cimd::is_document_url(client_id);
        match stored {
            Some(c)
                if c.kind != ClientKind::MetadataDocument
                    || c.fetched_at.unwrap_or(0) + cimd::CACHE_MS > now =>
            {
                Ok(c)
            }
            _ if is_document => {
                let client = cimd::fetch(client_id, allow_loopback, now).await?;
                self.store()
                    .write(|tx| clients::insert(tx.conn(), &client))?;
                Ok(client)
            }
            _ => Err(OAuthError::invalid_client(format!(
                "unknown client_id {client_id:?}: register first"
            ))),
        }
    }

    /// The scopes a server offers: its classes (with resources and prompts)
    /// and each tool, from its last tool list (listed now if nobody has
    /// yet); the three tool classes if the server cannot be reached.
    pub(crate) async fn scopes_for(&self, server: &str) -> Vec<String> {
        match self.gateway().catalog_hint(server).await {
            Ok(tools) if !tools.is_empty() => scope::scopes_supported(&tools),
            _ => scope::all_class_scopes(),
        }
    }

    /// The scope to ask for in a challenge: every class the server has, so a
    /// first consent can grant all the client will need. From the last tool
    /// list however old: a 401 never waits for an upstream to start again.
    pub(crate) async fn challenge_scope(&self, server: &str) -> String {
        match self.gateway().catalog_hint(server).await {
            Ok(tools) if !tools.is_empty() => scope::class_scopes(&tools).join(" "),
            _ => scope::all_class_scopes().join(" "),
        }
    }
}
