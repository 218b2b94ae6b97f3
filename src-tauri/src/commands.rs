//! The Tauri commands: thin adapters over `gatehouse::api`, the same
//! operations the CLI drives through the control socket. No rules live here;
//! the one desktop-only check is the consent window's Allow delay.
//!
//! Each command is declared once, in [`commands!`]: that makes the Tauri
//! command, its name for the capability files, and its typed TypeScript
//! wrapper in `ui/src/bindings.ts` (see `crate::bindings`). Arguments keep
//! their snake_case names on the wire.

use gatehouse::api::{
    Actor, Agent, Approval, AuditFilter, AuditPage, AuditVerification, ConfigChange, Decided,
    Error, ExportFormat, Grant, NewRule, NewServer, PauseState, PendingId, PendingItem, Revoked,
    Rule, RuleAction, Server, Settings, SettingsChange, SettingsChanged, Status, Tool,
};
use tauri_plugin_autostart::ManagerExt;

use gatehouse::connect::{Found as ConnectFound, Preview as ConnectPreview};

use crate::state::Desktop;

type Result<T> = std::result::Result<T, Error>;

/// Declares the commands: `fn name(state, app, arg: Type [as "ts type"], …) -> Type { body }`.
/// `state` is the [`Desktop`] state and `app` the `AppHandle`, by the names given.
macro_rules! commands {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident($d:ident, $app:ident $(, $arg:ident : $ty:ty $(as $ts:literal)?)*) -> $ret:ty $body:block
    )*) => {
        $(
            $(#[doc = $doc])*
            #[tauri::command(rename_all = "snake_case")]
            #[allow(unused_variables)]
            pub async fn $name(
                $d: tauri::State<'_, Desktop>,
                $app: tauri::AppHandle,
                $($arg: $ty),*
            ) -> Result<$ret> $body
        )*

        /// Every command's name (the capability files allow them by name).
        #[cfg(test)]
        pub const NAMES: &[&str] = &[$(stringify!($name)),*];

        /// The command handler for the Tauri builder.
        pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($name),*]
        }

        /// The typed TypeScript wrappers, one per command.
        #[cfg(test)]
        pub fn typescript() -> Vec<crate::bindings::Wrapper> {
            use ts_rs::TS;
            vec![$(crate::bindings::Wrapper {
                name: stringify!($name),
                doc: [$($doc),*].join("\n"),
                args: vec![$((stringify!($arg), commands!(@ts $ty $(, $ts)?))),*],
                returns: <$ret as TS>::name(),
            }),*]
        }
    };
    (@ts $ty:ty) => { <$ty as ts_rs::TS>::name() };
    (@ts $ty:ty, $ts:literal) => { $ts.to_string() };
}

/// Runs a store operation off the async workers: a filtered count over a
/// million events takes a while, and a person's decision (approve, revoke,
/// pause) waits for the store's writer, which may be committing the agents'
/// traffic; neither may stall the gateway.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(e.to_string()))?
}

