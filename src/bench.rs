//! Entry points for the benchmark (`benches/gateway.rs`) to time single
//! internal steps of a running Gatehouse in-process: each runs exactly the
//! code a request runs, and returns only what the benchmark checks. They are
//! not an API: no face uses them, and they hand out no internal type.
#![doc(hidden)]
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock like an edge

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::api::Gatehouse;
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock;
use crate::gateway::jsonrpc::Message;
use crate::gateway::{listing, pinning, policy};
use crate::oauth::client_auth::PresentedCredentials;
use crate::oauth::{bearer, token};

fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What every agent request pays before anything else: the bearer check
/// and the policy's decision on a `tools/call` of `tool`. Returns the
/// grant's tool count, or why it would not go upstream.
pub fn authorize_call(
    g: &Gatehouse,
    token: &str,
    server: &str,
    tool: &str,
    params: &Value,
) -> Result<usize, String> {
    let access = bearer::authenticate(g.auth(), token, server, clock::now())
        .map_err(|e| format!("{e:?}"))?;
    match policy::check_request(
        "tools/call",
        Some(params),
        &policy::Grantee::of(&access.live),
    ) {
        policy::Decision::Call(t) if t == tool => Ok(access.grant().tools.len()),
        other => Err(format!("{other:?}")),
    }
}

/// How many live tokens and grants the gateway holds in memory.
pub fn live_size(g: &Gatehouse) -> (usize, usize) {
    g.store().live().size()
}

/// A session's cache of the tool definitions its upstream listed.
#[derive(Default)]
pub struct ListedTools(listing::Definitions);

/// The grant part of filtering a `tools/list` answer as the gateway gets it
/// (the upstream's text, read as the upstream reader reads it), with a
/// session's cache; returns how long the filtered answer is.
pub fn filter_listing(cache: &ListedTools, answer: &str, granted: &HashSet<String>) -> usize {
    let Some(answer) = Message::read(answer.as_bytes()) else {
        return 0;
    };
    let shown = |def: &listing::Definition| match def.name() {
        Some(name) if granted.contains(name) => listing::Shown::AsListed,
        _ => listing::Shown::Hidden,
    };
    listing::filter(&answer, &cache.0, shown).map_or(0, |m| m.text().len())
}

/// The pin of one tool definition.
pub fn pin_of(tool: &Value) -> String {
    pinning::pin_of(tool)
}

/// Writes `events` tool-call audit events in one transaction, committed (one
/// is a lone write; more, what a group commit does with that many).
pub fn audit_write(g: &Gatehouse, client_id: &str, events: usize) -> Result<(), String> {
    let event = NewEvent::new(EventKind::ToolCall, Outcome::Allowed)
        .client(client_id)
        .server("demo")
        .tool("read_note")
        .detail(serde_json::json!({"arguments": {"title": "welcome"}}));
    g.store()
        .write(|tx| {
            let now = clock::now();
            (0..events).try_for_each(|_| tx.record(event.clone(), now))
        })
        .map_err(|e| e.to_string())
}

/// Finds the program on the client end of a loopback connection (what each
/// new HTTP connection costs, once); its pid.
pub fn peer_lookup(server: std::net::SocketAddr, client: std::net::SocketAddr) -> Option<u32> {
    crate::peer::lookup(server, client).map(|p| p.pid)
}

/// Seals one tool-call event's content after a previous seal: the whole
/// cost that chaining adds to an audit write (the rest is the same insert).
pub fn audit_seal(prev: &str) -> String {
    let content = crate::audit::chain::content(
        1,
        clock::now(),
        "tool_call",
        "allowed",
        [
            &Some("gh_client_0123456789abcdef".into()),
            &Some("Agent".into()),
            &Some("demo".into()),
            &Some("read_note".into()),
            &Some("gr_0123456789ab".into()),
            &None,
        ],
        Some(3),
        r#"{"arguments":{"title":"welcome"}}"#,
    );
    crate::audit::chain::seal(&crate::audit::chain::Key::new([7; 32]), prev, &content)
}

