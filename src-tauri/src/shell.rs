//! The desktop shell around the in-process core: the main window, the one
//! consent window, the tray, single-instance focus, and the relay that turns
//! committed audit events into Tauri events (pushed, never polled).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse::audit::EventKind;
use gatehouse::control::server::pending_views;
use gatehouse::core::RunningServer;
use gatehouse::Gatehouse;
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Emitter, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder, WindowEvent};

use crate::ipc::{self, events, AppInfo, ErrorCode, IpcError, PendingRequest};
use crate::options::Options;

/// How long the consent window shows a request before Allow works.
pub const ALLOW_DELAY: Duration = Duration::from_millis(1000);
/// Label of the consent window (its capability file names it).
pub const CONSENT: &str = "consent";
pub const MAIN: &str = "main";
const INSTANCE_SOCKET: &str = "desktop.sock";

/// The state every command sees.
pub struct Desktop {
    pub gh: Arc<Gatehouse>,
    /// Who decides, in audit events.
    pub actor: String,
    /// When the consent window first showed each request.
    shown: Mutex<HashMap<String, Instant>>,
    /// Serializes opening and closing the consent window.
    consent_window: Mutex<()>,
    tray: Mutex<Option<Tray>>,
    running: Mutex<Option<RunningServer>>,
}

struct Tray {
    icon: TrayIcon,
    waiting: MenuItem<tauri::Wry>,
}

impl Desktop {
    pub fn consent_shown(&self, request_id: &str) {
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        if shown.contains_key(request_id) {
            return;
        }
        shown.insert(request_id.to_string(), Instant::now());
        drop(shown);
        // How long the person waited for the question (the benchmark reads this line).
        let created = gatehouse::control::server::pending_views(&self.gh)
            .ok()
            .and_then(|p| p.into_iter().find(|p| p.id == request_id))
            .map(|p| p.created_at);
        if let Some(created) = created {
            tracing::info!(
                request = request_id,
                authorize_to_shown_ms = gatehouse::clock::now() - created,
                "the consent window shows a request"
            );
        }
    }

    /// Allow must not land within a second of the request appearing (a click
    /// or keystroke meant for another window must not approve anything).
    pub fn check_allow_delay(&self, request_id: &str) -> Result<(), IpcError> {
        let shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        match shown.get(request_id) {
            Some(at) if at.elapsed() >= ALLOW_DELAY - Duration::from_millis(50) => Ok(()),
            _ => Err(IpcError::new(
                ErrorCode::TooSoon,
                "the request has not been on screen for a second yet",
            )),
        }
    }

    pub fn app_info(&self) -> AppInfo {
        let config = self.gh.config();
        AppInfo {
            url: self.gh.auth.issuer.clone(),
            port: self.gh.auth.port,
            data_dir: self.gh.data_dir.display().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            consent_timeout_ms: config.consent_timeout_ms,
            servers: config.servers.keys().cloned().collect(),
        }
    }

    pub async fn servers(&self) -> Vec<ipc::Server> {
        let mut out = Vec::new();
        for (name, s) in &self.gh.config().servers {
            let (transport, target) = match &s.upstream {
                gatehouse::config::Upstream::Stdio { command, args, .. } => {
                    let mut line = vec![command.clone()];
                    line.extend(args.iter().cloned());
                    ("stdio", line.join(" "))
                }
                gatehouse::config::Upstream::Http { url, .. } => ("http", url.to_string()),
            };
            let tools = self.gh.gateway.cached_catalog(name).await;
            out.push(ipc::Server {
                name: name.clone(),
                url: self.gh.auth.resource_url(name),
                transport: transport.to_string(),
                target,
                description: s.description.clone(),
                tools: tools.map(|t| t.into_iter().map(Into::into).collect()),
            });
        }
        out
    }

    pub fn export_dir(&self) -> PathBuf {
        dirs::download_dir().unwrap_or_else(|| self.gh.data_dir.join("exports"))
    }
}

