//! How the CLI prints an answer as text, or with `--json` as JSON. Answers are
//! read into the API's view types first, so a change of the API is a compile
//! error here, not a silently blank column. Every text that came from outside
//! (names, tool names and descriptions, arguments, ids) is printed inert
//! ([`gatehouse::text`]): nothing an agent or a server chose can drive the terminal.

use gatehouse::api::{
    AddedClient, Agent, AuditEvent, AuditVerification, ConfigChange, Decided, Grant, Lookalike,
    PauseState, PendingItem, PendingKind, RegisteredClient, Revoked, Rule, RuleTarget, Server,
    ServerState, Settings, SettingsChanged, Status, Tool, Transport, INSTRUCTIONS,
};
use gatehouse::control::Request;
use gatehouse::text::{inert, inert_json};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Prints a JSON answer (pretty, or one line), inert.
pub fn json(answer: &Value, pretty: bool) {
    let text = if pretty {
        serde_json::to_string_pretty(answer)
    } else {
        serde_json::to_string(answer)
    };
    println!("{}", inert_json(&text.unwrap_or_default()));
}

/// Outside text for a column: inert.
fn shown(text: &str) -> String {
    inert(text)
}

fn shown_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| inert(i))
        .collect::<Vec<_>>()
        .join(", ")
}

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
        Request::Approve { .. } => print_decided(&read::<Decided>(answer)?),
        Request::Deny { .. } => {
            let ids: Vec<String> = read(answer["denied"].clone())?;
            println!("Denied: {}", shown_list(&ids));
        }
        Request::Agents => {
            let agents: Vec<Agent> = read(answer)?;
            if agents.is_empty() {
                println!(
                    "No agents yet. Point an MCP client at a server URL from `gatehouse status`."
                );
            }
            for a in &agents {
                let verified = if a.verified { "verified" } else { "UNVERIFIED" };
                println!("[{verified}] {}  {}", shown(&a.name), shown(&a.client_id));
                if let Some(other) = &a.lookalike_of {
                    println!("    !! its name looks like {}", lookalike(other));
                }
                if let Some(p) = &a.paused {
                    println!("    PAUSED since {} (`gatehouse resume <agent>`)", time(p.at));
                }
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
                "Revoked {} grant(s) and the tokens of {} sign-in(s); their next request fails.",
                r.grants.len(),
                r.token_families
            );
        }
        Request::Rules { .. } => {
            let rules: Vec<Rule> = read(answer)?;
            if rules.is_empty() {
                println!("No rules. Add one with `gatehouse rules add <agent> --risk read --to allow`, or tick \"Remember\" when you decide.");
            }
            for r in &rules {
                print_rule(r);
            }
        }
        Request::AddRule { .. } => {
            print!("Added: ");
            print_rule(&read::<Rule>(answer)?);
        }
        Request::ChangeRule { action, .. } => match action {
            Some(_) => println!("Changed."),
            None => println!("Removed."),
        },
        Request::Settings => print_settings(&read::<Settings>(answer)?),
        Request::ChangeSettings { .. } => {
            let changed: SettingsChanged = read(answer)?;
            print_settings(&changed.settings);
            if let Some(note) = &changed.restart_needed {
                println!("{note}.");
            }
        }
        Request::SetMayAskMore { .. } => {
            let g: Grant = read(answer)?;
            if g.may_ask_more {
                println!("The agent now sees the tools it was not granted, and may ask for one by calling it:");
            } else {
                println!("The agent now sees only the tools it was granted:");
            }
            print_grant(&g);
        }
        Request::Pause { .. } | Request::Resume { .. } => {
            print_pauses(&read::<PauseState>(answer)?);
        }
        Request::Log { filter, limit, .. } => {
            let events = read::<Vec<AuditEvent>>(answer)?;
            if events.is_empty() && *limit > 0 {
                match filter.is_empty() {
                    true => println!("The audit log is empty."),
                    false => println!("No events match."),
                }
            }
            for e in &events {
                print_event(e);
            }
        }
        Request::AddClient { .. } => {
            let added: AddedClient = read(answer)?;
            println!(
                "Added {} with client id {}",
                shown(&added.client.name),
                added.client.client_id
            );
            if let Some(secret) = &added.client_secret {
                println!("Its client secret (shown this once, keep it safe): {secret}");
            }
        }
        Request::Clients => {
            let clients: Vec<RegisteredClient> = read(answer)?;
            if clients.is_empty() {
                println!("No pre-registered clients. Add one with `gatehouse clients add`.");
            }
            for c in &clients {
                let kind = if c.confidential { "confidential" } else { "public" };
                let from = if c.added { "added" } else { "config file" };
                println!("{}  {}  [{kind}, {from}]", shown(&c.client_id), shown(&c.name));
                println!("    redirect URIs: {}", shown_list(&c.redirect_uris));
                if let Some(server) = &c.server {
                    println!("    server: {}", shown(server));
                }
            }
        }
        Request::RemoveClient { .. } => {
            let revoked: Revoked = read(answer)?;
            println!(
                "Removed; revoked {} grant(s) and the tokens of {} sign-in(s).",
                revoked.grants.len(),
                revoked.token_families
            );
        }
        Request::Servers => {
            let servers: Vec<Server> = read(answer)?;
            if servers.is_empty() {
                println!("No servers. Add one with `gatehouse servers add`.");
            }
            for s in &servers {
                println!("{:<16} {}", shown(&s.name), state(&s.state));
                println!("    {}  ({} {})", s.url, transport(s), shown(&s.target));
                if let Some(tools) = &s.tools {
                    let names: Vec<String> = tools.iter().map(|t| format!("{} ({})", shown(&t.name), t.risk.label().trim())).collect();
                    println!("    tools: {}", names.join(", "));
                }
                if let ServerState::Crashed { stderr } | ServerState::HeldBack { stderr, .. } = &s.state {
                    for line in stderr {
                        println!("    | {}", shown(line));
                    }
                }
            }
        }
        Request::ServerTools { server } => {
            let tools: Vec<Tool> = read(answer)?;
            println!("{} offers {} tool(s):", shown(server), tools.len());
            for t in &tools {
                println!("    [{:<14}] {:<24} {}", t.risk.label(), shown(&t.name), shown(t.description.lines().next().unwrap_or("")));
            }
        }
        Request::ReloadConfig => {
            let change: Option<ConfigChange> = read(answer)?;
            config_change(change.as_ref());
        }
        Request::StartLogin { .. } => println!("{}", shown(answer.as_str().unwrap_or_default())),
        Request::Logout { server } => println!("Gatehouse no longer holds a login at {}.", shown(server)),
        Request::AddServer { .. }
        | Request::RemoveServer { .. }
        | Request::SetServerEnabled { .. }
        | Request::ReplaceConfig { .. } => {
            let change: ConfigChange = read(answer)?;
            config_change(Some(&change));
        }
        Request::RestartServer { server } => {
            let ended: usize = read(answer)?;
            println!("Restarted {}: {ended} session(s) ended; agents open new ones.", shown(server));
        }
        Request::ServerLogs { server, .. } => {
            let lines: Vec<String> = read(answer)?;
            if lines.is_empty() {
                println!("{} has written nothing to stderr since Gatehouse started.", shown(server));
            }
            for line in &lines {
                println!("{}", shown(line));
            }
        }
        Request::VerifyAudit => verification(&read(answer)?, "The audit log", false),
        Request::ExportAudit { .. } => println!(
            "Wrote {} event(s) with their seals to {}; check it with `gatehouse log verify --file`.",
            answer["events"],
            shown(answer["path"].as_str().unwrap_or(""))
        ),
        Request::Status => {
            let s: Status = read(answer)?;
            println!("Gatehouse is running at {}", s.url);
            for server in &s.servers {
                println!("  MCP server {}: {}", shown(&server.name), server.url);
            }
            println!(
                "  {} open session(s), {} pending request(s)",
                s.sessions, s.pending
            );
            if let Some(path) = &s.config_path {
                println!("  config: {path}");
            }
            if let Some(problem) = &s.config_problem {
                println!("  THE CONFIG FILE IS NOT IN FORCE: {}", shown(problem).replace("\\u{A}", " "));
            }
            if s.paused != PauseState::default() {
                print_pauses(&s.paused);
            }
        }
    }
    Ok(())
}

