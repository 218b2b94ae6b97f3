//! The daemon's side of the control channel. Each request maps to one core
//! operation; no rules live here.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::{Answer, ControlError, ErrorCode, PendingKindView, PendingView, Request, Target};
use crate::clock;
use crate::core::{Gatehouse, SOCKET_FILE};
use crate::oauth::agents::RevokeError;
use crate::oauth::consent::DecisionError;
use crate::store::{audit, grants};

/// Binds the socket, refusing to steal one that a running Gatehouse answers on.
pub fn bind(data_dir: &Path) -> anyhow::Result<UnixListener> {
    let path = data_dir.join(SOCKET_FILE);
    if path.exists() {
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
            _ = crate::core::stopped(&mut shutdown) => break,
        }
    }
}

fn same_user(stream: &UnixStream) -> bool {
    let me = unsafe { libc::geteuid() };
    stream.peer_cred().map(|c| c.uid() == me).unwrap_or(false)
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
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                send(
                    &mut write,
                    &Answer::Error(err(
                        ErrorCode::BadRequest,
                        format!("malformed control request: {e}"),
                    )),
                )
                .await?;
                continue;
            }
        };
        if let Request::Log {
            limit,
            client,
            follow: true,
        } = &request
        {
            let client_id = match client {
                Some(name) => match crate::oauth::agents::find(&g.auth, name) {
                    Ok(c) => Some(c.client_id),
                    Err(e) => {
                        send(&mut write, &Answer::Error(e.into())).await?;
                        continue;
                    }
                },
                None => None,
            };
            return follow_log(&g, *limit, client_id, &mut write, &mut shutdown).await;
        }
        let answer = handle(&g, request);
        send(&mut write, &answer).await?;
    }
    Ok(())
}

async fn send(write: &mut tokio::net::unix::OwnedWriteHalf, answer: &Answer) -> anyhow::Result<()> {
    let mut line = serde_json::to_string(answer)?;
    line.push('\n');
    write.write_all(line.as_bytes()).await?;
    Ok(())
}

/// Sends the recent events, then each new one as it commits.
async fn follow_log(
    g: &Gatehouse,
    limit: u32,
    client: Option<String>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut live = g.store().subscribe();
    let recent = g.store().read(|c| {
        audit::list(
            c,
            &audit::Query {
                client_id: client.clone(),
                limit: Some(limit),
                ..Default::default()
            },
        )
    })?;
    let mut last = 0;
    for event in recent {
        last = event.id;
        send(write, &Answer::Ok(serde_json::to_value(event)?)).await?;
    }
    loop {
        tokio::select! {
            event = live.recv() => match event {
                Ok(event) if event.id > last && client.as_ref().is_none_or(|c| event.client_id.as_ref() == Some(c)) => {
                    last = event.id;
                    send(write, &Answer::Ok(serde_json::to_value(event)?)).await?;
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let missed = g.store().read(|c| audit::list(c, &audit::Query { client_id: client.clone(), after_id: Some(last), limit: Some(10_000), ..Default::default() }))?;
                    for event in missed {
                        last = event.id;
                        send(write, &Answer::Ok(serde_json::to_value(event)?)).await?;
                    }
                }
                Err(_) => return Ok(()),
            },
            _ = crate::core::stopped(shutdown) => return Ok(()),
        }
    }
}

fn err(code: ErrorCode, message: impl Into<String>) -> ControlError {
    ControlError {
        code,
        message: message.into(),
    }
}

impl From<crate::store::StoreError> for ControlError {
    fn from(e: crate::store::StoreError) -> ControlError {
        err(ErrorCode::Internal, e.to_string())
    }
}

impl From<DecisionError> for ControlError {
    fn from(e: DecisionError) -> ControlError {
        let code = match e {
            DecisionError::NotPending(_) => ErrorCode::NotFound,
            DecisionError::BadChoice(_) => ErrorCode::BadRequest,
            DecisionError::Store(_) => ErrorCode::Internal,
        };
        err(code, e.to_string())
    }
}

