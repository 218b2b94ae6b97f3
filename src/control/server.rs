//! The daemon's side of the control channel. Each request maps to one `api`
//! operation; no rules live here.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::{Answer, LogFilter, Request, SOCKET_FILE};
use crate::api::{Actor, AuditFilter, Error, Gatehouse};
use crate::daemon::stopped;

/// Binds the socket, refusing to steal one that a running Gatehouse answers on.
pub fn bind(data_dir: &Path) -> anyhow::Result<UnixListener> {
    let path = data_dir.join(SOCKET_FILE);
    if std::fs::symlink_metadata(&path).is_ok() {
        crate::private::check_socket(&path)?;
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            anyhow::bail!(
                "another Gatehouse is already running with the data directory {}",
                data_dir.display()
            );
        }
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot create the control socket {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn run(listener: UnixListener, g: Arc<Gatehouse>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let g = g.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_connection(stream, g, shutdown).await {
                        tracing::debug!(error = %e, "control connection ended");
                    }
                });
            }
            _ = stopped(&mut shutdown) => break,
        }
    }
}

fn same_user(stream: &UnixStream) -> bool {
    use std::os::fd::AsRawFd;
    crate::private::peer_is_me(stream.as_raw_fd())
}

async fn serve_connection(
    stream: UnixStream,
    g: Arc<Gatehouse>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if !same_user(&stream) {
        tracing::warn!("refused a control connection from another user");
        return Ok(());
    }
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let request = match serde_json::from_str::<Request>(&line) {
            Ok(r) => r,
            Err(e) => {
                let e = Error::bad_request(format!("malformed control request: {e}"));
                send(&mut write, &Answer::Error(e)).await?;
                continue;
            }
        };
        if let Request::Log {
            limit,
            filter,
            follow: true,
        } = request
        {
            return follow_log(&g, limit, &filter, &mut write, &mut shutdown).await;
        }
        let g = g.clone();
        // Every operation but the log reads or writes SQLite: off the async workers.
        let answer = tokio::task::spawn_blocking(move || match answer(&g, request) {
            Ok(v) => Answer::Ok(v),
            Err(e) => Answer::Error(e),
        })
        .await?;
        send(&mut write, &answer).await?;
    }
    Ok(())
}

async fn send(write: &mut OwnedWriteHalf, answer: &Answer) -> anyhow::Result<()> {
    let mut line = serde_json::to_string(answer)?;
    line.push('\n');
    write.write_all(line.as_bytes()).await?;
    Ok(())
}

/// Sends the recent events, then each new one as it commits.
async fn follow_log(
    g: &Arc<Gatehouse>,
    limit: u32,
    filter: &LogFilter,
    write: &mut OwnedWriteHalf,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // The backlog reads SQLite (and may scan, for a short search): off the async workers.
    let (owned, filter) = (g.clone(), filter.clone());
    let followed = tokio::task::spawn_blocking(move || {
        audit_filter(&owned, &filter).and_then(|f| owned.follow(f, limit))
    });
    let (recent, mut follow) = match followed.await? {
        Ok(f) => f,
        Err(e) => return send(write, &Answer::Error(e)).await,
    };
    for event in recent {
        send(write, &Answer::Ok(serde_json::to_value(event)?)).await?;
    }
    loop {
        tokio::select! {
            event = follow.next() => match event {
                Some(event) => send(write, &Answer::Ok(serde_json::to_value(event)?)).await?,
                None => return Ok(()),
            },
            _ = stopped(shutdown) => return Ok(()),
        }
    }
}

/// The log's filter, its agent found by name or client id.
fn audit_filter(g: &Gatehouse, filter: &LogFilter) -> Result<AuditFilter, Error> {
    let client_id = match &filter.agent {
        Some(name) => Some(g.find_agent(name)?),
        None => None,
    };
    Ok(AuditFilter {
        client_id,
        server: filter.server.clone(),
        outcome: filter.outcome,
        since: filter.since,
        until: None,
        text: filter.text.clone(),
    })
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::internal(e.to_string()))
}

fn answer(g: &Gatehouse, request: Request) -> Result<Value, Error> {
    match request {
        Request::Status => to_value(g.status()?),
        Request::Pending => to_value(g.pending_shown(Actor::Cli)?),
        Request::Approve { target, approval } => {
            let id = g.find_pending(&target, Actor::Cli, true)?;
            to_value(g.approve(&id, &approval, Actor::Cli)?)
        }
        Request::Deny { target } => {
            let id = g.find_pending(&target, Actor::Cli, false)?;
            g.deny(&id, Actor::Cli)?;
            Ok(json!({"denied": [id]}))
        }
        Request::Agents => to_value(g.agents()?),
        Request::Grants {
            client,
            include_ended,
        } => to_value(g.grants(client.as_deref(), include_ended)?),
        Request::RevokeAgent { agent } => to_value(g.revoke_agent(&agent, Actor::Cli)?),
        Request::RevokeGrant { grant } => to_value(g.revoke_grant(&grant, Actor::Cli)?),
        Request::RevokeAll => to_value(g.revoke_all(Actor::Cli)?),
        Request::Rules { agent } => to_value(g.rules(agent.as_deref())?),
        Request::AddRule { rule } => to_value(g.add_rule(rule, Actor::Cli)?),
        Request::ChangeRule { id, action } => to_value(g.change_rule(&id, action, Actor::Cli)?),
        Request::Settings => to_value(g.settings()),
        Request::ChangeSettings { change } => to_value(g.change_settings(change, Actor::Cli)?),
        Request::SetMayAskMore { grant, on } => {
            to_value(g.set_may_ask_more(&grant, on, Actor::Cli)?)
        }
        Request::Pause { agent } => to_value(g.pause(agent.as_deref(), Actor::Cli)?),
        Request::Resume { agent } => to_value(g.resume(agent.as_deref(), Actor::Cli)?),
        Request::AddClient { client } => to_value(g.add_client(client, Actor::Cli)?),
        Request::Clients => to_value(g.clients()?),
        Request::RemoveClient { client } => to_value(g.remove_client(&client, Actor::Cli)?),
        Request::Servers => to_value(g.servers()),
        Request::ServerTools { server } => {
            let tools = tokio::runtime::Handle::current().block_on(g.server_tools(&server));
            to_value(tools?)
        }
        Request::ReloadConfig => to_value(g.reload_from_file(Actor::Cli)?),
        Request::ReplaceConfig { was, text } => {
            to_value(g.replace_config(was.as_deref(), &text, Actor::Cli)?)
        }
        Request::AddServer { server } => to_value(g.add_server(server, Actor::Cli)?),
        Request::RemoveServer { server } => to_value(g.remove_server(&server, Actor::Cli)?),
        Request::StartLogin { server } => {
            let url = tokio::runtime::Handle::current().block_on(g.start_login(&server));
            to_value(url?)
        }
        Request::Logout { server } => to_value(g.logout(&server)?),
        Request::SetServerEnabled { server, enabled } => {
            to_value(g.set_server_enabled(&server, enabled, Actor::Cli)?)
        }
        Request::RestartServer { server } => to_value(g.restart_server(&server)?),
        Request::ServerLogs { server, lines } => to_value(g.server_logs(&server, lines)?),
        Request::VerifyAudit => to_value(g.verify_audit()?),
        Request::ExportAudit { format, path } => {
            let written = g.export_audit(&AuditFilter::default(), format, &path)?;
            Ok(json!({"events": written, "path": path}))
        }
        Request::Log { limit, filter, .. } => {
            to_value(g.recent_events(&audit_filter(g, &filter)?, limit)?)
        }
    }
}
