//! The live event relay: each committed audit event goes to the main window
//! as it commits (pushed, never polled), from the same live stream the CLI's
//! `log --follow` reads; an event that changes the queue also updates the
//! consent window and the tray.

use std::sync::Arc;

use gatehouse::api::{AuditFilter, Gatehouse};
use tauri::{AppHandle, Emitter};

use crate::bindings::EVENT_AUDIT;
use crate::windows::{sync_pending, MAIN};

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
        let _ = app.emit_to(MAIN, EVENT_AUDIT, event);
        if changes_pending {
            sync_pending(&app);
        }
    }
}
