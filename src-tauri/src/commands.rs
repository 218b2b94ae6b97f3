//! The Tauri commands: thin adapters over the core API (the same operations
//! the CLI drives through the control socket). No rules live here; the one
//! desktop-only check is the consent window's Allow delay.
//!
//! Arguments keep their snake_case names so they match the generated types.

use gatehouse::control::server::pending_views;
use gatehouse::oauth::consent::{AskChoice, ToolChoice};
use gatehouse::store::audit;
use tauri::{AppHandle, State};

use crate::ipc::{
    Agent, AppInfo, AuditFilter, AuditPage, Duration, ErrorCode, ExportFormat, Grant, IpcError,
    PendingRequest, Revoked, Server, Tool,
};
use crate::shell::Desktop;

type Result<T> = std::result::Result<T, IpcError>;

/// Runs a store read off the async workers (a filtered count over a million
/// events takes a while; it must not stall the gateway).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| IpcError::new(ErrorCode::Internal, e.to_string()))?
}

#[tauri::command(rename_all = "snake_case")]
pub async fn app_info(d: State<'_, Desktop>) -> Result<AppInfo> {
    Ok(d.app_info())
}

#[tauri::command(rename_all = "snake_case")]
pub async fn pending(d: State<'_, Desktop>) -> Result<Vec<PendingRequest>> {
    Ok(pending_views(&d.gh)?.into_iter().map(Into::into).collect())
}

/// The consent window reports that it now shows this request; Allow counts its delay from here.
#[tauri::command(rename_all = "snake_case")]
pub async fn consent_shown(d: State<'_, Desktop>, request_id: String) -> Result<()> {
    d.consent_shown(&request_id);
    Ok(())
}

/// Approves a pending item: a consent request or step-up (the chosen tools,
/// for `duration`; destructive ones ask every time, the core's default), a
/// held call (this once), or a changed tool (its new version).
#[tauri::command(rename_all = "snake_case")]
pub async fn approve(
    d: State<'_, Desktop>,
    request_id: String,
    tools: Vec<String>,
    duration: Duration,
) -> Result<()> {
    d.check_allow_delay(&request_id)?;
    let (tools, ask) = (ToolChoice::Only(tools), AskChoice::default());
    d.gh.approve(&request_id, &tools, &ask, duration.into(), &d.actor)?;
    Ok(())
}

#[tauri::command(rename_all = "snake_case")]
pub async fn deny(d: State<'_, Desktop>, request_id: String) -> Result<()> {
    Ok(d.gh.deny(&request_id, &d.actor)?)
}

/// A page of the timeline, newest first; `before_id` continues below the previous page.
#[tauri::command(rename_all = "snake_case")]
pub async fn audit_page(
    d: State<'_, Desktop>,
    filter: AuditFilter,
    before_id: Option<i64>,
    limit: u32,
) -> Result<AuditPage> {
    let (gh, filter) = (d.gh.clone(), audit::Filter::from(filter));
    blocking(move || {
        let events = gh
            .store()
            .read(|c| audit::page(c, &filter, before_id, limit))?;
        let total = match before_id {
            None => Some(gh.store().read(|c| audit::count(c, &filter))?),
            Some(_) => None,
        };
        Ok(AuditPage {
            events: events.into_iter().map(Into::into).collect(),
            total,
        })
    })
    .await
}

/// Writes the events matching the filter to a file in the downloads folder; returns its path.
#[tauri::command(rename_all = "snake_case")]
pub async fn audit_export(
    d: State<'_, Desktop>,
    filter: AuditFilter,
    format: ExportFormat,
) -> Result<String> {
    let (gh, dir, filter) = (d.gh.clone(), d.export_dir(), audit::Filter::from(filter));
    blocking(move || crate::shell::export(&gh, &filter, format, &dir)).await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn agents(d: State<'_, Desktop>) -> Result<Vec<Agent>> {
    let agents = gatehouse::oauth::agents::list(&d.gh.auth, gatehouse::clock::now())?;
    Ok(agents.into_iter().map(Into::into).collect())
}

#[tauri::command(rename_all = "snake_case")]
pub async fn grant(d: State<'_, Desktop>, grant_id: String) -> Result<Option<Grant>> {
    let grant =
        d.gh.store()
            .read(|c| gatehouse::store::grants::get(c, &grant_id))?;
    Ok(grant.map(Into::into))
}

#[tauri::command(rename_all = "snake_case")]
pub async fn servers(d: State<'_, Desktop>) -> Result<Vec<Server>> {
    Ok(d.servers().await)
}

/// Lists a server's tools from the server itself (starting it if needed).
#[tauri::command(rename_all = "snake_case")]
pub async fn server_tools(d: State<'_, Desktop>, server: String) -> Result<Vec<Tool>> {
    let tools = d.gh.gateway.catalog(&server).await;
    let tools = tools.map_err(|e| IpcError::new(ErrorCode::NotFound, e))?;
    Ok(tools.into_iter().map(Into::into).collect())
}

#[tauri::command(rename_all = "snake_case")]
pub async fn revoke_agent(d: State<'_, Desktop>, client_id: String) -> Result<Revoked> {
    Ok(d.gh.revoke_agent(&client_id, &d.actor)?.into())
}

#[tauri::command(rename_all = "snake_case")]
pub async fn revoke_grant(d: State<'_, Desktop>, grant_id: String) -> Result<Revoked> {
    Ok(d.gh.revoke_grant(&grant_id, &d.actor)?.into())
}

#[tauri::command(rename_all = "snake_case")]
pub async fn revoke_all(d: State<'_, Desktop>) -> Result<Revoked> {
    Ok(d.gh.revoke_all(&d.actor)?.into())
}

/// Brings up the consent window for the waiting requests (from the main window's banner).
#[tauri::command(rename_all = "snake_case")]
pub async fn show_consent(app: AppHandle) -> Result<()> {
    crate::shell::open_consent_window(&app, true);
    Ok(())
}
