//! The IPC contract with the web UI, generated: `ui/src/bindings.ts` holds
//! the TypeScript form of every API type the windows see (from the Rust
//! definitions in `gatehouse::api`, with `ts-rs`), a typed wrapper for every
//! command (from `crate::commands`), and the event names. The test at the end
//! fails when the committed file is stale; `UPDATE_BINDINGS=1 cargo test -p
//! gatehouse-desktop bindings` rewrites it (refused when `CI` is set).

/// A committed [`gatehouse::api::AuditEvent`], pushed to the main window.
pub const EVENT_AUDIT: &str = "audit-event";
/// The pending items (`PendingItem[]`, oldest first), whenever they change.
pub const EVENT_PENDING_CHANGED: &str = "pending-changed";

/// A command as TypeScript sees it.
#[cfg(test)]
pub struct Wrapper {
    pub name: &'static str,
    pub doc: String,
    /// Argument names and their TypeScript types.
    pub args: Vec<(&'static str, String)>,
    pub returns: String,
}

#[cfg(test)]
fn camel_case(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The whole `ui/src/bindings.ts` file.
#[cfg(test)]
fn generate() -> String {
    use gatehouse::api::*;
    use ts_rs::TS;

    let mut out = String::from(
        "// Generated from gatehouse::api (types) and src-tauri/src/commands.rs (commands) by\n\
         // `UPDATE_BINDINGS=1 cargo test -p gatehouse-desktop bindings`. Do not edit by hand.\n\n\
         import { invoke } from '@tauri-apps/api/core';\n\n",
    );
    let decls = [
        Risk::decl(),
        Tool::decl(),
        PendingKind::decl(),
        Lookalike::decl(),
        ArgumentField::decl(),
        PendingItem::decl(),
        ToolChoice::decl(),
        AskChoice::decl(),
        DurationChoice::decl(),
        Approval::decl(),
        GrantDuration::decl(),
        Grant::decl(),
        CallStatus::decl(),
        HeldCall::decl(),
        ReviewStatus::decl(),
        ToolReview::decl(),
        Decided::decl(),
        ClientKind::decl(),
        Ancestor::decl(),
        Program::decl(),
        RuleAction::decl(),
        RuleTarget::decl(),
        Rule::decl(),
        RuleChoice::decl(),
        NewRule::decl(),
        Paused::decl(),
        PauseState::decl(),
        Agent::decl(),
        EventKind::decl(),
        Outcome::decl(),
        AuditEvent::decl(),
        AuditFilter::decl(),
        AuditPage::decl(),
        AuditProblemKind::decl(),
        AuditProblem::decl(),
        AuditVerification::decl(),
        ExportFormat::decl(),
        Transport::decl(),
        ServerState::decl(),
        Server::decl(),
        ConfigChange::decl(),
        ToolHolders::decl(),
        NewSecret::decl(),
        NewServer::decl(),
        Revoked::decl(),
        ServerRef::decl(),
        DefaultDuration::decl(),
        AskDefault::decl(),
        Theme::decl(),
        Settings::decl(),
        SettingsChange::decl(),
        SettingsChanged::decl(),
        Status::decl(),
        ErrorCode::decl(),
        Error::decl(),
        gatehouse::connect::Found::decl(),
        gatehouse::connect::Preview::decl(),
    ];
    for d in decls {
        out.push_str("export ");
        out.push_str(&d);
        out.push_str("\n\n");
    }
    out.push_str(
        "/** The app's commands (src-tauri/src/commands.rs); they reject with an `ApiError`. */\n",
    );
    out.push_str("export const commands = {\n");
    for w in crate::commands::typescript() {
        let doc: Vec<&str> = w.doc.lines().map(str::trim).collect();
        out.push_str(&format!("  /** {} */\n", doc.join(" ")));
        let params: Vec<String> = w.args.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        let names: Vec<&str> = w.args.iter().map(|(n, _)| *n).collect();
        let payload = if names.is_empty() {
            String::new()
        } else {
            format!(", {{ {} }}", names.join(", "))
        };
        out.push_str(&format!(
            "  {}: ({}) => invoke<{}>('{}'{payload}),\n",
            camel_case(w.name),
            params.join(", "),
            w.returns,
            w.name,
        ));
    }
    out.push_str("};\n\n");
    out.push_str("export const EVENTS = {\n");
    for (key, name) in [
        ("auditEvent", EVENT_AUDIT),
        ("pendingChanged", EVENT_PENDING_CHANGED),
    ] {
        out.push_str(&format!("  {key}: {name:?},\n"));
    }
    out.push_str("} as const;\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    mod command_names {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/build/command_names.rs"
        ));
    }

    #[test]
    fn bindings_are_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
        let fresh = generate();
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "UPDATE_BINDINGS is refused in CI: the committed bindings are what is checked"
            );
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "ui/src/bindings.ts is stale: run `UPDATE_BINDINGS=1 cargo test -p gatehouse-desktop bindings` and commit it"
        );
    }

    #[test]
    fn the_build_script_declares_every_command() {
        let source = include_str!("commands.rs");
        assert_eq!(command_names::command_names(source), crate::commands::NAMES);
    }

    #[test]
    fn capabilities_name_only_declared_commands() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("capabilities");
        for file in ["main.json", "consent.json"] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let caps: serde_json::Value = serde_json::from_str(&text).unwrap();
            for p in caps["permissions"].as_array().unwrap() {
                let p = p.as_str().unwrap();
                if let Some(command) = p.strip_prefix("allow-") {
                    let name = command.replace('-', "_");
                    assert!(
                        crate::commands::NAMES.contains(&name.as_str()),
                        "{file} allows {p}, which is no command"
                    );
                }
            }
        }
        // The consent window decides; the main window cannot.
        let consent = std::fs::read_to_string(dir.join("consent.json")).unwrap();
        let main = std::fs::read_to_string(dir.join("main.json")).unwrap();
        assert!(consent.contains("\"allow-approve\""));
        assert!(!main.contains("\"allow-approve\"") && !main.contains("\"allow-deny\""));
    }

    #[test]
    fn wrapper_names_are_camel_case() {
        assert_eq!(camel_case("revoke_all"), "revokeAll");
        assert_eq!(camel_case("status"), "status");
    }
}
