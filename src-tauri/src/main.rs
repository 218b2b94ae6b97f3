//! `gatehouse-desktop`: the Gatehouse core in-process, with its native
//! consent window, live audit timeline, agents view and tray.
//!
//! - [`shell`]: windows, tray, single instance, the live event relay.
//! - [`commands`]: the IPC commands, thin adapters over the core API.
//! - [`ipc`]: the types the UI sees; TypeScript bindings are generated from them.
//! - [`options`]: command line and environment.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod ipc;
mod options;
mod shell;

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
    match shell::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-desktop: {e:#}");
            ExitCode::FAILURE
        }
    }
}