fn print_rule(r: &Rule) {
    let what = match &r.target {
        RuleTarget::Risk(risk) => format!("{} tools", risk.as_str()),
        RuleTarget::Tool(name) => format!("tool {}", shown(name)),
    };
    let server = r.server.as_deref().map_or("every server".to_string(), |s| {
        format!("server {}", shown(s))
    });
    println!(
        "{}  agent {}  {what} on {server}: {}",
        shown(&r.id),
        shown(&r.client_id),
        r.action.as_str()
    );
}

fn print_settings(s: &Settings) {
    let on_off = |b: bool| if b { "on" } else { "off" };
    println!("port                    {}", s.port);
    println!("consent timeout         {} s", s.consent_timeout_secs);
    println!("default duration        {}", s.default_duration.as_str());
    let kept = |n: u64, unit: &str| match n {
        0 => "all".to_string(),
        n => format!("{n} {unit}"),
    };
    println!(
        "keep audit events for   {}",
        kept(s.keep_audit_days.into(), "days")
    );
    println!(
        "keep audit events, most {}",
        kept(s.keep_audit_events, "events")
    );
    println!(
        "ask every time          {}",
        serde_json::to_value(s.ask_every_time)
            .unwrap_or_default()
            .as_str()
            .unwrap_or("")
    );
    println!(
        "bind grants to program  {}",
        on_off(s.bind_grants_to_program)
    );
    println!(
        "theme                   {}",
        serde_json::to_value(s.theme)
            .unwrap_or_default()
            .as_str()
            .unwrap_or("")
    );
    if let Some(path) = &s.config_path {
        println!("config file             {}", shown(path));
    }
}