/// The token endpoint's refresh grant for a public client; returns the response body.
pub fn refresh(g: &Gatehouse, client_id: &str, refresh_token: &str) -> Result<Value, String> {
    let creds = PresentedCredentials {
        form_client_id: Some(client_id.to_string()),
        ..Default::default()
    };
    let grant = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ]);
    let issued =
        token::exchange(g.auth(), &grant, &creds, clock::now()).map_err(|e| e.to_string())?;
    serde_json::to_value(issued).map_err(|e| e.to_string())
}

/// Introspection by a confidential client, its answer written out as JSON;
/// whether the token is active.
pub fn introspect(g: &Gatehouse, id: &str, secret: &str, token: &str) -> Result<bool, String> {
    let creds = PresentedCredentials {
        basic: Some((id.to_string(), secret.to_string())),
        ..Default::default()
    };
    let answer = token::introspect(g.auth(), &form(&[("token", token)]), &creds, clock::now())
        .map_err(|e| e.to_string())?;
    serde_json::to_vec(&answer).map_err(|e| e.to_string())?;
    Ok(answer.is_active())
}

/// Issues `n` more live access tokens for the grant of `token` (as /token
/// stores them, in one transaction), so the bearer check runs among many.
/// Their texts are never handed out: they are found in the live state by
/// hash, never in the database by id.
pub fn add_live_tokens(g: &Gatehouse, token: &str, n: usize) -> Result<(), String> {
    use crate::store::tokens::{self, TokenKind, TokenRow};
    let row = g
        .store()
        .read(|c| tokens::get_token(c, &tokens::TokenKey::of(token)))
        .map_err(|e| e.to_string())?
        .ok_or("unknown token")?;
    let now = clock::now();
    g.store()
        .write(|tx| {
            for i in 0..n {
                let t = TokenRow {
                    id: tokens::next_id(tx.conn())?,
                    token_hash: crate::crypto::hash(&format!("bench-{i}-{token}")),
                    kind: TokenKind::Access,
                    issued_at: now,
                    expires_at: now + 3_600_000,
                    ..row.clone()
                };
                tokens::insert_token(tx.conn(), &t)?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .map_err(|e| e.to_string())
}

/// Audit events committed in `time` by `writers` concurrent tasks, each
/// appending one tool-call event after another (the gateway's group commit).
pub async fn audit_appends(
    g: &Gatehouse,
    writers: usize,
    time: std::time::Duration,
) -> Result<usize, String> {
    let deadline = std::time::Instant::now() + time;
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let store = g.auth().store.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while std::time::Instant::now() < deadline {
                    let event = NewEvent::new(EventKind::ToolCall, Outcome::Allowed)
                        .server("demo")
                        .tool("read_note")
                        .detail(
                            serde_json::json!({"arguments": {"title": format!("note {i}-{n}")}}),
                        );
                    store
                        .append(event, clock::now())
                        .await
                        .map_err(|e| e.to_string())?;
                    n += 1;
                }
                Ok::<usize, String>(n)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| e.to_string())??;
    }
    Ok(total)
}

/// The pinned fields of tool definitions, as a session keeps what it saw.
pub fn pinned(tools: &[Value]) -> Vec<Value> {
    tools.iter().map(pinning::pinned_fields).collect()
}

/// How many of a listing's definitions are the ones seen before (what a
/// listing checks instead of hashing each definition again).
pub fn unchanged_definitions(tools: &[Value], seen: &[Value]) -> usize {
    tools
        .iter()
        .zip(seen)
        .filter(|(t, s)| pinning::same_pinned(t, s))
        .count()
}

/// How many events the audit writer adds to the log's indexes a transaction.
pub const INDEX_CHUNK: usize = crate::store::INDEX_CHUNK;

/// Brings the log's indexes of the database at `db` up to date as the
/// audit writer does when idle, a chunk of events a transaction (for a
/// database filled behind Gatehouse's back: its text index then has the
/// segments a live one would).
pub fn index_audit_log(db: &std::path::Path) -> Result<(), String> {
    let mut conn = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    loop {
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        let added = crate::store::audit::index_log(&tx, INDEX_CHUNK).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        if added == 0 {
            return Ok(());
        }
    }
}
