//! The person's queue: everything waiting for a decision (consent requests,
//! step-ups, held calls, changed tools), as the CLI and the consent window show it.

use serde::{Deserialize, Serialize};

use crate::clock::UnixMs;
use crate::gateway::pinning::describe_change;
use crate::oauth::authorize::redirect_host;
use crate::scope::ToolInfo;
use crate::store::clients::{self, Client, ClientKind};
use crate::store::{consent, grants, held_calls, pins, Store, StoreError};

/// What kind of decision a pending item asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingKindView {
    /// An agent asks for tools on a server for the first time.
    Authorization,
    /// An agent that holds a grant asks for more tools.
    StepUp,
    /// A call to an ask-every-time tool is held.
    ToolCall,
    /// A granted tool changed on the server and is blocked.
    ToolChanged,
}

/// Something waiting for the person, as they see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingView {
    pub id: String,
    pub kind: PendingKindView,
    pub client_id: String,
    pub client_name: String,
    pub verified: bool,
    /// The https domain of a verified (metadata document) client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_domain: Option<String>,
    /// Where the browser returns (authorization and step-up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_host: Option<String>,
    pub server: String,
    /// The phrase also shown on the waiting browser page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phrase: Option<String>,
    /// The tools to decide on: requested (or, for a step-up, the new ones), the held call's tool, or the changed tool.
    pub tools: Vec<ToolInfo>,
    /// For a step-up: what the agent already holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted_tools: Vec<String>,
    /// For a held call: its arguments (redacted, size-capped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<serde_json::Value>,
    /// For a changed tool: what changed, one line per field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// Who asks, as the person should see it: name, verified or not, and the verified domain.
fn who(client: Option<&Client>, client_id: &str) -> (String, bool, Option<String>) {
    match client {
        Some(c) => (
            c.name.clone(),
            c.kind.is_verified(),
            (c.kind == ClientKind::MetadataDocument)
                .then(|| {
                    url::Url::parse(&c.client_id)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_string))
                })
                .flatten(),
        ),
        None => (client_id.to_string(), false, None),
    }
}

/// Everything pending, oldest first.
pub fn list(store: &Store, now: UnixMs) -> Result<Vec<PendingView>, StoreError> {
    store.read(|c| {
        let mut views = Vec::new();
        let view =
            |client_id: &str, kind, server: &str, created_at| -> Result<PendingView, StoreError> {
                let (client_name, verified, verified_domain) =
                    who(clients::get(c, client_id)?.as_ref(), client_id);
                Ok(PendingView {
                    id: String::new(),
                    kind,
                    client_id: client_id.to_string(),
                    client_name,
                    verified,
                    verified_domain,
                    redirect_host: None,
                    server: server.to_string(),
                    phrase: None,
                    tools: Vec::new(),
                    granted_tools: Vec::new(),
                    arguments: None,
                    changes: Vec::new(),
                    created_at,
                    expires_at: None,
                })
            };
        for r in consent::pending(c, now)? {
            let base = match &r.base_grant_id {
                Some(id) => grants::get(c, id)?,
                None => None,
            };
            let kind = if base.is_some() {
                PendingKindView::StepUp
            } else {
                PendingKindView::Authorization
            };
            views.push(PendingView {
                id: r.id.clone(),
                redirect_host: Some(redirect_host(&r.redirect_uri)),
                phrase: Some(r.phrase.clone()),
                tools: r.tools.clone(),
                granted_tools: base.map(|g| g.tools).unwrap_or_default(),
                expires_at: Some(r.expires_at),
                ..view(&r.client_id, kind, &r.server, r.created_at)?
            });
        }
        for call in held_calls::pending(c, now)? {
            let tool = ToolInfo {
                name: call.tool.clone(),
                title: None,
                description: String::new(),
                risk: crate::scope::Risk::Destructive,
                pin: String::new(),
                definition: serde_json::Value::Null,
            };
            let described = pins::for_grant(c, &call.grant_id)?
                .into_iter()
                .find(|p| p.tool == call.tool);
            let tool = described
                .and_then(|p| ToolInfo::from_mcp(&p.definition))
                .unwrap_or(tool);
            views.push(PendingView {
                id: call.id.clone(),
                tools: vec![tool],
                arguments: Some(call.arguments.clone()),
                expires_at: Some(call.expires_at),
                ..view(
                    &call.client_id,
                    PendingKindView::ToolCall,
                    &call.server,
                    call.created_at,
                )?
            });
        }
        for review in pins::pending_reviews(c)? {
            views.push(PendingView {
                id: review.id.clone(),
                tools: ToolInfo::from_mcp(&review.new_definition)
                    .into_iter()
                    .collect(),
                changes: describe_change(&review.old_definition, &review.new_definition),
                ..view(
                    &review.client_id,
                    PendingKindView::ToolChanged,
                    &review.server,
                    review.created_at,
                )?
            });
        }
        views.sort_by_key(|v| v.created_at);
        Ok(views)
    })
}
