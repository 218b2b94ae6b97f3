//! The IPC contract between the Rust side and the web UI: the shapes the
//! commands take and return and the events they emit. TypeScript bindings are
//! generated from these types into `ui/src/bindings.ts` (the test at the end
//! fails when that file is stale; `UPDATE_BINDINGS=1 cargo test` rewrites it).
//!
//! These are view types, not the core's storage types: they carry only what a
//! window shows (no secret hashes, no raw client metadata), and `From`
//! conversions keep them in step with the core.

use gatehouse::audit::{self, AuditEvent as CoreEvent};
use gatehouse::control::{PendingKindView, PendingView};
use gatehouse::oauth::agents::{self, Agent as CoreAgent};
use gatehouse::oauth::consent::DurationChoice;
use gatehouse::scope::{self, ToolInfo};
use gatehouse::store::clients::ClientKind as CoreClientKind;
use gatehouse::store::grants::{Duration as CoreDuration, Grant as CoreGrant};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// How much harm a tool can do, from its MCP annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Read,
    Write,
    Destructive,
}

impl From<scope::Risk> for Risk {
    fn from(r: scope::Risk) -> Risk {
        match r {
            scope::Risk::Read => Risk::Read,
            scope::Risk::Write => Risk::Write,
            scope::Risk::Destructive => Risk::Destructive,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Tool {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub risk: Risk,
}

impl From<ToolInfo> for Tool {
    fn from(t: ToolInfo) -> Tool {
        Tool {
            name: t.name,
            title: t.title,
            description: t.description,
            risk: t.risk.into(),
        }
    }
}

/// What a pending item asks the person to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum PendingKind {
    /// An agent asks for tools on a server for the first time.
    Authorization,
    /// An agent that holds a grant asks for more tools.
    StepUp,
    /// A call to an ask-every-time tool is held until the person decides.
    ToolCall,
    /// A granted tool changed on the server and is blocked until re-approved.
    ToolChanged,
}

/// Something waiting for the person (the consent window shows them one at a time).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct PendingRequest {
    pub id: String,
    pub kind: PendingKind,
    pub client_id: String,
    pub client_name: String,
    pub verified: bool,
    /// The https domain of a verified (metadata document) client.
    pub verified_domain: Option<String>,
    /// Where the browser returns (authorization and step-up).
    pub redirect_host: Option<String>,
    pub server: String,
    /// Also shown on the waiting browser page, so the person can match the two.
    pub phrase: Option<String>,
    /// The tools to decide on: requested, the new ones of a step-up, the held call's, or the changed one.
    pub tools: Vec<Tool>,
    /// For a step-up: what the agent already holds.
    pub granted_tools: Vec<String>,
    /// For a held call: its arguments (redacted, size-capped).
    #[ts(type = "unknown")]
    pub arguments: Option<serde_json::Value>,
    /// For a changed tool: what changed, one line per field.
    pub changes: Vec<String>,
    #[ts(type = "number")]
    pub created_at: i64,
    #[ts(type = "number | null")]
    pub expires_at: Option<i64>,
}

impl From<PendingView> for PendingRequest {
    fn from(p: PendingView) -> PendingRequest {
        PendingRequest {
            id: p.id,
            kind: match p.kind {
                PendingKindView::Authorization => PendingKind::Authorization,
                PendingKindView::StepUp => PendingKind::StepUp,
                PendingKindView::ToolCall => PendingKind::ToolCall,
                PendingKindView::ToolChanged => PendingKind::ToolChanged,
            },
            client_id: p.client_id,
            client_name: p.client_name,
            verified: p.verified,
            verified_domain: p.verified_domain,
            redirect_host: p.redirect_host,
            server: p.server,
            phrase: p.phrase,
            tools: p.tools.into_iter().map(Tool::from).collect(),
            granted_tools: p.granted_tools,
            arguments: p.arguments,
            changes: p.changes,
            created_at: p.created_at,
            expires_at: p.expires_at,
        }
    }
}

/// How long an approval lasts, as the consent window offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Duration {
    Once,
    Hour,
    Day,
    Forever,
}

