//! Rules: what the person decided once for an agent ("always allow its
//! read-only tools", "always ask before its destructive ones", "never this
//! tool"), applied each time the agent asks for tools. When an agent's rules
//! decide every tool a request asks for, the request is decided at once and
//! no window appears; the audit event's actor names the rules. Otherwise the
//! person decides, with the rules' choices shown as the starting point.
//!
//! Rules apply when tools are asked for; a grant already made stays as it is
//! (revoke it, or change it, to change what it allows). They apply only to an
//! agent whose registering program is known, and the code they let through
//! is redeemed only by that program (`programs::may_redeem`): a client id is
//! public, and the flow could otherwise be started by anyone under it.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::consent::{self, AskChoice, DecisionError, DurationChoice, ToolChoice};
use super::AuthServer;
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;
use crate::config::DefaultDuration;
use crate::crypto;
use crate::store::consent::ConsentRequest;
use crate::store::programs::Owner;
use crate::store::rules::{self as table, Rule, RuleAction, RuleTarget};
use crate::store::StoreError;
use crate::tools::ToolInfo;

/// What an agent's rules say about one tool, and which rule says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct RuleChoice {
    pub tool: String,
    pub action: RuleAction,
    pub rule_id: String,
}

/// For each tool a rule covers, its choice: a rule naming the tool beats one
/// naming its risk class; among equals the most cautious wins (deny, then
/// ask, then allow).
pub fn choices(rules: &[Rule], server: &str, tools: &[ToolInfo]) -> Vec<RuleChoice> {
    tools
        .iter()
        .filter_map(|tool| {
            let applies = |r: &&Rule| r.server.as_deref().is_none_or(|s| s == server);
            let named = |r: &&Rule| r.target == RuleTarget::Tool(tool.name.clone());
            let by_risk = |r: &&Rule| r.target == RuleTarget::Risk(tool.risk) && tool.is_tool();
            let pick = |matches: &dyn Fn(&&Rule) -> bool| {
                rules
                    .iter()
                    .filter(applies)
                    .filter(|r| matches(r))
                    .max_by_key(|r| r.action)
            };
            let rule = pick(&named).or_else(|| pick(&by_risk))?;
            Some(RuleChoice {
                tool: tool.name.clone(),
                action: rule.action,
                rule_id: rule.id.clone(),
            })
        })
        .collect()
}

/// How a request was decided by rules alone.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Some tool is not covered: the person decides.
    Undecided,
    Approved,
    Denied,
}

