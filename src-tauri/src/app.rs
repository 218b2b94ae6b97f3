//! App setup: the core starts in-process, then the Tauri app with its
//! commands, windows, tray, single-instance socket, event relay and signal
//! handling. Returns when the app quits (the core is shut down cleanly first).

use tauri::{Manager, RunEvent, WindowEvent};

use crate::options::Options;
use crate::state::{lock, Desktop};
use crate::windows::{self, MAIN};

/// Starts the core in-process, then the app; returns when the app quits.
pub fn run(opts: Options) -> anyhow::Result<()> {
    let Some(instance) = crate::instance::acquire(&opts.data_dir)? else {
        println!("Gatehouse is already running; brought its window to the front.");
        return Ok(());
    };
    let mut config = gatehouse::Config::load_or_default(opts.config.as_deref())?;
    if let Some(port) = opts.port {
        config.port_override = Some(port);
    }
    let running = tauri::async_runtime::block_on(gatehouse::daemon::start(config, &opts.data_dir))?;
    // Tests and scripts read this line (the core also writes <data-dir>/server.json).
    println!("Gatehouse is running at {}", running.url());
    let gh = running.gatehouse().clone();
    let (hidden, no_tray, data_dir) = (opts.hidden, opts.no_tray, opts.data_dir.clone());
    let app = tauri::Builder::default()
        .manage(Desktop::new(
            running,
            opts.config
                .clone()
                .unwrap_or_else(gatehouse::config::default_config_path),
        ))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .invoke_handler(crate::commands::handler())
        .setup(move |app| {
            let handle = app.handle().clone();
            if !no_tray {
                match crate::tray::create(&handle) {
                    Ok(tray) => *lock(&app.state::<Desktop>().tray) = Some(tray),
                    Err(e) => tracing::warn!(error = %e, "no tray icon"),
                }
            }
            crate::instance::serve(instance, handle.clone());
            quit_on_signals(handle.clone());
            tauri::async_runtime::spawn(crate::relay::relay(handle.clone(), gh.clone()));
            windows::prepare_consent(&handle);
            windows::sync_pending(&handle);
            crate::relay::sync_paused(&handle, &gh);
            if hidden {
                if let Some(w) = app.get_webview_window(MAIN) {
                    let _ = w.hide();
                }
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the main window keeps Gatehouse running (in the tray);
            // closing the consent window leaves its requests pending (it is kept, hidden).
            if let WindowEvent::CloseRequested { api, .. } = event {
                if window.label() == MAIN || window.label() == windows::CONSENT {
                    api.prevent_close();
                    let _ = window.hide();
                }
                if window.label() == windows::CONSENT {
                    window.state::<Desktop>().consent_hidden();
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
            if let Some(running) = app.state::<Desktop>().take_running() {
                tauri::async_runtime::block_on(running.shutdown());
            }
            crate::instance::release(&data_dir);
        }
        _ => {}
    });
    Ok(())
}

/// SIGTERM and SIGINT quit like Quit in the tray (the core shuts down cleanly).
fn quit_on_signals(app: tauri::AppHandle) {
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
