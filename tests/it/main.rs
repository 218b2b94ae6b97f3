//! Gatehouse's integration tests, one binary: each module is a family of
//! scenarios against a real Gatehouse (HTTP on a loopback port, a real SQLite
//! file), driven by real clients: the `oauth2` crate, the CLI over the control
//! socket, the official MCP TypeScript and Python SDKs, real MCP servers.
//!
//! - `flow`: the whole OAuth flow and a tool call, revocation, introspection.
//! - `lifecycle`: denial and timeout, reloads, refresh reuse, restarts,
//!   failing upstreams, CIMD, the live log, the CLI's messages, shutdown.
//! - `per_tool`: step-up, ask-every-time, pinning, resources and prompts.
//! - `attacks`: the attack suite, one named case per attack (see its module doc).
//! - `bridge`: a stdio-only client (the TypeScript SDK) through `gatehouse bridge`.
//! - `clients`, `connect`: pre-registered clients; `gatehouse connect` on every client's file.
//! - `matrix`: every SDK client through every scenario; writes the table in docs/CLIENTS.md.
//! - `bad_input`: hostile and malformed requests get standard errors and
//!   change nothing.
//! - `secrets`: upstream secrets reach only the upstream.
//! - `golden`: the wire formats, byte for byte (`UPDATE_GOLDEN=1` rewrites them).
//! - `interop`, `interop_servers`: the official SDK clients and real servers
//!   (needs `scripts/setup-interop`).

// Tests wait for real servers and clients in real time.
#![allow(clippy::disallowed_methods)]

mod support;

mod attacks;
mod bad_input;
mod bridge;
mod clients;
mod conformance;
mod connect;
mod durability;
mod flow;
mod golden;
mod interop;
mod interop_servers;
mod lifecycle;
mod log_cli;
mod matrix;
mod pause;
mod per_tool;
mod program;
mod retention;
mod rules;
mod secrets;
mod servers;
mod settings;
mod upstream_login;