/// Writes the filtered log to a new file in `dir`.
pub fn export(
    gh: &Gatehouse,
    filter: &gatehouse::store::audit::Filter,
    format: ipc::ExportFormat,
    dir: &Path,
) -> Result<String, IpcError> {
    use gatehouse::store::audit::{self, ExportFormat};
    let (format, ext) = match format {
        ipc::ExportFormat::Jsonl => (ExportFormat::Jsonl, "jsonl"),
        ipc::ExportFormat::Csv => (ExportFormat::Csv, "csv"),
    };
    let io = |e: std::io::Error| IpcError::new(ErrorCode::Internal, format!("cannot export: {e}"));
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join(format!("gatehouse-audit-{}.{ext}", gatehouse::clock::now()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io)?);
    audit::export(gh.store(), filter, format, &mut file)
        .map_err(|e| IpcError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(path.display().to_string())
}

/// Starts the core in-process, then the app; returns when the app quits.
pub fn run(opts: Options) -> anyhow::Result<()> {
    let instance = match acquire_instance(&opts.data_dir)? {
        Some(listener) => listener,
        None => {
            println!("Gatehouse is already running; brought its window to the front.");
            return Ok(());
        }
    };
    let mut config = match &opts.config {
        Some(path) => gatehouse::Config::load(path)?,
        None => gatehouse::Config::demo(),
    };
    if let Some(port) = opts.port {
        config.port = port;
    }
    let running = tauri::async_runtime::block_on(gatehouse::core::start(config, &opts.data_dir))?;
    let gh = running.gatehouse.clone();
    // Tests and scripts read this line (the core also writes <data-dir>/server.json).
    println!("Gatehouse is running at {}", running.url());
    let desktop = Desktop {
        actor: format!("{} (desktop)", gh.auth.user),
        gh: gh.clone(),
        shown: Mutex::new(HashMap::new()),
        consent_window: Mutex::new(()),
        tray: Mutex::new(None),
        running: Mutex::new(Some(running)),
    };
    let hidden = opts.hidden;
    let no_tray = opts.no_tray;
    let data_dir = opts.data_dir.clone();
    let app = tauri::Builder::default()
        .manage(desktop)
        .invoke_handler(tauri::generate_handler![
            crate::commands::app_info,
            crate::commands::pending,
            crate::commands::consent_shown,
            crate::commands::approve,
            crate::commands::deny,
            crate::commands::audit_page,
            crate::commands::audit_export,
            crate::commands::agents,
            crate::commands::grant,
            crate::commands::servers,
            crate::commands::server_tools,
            crate::commands::revoke_agent,
            crate::commands::revoke_grant,
            crate::commands::revoke_all,
            crate::commands::show_consent,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            if !no_tray {
                match create_tray(&handle) {
                    Ok(tray) => *app.state::<Desktop>().tray.lock().unwrap() = Some(tray),
                    Err(e) => tracing::warn!(error = %e, "no tray icon"),
                }
            }
            serve_instance(instance, handle.clone());
            quit_on_signals(handle.clone());
            tauri::async_runtime::spawn(relay(handle.clone(), gh.clone()));
            sync_pending(&handle);
            if hidden {
                if let Some(w) = app.get_webview_window(MAIN) {
                    let _ = w.hide();
                }
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the main window keeps Gatehouse running (in the tray).
            if let WindowEvent::CloseRequested { api, .. } = event {
                if window.label() == MAIN {
                    api.prevent_close();
                    let _ = window.hide();
                }
            }
        })
        .build(tauri::generate_context!())?;
    app.run(move |app, event| match event {
        RunEvent::ExitRequested { api, code, .. } if code.is_none() => {
            // Windows closing is not quitting; Quit in the tray is.
            api.prevent_exit();
        }
        RunEvent::Exit => {
            let running = app.state::<Desktop>().running.lock().unwrap().take();
            if let Some(running) = running {
                tauri::async_runtime::block_on(running.shutdown());
            }
            let _ = std::fs::remove_file(data_dir.join(INSTANCE_SOCKET));
        }
        _ => {}
    });
    Ok(())
}

/// Pushes each committed audit event to the main window, and keeps the
/// consent window and the tray in step with the pending requests.
async fn relay(app: AppHandle, gh: Arc<Gatehouse>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut live = gh.store().subscribe();
    loop {
        match live.recv().await {
            Ok(event) => {
                let consent = matches!(
                    event.kind,
                    EventKind::ConsentRequested
                        | EventKind::ConsentApproved
                        | EventKind::ConsentDenied
                        | EventKind::ConsentExpired
                        | EventKind::CallHeld
                        | EventKind::CallDecided
                        | EventKind::ToolChanged
                        | EventKind::ToolReviewed
                );
                let _ = app.emit_to(MAIN, events::AUDIT_EVENT, ipc::AuditEvent::from(event));
                if consent {
                    sync_pending(&app);
                }
            }
            Err(RecvError::Lagged(_)) => {
                let _ = app.emit_to(MAIN, events::AUDIT_LAGGED, ());
                sync_pending(&app);
            }
            Err(RecvError::Closed) => break,
        }
    }
}

/// Tells every window the pending requests, updates the tray, and opens (or
/// closes) the one consent window.
pub fn sync_pending(app: &AppHandle) {
    let desktop = app.state::<Desktop>();
    let pending: Vec<PendingRequest> = match pending_views(&desktop.gh) {
        Ok(p) => p.into_iter().map(Into::into).collect(),
        Err(e) => {
            tracing::error!(error = %e.message, "cannot read the pending requests");
            return;
        }
    };
    {
        let mut shown = desktop.shown.lock().unwrap_or_else(|p| p.into_inner());
        shown.retain(|id, _| pending.iter().any(|p| &p.id == id));
    }
    let _ = app.emit(events::PENDING_CHANGED, &pending);
    if let Some(tray) = desktop
        .tray
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        update_tray(tray, pending.len());
    }
    if pending.is_empty() {
        let _guard = desktop
            .consent_window
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(w) = app.get_webview_window(CONSENT) {
            let _ = w.destroy();
        }
    } else {
        open_consent_window(app, false);
    }
}

/// Opens the consent window if it is not open (it reads the queue itself);
/// with `focus`, also brings an open one to the front.
pub fn open_consent_window(app: &AppHandle, focus: bool) {
    let desktop = app.state::<Desktop>();
    let _guard = desktop
        .consent_window
        .lock()
        .unwrap_or_else(|p| p.into_inner());
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

fn create_tray(app: &AppHandle) -> tauri::Result<Tray> {
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
            "open" => show_main(app),
            "review" => open_consent_window(app, true),
            "quit" => app.exit(0),
            _ => {}
        })
        .build(app)?;
    Ok(Tray { icon, waiting })
}

