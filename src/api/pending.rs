//! The person's queue: everything waiting for a decision (consent requests,
//! step-ups, held calls, changed tools), as the CLI and the consent window show
//! it, and the decisions on it. Each item has a typed [`PendingId`]; its wire
//! form is the id the person sees (`cr_…`, `hc_…`, `tr_…`).

use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::arguments::{self, ArgumentField};
use super::views::Lookalike;
use super::{Actor, Error, ErrorCode, Gatehouse, Grant, HeldCall, Result, Tool, ToolReview};
use crate::clock::{self, UnixMs};
use crate::gateway::{catalog, pinning};
use crate::oauth::authorize::redirect_host;
use crate::oauth::consent::{self, AskChoice, DurationChoice, ToolChoice};
use crate::oauth::{agents, rules};
use crate::store::clients::{self, Client};
use crate::store::programs::{self, Owner};
use crate::store::rules as rule_table;
use crate::store::{consent as requests, grants, held_calls, pins, StoreError};
use crate::tools::{Instructions, Risk, ToolInfo};

/// Names one pending item, and so which kind of decision it takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PendingId {
    /// A consent request or step-up (`cr_…`).
    Consent(String),
    /// A held call to an ask-every-time tool (`hc_…`).
    HeldCall(String),
    /// A changed tool up for review (`tr_…`).
    ToolReview(String),
}

impl PendingId {
    /// Reads an id as the person types it.
    pub fn parse(id: &str) -> Result<PendingId> {
        let kind = match id.get(..3) {
            Some("cr_") => PendingId::Consent,
            Some("hc_") => PendingId::HeldCall,
            Some("tr_") => PendingId::ToolReview,
            _ => {
                return Err(Error::bad_request(format!(
                    "{id:?} is not a pending request id (they start with cr_, hc_ or tr_); see `gatehouse pending`"
                )))
            }
        };
        Ok(kind(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            PendingId::Consent(id) | PendingId::HeldCall(id) | PendingId::ToolReview(id) => id,
        }
    }
}

impl fmt::Display for PendingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PendingId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PendingId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PendingId::parse(&text).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl ts_rs::TS for PendingId {
    type WithoutGenerics = Self;
    fn name() -> String {
        "string".into()
    }
    fn inline() -> String {
        "string".into()
    }
    fn decl() -> String {
        panic!("PendingId is a string on the wire")
    }
    fn decl_concrete() -> String {
        panic!("PendingId is a string on the wire")
    }
    fn inline_flattened() -> String {
        panic!("PendingId is a string on the wire")
    }
}

/// What kind of decision a pending item asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
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
    /// The server's instructions (what the agent's model is told about it)
    /// changed; the agent keeps the ones it had (perhaps none) until the new
    /// are approved.
    InstructionsChanged,
}

/// Something waiting for the person, as they see it.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct PendingItem {
    pub id: PendingId,
    pub kind: PendingKind,
    pub client_id: String,
    /// What the agent calls itself (a claim unless `verified`).
    pub client_name: String,
    pub verified: bool,
    /// The https domain of a verified (metadata document) client.
    pub verified_domain: Option<String>,
    /// Another agent, registered earlier, whose name looks like this one's.
    pub lookalike_of: Option<super::views::Lookalike>,
    /// The program that registered the agent, as the kernel saw it (evidence,
    /// where the name is a claim); none when unknown.
    pub program: Option<crate::peer::Program>,
    /// For a consent request: what the agent's rules say about some of its
    /// tools (the window starts from these).
    pub rule_choices: Vec<rules::RuleChoice>,
    /// Where the browser returns (authorization and step-up).
    pub redirect_host: Option<String>,
    pub server: String,
    /// Also shown on the waiting browser page, so the person can match the two.
    pub phrase: Option<String>,
    /// The tools to decide on: requested, the new ones of a step-up, the held
    /// call's, or the changed one.
    pub tools: Vec<Tool>,
    /// For a step-up: what the agent already holds.
    pub granted_tools: Vec<String>,
    /// For a held call: its arguments, whole (values under secret-looking keys redacted).
    #[ts(type = "unknown")]
    pub arguments: Option<serde_json::Value>,
    /// For a held call: its arguments in reading order, with what is cut said.
    pub argument_fields: Vec<ArgumentField>,
    /// For a changed tool: what changed, one line per field.
    pub changes: Vec<String>,
    /// For a first authorization: what the server tells the agent's model
    /// (its `instructions`), which approving pins with the new grant unless
    /// something was decided about the agent's instructions there before.
    pub instructions: Option<String>,
    #[ts(type = "number")]
    pub created_at: UnixMs,
    #[ts(type = "number | null")]
    pub expires_at: Option<UnixMs>,
}