/// Applies the agent's rules to a request that was just made.
pub fn apply(
    auth: &AuthServer,
    request: &ConsentRequest,
    now: UnixMs,
) -> Result<Applied, DecisionError> {
    let (rules, program) = auth.store.read(|c| {
        let rules = table::list(c, Some(&request.client_id))?;
        let program = crate::store::programs::get(c, Owner::Client(&request.client_id))?;
        Ok::<_, StoreError>((rules, program))
    })?;
    // Rules stand in for the person only for the program that registered the
    // agent (its code must come back from it: `programs::may_redeem`).
    // Nor for a step-up: approving one widens the grant in force at once,
    // before anyone has shown they are the agent; the person decides those.
    if rules.is_empty()
        || program.is_none_or(|p| p.exe.is_none())
        || request.base_grant_id.is_some()
    {
        return Ok(Applied::Undecided);
    }
    let decided = choices(&rules, &request.server, &request.tools);
    if decided.len() < request.tools.len() {
        return Ok(Applied::Undecided);
    }
    let mut ids: Vec<&str> = decided.iter().map(|c| c.rule_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let actor = format!("rule {}", ids.join(", "));
    let named = |action: RuleAction| -> Vec<String> {
        decided
            .iter()
            .filter(|c| c.action == action)
            .map(|c| c.tool.clone())
            .collect()
    };
    let ask = named(RuleAction::Ask);
    let granted: Vec<String> = [named(RuleAction::Allow), ask.clone()].concat();
    if granted.is_empty() {
        consent::deny(auth, &request.id, &actor, now)?;
        return Ok(Applied::Denied);
    }
    // For as long as the window would have offered first (the Settings' default).
    let duration = match auth.config.get().default_duration {
        DefaultDuration::Once => DurationChoice::Once,
        DefaultDuration::Hour => DurationChoice::For(crate::clock::HOUR),
        DefaultDuration::Day => DurationChoice::For(24 * crate::clock::HOUR),
        DefaultDuration::Forever => DurationChoice::Forever,
    };
    consent::approve(
        auth,
        &request.id,
        &ToolChoice::Only(granted),
        &AskChoice::Only(ask),
        duration,
        &actor,
        now,
    )?;
    Ok(Applied::Approved)
}

/// The rules that remember the person's choices on a request: one per tool
/// it asked about (allow, ask each call, or don't allow). A rule for a whole
/// risk class is only ever made on purpose (`gatehouse rules add`, Settings):
/// a class comes from annotations the server chooses, and a tool the server
/// adds later must not be covered by a choice about other tools.
pub fn remembered(
    tools: &[ToolInfo],
    granted: &[String],
    ask: &[String],
) -> Vec<(RuleTarget, RuleAction)> {
    tools
        .iter()
        .map(|t| {
            let action = if !granted.contains(&t.name) {
                RuleAction::Deny
            } else if ask.contains(&t.name) {
                RuleAction::Ask
            } else {
                RuleAction::Allow
            };
            (RuleTarget::Tool(t.name.clone()), action)
        })
        .collect()
}

/// A rule for an agent, kept and audited. A rule with the same agent,
/// server and target replaces the one before it.
pub fn add(
    auth: &AuthServer,
    client_id: &str,
    server: Option<&str>,
    target: RuleTarget,
    action: RuleAction,
    actor: &str,
    now: UnixMs,
) -> Result<Rule, StoreError> {
    auth.store.write(|tx| {
        let same = table::list(tx.conn(), Some(client_id))?
            .into_iter()
            .filter(|r| r.server.as_deref() == server && r.target == target);
        for old in same {
            table::remove(tx.conn(), &old.id)?;
        }
        let rule = Rule {
            id: crypto::short_id("ru_"),
            client_id: client_id.to_string(),
            server: server.map(str::to_string),
            target,
            action,
            created_at: now,
            created_by: actor.to_string(),
        };
        table::insert(tx.conn(), &rule)?;
        tx.record(
            NewEvent::new(EventKind::RuleChanged, Outcome::Allowed)
                .client(client_id)
                .actor(actor)
                .detail(json!({"rule": rule.id, "server": server, "target": rule.target, "action": action})),
            now,
        )?;
        Ok(rule)
    })
}

/// Changes what a rule decides (`Some`), or removes it (`None`); false when
/// there is no such rule.
pub fn change(
    auth: &AuthServer,
    id: &str,
    action: Option<RuleAction>,
    actor: &str,
    now: UnixMs,
) -> Result<bool, StoreError> {
    auth.store.write(|tx| {
        let Some(rule) = table::get(tx.conn(), id)? else {
            return Ok(false);
        };
        match action {
            Some(a) => table::set_action(tx.conn(), id, a)?,
            None => table::remove(tx.conn(), id)?,
        };
        tx.record(
            NewEvent::new(EventKind::RuleChanged, Outcome::Allowed)
                .client(&rule.client_id)
                .actor(actor)
                .detail(json!({"rule": id, "target": rule.target, "action": action, "removed": action.is_none()})),
            now,
        )?;
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::Risk;

    fn tool(name: &str, risk: Risk) -> ToolInfo {
        ToolInfo {
            name: name.into(),
            title: None,
            description: String::new(),
            risk,
            pin: String::new(),
            definition: serde_json::Value::Null,
        }
    }

    fn rule(id: &str, server: Option<&str>, target: RuleTarget, action: RuleAction) -> Rule {
        Rule {
            id: id.into(),
            client_id: "c".into(),
            server: server.map(str::to_string),
            target,
            action,
            created_at: 0,
            created_by: "me".into(),
        }
    }

    #[test]
    fn a_named_tool_beats_its_risk_class_and_caution_beats_trust() {
        let tools = [
            tool("read", Risk::Read),
            tool("peek", Risk::Read),
            tool("rm", Risk::Destructive),
            tool("edit", Risk::Write),
        ];
        let rules = [
            rule("r1", None, RuleTarget::Risk(Risk::Read), RuleAction::Allow),
            rule(
                "r2",
                None,
                RuleTarget::Tool("peek".into()),
                RuleAction::Deny,
            ),
            rule(
                "r3",
                Some("demo"),
                RuleTarget::Risk(Risk::Destructive),
                RuleAction::Ask,
            ),
            rule(
                "r4",
                Some("demo"),
                RuleTarget::Risk(Risk::Destructive),
                RuleAction::Allow,
            ),
            rule(
                "r5",
                Some("other"),
                RuleTarget::Risk(Risk::Write),
                RuleAction::Allow,
            ),
        ];
        let got: Vec<(String, RuleAction, String)> = choices(&rules, "demo", &tools)
            .into_iter()
            .map(|c| (c.tool, c.action, c.rule_id))
            .collect();
        let want = |t: &str, a, r: &str| (t.to_string(), a, r.to_string());
        assert_eq!(
            got,
            [
                want("read", RuleAction::Allow, "r1"),
                want("peek", RuleAction::Deny, "r2"),
                want("rm", RuleAction::Ask, "r3"),
            ],
            "edit is left to the person: its rule is for another server"
        );
    }

    #[test]
    fn remembering_names_each_tool_asked_about() {
        let tools = [
            tool("read", Risk::Read),
            tool("rm", Risk::Destructive),
            tool("write", Risk::Write),
        ];
        let granted = ["read", "rm"].map(String::from);
        let remembered = remembered(&tools, &granted, &["rm".to_string()]);
        assert_eq!(
            remembered,
            [
                (RuleTarget::Tool("read".into()), RuleAction::Allow),
                (RuleTarget::Tool("rm".into()), RuleAction::Ask),
                (RuleTarget::Tool("write".into()), RuleAction::Deny),
            ]
        );
    }
}