fn update_tray(tray: &Tray, pending: usize) {
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
        let _ = tray.icon.set_icon(Some(image));
    }
    let _ = tray.icon.set_title(title.as_deref());
    let _ = tray
        .icon
        .set_tooltip(Some(format!("Gatehouse: {}", label.trim_end_matches('…'))));
    let _ = tray.waiting.set_text(label);
    let _ = tray.waiting.set_enabled(pending > 0);
}

pub fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// SIGTERM and SIGINT quit like Quit in the tray (the core shuts down cleanly).
fn quit_on_signals(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        app.exit(0);
    });
}

/// One app per data directory: a second launch asks the first to show its
/// window and exits. `None` means another instance answered.
fn acquire_instance(data_dir: &Path) -> anyhow::Result<Option<UnixListener>> {
    gatehouse::core::prepare_data_dir(data_dir)?;
    let path = data_dir.join(INSTANCE_SOCKET);
    if let Ok(mut stream) = UnixStream::connect(&path) {
        stream.write_all(b"show\n")?;
        return Ok(None);
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Some(listener))
}

fn serve_instance(listener: UnixListener, app: AppHandle) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            if BufReader::new(stream).read_line(&mut line).is_ok() && line.trim() == "show" {
                show_main(&app);
            }
        }
    });
}
