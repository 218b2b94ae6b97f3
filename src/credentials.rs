//! Upstream credentials (API keys, tokens) for the fronted MCP servers. They
//! live in the OS keychain (Keychain Services, Windows Credential Manager, the
//! Secret Service on Linux) through the `keyring` crate, and reach only the
//! upstream process or request: never SQLite, config files, logs, audit events
//! or anything sent to an agent.
//!
//! Where no keychain service runs (a headless Linux box without a Secret
//! Service), secrets fall back to `secrets.json` in the data directory, mode
//! 0600, readable by this OS user only. That fallback protects nothing against
//! this user's own processes, so Gatehouse says so at start-up and whenever a
//! secret is stored there. The names of stored secrets (never their values)
//! are kept in `secret-names.json` so they can be listed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{is_valid_name, CredentialStoreChoice};

const SERVICE: &str = "gatehouse";
const NAMES_FILE: &str = "secret-names.json";
const FALLBACK_FILE: &str = "secrets.json";
// Gatehouse's own values: with a space, no account of a server's secret
// ("server/NAME") can look like them.
const AUDIT_KEY: &str = "audit log/chain key";
const AUDIT_HEAD: &str = "audit log/head";

/// Where secrets are kept on this machine.
#[derive(Clone)]
pub enum CredentialStore {
    Keychain { names: PathBuf },
    File { names: PathBuf, path: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name:?} for server {server:?} is not set; run `gatehouse secret set {server} {name}` (it reads the value from stdin)")]
    Missing { server: String, name: String },
    #[error("invalid {0}: use letters, digits, '_' and '-' (at most 64)")]
    InvalidName(&'static str),
    #[error("the OS keychain failed: {0}")]
    Keychain(String),
    #[error("the secrets file failed: {0}")]
    File(String),
}

fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn account(server: &str, name: &str) -> String {
    format!("{server}/{name}")
}

impl CredentialStore {
    /// The store the configuration chose: the OS keychain when one answers
    /// (`auto` falls back to the 0600 file; `keychain` fails without one).
    pub fn open(
        data_dir: &Path,
        choice: CredentialStoreChoice,
    ) -> Result<CredentialStore, SecretError> {
        let names = data_dir.join(NAMES_FILE);
        match choice {
            CredentialStoreChoice::File => Ok(CredentialStore::file(data_dir)),
            _ if keychain_works() => Ok(CredentialStore::Keychain { names }),
            CredentialStoreChoice::Keychain => Err(SecretError::Keychain(
                "no OS keychain answers (on Linux: no Secret Service on the session bus); use secret_store = \"auto\" or \"file\"".into(),
            )),
            CredentialStoreChoice::Auto => Ok(CredentialStore::file(data_dir)),
        }
    }

    /// The fallback file, even where a keychain exists (tests, and machines where the user chooses it).
    pub fn file(data_dir: &Path) -> CredentialStore {
        CredentialStore::File {
            names: data_dir.join(NAMES_FILE),
            path: data_dir.join(FALLBACK_FILE),
        }
    }

    /// A sentence for the log and the CLI: where secrets go, and how safe that is.
    pub fn describe(&self) -> String {
        match self {
            CredentialStore::Keychain { .. } => "upstream secrets are kept in the OS keychain".into(),
            CredentialStore::File { path, .. } => format!(
                "no OS keychain answers (no Secret Service on this session bus): upstream secrets are kept in {} (mode 0600), protected only by file permissions",
                path.display()
            ),
        }
    }

    pub fn is_keychain(&self) -> bool {
        matches!(self, CredentialStore::Keychain { .. })
    }

    pub fn set(&self, server: &str, name: &str, value: &str) -> Result<(), SecretError> {
        check(server, name)?;
        match self {
            CredentialStore::Keychain { .. } => {
                keyring::Entry::new(SERVICE, &account(server, name))
                    .and_then(|e| e.set_password(value))
                    .map_err(|e| SecretError::Keychain(e.to_string()))?
            }
            CredentialStore::File { path, .. } => {
                let mut all: BTreeMap<String, String> = read_map(path)?;
                all.insert(account(server, name), value.to_string());
                write_private(path, &all)?;
            }
        }
        let mut names = self.names()?;
        let list = names.entry(server.to_string()).or_default();
        if !list.iter().any(|n| n == name) {
            list.push(name.to_string());
            list.sort();
        }
        write_private(self.names_path(), &names)
    }

