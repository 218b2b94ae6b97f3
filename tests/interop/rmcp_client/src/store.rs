//! Where rmcp keeps the client's registration and tokens: an implementation of its
//! `CredentialStore` trait, in memory and, with `--store FILE`, also in a JSON file
//! (rmcp's own `StoredCredentials`, serialized as is) so a later run can reuse them.
//!
//! It also reports what rmcp does with the credentials: each token response rmcp saves
//! (after a code exchange or a refresh) is printed as `{"event":"tokens"}`, and a refresh
//! token the authorization server rejected as `{"event":"invalidate_credentials"}`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use async_trait::async_trait;
use oauth2::TokenResponse;
use rmcp::transport::auth::{AuthError, CredentialStore, StoredCredentials};
use serde_json::json;

use crate::events::emit;

#[derive(Clone)]
pub struct Credentials {
    current: Arc<RwLock<Option<StoredCredentials>>>,
    file: Option<Arc<PathBuf>>,
}

impl Credentials {
    /// In memory only, or backed by `file` (read now if it exists and is not empty).
    pub fn open(file: Option<&Path>) -> anyhow::Result<Self> {
        let current = match file {
            Some(path) => read(path).with_context(|| format!("reading {}", path.display()))?,
            None => None,
        };
        Ok(Self {
            current: Arc::new(RwLock::new(current)),
            file: file.map(|path| Arc::new(path.to_path_buf())),
        })
    }

    /// The client id of an earlier registration, if one is kept.
    pub fn client_id(&self) -> Option<String> {
        self.snapshot().map(|stored| stored.client_id)
    }

    fn snapshot(&self) -> Option<StoredCredentials> {
        self.current.read().expect("credentials lock").clone()
    }

    fn replace(&self, credentials: Option<StoredCredentials>) -> Result<(), AuthError> {
        if let Some(path) = &self.file {
            write(path, credentials.as_ref()).map_err(|error| {
                AuthError::CredentialStoreError(format!("{}: {error}", path.display()))
            })?;
        }
        *self.current.write().expect("credentials lock") = credentials;
        Ok(())
    }
}

#[async_trait]
impl CredentialStore for Credentials {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        Ok(self.snapshot())
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        if let Some(tokens) = &credentials.token_response {
            // The scope the server granted, or (when its response omitted it) what rmcp
            // took the grant to be.
            let scope = match tokens.scopes() {
                Some(scopes) => scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                None => credentials.granted_scopes.join(" "),
            };
            emit(
                "tokens",
                json!({"scope": scope, "has_refresh_token": tokens.refresh_token().is_some()}),
            );
        }
        self.replace(Some(credentials))
    }

    async fn clear(&self) -> Result<(), AuthError> {
        self.replace(None)
    }

    /// The refresh token was answered with `invalid_grant` (for example after a
    /// revocation): drop the tokens, keep the registration for the next authorization.
    async fn on_refresh_token_rejected(
        &self,
        rejected: &StoredCredentials,
    ) -> Result<(), AuthError> {
        let Some(current) = self.snapshot() else {
            return Ok(());
        };
        // Only if nothing replaced the rejected credentials in the meantime.
        let same_tokens = current.client_id == rejected.client_id
            && current.token_received_at == rejected.token_received_at;
        if !same_tokens {
            return Ok(());
        }
        emit("invalidate_credentials", json!({"scope": "tokens"}));
        let kept = StoredCredentials::new(current.client_id, None, Vec::new(), None)
            .with_issuer(current.issuer);
        self.replace(Some(kept))
    }
}

fn read(path: &Path) -> anyhow::Result<Option<StoredCredentials>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&text)?))
}

/// Writes through a temporary file, so an interrupted run leaves the old contents.
fn write(path: &Path, credentials: Option<&StoredCredentials>) -> std::io::Result<()> {
    let text = match credentials {
        Some(credentials) => serde_json::to_string_pretty(credentials)?,
        None => String::new(),
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600); // it holds tokens
    options.open(&temporary)?.write_all(text.as_bytes())?;
    std::fs::rename(&temporary, path)
}
