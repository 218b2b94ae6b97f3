//! Declares the app's commands so that each window's capability file can
//! allow exactly the ones it uses (without this, every window may call every
//! command).

const COMMANDS: &[&str] = &[
    "app_info",
    "pending",
    "consent_shown",
    "approve",
    "deny",
    "audit_page",
    "audit_export",
    "agents",
    "grant",
    "servers",
    "server_tools",
    "revoke_agent",
    "revoke_grant",
    "revoke_all",
    "show_consent",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build script");
}
