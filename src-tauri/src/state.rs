//! What every command sees: the in-process Gatehouse, when the consent window
//! first showed each request (for the Allow delay), and the running core.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gatehouse::api::{Error, ErrorCode, Gatehouse, PendingId};
use gatehouse::daemon::Running;

use crate::tray::Tray;

/// How long the consent window shows a request before Allow works.
pub const ALLOW_DELAY: Duration = Duration::from_millis(1000);

pub struct Desktop {
    pub gh: Arc<Gatehouse>,
    /// When the consent window first showed each request.
    shown: Mutex<HashMap<PendingId, Instant>>,
    /// Serializes opening and closing the consent window.
    pub consent_window: Mutex<()>,
    /// Since when the consent window is on screen (none while it is hidden).
    consent_visible_since: Mutex<Option<Instant>>,
    pub tray: Mutex<Option<Tray>>,
    running: Mutex<Option<Running>>,
    /// The config file `gatehouse connect` adds servers to (the one the app
    /// was started with, or the default one).
    pub config_path: std::path::PathBuf,
}

/// Locks a mutex even if a panicking holder poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Desktop {
    pub fn new(running: Running, config_path: std::path::PathBuf) -> Desktop {
        Desktop {
            config_path,
            gh: running.gatehouse().clone(),
            shown: Mutex::default(),
            consent_window: Mutex::new(()),
            consent_visible_since: Mutex::new(None),
            tray: Mutex::new(None),
            running: Mutex::new(Some(running)),
        }
    }

    /// The options for connecting `client` from the app: the servers go to its
    /// config file, stdio-only clients get the `gatehouse` command's bridge.
    pub fn connect_options(
        &self,
        client: &str,
        move_secrets: bool,
    ) -> Result<gatehouse::connect::Options, gatehouse::api::Error> {
        let status = self.gh.status()?;
        let command = vec![
            gatehouse::connect::gatehouse_command()
                .display()
                .to_string(),
            "--data-dir".to_string(),
            status.data_dir.clone(),
        ];
        gatehouse::connect::Options::new(
            client,
            None,
            self.config_path.clone(),
            status.data_dir.into(),
            status.url,
            command,
            move_secrets,
        )
        .map_err(gatehouse::api::Error::bad_request)
    }

    /// The consent window shows this request now (the first report counts).
    pub fn consent_shown(&self, id: &PendingId) {
        let first = lock(&self.shown)
            .insert(id.clone(), Instant::now())
            .is_none();
        if !first {
            return;
        }
        // How long the person waited for the question (the benchmark reads this line).
        let created = self
            .gh
            .pending()
            .ok()
            .and_then(|p| p.into_iter().find(|p| &p.id == id))
            .map(|p| p.created_at);
        if let Some(created) = created {
            tracing::info!(
                request = %id,
                authorize_to_shown_ms = gatehouse::clock::now() - created,
                "the consent window shows a request"
            );
        }
    }

    /// The consent window came on screen (it is kept, hidden, between requests).
    pub fn consent_visible(&self) {
        *lock(&self.consent_visible_since) = Some(Instant::now());
    }

    pub fn consent_hidden(&self) {
        *lock(&self.consent_visible_since) = None;
    }

    /// Allow must not land within a second of the request appearing (a click
    /// or keystroke meant for another window must not approve anything): a
    /// second since the page showed the request and since the window came on
    /// screen (a warm window may paint a request while still hidden).
    pub fn check_allow_delay(&self, id: &PendingId) -> Result<(), Error> {
        let enough = |at: &Instant| at.elapsed() >= ALLOW_DELAY - Duration::from_millis(50);
        let window_on_screen = lock(&self.consent_visible_since)
            .as_ref()
            .is_some_and(enough);
        match lock(&self.shown).get(id) {
            Some(at) if enough(at) && window_on_screen => Ok(()),
            _ => Err(Error::new(
                ErrorCode::TooSoon,
                "the request has not been on screen for a second yet",
            )),
        }
    }

    /// Forgets requests that are no longer pending.
    pub fn keep_shown(&self, pending: &[PendingId]) {
        lock(&self.shown).retain(|id, _| pending.contains(id));
    }

    /// Where exports go: the downloads folder, else the data directory.
    pub fn export_dir(&self) -> PathBuf {
        dirs::download_dir().unwrap_or_else(|| self.gh.data_dir().join("exports"))
    }

    /// The running core, once (to shut it down).
    pub fn take_running(&self) -> Option<Running> {
        lock(&self.running).take()
    }
}
