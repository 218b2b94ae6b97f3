//! The live event relay: each committed audit event goes to the main window
//! as it commits (pushed, never polled), from the same live stream the CLI's
//! `log --follow` reads; an event that changes the queue also updates the
//! consent window and the tray, and a pause or resume the tray.

use std::sync::Arc;

use gatehouse::api::{AuditFilter, EventKind, Gatehouse};
use tauri::{AppHandle, Emitter, Manager};

use crate::bindings::EVENT_AUDIT;
use crate::state::{lock, Desktop};
use crate::windows::{sync_pending, MAIN};

/// The tray shows whether every agent is paused.
pub fn sync_paused(app: &AppHandle, gh: &Gatehouse) {
    let paused = gh.status().is_ok_and(|s| s.paused.all.is_some());
    if let Some(tray) = lock(&app.state::<Desktop>().tray).as_ref() {
        tray.show_paused(paused);
    }
}

pub async fn relay(app: AppHandle, gh: Arc<Gatehouse>) {
    let mut follow = match gh.follow(AuditFilter::default(), 0) {
        Ok((_, follow)) => follow,
        Err(e) => {
            tracing::error!(error = %e, "cannot follow the audit log");
            return;
        }
    };
    while let Some(event) = follow.next().await {
        let changes_pending = event.kind.changes_pending();
        let changes_pause = matches!(event.kind, EventKind::Paused | EventKind::Resumed);
        let _ = app.emit_to(MAIN, EVENT_AUDIT, event);
        if changes_pending {
            sync_pending(&app);
        }
        if changes_pause {
            sync_paused(&app, &gh);
        }
    }
}