/// Which pending item a decision is about.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// One item by its id.
    Id(String),
    /// The one pending consent request of the agent with exactly this name
    /// or client id, as the deciding face last listed it.
    Client(String),
}

/// The pending items each face has listed: a decision by name binds to what
/// that face was shown, never to a request that appeared since.
#[derive(Default)]
pub(crate) struct Shown(Mutex<HashSet<(Actor, PendingId)>>);

impl Shown {
    fn record(&self, actor: Actor, items: &[PendingItem]) {
        let mut shown = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let pending: HashSet<&PendingId> = items.iter().map(|i| &i.id).collect();
        shown.retain(|(_, id)| pending.contains(id));
        shown.extend(items.iter().map(|i| (actor, i.id.clone())));
    }

    fn contains(&self, actor: Actor, id: &PendingId) -> bool {
        let shown = self.0.lock().unwrap_or_else(|p| p.into_inner());
        shown.contains(&(actor, id.clone()))
    }
}

/// What the person allows: which of the requested tools, which of them ask
/// every time, and for how long (a held call or changed tool ignores these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Approval {
    pub tools: ToolChoice,
    /// Which granted tools are held for a decision on every call (default: the destructive ones).
    #[serde(default)]
    pub ask: AskChoice,
    pub duration: DurationChoice,
    /// Let the agent see the tools it was not granted and ask for one by
    /// calling it (a step-up); off by default.
    #[serde(default)]
    pub ask_for_more: bool,
    /// Remember these choices for this agent on this server (rules applied
    /// the next time it asks).
    #[serde(default)]
    pub remember: bool,
}

/// What an approval produced.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Decided {
    /// A consent request: the new (or widened) grant.
    Grant(Grant),
    /// A held call, allowed this once.
    Call(HeldCall),
    /// A changed tool, re-approved.
    Review(ToolReview),
}

impl Gatehouse {
    /// Everything pending, oldest first.
    pub fn pending(&self) -> Result<Vec<PendingItem>> {
        Ok(self.store().read(|c| queue(c, clock::now()))?)
    }

    /// Everything pending, as `actor` is about to show it to the person (a
    /// later decision by name binds to what was shown: [`Gatehouse::find_pending`]).
    pub fn pending_shown(&self, actor: Actor) -> Result<Vec<PendingItem>> {
        let items = self.pending()?;
        self.shown.record(actor, &items);
        Ok(items)
    }

    /// The one pending item a target names, for a decision by `actor`.
    ///
    /// By id: that item. By agent (its exact name or client id): its one
    /// pending consent request (held calls and changed tools need their id);
    /// more than one is `Ambiguous` and lists them. An approval by agent binds
    /// to what `actor` last listed: a request that appeared since (an agent
    /// that replaced its request, asking for more) is a `Conflict`.
    pub fn find_pending(
        &self,
        target: &Target,
        actor: Actor,
        approving: bool,
    ) -> Result<PendingId> {
        let pending = self.pending()?;
        let name = match target {
            Target::Id(id) => {
                let id = PendingId::parse(id)?;
                return pending
                    .into_iter()
                    .map(|p| p.id)
                    .find(|p| *p == id)
                    .ok_or_else(|| not_pending(id.as_str()));
            }
            Target::Client(name) => name,
        };
        let matching: Vec<PendingItem> = pending
            .into_iter()
            .filter(|p| matches!(p.kind, PendingKind::Authorization | PendingKind::StepUp))
            .filter(|p| &p.client_id == name || &p.client_name == name)
            .collect();
        match matching.as_slice() {
            [] => Err(Error::not_found(format!(
                "no pending request from {name:?} (the exact name or client id); see `gatehouse pending`"
            ))),
            [one] if approving && !self.shown.contains(actor, &one.id) => Err(Error::new(
                ErrorCode::Conflict,
                format!(
                    "the request from {name:?} ({}) is not one you have seen: it arrived (or replaced another) after you last listed the pending requests. Run `gatehouse pending`, check it, and approve it by its id",
                    one.id
                ),
            )),
            [one] => Ok(one.id.clone()),
            many => {
                let listed: Vec<String> = many.iter().map(candidate).collect();
                Err(Error::new(
                    ErrorCode::Ambiguous,
                    format!(
                        "{name:?} names {} pending requests; approve or deny one by its id:\n{}",
                        many.len(),
                        listed.join("\n")
                    ),
                ))
            }
        }
    }

