//! The tray icon: how many requests wait, and a way back to the windows.

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::AppHandle;

use crate::windows;

pub struct Tray {
    icon: TrayIcon,
    waiting: MenuItem<tauri::Wry>,
}

pub fn create(app: &AppHandle) -> tauri::Result<Tray> {
    let waiting = MenuItem::with_id(app, "review", "No requests waiting", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Gatehouse", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Gatehouse", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&waiting, &open, &separator, &quit])?;
    let icon = TrayIconBuilder::with_id("gatehouse")
        .icon(Image::from_bytes(include_bytes!("../../icons/tray.png"))?)
        .tooltip("Gatehouse")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => windows::show_main(app),
            "review" => windows::open_consent(app, true),
            "quit" => app.exit(0),
            _ => {}
        })
        .build(app)?;
    Ok(Tray { icon, waiting })
}

impl Tray {
    /// Shows how many requests wait (an accent icon and a count when any do).
    pub fn show_pending(&self, pending: usize) {
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
        if let Ok(image) = Image::from_bytes(icon) {
            let _ = self.icon.set_icon(Some(image));
        }
        let _ = self.icon.set_title(title.as_deref());
        let _ = self
            .icon
            .set_tooltip(Some(format!("Gatehouse: {}", label.trim_end_matches('…'))));
        let _ = self.waiting.set_text(label);
        let _ = self.waiting.set_enabled(pending > 0);
    }
}
