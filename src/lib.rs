//! Gatehouse core: the local OAuth 2.1 authorization server and MCP gateway
//! that decides which AI agents may use which tools on this machine.
//!
//! The same core runs inside the desktop app and as `gatehouse serve`; the
//! CLI and the app drive it through [`control`]. Nothing here depends on Tauri.
//!
//! Map of the code:
//! - [`config`]: the TOML file and its validation.
//! - [`store`]: the SQLite file (clients, consent requests, grants, codes, tokens, audit).
//! - [`audit`]: the audit event model, written in the same transaction as the change.
//! - [`oauth`]: the authorization server (metadata, registration, authorize, consent, token, revoke, introspect).
//! - [`gateway`]: the MCP gateway (bearer checks, per-tool policy, upstream servers).
//! - [`http`]: the axum routers; the one place protocol errors become HTTP responses.
//! - [`control`]: the local control channel (Unix socket) for the CLI and the app.
//! - [`core`]: the running Gatehouse: ties the pieces together and starts the servers.

pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod core;
pub mod demo;
pub mod gateway;
pub mod http;
pub mod oauth;
pub mod pending;
pub mod scope;
pub mod secret;
pub mod secrets;
pub mod store;

pub use crate::core::{Gatehouse, RunningServer};
pub use config::Config;