    /// The person says yes: a consent request (the chosen tools, ask-every-time
    /// set and duration), a held call (allowed once) or a changed tool (re-approved).
    pub fn approve(&self, id: &PendingId, approval: &Approval, actor: Actor) -> Result<Decided> {
        let (actor, now) = (self.actor_name(actor), clock::now());
        match id {
            PendingId::Consent(id) => {
                let Approval {
                    tools,
                    ask,
                    duration,
                    ask_for_more,
                    remember,
                } = approval;
                let asked = self.store().read(|c| requests::get(c, id))?;
                let mut grant =
                    consent::approve(self.auth(), id, tools, ask, *duration, &actor, now)?;
                if *ask_for_more && !grant.may_ask_more {
                    grant = agents::set_may_ask_more(self.auth(), &grant.id, true, &actor, now)?;
                }
                if let (true, Some(asked)) = (*remember, asked) {
                    let kept = rules::remembered(&asked.tools, &grant.tools, &grant.ask_tools);
                    for (target, action) in kept {
                        let server = Some(asked.server.as_str());
                        rules::add(
                            self.auth(),
                            &asked.client_id,
                            server,
                            target,
                            action,
                            &actor,
                            now,
                        )?;
                    }
                }
                Ok(Decided::Grant(grant))
            }
            PendingId::HeldCall(id) => {
                let call = self
                    .gateway()
                    .holds()
                    .decide(self.store(), id, true, &actor, now)?;
                call.map(Decided::Call).ok_or_else(|| not_pending(id))
            }
            PendingId::ToolReview(id) => {
                let review = pinning::decide_review(self.store(), id, true, &actor, now)?;
                review.map(Decided::Review).ok_or_else(|| not_pending(id))
            }
        }
    }

    /// The person says no. Nothing is granted; a held call gets an error.
    pub fn deny(&self, id: &PendingId, actor: Actor) -> Result<()> {
        let (actor, now) = (self.actor_name(actor), clock::now());
        let decided = match id {
            PendingId::Consent(id) => consent::deny(self.auth(), id, &actor, now).map(|_| true)?,
            PendingId::HeldCall(id) => {
                let call = self
                    .gateway()
                    .holds()
                    .decide(self.store(), id, false, &actor, now)?;
                call.is_some()
            }
            PendingId::ToolReview(id) => {
                pinning::decide_review(self.store(), id, false, &actor, now)?.is_some()
            }
        };
        if decided {
            Ok(())
        } else {
            Err(not_pending(id.as_str()))
        }
    }
}

/// One line that tells a pending request from others that look like it.
fn candidate(p: &PendingItem) -> String {
    let tools: Vec<&str> = p.tools.iter().map(|t| t.name.as_str()).collect();
    format!(
        "{}  {} (client id {}) wants {} on {:?}; phrase {}",
        p.id,
        p.client_name,
        p.client_id,
        tools.join(", "),
        p.server,
        p.phrase.as_deref().unwrap_or("-")
    )
}

fn not_pending(id: &str) -> Error {
    Error::not_found(format!("no pending request {id}; see `gatehouse pending`"))
}

/// Who asks, as the person should see it: name, verified or not, the
/// verified domain, and an earlier agent whose name looks the same.
fn who(
    client: Option<&Client>,
    client_id: &str,
    all: &[Client],
) -> (String, bool, Option<String>, Option<Lookalike>) {
    match client {
        Some(c) => (
            c.name.clone(),
            c.is_verified(),
            c.verified_domain(),
            Lookalike::of(c, all),
        ),
        None => (client_id.to_string(), false, None, None),
    }
}