impl From<Duration> for DurationChoice {
    fn from(d: Duration) -> DurationChoice {
        use gatehouse::clock::{DAY, HOUR};
        match d {
            Duration::Once => DurationChoice::Once,
            Duration::Hour => DurationChoice::For(HOUR),
            Duration::Day => DurationChoice::For(DAY),
            Duration::Forever => DurationChoice::Forever,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum GrantDuration {
    Once,
    Timed,
    Forever,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub server: String,
    pub tools: Vec<String>,
    /// Granted tools whose every call waits for the person.
    pub ask_tools: Vec<String>,
    pub duration: GrantDuration,
    #[ts(type = "number")]
    pub created_at: i64,
    #[ts(type = "number | null")]
    pub expires_at: Option<i64>,
    #[ts(type = "number | null")]
    pub revoked_at: Option<i64>,
    pub decided_by: String,
}

impl From<CoreGrant> for Grant {
    fn from(g: CoreGrant) -> Grant {
        Grant {
            id: g.id,
            client_id: g.client_id,
            server: g.server,
            tools: g.tools,
            ask_tools: g.ask_tools,
            duration: match g.duration {
                CoreDuration::Once => GrantDuration::Once,
                CoreDuration::Timed => GrantDuration::Timed,
                CoreDuration::Forever => GrantDuration::Forever,
            },
            created_at: g.created_at,
            expires_at: g.expires_at,
            revoked_at: g.revoked_at,
            decided_by: g.decided_by,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Registered itself (RFC 7591): its name is whatever it said.
    Registered,
    /// A Client ID Metadata Document from an https domain.
    MetadataDocument,
    /// Listed in the config file.
    Preconfigured,
}

/// An agent (OAuth client) with the grants in force.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Agent {
    pub client_id: String,
    pub name: String,
    pub kind: ClientKind,
    pub verified: bool,
    pub verified_domain: Option<String>,
    pub redirect_uris: Vec<String>,
    #[ts(type = "number")]
    pub first_seen: i64,
    #[ts(type = "number | null")]
    pub last_seen: Option<i64>,
    pub grants: Vec<Grant>,
}

impl From<CoreAgent> for Agent {
    fn from(a: CoreAgent) -> Agent {
        let kind = match a.client.kind {
            CoreClientKind::Registered => ClientKind::Registered,
            CoreClientKind::MetadataDocument => ClientKind::MetadataDocument,
            CoreClientKind::Preconfigured => ClientKind::Preconfigured,
        };
        let verified_domain = (kind == ClientKind::MetadataDocument)
            .then(|| url_host(&a.client.client_id))
            .flatten();
        Agent {
            client_id: a.client.client_id,
            name: a.client.name,
            kind,
            verified: a.verified,
            verified_domain,
            redirect_uris: a.client.redirect_uris,
            first_seen: a.client.created_at,
            last_seen: a.client.last_seen_at,
            grants: a.grants.into_iter().map(Grant::from).collect(),
        }
    }
}

fn url_host(url: &str) -> Option<String> {
    url::Url::parse(url).ok()?.host_str().map(str::to_string)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allowed,
    Denied,
    Error,
    Revoked,
}

impl From<audit::Outcome> for Outcome {
    fn from(o: audit::Outcome) -> Outcome {
        match o {
            audit::Outcome::Allowed => Outcome::Allowed,
            audit::Outcome::Denied => Outcome::Denied,
            audit::Outcome::Error => Outcome::Error,
            audit::Outcome::Revoked => Outcome::Revoked,
        }
    }
}

impl From<Outcome> for audit::Outcome {
    fn from(o: Outcome) -> audit::Outcome {
        match o {
            Outcome::Allowed => audit::Outcome::Allowed,
            Outcome::Denied => audit::Outcome::Denied,
            Outcome::Error => audit::Outcome::Error,
            Outcome::Revoked => audit::Outcome::Revoked,
        }
    }
}

/// One audit event (emitted live as `audit-event`).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct AuditEvent {
    #[ts(type = "number")]
    pub id: i64,
    #[ts(type = "number")]
    pub at: i64,
    /// `tool_call`, `consent_approved`, `agent_revoked`, … (see the core's `EventKind`).
    pub kind: String,
    pub outcome: Outcome,
    pub client_id: Option<String>,
    pub agent: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub grant_id: Option<String>,
    pub actor: Option<String>,
    #[ts(type = "number | null")]
    pub duration_ms: Option<i64>,
    /// Event-specific facts, e.g. the redacted argument summary of a tool call.
    #[ts(type = "unknown")]
    pub detail: serde_json::Value,
}

impl From<CoreEvent> for AuditEvent {
    fn from(e: CoreEvent) -> AuditEvent {
        AuditEvent {
            id: e.id,
            at: e.at,
            kind: e.kind.as_str().to_string(),
            outcome: e.outcome.into(),
            client_id: e.client_id,
            agent: e.agent,
            server: e.server,
            tool: e.tool,
            grant_id: e.grant_id,
            actor: e.actor,
            duration_ms: e.duration_ms,
            detail: e.detail,
        }
    }
}

/// The timeline's filter bar.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
pub struct AuditFilter {
    pub client_id: Option<String>,
    pub server: Option<String>,
    pub outcome: Option<Outcome>,
    #[ts(type = "number | null")]
    pub since: Option<i64>,
    #[ts(type = "number | null")]
    pub until: Option<i64>,
    pub text: Option<String>,
}

impl From<AuditFilter> for gatehouse::store::audit::Filter {
    fn from(f: AuditFilter) -> Self {
        gatehouse::store::audit::Filter {
            client_id: f.client_id,
            server: f.server,
            outcome: f.outcome.map(Into::into),
            since: f.since,
            until: f.until,
            text: f.text,
        }
    }
}

/// A page of the timeline, newest first. `total` is counted for first pages only.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    #[ts(type = "number | null")]
    pub total: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

/// A fronted MCP server.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Server {
    pub name: String,
    /// The URL to give to an AI client.
    pub url: String,
    /// `stdio` or `http`.
    pub transport: String,
    /// The command line, or the upstream URL.
    pub target: String,
    pub description: Option<String>,
    /// The tools, when the gateway has listed them recently.
    pub tools: Option<Vec<Tool>>,
}

/// What revoking ended.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Revoked {
    pub client_ids: Vec<String>,
    pub grants: Vec<String>,
    pub tokens: u32,
}

impl From<agents::Revoked> for Revoked {
    fn from(r: agents::Revoked) -> Revoked {
        Revoked {
            client_ids: r.client_ids,
            grants: r.grants,
            tokens: r.tokens as u32,
        }
    }
}

/// The running Gatehouse, for the Settings view and empty states.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct AppInfo {
    pub url: String,
    pub port: u16,
    pub data_dir: String,
    pub version: String,
    #[ts(type = "number")]
    pub consent_timeout_ms: i64,
    pub servers: Vec<String>,
}

