//! Which program an agent really is. Its name is a claim; the executable on
//! the other end of its connections ([`crate::peer`]) is evidence. The
//! program that registers a client is kept with it; a grant gets the program
//! of the client that asked for it (or, for a client that never registered
//! here, the one that first redeems its code). Every MCP request then
//! compares the program presenting the token with the grant's: another
//! executable is flagged once per connection (an audit event), and refused
//! when the person turned on `bind_grants_to_program`. A request the agent's
//! rules decided (no one saw a window) is redeemed only by the program that
//! registered the agent: a client id is public, and anyone could otherwise
//! start a flow under it and collect the code the rules let through.

use serde_json::json;

use super::bearer::{AccessGrant, BearerError};
use super::AuthServer;
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;
use crate::crypto;
use crate::peer::{Peer, Program};
use crate::store::programs::{self, Owner};
use crate::store::{tokens, StoreError};

/// A grant is given to the program of the client that asked for it.
pub(super) fn grant_made(
    conn: &rusqlite::Connection,
    client_id: &str,
    grant_id: &str,
    now: UnixMs,
) -> Result<(), StoreError> {
    if let Some(program) = programs::get(conn, Owner::Client(client_id))? {
        programs::set_if_absent(conn, Owner::Grant(grant_id), &program, now)?;
    }
    Ok(())
}

/// After a code exchange: the grant behind this access token gets the
/// program that redeemed it, if it has none yet.
pub fn redeemed(
    auth: &AuthServer,
    access_token: &str,
    program: &Program,
    now: UnixMs,
) -> Result<(), StoreError> {
    let token = tokens::TokenKey::of(access_token);
    auth.store.write(|tx| {
        if let Some(row) = tokens::get_token(tx.conn(), &token)? {
            programs::set_if_absent(tx.conn(), Owner::Grant(&row.grant_id), program, now)?;
        }
        Ok(())
    })
}

/// Before a code is redeemed: a code the agent's rules approved must come
/// back from the program that registered the agent. Another program's
/// attempt spends the code, is audited, and gets `invalid_grant`. (The peer
/// is looked up only for such a code.)
pub async fn may_redeem(
    auth: &AuthServer,
    code: &str,
    peer: &Peer,
    now: UnixMs,
) -> Result<(), super::OAuthError> {
    let code_hash = crypto::hash(code);
    let by_rule = auth.store.read(|c| {
        let Some(row) = tokens::get_code(c, &code_hash)? else {
            return Ok::<_, StoreError>(None);
        };
        let decided_by = crate::store::consent::get(c, &row.request_id)?.and_then(|r| r.decided_by);
        if !decided_by.is_some_and(|d| d.starts_with("rule ")) {
            return Ok(None);
        }
        let registered = programs::get(c, Owner::Client(&row.client_id))?;
        Ok(Some((row, registered)))
    })?;
    let Some((row, registered)) = by_rule else {
        return Ok(());
    };
    let seen = peer.program().await;
    if let (Some(r), Some(s)) = (&registered, &seen) {
        if r.same_program(s) {
            return Ok(());
        }
    }
    let refused = NewEvent::new(EventKind::ProgramMismatch, Outcome::Denied)
        .client(&row.client_id)
        .grant(&row.grant_id)
        .detail(json!({
            "granted_to": registered.and_then(|r| r.exe),
            "used_by": seen.and_then(|s| s.exe),
            "refused": true, "code_from_rules": true,
        }));
    // On the store's writer, as every write from an async handler.
    auth.store
        .write_queued(move |tx| {
            tokens::use_code(tx.conn(), &code_hash, now)?;
            tx.record(refused, now)
        })
        .await?;
    Err(super::OAuthError::invalid_grant(
        "this code was approved by the agent's rules for the program that registered it; another program presented it, and it is spent",
    ))
}

/// Compares the program presenting a token on this connection with the
/// grant's (read once per connection and grant), and notes both on `access`
/// for the audit events. A mismatch is audited on the connection's first
/// request with that grant, not on every one.
pub async fn check(
    auth: &AuthServer,
    access: &mut AccessGrant,
    peer: &Peer,
    now: UnixMs,
) -> Result<(), BearerError> {
    // Not identified (another OS user's process, one that hides itself, a
    // connection already gone): an unknown program, which is not the grant's.
    let seen = peer.program().await.unwrap_or(Program {
        pid: 0,
        exe: None,
        cmdline: String::new(),
        started_by: Vec::new(),
    });
    let grant_id = access.grant().id.clone();
    let granted = peer.memo(&grant_id, || {
        auth.store
            .read(|c| programs::get(c, Owner::Grant(&grant_id)))
    });
    let (granted, first_sighting) = match granted {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "store failure reading a grant's program");
            return Err(BearerError::Invalid("token could not be checked"));
        }
    };
    access.program = (seen.pid != 0).then(|| seen.clone());
    let Some(granted) = granted else {
        return Ok(());
    };
    // An executable Gatehouse may not read (another OS user's process) is
    // not the one the grant was given to.
    if granted.exe.is_none() || granted.same_program(&seen) {
        return Ok(());
    }
    let bound = auth.config.get().bind_grants_to_program;
    if first_sighting {
        let outcome = if bound {
            Outcome::Denied
        } else {
            Outcome::Allowed
        };
        let event = NewEvent::new(EventKind::ProgramMismatch, outcome)
            .client(&access.client_id)
            .server(&access.grant().server)
            .grant(&access.grant().id)
            .detail(json!({
                "granted_to": granted.exe, "used_by": seen.exe, "pid": seen.pid,
                "cmdline": seen.cmdline, "refused": bound,
            }));
        if let Err(e) = auth.store.append(event, now).await {
            tracing::error!(error = %e, "could not audit a token used by another program");
        }
    }
    access.granted_program = Some(granted);
    if bound {
        return Err(BearerError::Invalid(
            "this token was granted to another program",
        ));
    }
    Ok(())
}