commands! {
    /// The running Gatehouse: its URL, servers, data directory.
    fn status(d, app) -> Status {
        d.gh.status()
    }

    /// Everything waiting for the person, oldest first.
    fn pending(d, app) -> Vec<PendingItem> {
        d.gh.pending()
    }

    /// The consent window reports that it now shows this request; Allow counts its delay from here.
    fn consent_shown(d, app, request_id: PendingId) -> () {
        d.consent_shown(&request_id);
        Ok(())
    }

    /// Approves a pending item: a consent request or step-up (the chosen tools
    /// for the chosen time), a held call (this once), or a changed tool (its new version).
    fn approve(d, app, request_id: PendingId, approval: Approval) -> Decided {
        d.check_allow_delay(&request_id)?;
        let gh = d.gh.clone();
        blocking(move || gh.approve(&request_id, &approval, Actor::Desktop)).await
    }

    /// Denies a pending item: nothing is granted; a held call gets an error.
    fn deny(d, app, request_id: PendingId) -> () {
        let gh = d.gh.clone();
        blocking(move || gh.deny(&request_id, Actor::Desktop)).await
    }

    /// A page of the timeline, newest first; `before_id` continues below the previous page.
    fn audit_page(d, app, filter: AuditFilter, before_id: Option<i64> as "number | null", limit: u32) -> AuditPage {
        let gh = d.gh.clone();
        blocking(move || gh.audit_page(&filter, before_id, limit)).await
    }

    /// Writes the events matching the filter to a new file in the downloads folder; returns its path.
    fn audit_export(d, app, filter: AuditFilter, format: ExportFormat) -> String {
        let (gh, dir) = (d.gh.clone(), d.export_dir());
        blocking(move || crate::export::to_file(&gh, &filter, format, &dir)).await
    }

    /// Checks that no event of the audit log was edited, deleted, inserted or moved.
    fn audit_verify(d, app) -> AuditVerification {
        let gh = d.gh.clone();
        blocking(move || gh.verify_audit()).await
    }

    /// Every agent with its grants in force.
    fn agents(d, app) -> Vec<Agent> {
        d.gh.agents()
    }

    /// One grant, in force or not.
    fn grant(d, app, grant_id: String) -> Option<Grant> {
        d.gh.grant(&grant_id)
    }

    /// The fronted servers (their tools if listed recently).
    fn servers(d, app) -> Vec<Server> {
        let gh = d.gh.clone();
        blocking(move || Ok(gh.servers())).await
    }

    /// A server's tools, from the server itself (starting it if needed).
    fn server_tools(d, app, server: String) -> Vec<Tool> {
        d.gh.server_tools(&server).await
    }

    /// Revokes an agent: its next request fails, its sessions end.
    fn revoke_agent(d, app, client_id: String) -> Revoked {
        let gh = d.gh.clone();
        blocking(move || gh.revoke_agent(&client_id, Actor::Desktop)).await
    }

    /// Revokes one grant and its tokens.
    fn revoke_grant(d, app, grant_id: String) -> Revoked {
        let gh = d.gh.clone();
        blocking(move || gh.revoke_grant(&grant_id, Actor::Desktop)).await
    }

    /// The panic button: every agent loses every grant.
    fn revoke_all(d, app) -> Revoked {
        let gh = d.gh.clone();
        blocking(move || gh.revoke_all(Actor::Desktop)).await
    }

    /// Every agent's rules (applied when it asks for tools).
    fn rules(d, app) -> Vec<Rule> {
        d.gh.rules(None)
    }

    /// Adds a rule for an agent (replacing one for the same tools).
    fn add_rule(d, app, rule: NewRule) -> Rule {
        let gh = d.gh.clone();
        blocking(move || gh.add_rule(rule, Actor::Desktop)).await
    }

    /// Changes what a rule decides, or removes it (no action).
    fn change_rule(d, app, id: String, action: Option<RuleAction>) -> () {
        let gh = d.gh.clone();
        blocking(move || gh.change_rule(&id, action, Actor::Desktop)).await
    }

    /// The settings the person can change.
    fn settings(d, app) -> Settings {
        Ok(d.gh.settings())
    }

    /// Writes changed settings to the config file; in force at once (a new port at the next start).
    fn change_settings(d, app, change: SettingsChange) -> SettingsChanged {
        let gh = d.gh.clone();
        blocking(move || gh.change_settings(change, Actor::Desktop)).await
    }

    /// Whether the app starts (hidden, in the tray) when the person logs in.
    fn autostart(d, app) -> bool {
        app.autolaunch().is_enabled().map_err(|e| Error::internal(e.to_string()))
    }

    /// Starts the app at login (hidden, in the tray), or stops that.
    fn set_autostart(d, app, on: bool) -> bool {
        let launcher = app.autolaunch();
        let done = if on { launcher.enable() } else { launcher.disable() };
        done.and_then(|()| launcher.is_enabled())
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// Lets a grant's agent see the tools it was not granted and ask for one by calling it (or stops that).
    fn set_may_ask_more(d, app, grant_id: String, on: bool) -> Grant {
        let gh = d.gh.clone();
        blocking(move || gh.set_may_ask_more(&grant_id, on, Actor::Desktop)).await
    }

    /// Pauses every agent (no client id) or one: calls refused until resumed, nothing revoked.
    fn pause(d, app, client_id: Option<String>) -> PauseState {
        let gh = d.gh.clone();
        blocking(move || gh.pause(client_id.as_deref(), Actor::Desktop)).await
    }

    /// Resumes every agent (no client id), or one paused on its own.
    fn resume(d, app, client_id: Option<String>) -> PauseState {
        let gh = d.gh.clone();
        blocking(move || gh.resume(client_id.as_deref(), Actor::Desktop)).await
    }

    /// Adds a server (its secrets to the keychain, the rest to the config file); in force at once.
    fn server_add(d, app, server: NewServer) -> ConfigChange {
        let gh = d.gh.clone();
        blocking(move || gh.add_server(server, Actor::Desktop)).await
    }

    /// Removes a server: its sessions end, its grants are revoked.
    fn server_remove(d, app, name: String) -> ConfigChange {
        let gh = d.gh.clone();
        blocking(move || gh.remove_server(&name, Actor::Desktop)).await
    }

    /// Serves a server again, or stops serving it (keeping it and its grants).
    fn server_set_enabled(d, app, name: String, enabled: bool) -> ConfigChange {
        let gh = d.gh.clone();
        blocking(move || gh.set_server_enabled(&name, enabled, Actor::Desktop)).await
    }

    /// Starts a server afresh; returns how many sessions ended.
    fn server_restart(d, app, name: String) -> u32 {
        d.gh.restart_server(&name).map(|n| n as u32)
    }

    /// The last lines a server wrote to stderr.
    fn server_logs(d, app, name: String, lines: u32) -> Vec<String> {
        d.gh.server_logs(&name, lines as usize)
    }

    /// Starts Gatehouse's login at a remote server in the browser; returns the URL it opened.
    fn server_login(d, app, name: String) -> String {
        let url = d.gh.start_login(&name).await?;
        if !gatehouse::browser::open(&url) {
            tracing::warn!("could not open the browser; the app shows the login URL");
        }
        Ok(url)
    }

    /// Forgets Gatehouse's login at a remote server.
    fn server_logout(d, app, name: String) -> () {
        let gh = d.gh.clone();
        blocking(move || gh.logout(&name)).await
    }

    /// Sets or replaces a server's secret (typed once, kept in the keychain).
    fn server_secret_set(d, app, server: String, name: String, value: String) -> () {
        let gh = d.gh.clone();
        blocking(move || gh.set_server_secret(&server, &name, &value)).await
    }

    /// Removes a server's secret.
    fn server_secret_remove(d, app, server: String, name: String) -> () {
        let gh = d.gh.clone();
        blocking(move || gh.remove_server_secret(&server, &name)).await
    }

    /// The AI clients found on this machine, and the MCP servers each has.
    fn connect_clients(d, app) -> Vec<ConnectFound> {
        let status = d.gh.status()?;
        blocking(move || {
            Ok(gatehouse::connect::Dirs::from_env()
                .map(|dirs| gatehouse::connect::list(&dirs, &status.url, None))
                .unwrap_or_default())
        })
        .await
    }

    /// The change that would put a client's servers behind Gatehouse (nothing is written).
    fn connect_preview(d, app, client: String, move_secrets: bool) -> ConnectPreview {
        let opts = d.connect_options(&client, move_secrets)?;
        blocking(move || {
            let plan = gatehouse::connect::plan(&opts).map_err(Error::bad_request)?;
            Ok(plan.preview(&opts.gatehouse_config))
        })
        .await
    }

    /// Makes that change (with a backup `gatehouse disconnect` restores); says what was done.
    fn connect_apply(d, app, client: String, move_secrets: bool) -> String {
        let opts = d.connect_options(&client, move_secrets)?;
        let gh = d.gh.clone();
        blocking(move || {
            let plan = gatehouse::connect::plan(&opts).map_err(Error::bad_request)?;
            Ok(gh.connect(&plan, &opts, gatehouse::api::Actor::Desktop)?.to_string())
        })
        .await
    }

    /// Brings up the consent window for the waiting requests (from the main window's banner).
    fn show_consent(d, app) -> () {
        crate::windows::open_consent(&app, true);
        Ok(())
    }
}