/// Reads the queue: consent requests, held calls and reviews, oldest first.
fn queue(
    c: &rusqlite::Connection,
    now: UnixMs,
) -> std::result::Result<Vec<PendingItem>, StoreError> {
    let all = clients::list(c)?;
    let item = |id: PendingId,
                kind,
                client_id: &str,
                server: &str,
                created_at|
     -> std::result::Result<PendingItem, StoreError> {
        let client = all.iter().find(|c| c.client_id == client_id);
        let (client_name, verified, verified_domain, lookalike_of) = who(client, client_id, &all);
        Ok(PendingItem {
            id,
            kind,
            client_id: client_id.to_string(),
            client_name,
            verified,
            verified_domain,
            lookalike_of,
            program: programs::get(c, Owner::Client(client_id))?,
            rule_choices: Vec::new(),
            redirect_host: None,
            server: server.to_string(),
            phrase: None,
            tools: Vec::new(),
            granted_tools: Vec::new(),
            arguments: None,
            argument_fields: Vec::new(),
            changes: Vec::new(),
            instructions: None,
            created_at,
            expires_at: None,
        })
    };
    let mut items = Vec::new();
    for r in requests::pending(c, now)? {
        // As the approval reads it: a step-up whose grant ended makes a new grant.
        let base = match &r.base_grant_id {
            Some(id) => grants::get(c, id)?.filter(|g| g.is_active(now)),
            None => None,
        };
        let kind = if base.is_some() {
            PendingKind::StepUp
        } else {
            PendingKind::Authorization
        };
        let id = PendingId::Consent(r.id.clone());
        items.push(PendingItem {
            redirect_host: Some(redirect_host(&r.redirect_uri)),
            phrase: Some(r.phrase.clone()),
            tools: r.tools.iter().map(Tool::from).collect(),
            instructions: match base {
                None => r.instructions.as_ref().and_then(Instructions::text),
                Some(_) => None,
            },
            granted_tools: base.map(|g| g.tools).unwrap_or_default(),
            expires_at: Some(r.expires_at),
            rule_choices: rules::choices(
                &rule_table::list(c, Some(&r.client_id))?,
                &r.server,
                &r.tools,
            ),
            ..item(id, kind, &r.client_id, &r.server, r.created_at)?
        });
    }
    for call in held_calls::pending(c, now)? {
        let pin = pins::for_tool(c, &call.grant_id, &call.tool)?;
        let schema = pin.as_ref().and_then(|p| p.definition.get("inputSchema"));
        let argument_fields = arguments::fields(&call.arguments, schema);
        let described = pin.as_ref().and_then(|p| catalog::tool_info(&p.definition));
        let tool = described.unwrap_or_else(|| ToolInfo {
            name: call.tool.clone(),
            title: None,
            description: String::new(),
            risk: Risk::Destructive,
            pin: String::new(),
            definition: serde_json::Value::Null,
        });
        let id = PendingId::HeldCall(call.id.clone());
        items.push(PendingItem {
            tools: vec![Tool::from(&tool)],
            arguments: Some(call.arguments.clone()),
            argument_fields,
            expires_at: Some(call.expires_at),
            ..item(
                id,
                PendingKind::ToolCall,
                &call.client_id,
                &call.server,
                call.created_at,
            )?
        });
    }
    for review in pins::pending_reviews(c, now)? {
        let id = PendingId::ToolReview(review.id.clone());
        let (kind, tools) = if review.tool == pinning::INSTRUCTIONS {
            (PendingKind::InstructionsChanged, Vec::new())
        } else {
            let tools = catalog::tool_info(&review.new_definition);
            (
                PendingKind::ToolChanged,
                tools.iter().map(Tool::from).collect(),
            )
        };
        items.push(PendingItem {
            tools,
            changes: pinning::describe_change_of(
                &review.tool,
                &review.old_definition,
                &review.new_definition,
            ),
            ..item(
                id,
                kind,
                &review.client_id,
                &review.server,
                review.created_at,
            )?
        });
    }
    items.sort_by_key(|v| v.created_at);
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_ids_say_what_they_name() {
        assert_eq!(
            PendingId::parse("hc_0a1b").unwrap(),
            PendingId::HeldCall("hc_0a1b".into())
        );
        assert_eq!(
            PendingId::parse("cr_0a1b").unwrap(),
            PendingId::Consent("cr_0a1b".into())
        );
        assert_eq!(
            PendingId::parse("tr_0a1b").unwrap(),
            PendingId::ToolReview("tr_0a1b".into())
        );
        assert_eq!(
            PendingId::parse("gr_0a1b").unwrap_err().code,
            super::super::ErrorCode::BadRequest
        );
        let id: PendingId = serde_json::from_str("\"tr_9\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"tr_9\"");
        assert!(serde_json::from_str::<PendingId>("\"x\"").is_err());
    }
}