/// Says what is paused: every agent, and agents one by one.
fn print_pauses(p: &PauseState) {
    match &p.all {
        Some(all) => println!(
            "PAUSED: every agent's calls are refused (since {}, by {}). `gatehouse resume` to go on.",
            time(all.at),
            shown(&all.by)
        ),
        None if p.agents.is_empty() => println!("Not paused: agents' calls go through."),
        None => {}
    }
    for (client_id, paused) in &p.agents {
        println!(
            "  agent {} paused (since {}, by {})",
            shown(client_id),
            time(paused.at),
            shown(&paused.by)
        );
    }
}

/// Prints what verifying the audit log found.
/// `subject` names what was checked: "The audit log" or "The file".
pub fn verification(found: &AuditVerification, subject: &str, json: bool) {
    if json {
        self::json(&serde_json::to_value(found).unwrap_or_default(), true);
        return;
    }
    if found.intact() {
        println!(
            "{subject} holds {} event(s), each sealed to the one before it.",
            found.events
        );
    } else {
        println!(
            "{} WAS TAMPERED WITH: {} of {} event(s) do not hold.",
            subject.to_uppercase(),
            found.problem_count,
            found.events
        );
    }
    for p in &found.problems {
        println!("  #{}: {}", p.id, shown(&p.message));
    }
    if found.gaps > 0 {
        println!(
            "  The file skips {} time(s) (a filtered export, or events left out of it); each event in it was checked.",
            found.gaps
        );
    }
}

/// Prints one event of a followed log.
pub fn event(answer: Value, json: bool) -> Result<(), String> {
    if json {
        self::json(&answer, false);
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
    let or_dash = |v: &Option<String>| v.as_deref().map_or_else(|| "-".into(), shown);
    let duration = e.duration_ms.map(|d| format!(" {d}ms")).unwrap_or_default();
    println!(
        "{}  {:<18} {:<8} {:<22} {:<8} {}{}",
        time(e.at),
        e.kind.as_str(),
        e.outcome.as_str(),
        or_dash(&e.agent.clone().or(e.client_id.clone())),
        or_dash(&e.server),
        or_dash(&e.tool),
        duration
    );
}

fn state(state: &ServerState) -> String {
    match state {
        ServerState::NotStarted => "not started (it starts with the first agent session)".into(),
        ServerState::Idle => "idle".into(),
        ServerState::Running { sessions } => format!("running, {sessions} session(s)"),
        ServerState::Crashed { .. } => "CRASHED (its last words below)".into(),
        ServerState::HeldBack { seconds, .. } => {
            format!("HELD BACK after crashing again and again (next try in {seconds} s)")
        }
        ServerState::Disabled => "disabled".into(),
        ServerState::NeedsLogin { reason } => format!(
            "NEEDS LOGIN ({}): `gatehouse servers login <name>`",
            shown(reason)
        ),
    }
}

fn transport(s: &Server) -> &'static str {
    match s.transport {
        Transport::Stdio => "runs",
        Transport::Http => "forwards to",
    }
}

/// What a change of the config did, one line each.
pub fn config_change(change: Option<&ConfigChange>) {
    let Some(change) = change.filter(|c| !c.is_empty()) else {
        println!("The config in force is the file as it is: nothing changed.");
        return;
    };
    let list = |what: &str, names: &[String]| {
        if !names.is_empty() {
            println!("{what}: {}", shown_list(names));
        }
    };
    list("Added", &change.added);
    list("Changed (sessions restarted)", &change.changed);
    list("Removed (sessions ended, grants revoked)", &change.removed);
    list("Disabled (sessions ended, grants kept)", &change.disabled);
    list("Applies when Gatehouse starts again", &change.after_restart);
}

