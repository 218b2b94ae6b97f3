//! The windows: the main window, and the one consent window that opens while
//! anything waits for the person and closes when nothing does.

use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder};

use crate::bindings::EVENT_PENDING_CHANGED;
use crate::state::{lock, Desktop};

/// Label of the consent window (its capability file names it).
pub const CONSENT: &str = "consent";
/// Label of the main window.
pub const MAIN: &str = "main";

/// Tells every window the pending requests, updates the tray, and opens (or
/// closes) the consent window.
pub fn sync_pending(app: &AppHandle) {
    let desktop = app.state::<Desktop>();
    let pending = match desktop.gh.pending() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the pending requests");
            return;
        }
    };
    let ids: Vec<_> = pending.iter().map(|p| p.id.clone()).collect();
    desktop.keep_shown(&ids);
    let _ = app.emit(EVENT_PENDING_CHANGED, &pending);
    if let Some(tray) = lock(&desktop.tray).as_ref() {
        tray.show_pending(pending.len());
    }
    if pending.is_empty() {
        let _guard = lock(&desktop.consent_window);
        if let Some(w) = app.get_webview_window(CONSENT) {
            let _ = w.destroy();
        }
    } else {
        open_consent(app, false);
    }
}

/// Opens the consent window if it is not open (it reads the queue itself);
/// with `focus`, also brings an open one to the front.
pub fn open_consent(app: &AppHandle, focus: bool) {
    let desktop = app.state::<Desktop>();
    let _guard = lock(&desktop.consent_window);
    if let Some(w) = app.get_webview_window(CONSENT) {
        if focus {
            let _ = w.show();
            let _ = w.unminimize();
            let _ = w.set_focus();
        }
        return;
    }
    let built = WebviewWindowBuilder::new(app, CONSENT, WebviewUrl::App("consent.html".into()))
        .title("Gatehouse: allow access?")
        .inner_size(460.0, 600.0)
        .resizable(false)
        .maximizable(false)
        .minimizable(false)
        .always_on_top(true)
        .focused(true)
        .center()
        .build();
    match built {
        Ok(w) => {
            let _ = w.set_focus();
        }
        Err(e) => tracing::error!(error = %e, "cannot open the consent window"),
    }
}

pub fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}
