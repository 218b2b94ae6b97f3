//! RFC 7591 dynamic client registration. The client's name is self-asserted:
//! the consent prompt shows it as unverified.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{redirect, AuthServer, ErrorCode, OAuthError};
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;
use crate::crypto::Secret;
use crate::peer::Program;
use crate::store::clients::{self, AuthMethod, Client, ClientKind};
use crate::store::programs::{self, Owner};

#[derive(Debug, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub scope: Option<String>,
    pub client_uri: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
}

fn bad_metadata(d: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, d)
}

/// A registration checked and ready to record: the client, its secret (for
/// a confidential client) and the response body without the secret.
pub struct Registration {
    client: Client,
    secret: Option<Secret>,
    response: Value,
}

impl Registration {
    /// Records the client (and the program that registered it, if known) in
    /// the store's next group commit; returns the response body.
    pub async fn record(
        self,
        auth: &AuthServer,
        program: Option<Program>,
        now: UnixMs,
    ) -> Result<Value, OAuthError> {
        let Registration {
            client,
            secret,
            mut response,
        } = self;
        auth.store
            .write_queued(move |tx| {
                clients::insert(tx.conn(), &client)?;
                if let Some(program) = &program {
                    let owner = Owner::Client(&client.client_id);
                    programs::set_if_absent(tx.conn(), owner, program, now)?;
                }
                let detail = json!({"redirect_uris": client.redirect_uris, "auth_method": client.auth_method.as_str()});
                let event = NewEvent::new(EventKind::ClientRegistered, Outcome::Allowed)
                    .client(&client.client_id)
                    .detail(detail);
                tx.record(event, now)?;
                Ok::<_, OAuthError>(())
            })
            .await?;
        if let Some(secret) = secret {
            response["client_secret"] = json!(secret.into_exposed());
            response["client_secret_expires_at"] = json!(0);
        }
        Ok(response)
    }
}

/// Checks a registration request (the client's metadata, as JSON).
pub fn parse(body: &[u8], now: UnixMs) -> Result<Registration, OAuthError> {
    let req: RegistrationRequest = serde_json::from_slice(body)
        .map_err(|e| bad_metadata(format!("the body is not valid client metadata JSON: {e}")))?;
    let redirect_uris = req.redirect_uris.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "redirect_uris must list at least one URI",
        ));
    }
    if redirect_uris.len() > 20 {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "at most 20 redirect URIs",
        ));
    }
    for uri in &redirect_uris {
        if uri.len() > 2000 {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                "redirect URI too long",
            ));
        }
        redirect::validate_registered(uri)
            .map_err(|e| OAuthError::new(ErrorCode::InvalidRedirectUri, e))?;
    }
    let method_name = req
        .token_endpoint_auth_method
        .as_deref()
        .unwrap_or("client_secret_basic");
    let auth_method = AuthMethod::parse(method_name).ok_or_else(|| {
        bad_metadata(format!(
            "token_endpoint_auth_method {method_name:?} is not supported"
        ))
    })?;
    let grant_types = req
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    if let Some(g) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(bad_metadata(format!(
            "grant type {g:?} is not supported (authorization_code and refresh_token are)"
        )));
    }
    let response_types = req.response_types.unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(bad_metadata("only the `code` response type is supported"));
    }
    let name = crate::text::clean_name(req.client_name.as_deref().unwrap_or(""));
    let client_id = Secret::generate("gh_client_").into_exposed();
    let secret = (auth_method != AuthMethod::None).then(|| Secret::generate("gh_cs_"));

    let mut response = json!({
        "client_id": client_id,
        "client_id_issued_at": now / 1000,
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": response_types,
        "token_endpoint_auth_method": auth_method.as_str(),
    });
    for (key, value) in [
        ("scope", &req.scope),
        ("client_uri", &req.client_uri),
        ("software_id", &req.software_id),
        ("software_version", &req.software_version),
    ] {
        if let Some(v) = value {
            response[key] = json!(v);
        }
    }
    let client = Client {
        client_id: client_id.clone(),
        name,
        kind: ClientKind::Registered,
        redirect_uris,
        auth_method,
        secret_hash: secret.as_ref().map(Secret::hash),
        bound_server: None,
        metadata: response.clone(),
        created_at: now,
        last_seen_at: None,
        fetched_at: None,
        removed_at: None,
    };
    Ok(Registration {
        client,
        secret,
        response,
    })
}

/// Registers (or updates) the clients the config file lists.
pub fn preconfigured(
    tx: &crate::store::Tx<'_>,
    clients: &std::collections::BTreeMap<String, crate::config::PreregisteredClient>,
    now: UnixMs,
) -> Result<(), crate::store::StoreError> {
    for c in clients.values() {
        crate::store::clients::insert(
            tx.conn(),
            &Client {
                client_id: c.client_id.clone(),
                name: c.name.clone(),
                kind: ClientKind::Preconfigured,
                redirect_uris: c.redirect_uris.clone(),
                auth_method: AuthMethod::None,
                secret_hash: None,
                bound_server: c.server.clone(),
                metadata: json!({"preconfigured": true}),
                created_at: now,
                last_seen_at: None,
                fetched_at: None,
                removed_at: None,
            },
        )?;
    }
    Ok(())
}