    pub(crate) fn get(&self, server: &str, name: &str) -> Result<String, SecretError> {
        check(server, name)?;
        let missing = || SecretError::Missing {
            server: server.to_string(),
            name: name.to_string(),
        };
        match self {
            CredentialStore::Keychain { .. } => {
                let entry = keyring::Entry::new(SERVICE, &account(server, name))
                    .map_err(|e| SecretError::Keychain(e.to_string()))?;
                match entry.get_password() {
                    Ok(v) => Ok(v),
                    Err(keyring::Error::NoEntry) => Err(missing()),
                    Err(e) => Err(SecretError::Keychain(e.to_string())),
                }
            }
            CredentialStore::File { path, .. } => read_map::<BTreeMap<String, String>>(path)?
                .remove(&account(server, name))
                .ok_or_else(missing),
        }
    }

    /// The key that seals the audit log (`audit::chain`): 32 random bytes made
    /// on first use and kept like the upstream secrets (the keychain, or the
    /// 0600 file), never in the database. Not listed among the secrets.
    pub(crate) fn audit_key(&self) -> Result<crate::audit::chain::Key, SecretError> {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine;
        if let Some(text) = self.get_own(AUDIT_KEY)? {
            let bytes = STANDARD
                .decode(text.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| SecretError::File("the audit log's key is damaged".into()))?;
            return Ok(crate::audit::chain::Key::new(bytes));
        }
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        self.set_own(AUDIT_KEY, &STANDARD.encode(bytes))?;
        Ok(crate::audit::chain::Key::new(bytes))
    }

    /// The newest audit event Gatehouse wrote, as it last noted it outside the
    /// database (so cutting off the end of the log shows).
    pub(crate) fn audit_head(&self) -> Result<Option<(i64, String)>, SecretError> {
        Ok(self.get_own(AUDIT_HEAD)?.and_then(|text| {
            let (id, seal) = text.split_once(' ')?;
            Some((id.parse().ok()?, seal.to_string()))
        }))
    }

    pub(crate) fn set_audit_head(&self, id: i64, seal: &str) -> Result<(), SecretError> {
        self.set_own(AUDIT_HEAD, &format!("{id} {seal}"))
    }

    /// What `gatehouse bridge` keeps for one of its clients (its client id and
    /// tokens, as JSON), under `key`. Not listed among the secrets.
    pub fn bridge_state(&self, key: &str) -> Result<Option<String>, SecretError> {
        self.get_own(&format!("bridge/{key}"))
    }

    pub fn set_bridge_state(&self, key: &str, value: &str) -> Result<(), SecretError> {
        self.set_own(&format!("bridge/{key}"), value)
    }

    /// A remote server's login kept by Gatehouse (its tokens, or the client
    /// it registered there), under `key`. Not listed among the secrets.
    pub(crate) fn upstream_login(&self, key: &str) -> Result<Option<String>, SecretError> {
        self.get_own(key)
    }

    /// Keeps (or, with `None`, forgets) a remote server's login.
    pub(crate) fn set_upstream_login(
        &self,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), SecretError> {
        match value {
            Some(v) => self.set_own(key, v),
            None => self.remove_own(key),
        }
    }

    /// A value of Gatehouse's own (not a server's secret, not listed).
    fn get_own(&self, account: &str) -> Result<Option<String>, SecretError> {
        match self {
            CredentialStore::Keychain { .. } => {
                let entry = keyring::Entry::new(SERVICE, account)
                    .map_err(|e| SecretError::Keychain(e.to_string()))?;
                match entry.get_password() {
                    Ok(v) => Ok(Some(v)),
                    Err(keyring::Error::NoEntry) => Ok(None),
                    Err(e) => Err(SecretError::Keychain(e.to_string())),
                }
            }
            CredentialStore::File { path, .. } => {
                Ok(read_map::<BTreeMap<String, String>>(path)?.remove(account))
            }
        }
    }

    fn set_own(&self, account: &str, value: &str) -> Result<(), SecretError> {
        match self {
            CredentialStore::Keychain { .. } => keyring::Entry::new(SERVICE, account)
                .and_then(|e| e.set_password(value))
                .map_err(|e| SecretError::Keychain(e.to_string())),
            CredentialStore::File { path, .. } => {
                let mut all: BTreeMap<String, String> = read_map(path)?;
                all.insert(account.to_string(), value.to_string());
                write_private(path, &all)
            }
        }
    }

