//! How the CLI prints an answer as text (with `--json` it prints the answer as
//! it came). Answers are read into the API's view types first, so a change of
//! the API is a compile error here, not a silently blank column.

use gatehouse::api::{
    Agent, AuditEvent, Decided, Grant, PendingItem, PendingKind, Revoked, Status,
};
use gatehouse::control::Request;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn read<T: DeserializeOwned>(answer: Value) -> Result<T, String> {
    serde_json::from_value(answer).map_err(|e| format!("unreadable answer from Gatehouse: {e}"))
}

/// Prints the answer to a request as text.
pub fn answer(request: &Request, answer: Value) -> Result<(), String> {
    match request {
        Request::Pending => {
            let pending: Vec<PendingItem> = read(answer)?;
            if pending.is_empty() {
                println!("No pending requests.");
            }
            for p in &pending {
                print_pending(p);
            }
        }
        Request::Approve { .. } => {
            for decided in read::<Vec<Decided>>(answer)? {
                print_decided(&decided);
            }
        }
        Request::Deny { .. } => {
            let ids: Vec<String> = read(answer["denied"].clone())?;
            println!("Denied: {}", ids.join(", "));
        }
        Request::Agents => {
            let agents: Vec<Agent> = read(answer)?;
            if agents.is_empty() {
                println!(
                    "No agents yet. Point an MCP client at a server URL from `gatehouse status`."
                );
            }
            for a in &agents {
                let verified = if a.verified { "verified" } else { "unverified" };
                println!("{} ({verified})  {}", a.name, a.client_id);
                if a.grants.is_empty() {
                    println!("    no grants in force");
                }
                for g in &a.grants {
                    print_grant(g);
                }
            }
        }
        Request::Grants { .. } => {
            let grants: Vec<Grant> = read(answer)?;
            if grants.is_empty() {
                println!("No grants.");
            }
            for g in &grants {
                print_grant(g);
            }
        }
        Request::RevokeAgent { .. } | Request::RevokeGrant { .. } | Request::RevokeAll => {
            let r: Revoked = read(answer)?;
            println!(
                "Revoked {} grant(s) and {} token(s); their next request fails.",
                r.grants.len(),
                r.tokens
            );
        }
        Request::Log { .. } => {
            for e in read::<Vec<AuditEvent>>(answer)? {
                print_event(&e);
            }
        }
        Request::Status => {
            let s: Status = read(answer)?;
            println!("Gatehouse is running at {}", s.url);
            for server in &s.servers {
                println!("  MCP server {:?}: {}", server.name, server.url);
            }
            println!(
                "  {} open session(s), {} pending request(s)",
                s.sessions, s.pending
            );
        }
    }
    Ok(())
}

/// Prints one event of a followed log.
pub fn event(answer: Value, json: bool) -> Result<(), String> {
    if json {
        println!("{answer}");
    } else {
        print_event(&read(answer)?);
    }
    Ok(())
}

fn time(ms: i64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}Z")
}

fn print_event(e: &AuditEvent) {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let duration = e.duration_ms.map(|d| format!(" {d}ms")).unwrap_or_default();
    println!(
        "{}  {:<18} {:<8} {:<22} {:<8} {}{}",
        time(e.at),
        e.kind.as_str(),
        e.outcome.as_str(),
        e.agent
            .clone()
            .or(e.client_id.clone())
            .unwrap_or_else(|| "-".into()),
        or_dash(&e.server),
        or_dash(&e.tool),
        duration
    );
}

fn print_decided(decided: &Decided) {
    match decided {
        Decided::Grant(g) => {
            let ask = if g.ask_tools.is_empty() {
                String::new()
            } else {
                format!(" (ask every time: {})", g.ask_tools.join(", "))
            };
            println!(
                "Approved: grant {} on {:?}: {}{ask}",
                g.id,
                g.server,
                g.tools.join(", ")
            );
        }
        Decided::Call(c) => println!("Allowed once: call {} to {:?}", c.id, c.tool),
        Decided::Review(r) => println!("Re-approved the changed tool {:?} ({})", r.tool, r.id),
    }
}

fn print_pending(p: &PendingItem) {
    let badge = match (&p.verified_domain, p.verified) {
        (Some(d), _) => format!("verified: {d}"),
        (None, true) => "configured by you".to_string(),
        (None, false) => "UNVERIFIED: it named itself".to_string(),
    };
    let who = format!("{} ({badge})", p.client_name);
    let first_tool = p.tools.first().map_or("", |t| t.name.as_str());
    match p.kind {
        PendingKind::Authorization => println!("{}  {who} wants to use {:?}", p.id, p.server),
        PendingKind::StepUp => println!(
            "{}  {who} wants MORE of {:?} (it holds: {})",
            p.id,
            p.server,
            p.granted_tools.join(", ")
        ),
        PendingKind::ToolCall => println!(
            "{}  {who} wants to run {first_tool:?} on {:?} now",
            p.id, p.server
        ),
        PendingKind::ToolChanged => println!(
            "{}  tool {first_tool:?} on {:?} CHANGED since {who} was allowed to use it; it is blocked",
            p.id, p.server
        ),
    }
    if let (Some(phrase), Some(host)) = (&p.phrase, &p.redirect_host) {
        println!("    phrase: {phrase}   returns to: {host}");
    }
    if let Some(args) = &p.arguments {
        for line in serde_json::to_string_pretty(args)
            .unwrap_or_default()
            .lines()
        {
            println!("    {line}");
        }
    }
    for change in &p.changes {
        println!("    {change}");
    }
    if matches!(p.kind, PendingKind::Authorization | PendingKind::StepUp) {
        for t in &p.tools {
            println!(
                "    [{:<14}] {:<20} {}",
                t.risk.label(),
                t.name,
                t.description.lines().next().unwrap_or("")
            );
        }
    }
}

fn print_grant(g: &Grant) {
    let until = match (g.revoked_at, g.expires_at) {
        (Some(_), _) => "revoked".to_string(),
        (None, Some(e)) => format!("until {}", time(e)),
        (None, None) => "until revoked".to_string(),
    };
    println!(
        "    {}  {:<10} {}  [{}]",
        g.id,
        g.server,
        until,
        g.tools.join(", ")
    );
}
