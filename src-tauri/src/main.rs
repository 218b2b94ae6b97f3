//! `gatehouse-desktop`: the Gatehouse core in-process, with its native
//! consent window, live audit timeline, agents view and tray. It reaches the
//! core only through `gatehouse::api` (and `daemon` to start it).
//!
//! - [`app`]: app setup, the run loop, signals.
//! - [`state`]: what every command sees (the Allow delay lives here).
//! - [`windows`]: the main window and the one consent window.
//! - [`tray`]: the tray icon and its menu.
//! - [`instance`]: one app per data directory.
//! - [`relay`]: committed audit events pushed to the windows.
//! - [`notify`]: OS notifications for what wants the person, folded per agent.
//! - [`commands`]: the IPC commands, thin adapters over `gatehouse::api`.
//! - [`bindings`]: the generated TypeScript contract (types, commands, events).
//! - [`export`]: the timeline to a file. [`options`]: command line and environment.

// The app is an edge: it reads the clock (the Allow delay, export file names).
#![allow(clippy::disallowed_methods)]
// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod app;
mod bindings;
mod commands;
mod export;
mod instance;
mod notify;
mod options;
mod relay;
mod state;
mod tray;
mod windows;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The built-in demo server is this same binary (the core starts it as `<exe> demo-server`).
    if args.first().map(String::as_str) == Some("demo-server") {
        return match gatehouse::demo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let opts = match options::Options::parse(&args, |k| std::env::var(k).ok()) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match app::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-desktop: {e:#}");
            ExitCode::FAILURE
        }
    }
}