impl From<RevokeError> for ControlError {
    fn from(e: RevokeError) -> ControlError {
        let code = match e {
            RevokeError::NoSuchAgent(_) | RevokeError::NoSuchGrant(_) => ErrorCode::NotFound,
            RevokeError::Ambiguous(..) => ErrorCode::Ambiguous,
            RevokeError::Store(_) => ErrorCode::Internal,
        };
        err(code, e.to_string())
    }
}

fn handle(g: &Gatehouse, request: Request) -> Answer {
    match answer(g, request) {
        Ok(v) => Answer::Ok(v),
        Err(e) => Answer::Error(e),
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, ControlError> {
    serde_json::to_value(v).map_err(|e| err(ErrorCode::Internal, e.to_string()))
}

fn actor(g: &Gatehouse) -> String {
    format!("{} (cli)", g.auth.user)
}

/// The pending items as the person sees them.
pub fn pending_views(g: &Gatehouse) -> Result<Vec<PendingView>, ControlError> {
    Ok(crate::pending::list(g.store(), clock::now())?)
}

/// The pending request ids a target names; an error when there are none.
fn targets(g: &Gatehouse, target: &Target) -> Result<Vec<String>, ControlError> {
    let pending = pending_views(g)?;
    let ids: Vec<String> = match target {
        Target::Id(id) => pending
            .iter()
            .filter(|p| &p.id == id)
            .map(|p| p.id.clone())
            .collect(),
        // By agent: its consent requests only; held calls and changed tools need their id.
        Target::Client(name) => pending
            .iter()
            .filter(|p| {
                matches!(
                    p.kind,
                    PendingKindView::Authorization | PendingKindView::StepUp
                )
            })
            .filter(|p| &p.client_id == name || p.client_name.eq_ignore_ascii_case(name))
            .map(|p| p.id.clone())
            .collect(),
    };
    if ids.is_empty() {
        let what = match target {
            Target::Id(id) => format!("no pending request {id}"),
            Target::Client(name) => format!("no pending request from {name:?}"),
        };
        return Err(err(
            ErrorCode::NotFound,
            format!("{what}; see `gatehouse pending`"),
        ));
    }
    Ok(ids)
}

fn answer(g: &Gatehouse, request: Request) -> Result<Value, ControlError> {
    let now = clock::now();
    match request {
        Request::Status => Ok(json!({
            "url": g.auth.issuer,
            "servers": g.config().servers.keys().map(|s| json!({"name": s, "url": g.auth.resource_url(s)})).collect::<Vec<_>>(),
            "sessions": g.gateway.session_count(),
            "pending": pending_views(g)?.len(),
            "data_dir": g.data_dir,
        })),
        Request::Pending => to_value(pending_views(g)?),
        Request::Approve {
            target,
            tools,
            ask,
            duration,
        } => {
            let mut decided = Vec::new();
            for id in targets(g, &target)? {
                decided.push(g.approve(&id, &tools, &ask, duration, &actor(g))?);
            }
            to_value(decided)
        }
        Request::Deny { target } => {
            let ids = targets(g, &target)?;
            for id in &ids {
                g.deny(id, &actor(g))?;
            }
            Ok(json!({"denied": ids}))
        }
        Request::Agents => to_value(crate::oauth::agents::list(&g.auth, now)?),
        Request::Grants {
            client,
            include_ended,
        } => {
            let client_id = match client {
                Some(name) => Some(crate::oauth::agents::find(&g.auth, &name)?.client_id),
                None => None,
            };
            to_value(
                g.store()
                    .read(|c| grants::list(c, client_id.as_deref(), include_ended, now))?,
            )
        }
        Request::RevokeAgent { agent } => to_value(g.revoke_agent(&agent, &actor(g))?),
        Request::RevokeGrant { grant } => to_value(g.revoke_grant(&grant, &actor(g))?),
        Request::RevokeAll => to_value(g.revoke_all(&actor(g))?),
        Request::Log { limit, client, .. } => {
            let client_id = match client {
                Some(name) => Some(crate::oauth::agents::find(&g.auth, &name)?.client_id),
                None => None,
            };
            to_value(g.store().read(|c| {
                audit::list(
                    c,
                    &audit::Query {
                        client_id,
                        limit: Some(limit),
                        ..Default::default()
                    },
                )
            })?)
        }
    }
}
