//! The tray icon: how many requests wait, and a way back to the windows.

use gatehouse::api::Actor;
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager};

use crate::state::{lock, Desktop};
use crate::windows;

pub struct Tray {
    icon: TrayIcon,
    waiting: MenuItem<tauri::Wry>,
    pause: MenuItem<tauri::Wry>,
    /// What the icon shows: requests waiting, and whether every agent is paused.
    shown: std::sync::Mutex<(usize, bool)>,
}

pub fn create(app: &AppHandle) -> tauri::Result<Tray> {
    let waiting = MenuItem::with_id(app, "review", "No requests waiting", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Gatehouse", true, None::<&str>)?;
    let pause = MenuItem::with_id(app, "pause", "Pause all agents", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Gatehouse", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&waiting, &open, &pause, &separator, &quit])?;
    let icon = TrayIconBuilder::with_id("gatehouse")
        .icon(Image::from_bytes(include_bytes!("../../icons/tray.png"))?)
        .tooltip("Gatehouse")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => windows::show_main(app),
            "review" => windows::open_consent(app, true),
            "pause" => toggle_pause(app),
            "quit" => app.exit(0),
            _ => {}
        })
        .build(app)?;
    Ok(Tray {
        icon,
        waiting,
        pause,
        shown: Default::default(),
    })
}

/// Pauses every agent, or resumes them when they are paused.
fn toggle_pause(app: &AppHandle) {
    let gh = &app.state::<Desktop>().gh;
    let paused = gh.status().is_ok_and(|s| s.paused.all.is_some());
    let result = if paused {
        gh.resume(None, Actor::Desktop)
    } else {
        gh.pause(None, Actor::Desktop)
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "cannot pause or resume the agents");
    }
}

impl Tray {
    /// Shows how many requests wait (an accent icon and a count when any do).
    pub fn show_pending(&self, pending: usize) {
        self.update(|shown| shown.0 = pending);
    }

    /// Shows whether every agent is paused (a grey icon, and the menu item to resume).
    pub fn show_paused(&self, paused: bool) {
        self.update(|shown| shown.1 = paused);
    }

    fn update(&self, change: impl FnOnce(&mut (usize, bool))) {
        let (pending, paused) = {
            let mut shown = lock(&self.shown);
            change(&mut shown);
            *shown
        };
        self.show(pending, paused);
    }

    fn show(&self, pending: usize, paused: bool) {
        let (icon, label, title): (&[u8], String, Option<String>) = match pending {
            0 => (
                include_bytes!("../../icons/tray.png"),
                "No requests waiting".into(),
                None,
            ),
            1 => (
                include_bytes!("../../icons/tray-pending.png"),
                "Review 1 waiting request…".into(),
                Some("1".into()),
            ),
            n => (
                include_bytes!("../../icons/tray-pending.png"),
                format!("Review {n} waiting requests…"),
                Some(n.to_string()),
            ),
        };
        let icon: &[u8] = match (paused, pending) {
            (true, 0) => include_bytes!("../../icons/tray-paused.png"),
            (true, _) => include_bytes!("../../icons/tray-paused-pending.png"),
            _ => icon,
        };
        if let Ok(image) = Image::from_bytes(icon) {
            let _ = self.icon.set_icon(Some(image));
        }
        let _ = self.icon.set_title(title.as_deref());
        let state = if paused { "agents paused; " } else { "" };
        let _ = self.icon.set_tooltip(Some(format!(
            "Gatehouse: {state}{}",
            label.trim_end_matches('…')
        )));
        let _ = self.waiting.set_text(label);
        let _ = self.waiting.set_enabled(pending > 0);
        let _ = self.pause.set_text(if paused {
            "Resume agents"
        } else {
            "Pause all agents"
        });
    }
}