    fn remove_own(&self, account: &str) -> Result<(), SecretError> {
        match self {
            CredentialStore::Keychain { .. } => {
                match keyring::Entry::new(SERVICE, account).and_then(|e| e.delete_credential()) {
                    Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                    Err(e) => Err(SecretError::Keychain(e.to_string())),
                }
            }
            CredentialStore::File { path, .. } => {
                let mut all: BTreeMap<String, String> = read_map(path)?;
                if all.remove(account).is_some() {
                    write_private(path, &all)?;
                }
                Ok(())
            }
        }
    }

    /// Removes a secret; false when there was none.
    pub fn remove(&self, server: &str, name: &str) -> Result<bool, SecretError> {
        check(server, name)?;
        let existed = match self {
            CredentialStore::Keychain { .. } => {
                match keyring::Entry::new(SERVICE, &account(server, name))
                    .and_then(|e| e.delete_credential())
                {
                    Ok(()) => true,
                    Err(keyring::Error::NoEntry) => false,
                    Err(e) => return Err(SecretError::Keychain(e.to_string())),
                }
            }
            CredentialStore::File { path, .. } => {
                let mut all: BTreeMap<String, String> = read_map(path)?;
                let existed = all.remove(&account(server, name)).is_some();
                write_private(path, &all)?;
                existed
            }
        };
        let mut names = self.names()?;
        if let Some(list) = names.get_mut(server) {
            list.retain(|n| n != name);
            if list.is_empty() {
                names.remove(server);
            }
        }
        write_private(self.names_path(), &names)?;
        Ok(existed)
    }

    /// The names of stored secrets, by server (values are never listed).
    pub fn names(&self) -> Result<BTreeMap<String, Vec<String>>, SecretError> {
        read_map(self.names_path())
    }

    fn names_path(&self) -> &Path {
        match self {
            CredentialStore::Keychain { names } | CredentialStore::File { names, .. } => names,
        }
    }
}

fn check(server: &str, name: &str) -> Result<(), SecretError> {
    if !is_valid_name(server) {
        return Err(SecretError::InvalidName("server name"));
    }
    if !valid_secret_name(name) {
        return Err(SecretError::InvalidName("secret name"));
    }
    Ok(())
}

/// Whether the OS keychain answers: a lookup of an entry that does not exist
/// must say "no entry", not fail.
fn keychain_works() -> bool {
    if keyring::Entry::store_status().is_err() {
        return false;
    }
    matches!(
        keyring::Entry::new(SERVICE, "gatehouse/probe").map(|e| e.get_password()),
        Ok(Ok(_)) | Ok(Err(keyring::Error::NoEntry))
    )
}

fn read_map<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, SecretError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| SecretError::File(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(SecretError::File(format!("{}: {e}", path.display()))),
    }
}

/// Writes a file readable by this user only, replacing it atomically.
fn write_private<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), SecretError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| SecretError::File(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(&serde_json::to_vec_pretty(value).expect("serializable"))
        .map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_fallback_round_trip_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::file(dir.path());
        store.set("github", "GITHUB_TOKEN", "ghp_value").unwrap();
        assert_eq!(store.get("github", "GITHUB_TOKEN").unwrap(), "ghp_value");
        assert_eq!(store.names().unwrap()["github"], vec!["GITHUB_TOKEN"]);
        let names = std::fs::read_to_string(dir.path().join(NAMES_FILE)).unwrap();
        assert!(
            !names.contains("ghp_value"),
            "the names file holds no values"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(FALLBACK_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            store.get("github", "OTHER"),
            Err(SecretError::Missing { .. })
        ));
        assert!(store.remove("github", "GITHUB_TOKEN").unwrap());
        assert!(!store.remove("github", "GITHUB_TOKEN").unwrap());
        assert!(store.names().unwrap().is_empty());
        assert!(matches!(
            store.set("Bad Server", "X", "v"),
            Err(SecretError::InvalidName(_))
        ));
        assert!(matches!(
            store.set("s", "../x", "v"),
            Err(SecretError::InvalidName(_))
        ));
    }
}
