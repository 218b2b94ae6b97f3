//! The audit log. Every grant, denial, token issue, refresh, revocation,
//! replay and tool call is an [`AuditEvent`], written by `store::Tx::record`
//! inside the transaction of the change it records, and published to live
//! listeners only after that commit.
//!
//! - [`event`]: what an event says.
//! - [`chain`]: every event sealed to the one before it; verification.
//! - [`filter`]: which events a view wants.
//! - [`redact`]: what of a call's arguments may be kept or shown.
//! - [`export`]: the log as JSON Lines or CSV.

pub mod chain;
pub mod event;
pub mod export;
pub mod filter;
pub mod redact;

pub use event::{AuditEvent, EventKind, NewEvent, Outcome};
pub use export::ExportFormat;
pub use filter::Filter;
pub use redact::{redact, summarize_arguments};
