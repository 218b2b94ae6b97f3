//! The live event relay: each committed audit event goes to the main window
//! as it commits (pushed, never polled), from the same live stream the CLI's
//! `log --follow` reads; an event that changes the queue also updates the
//! consent window and the tray, and a pause or resume the tray; what wants
//! the person raises an OS notification (see `notify`).

use std::sync::Arc;

use gatehouse::api::{AuditEvent, AuditFilter, EventKind, Gatehouse};
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
    let mut coalescer = crate::notify::Coalescer::default();
    while let Some(event) = follow.next().await {
        notify(&app, &event, &mut coalescer);
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

/// Raises an OS notification for an event that wants the person, unless a
/// Gatehouse window is in front of them; a flood from one agent is folded.
fn notify(app: &AppHandle, event: &AuditEvent, coalescer: &mut crate::notify::Coalescer) {
    let Some(note) = crate::notify::note_for(event) else {
        return;
    };
    // A request the agent's rules decided at once needs no one.
    if let Some(request) = event.detail["request"].as_str() {
        let gh = &app.state::<crate::state::Desktop>().gh;
        let waiting = gh
            .pending()
            .is_ok_and(|p| p.iter().any(|i| i.id.to_string() == request));
        if !waiting {
            return;
        }
    }
    if app
        .webview_windows()
        .values()
        .any(|w| w.is_focused().unwrap_or(false))
    {
        return;
    }
    let key = event.client_id.as_deref().unwrap_or("");
    let Some(folded) = coalescer.offer(key, std::time::Instant::now()) else {
        return;
    };
    let (app, to_consent) = (app.clone(), note.to_consent);
    crate::notify::show(note, folded, move || {
        if to_consent {
            crate::windows::open_consent(&app, true);
        } else {
            crate::windows::show_main(&app);
        }
    });
}