fn print_decided(decided: &Decided) {
    match decided {
        Decided::Grant(g) => {
            let ask = if g.ask_tools.is_empty() {
                String::new()
            } else {
                format!(" (ask every time: {})", shown_list(&g.ask_tools))
            };
            println!(
                "Approved: grant {} on {}: {}{ask}",
                g.id,
                shown(&g.server),
                shown_list(&g.tools)
            );
        }
        Decided::Call(c) => println!("Allowed once: call {} to {}", c.id, shown(&c.tool)),
        Decided::Review(r) if r.tool == INSTRUCTIONS => println!(
            "Approved the new instructions of {}: the sessions the agent opens from now on are told them ({})",
            shown(&r.server),
            r.id
        ),
        Decided::Review(r) => {
            println!("Re-approved the changed tool {} ({})", shown(&r.tool), r.id)
        }
    }
}

fn print_pending(p: &PendingItem) {
    // The badge comes first, where no name (however long, whatever it says) can move it.
    let badge = match (&p.verified_domain, p.verified) {
        (Some(d), _) => format!("[verified: {}]", shown(d)),
        (None, true) => "[configured by you]".to_string(),
        (None, false) => "[UNVERIFIED: it named itself]".to_string(),
    };
    let who = format!("{badge} {}", shown(&p.client_name));
    let first_tool = shown(p.tools.first().map_or("", |t| t.name.as_str()));
    let server = shown(&p.server);
    match p.kind {
        PendingKind::Authorization => println!("{}  {who} wants to use {server}", p.id),
        PendingKind::StepUp => println!(
            "{}  {who} wants MORE of {server} (it holds: {})",
            p.id,
            shown_list(&p.granted_tools)
        ),
        PendingKind::ToolCall => {
            println!("{}  {who} wants to run {first_tool} on {server} now", p.id)
        }
        PendingKind::ToolChanged => println!(
            "{}  tool {first_tool} on {server} CHANGED since {who} was allowed to use it; it is blocked",
            p.id
        ),
        PendingKind::InstructionsChanged => println!(
            "{}  the instructions of {server} CHANGED for {who}; it keeps the ones it had until you approve",
            p.id
        ),
    }
    println!("    client id: {}", shown(&p.client_id));
    if let Some(other) = &p.lookalike_of {
        println!(
            "    !! its name looks like {}: is it the agent you think?",
            lookalike(other)
        );
    }
    if let (Some(phrase), Some(host)) = (&p.phrase, &p.redirect_host) {
        println!(
            "    phrase: {}   returns to: {}",
            shown(phrase),
            shown(host)
        );
    }
    if p.kind == PendingKind::ToolCall {
        println!("    arguments (* = what the tool needs to act; those come first):");
        if p.argument_fields.is_empty() {
            println!("      (none)");
        }
        for f in &p.argument_fields {
            let mark = if f.required { "*" } else { "" };
            let cut = if f.cut == 0 {
                String::new()
            } else {
                format!(
                    " [… {} more characters cut here: `gatehouse pending --json` shows them all]",
                    f.cut
                )
            };
            println!("      {}{mark}: {}{cut}", shown(&f.name), shown(&f.preview));
        }
    }
    for change in &p.changes {
        println!("    {}", shown(change));
    }
    if let Some(text) = &p.instructions {
        // The server chose its length: the first lines, and what is cut said.
        const SHOWN: usize = 400;
        let cut = text.chars().count().saturating_sub(SHOWN);
        let head: String = text.chars().take(SHOWN).collect();
        println!(
            "    what {} tells the agent's model: {}",
            shown(&p.server),
            shown(&head)
        );
        if cut > 0 {
            println!("    [… {cut} more characters: `gatehouse pending --json` shows them all]");
        }
    }
    if matches!(p.kind, PendingKind::Authorization | PendingKind::StepUp) {
        for t in &p.tools {
            println!(
                "    [{:<14}] {:<20} {}",
                t.risk.label(),
                shown(&t.name),
                shown(t.description.lines().next().unwrap_or(""))
            );
        }
    }
}

/// The earlier agent a name looks like, as the person can tell them apart.
fn lookalike(other: &Lookalike) -> String {
    format!(
        "{} (client id {}), registered earlier",
        shown(&other.name),
        shown(&other.client_id)
    )
}

fn print_grant(g: &Grant) {
    let until = match (g.revoked_at, g.expires_at) {
        (Some(_), _) => "revoked".to_string(),
        (None, Some(e)) => format!("until {}", time(e)),
        (None, None) => "until revoked".to_string(),
    };
    let more = if g.may_ask_more {
        "  (may ask for more)"
    } else {
        ""
    };
    println!(
        "    {}  {:<10} {}  [{}]{more}",
        shown(&g.id),
        shown(&g.server),
        until,
        shown_list(&g.tools)
    );
}
