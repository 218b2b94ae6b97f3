//! The windows: the main window, and the one consent window, which shows
//! while anything waits for the person and hides when nothing does. The
//! consent window is made once, hidden, at start and kept: showing a warm
//! window is what makes it appear at once after an agent asks (a new webview
//! takes hundreds of milliseconds).

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
            let _ = w.hide();
        }
        desktop.consent_hidden();
    } else {
        open_consent(app, false);
    }
}

/// Makes the consent window, hidden, ready for the first request.
pub fn prepare_consent(app: &AppHandle) {
    let desktop = app.state::<Desktop>();
    let _guard = lock(&desktop.consent_window);
    if app.get_webview_window(CONSENT).is_none() {
        if let Err(e) = build_consent(app, false) {
            tracing::error!(error = %e, "cannot make the consent window");
        }
    }
}

/// Shows the consent window (it reads the queue itself); with `focus`, also
/// brings one already showing to the front.
pub fn open_consent(app: &AppHandle, focus: bool) {
    let desktop = app.state::<Desktop>();
    let _guard = lock(&desktop.consent_window);
    let window = match app.get_webview_window(CONSENT) {
        Some(w) => w,
        None => match build_consent(app, true) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot open the consent window");
                return;
            }
        },
    };
    let showing = window.is_visible().unwrap_or(false);
    if !showing {
        let _ = window.center();
        let _ = window.show();
        desktop.consent_visible();
    }
    if focus || !showing {
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

fn build_consent(app: &AppHandle, visible: bool) -> tauri::Result<tauri::WebviewWindow> {
    let window = WebviewWindowBuilder::new(app, CONSENT, WebviewUrl::App("consent.html".into()))
        .title("Gatehouse: allow access?")
        .inner_size(460.0, 600.0)
        .resizable(false)
        .maximizable(false)
        .minimizable(false)
        .always_on_top(true)
        .visible(visible)
        .focused(visible)
        .center()
        .build()?;
    if visible {
        app.state::<Desktop>().consent_visible();
    }
    Ok(window)
}

pub fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}