/// A stable code the UI branches on (never on the message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    BadRequest,
    Ambiguous,
    /// Allow came before the consent window had been shown for a second.
    TooSoon,
    Internal,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct IpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl IpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> IpcError {
        IpcError {
            code,
            message: message.into(),
        }
    }
}

impl From<gatehouse::control::ControlError> for IpcError {
    fn from(e: gatehouse::control::ControlError) -> IpcError {
        use gatehouse::control::ErrorCode as C;
        let code = match e.code {
            C::NotFound => ErrorCode::NotFound,
            C::BadRequest => ErrorCode::BadRequest,
            C::Ambiguous => ErrorCode::Ambiguous,
            C::Internal => ErrorCode::Internal,
        };
        IpcError::new(code, e.message)
    }
}

impl From<gatehouse::oauth::consent::DecisionError> for IpcError {
    fn from(e: gatehouse::oauth::consent::DecisionError) -> IpcError {
        gatehouse::control::ControlError::from(e).into()
    }
}

impl From<agents::RevokeError> for IpcError {
    fn from(e: agents::RevokeError) -> IpcError {
        gatehouse::control::ControlError::from(e).into()
    }
}

impl From<gatehouse::store::StoreError> for IpcError {
    fn from(e: gatehouse::store::StoreError) -> IpcError {
        IpcError::new(ErrorCode::Internal, e.to_string())
    }
}

/// Event names the Rust side emits.
pub mod events {
    /// An [`super::AuditEvent`], as soon as it commits (main window).
    pub const AUDIT_EVENT: &str = "audit-event";
    /// Live events were dropped (the UI was too slow): reload the timeline.
    pub const AUDIT_LAGGED: &str = "audit-lagged";
    /// The pending consent requests, oldest first, whenever they change.
    pub const PENDING_CHANGED: &str = "pending-changed";
}

/// The whole `ui/src/bindings.ts` file.
#[cfg(test)]
fn bindings() -> String {
    let mut out = String::from(
        "// Generated from src-tauri/src/ipc.rs by `UPDATE_BINDINGS=1 cargo test -p gatehouse-desktop bindings`.\n// Do not edit by hand.\n\n",
    );
    let decls = [
        Risk::decl(),
        Tool::decl(),
        PendingKind::decl(),
        PendingRequest::decl(),
        Duration::decl(),
        GrantDuration::decl(),
        Grant::decl(),
        ClientKind::decl(),
        Agent::decl(),
        Outcome::decl(),
        AuditEvent::decl(),
        AuditFilter::decl(),
        AuditPage::decl(),
        ExportFormat::decl(),
        Server::decl(),
        Revoked::decl(),
        AppInfo::decl(),
        ErrorCode::decl(),
        IpcError::decl(),
    ];
    for d in decls {
        out.push_str("export ");
        out.push_str(&d);
        out.push_str("\n\n");
    }
    out.push_str("export const EVENTS = {\n");
    for (key, name) in [
        ("auditEvent", events::AUDIT_EVENT),
        ("auditLagged", events::AUDIT_LAGGED),
        ("pendingChanged", events::PENDING_CHANGED),
    ] {
        out.push_str(&format!("  {key}: {name:?},\n"));
    }
    out.push_str("} as const;\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_are_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
        let fresh = bindings();
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "ui/src/bindings.ts is stale: run `UPDATE_BINDINGS=1 cargo test -p gatehouse-desktop bindings` and commit it"
        );
    }

    #[test]
    fn verified_domain_is_the_document_host() {
        assert_eq!(
            url_host("https://claude.ai/oauth/client.json").as_deref(),
            Some("claude.ai")
        );
        assert_eq!(url_host("not a url"), None);
    }
}
