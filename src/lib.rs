//! Gatehouse: the local OAuth 2.1 authorization server and MCP gateway that
//! decides which AI agents may use which tools on this machine.
//!
//! The same core runs inside the desktop app and as `gatehouse serve`. Both
//! faces drive it through [`api`] only: the CLI over the [`control`] socket,
//! the app in-process. Nothing here depends on Tauri.
//!
//! Map of the code (the crate-private modules are not reachable from a face):
//! - [`api`]: the one surface both faces call, its view types and its error.
//! - [`daemon`]: the composition root: binds, starts the servers and upkeep.
//! - [`control`]: the local control channel (Unix socket) the CLI drives.
//! - [`config`]: the TOML file and its validation. [`clock`]: time at the edges.
//! - [`demo`]: the built-in demo MCP server.
//! - `http`: the axum routers; the one place protocol errors become HTTP responses.
//! - `oauth`: the authorization server (metadata, registration, authorize,
//!   consent, token, bearer checks, revocation, introspection).
//! - `gateway`: the MCP gateway (sessions, one request's handling, policy,
//!   holds, pinning, catalog, upstream stdio and HTTP connections).
//! - `store`: the SQLite file, one module per table family.
//! - `audit`: the event model, redaction, filters, export.
//! - `tools`: what a server offers (tools, risk classes). `crypto`: random
//!   ids, hashes, PKCE. `credentials`: upstream secrets in the OS keychain.
//!   `peer`: which program is on the other end of a loopback connection.

pub mod api;
pub mod browser;
pub mod clock;
pub mod config;
pub mod connect;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod private;
pub mod text;

pub(crate) mod audit;
pub(crate) mod credentials;
pub(crate) mod crypto;
pub(crate) mod fetch;
pub(crate) mod gateway;
pub(crate) mod http;
pub(crate) mod limits;
pub(crate) mod oauth;
pub(crate) mod peer;
pub(crate) mod store;
pub(crate) mod tools;
pub(crate) mod upstream_oauth;

#[cfg(test)]
mod testing;

#[doc(hidden)]
pub mod bench;
#[doc(hidden)]
pub mod fuzzing;

pub use api::Gatehouse;
pub use config::Config;
