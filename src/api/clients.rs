//! Pre-registered clients, added by the person (`gatehouse clients add`):
//! the same as a `[clients.X]` entry in the config file, without editing it.
//! A public client has no secret; a confidential one gets a secret, shown
//! once. Removing one revokes everything it holds and it can never
//! authenticate again (its history stays).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Actor, Error, ErrorCode, Gatehouse, Result, Revoked};
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::{self, UnixMs};
use crate::crypto::Secret;
use crate::oauth::{agents, redirect};
use crate::store::clients::{self, AuthMethod, Client, ClientKind};
use crate::text;

/// A client to add.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// With a secret (a confidential client) or without (public, PKCE only).
    pub confidential: bool,
    /// The server it may omit `resource` for.
    pub server: Option<String>,
}

/// A pre-registered client as the person sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct RegisteredClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub confidential: bool,
    pub server: Option<String>,
    /// Added with `gatehouse clients add` (else: from the config file).
    pub added: bool,
    #[ts(type = "number")]
    pub created_at: UnixMs,
}

/// A client just added: its secret is shown this once, never again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddedClient {
    pub client: RegisteredClient,
    pub client_secret: Option<String>,
}

impl From<&Client> for RegisteredClient {
    fn from(c: &Client) -> RegisteredClient {
        RegisteredClient {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            confidential: c.auth_method != AuthMethod::None,
            server: c.bound_server.clone(),
            added: c.metadata["added_by"].is_string(),
            created_at: c.created_at,
        }
    }
}

impl Gatehouse {
    /// Adds a pre-registered client.
    pub fn add_client(&self, new: NewClient, actor: Actor) -> Result<AddedClient> {
        if new.redirect_uris.is_empty() {
            return Err(Error::bad_request("give at least one --redirect-uri"));
        }
        for uri in &new.redirect_uris {
            redirect::validate_registered(uri)
                .map_err(|why| Error::bad_request(format!("redirect URI {uri:?}: {why}")))?;
        }
        if let Some(server) = &new.server {
            if !self.config().servers.contains_key(server) {
                return Err(Error::not_found(format!(
                    "Gatehouse fronts no server named {server:?}"
                )));
            }
        }
        let now = clock::now();
        let secret = new.confidential.then(|| Secret::generate("gh_cs_"));
        let client = Client {
            client_id: Secret::generate("gh_client_").into_exposed(),
            name: text::clean_name(&new.name),
            kind: ClientKind::Preconfigured,
            redirect_uris: new.redirect_uris,
            auth_method: if new.confidential {
                AuthMethod::ClientSecretBasic
            } else {
                AuthMethod::None
            },
            secret_hash: secret.as_ref().map(Secret::hash),
            bound_server: new.server,
            metadata: json!({"added_by": self.actor_name(actor)}),
            created_at: now,
            last_seen_at: None,
            fetched_at: None,
            removed_at: None,
        };
        self.store().write(|tx| {
            clients::insert(tx.conn(), &client)?;
            tx.record(
                NewEvent::new(EventKind::ClientRegistered, Outcome::Allowed)
                    .client(&client.client_id)
                    .actor(&self.actor_name(actor))
                    .detail(json!({"pre_registered": true, "confidential": new.confidential})),
                now,
            )
        })?;
        Ok(AddedClient {
            client: RegisteredClient::from(&client),
            client_secret: secret.map(Secret::into_exposed),
        })
    }

    /// The pre-registered clients (added here or in the config file), oldest first.
    pub fn clients(&self) -> Result<Vec<RegisteredClient>> {
        let all = self.store().read(clients::list)?;
        Ok(all
            .iter()
            .filter(|c| c.kind == ClientKind::Preconfigured)
            .map(RegisteredClient::from)
            .collect())
    }

    /// Removes a client added with `add_client` (by exact name or client id):
    /// everything it holds is revoked, and it never authenticates again.
    pub fn remove_client(&self, name_or_id: &str, actor: Actor) -> Result<Revoked> {
        let matching: Vec<RegisteredClient> = self
            .clients()?
            .into_iter()
            .filter(|c| c.client_id == name_or_id || c.name == name_or_id)
            .collect();
        let client = match matching.as_slice() {
            [] => {
                return Err(Error::not_found(format!(
                    "no pre-registered client {name_or_id:?}; see `gatehouse clients list`"
                )))
            }
            [one] => one.clone(),
            many => {
                let ids: Vec<&str> = many.iter().map(|c| c.client_id.as_str()).collect();
                return Err(Error::new(
                    ErrorCode::Ambiguous,
                    format!(
                        "{name_or_id:?} names several clients ({}); give the client id",
                        ids.join(", ")
                    ),
                ));
            }
        };
        if !client.added {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!(
                    "{:?} comes from the config file: remove its [clients] entry there",
                    client.name
                ),
            ));
        }
        let actor = self.actor_name(actor);
        let revoked = agents::remove_client(self.auth(), &client.client_id, &actor, clock::now())?;
        self.gateway().end_sessions_of(&client.client_id);
        Ok(revoked)
    }
}
