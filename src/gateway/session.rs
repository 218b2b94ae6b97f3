//! Gateway sessions (`Mcp-Session-Id`). A session is created by a successful
//! `initialize`, belongs to one agent on one server, and has its own upstream
//! connection, so agents never see each other's sessions. A session id that
//! names another agent's session is treated as unknown.
#![allow(clippy::disallowed_methods)] // an edge: sessions age in real time

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::listing::{Definition, Definitions};
use super::pinning::{pin_hash, pinned_fields, same_pinned};
use super::tasks::Tasks;
use super::upstream::Connection;

/// A tool definition this session's upstream listed: its pinned fields and
/// their pin (hashed once, until the definition changes).
#[derive(Debug)]
pub struct SeenTool {
    pub fields: Value,
    pub hash: String,
}

pub struct Session {
    pub id: String,
    pub client_id: String,
    pub server: String,
    pub upstream: Connection,
    last_used: Mutex<Instant>,
    /// The tool definitions this session's upstream last listed, by name.
    seen: Mutex<HashMap<String, Arc<SeenTool>>>,
    /// The definitions of its last listing, in order (each read once while
    /// its text stays the same).
    pub definitions: Definitions,
    /// What its server asked of the agent (on the timeline, up to a cap).
    pub server_asks: Arc<ServerAsks>,
    /// The tasks its own calls created: the only ones it may name (shared
    /// with its GET stream, which hears only of them).
    pub tasks: Arc<Tasks>,
    /// How many of its requests are waiting on its upstream.
    in_flight: Arc<AtomicUsize>,
    /// Its ask-every-time calls waiting for the person: request id key →
    /// held call id (a `notifications/cancelled` for one withdraws it).
    held: Mutex<HashMap<String, String>>,
}

/// A request of a session waiting on its upstream, counted until dropped.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Who a session's server requests are recorded for, and how many so far:
/// shared with the session's GET stream, which must not hold the session
/// (the stream ends when the session does).
pub struct ServerAsks {
    pub client_id: String,
    pub server: String,
    pub count: std::sync::atomic::AtomicU32,
}

impl Session {
    pub fn new(client_id: &str, server: &str, upstream: Connection) -> Session {
        Session {
            id: crate::crypto::Secret::generate("gh_sess_").into_exposed(),
            client_id: client_id.to_string(),
            server: server.to_string(),
            upstream,
            last_used: Mutex::new(Instant::now()),
            seen: Mutex::default(),
            definitions: Definitions::default(),
            server_asks: Arc::new(ServerAsks {
                client_id: client_id.to_string(),
                server: server.to_string(),
                count: Default::default(),
            }),
            tasks: Arc::default(),
            in_flight: Arc::default(),
            held: Mutex::default(),
        }
    }

    /// Notes that its request `key` ([`super::jsonrpc::id_key`]) is held as `call_id`.
    pub fn note_held(&self, key: &str, call_id: &str) {
        lock(&self.held).insert(key.to_string(), call_id.to_string());
    }

    /// Forgets a held request (decided, or the agent left).
    pub fn forget_held(&self, key: &str) {
        lock(&self.held).remove(key);
    }

    /// The held call its request `key` waits as, if any.
    pub fn held_call(&self, key: &str) -> Option<String> {
        lock(&self.held).get(key).cloned()
    }

    /// Counts one more request waiting on the upstream, unless `limit` already
    /// are: an agent cannot pile up waits (a task's result may take an hour).
    pub fn start_request(&self, limit: usize) -> Option<InFlight> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                room(n, limit).then_some(n + 1)
            })
            .ok()?;
        Some(InFlight(self.in_flight.clone()))
    }

    /// Whether [`Session::start_request`] would count one more now.
    pub fn has_room(&self, limit: usize) -> bool {
        room(self.waiting(), limit)
    }

    /// How many of its requests wait on the upstream.
    fn waiting(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Records the definitions of tools the upstream listed.
    pub fn remember_tools(&self, tools: &[Value]) {
        for tool in tools {
            self.note(tool);
        }
    }

    /// Records a definition the upstream listed; its pinned fields and pin.
    /// A definition the same as the one seen before is not hashed again.
    pub fn note(&self, tool: &Value) -> Option<Arc<SeenTool>> {
        let name = tool.get("name")?.as_str()?;
        let mut seen = lock(&self.seen);
        if let Some(known) = seen.get(name).filter(|k| same_pinned(tool, &k.fields)) {
            return Some(known.clone());
        }
        let fields = pinned_fields(tool);
        let hash = pin_hash(&fields);
        let noted = Arc::new(SeenTool { fields, hash });
        seen.insert(name.to_string(), noted.clone());
        Some(noted)
    }

    /// Records a definition the upstream listed (read from its listing); its
    /// pinned fields and pin.
    pub fn note_listed(&self, def: &Definition) -> Option<Arc<SeenTool>> {
        let name = def.name()?;
        let pin = def.pin();
        let mut seen = lock(&self.seen);
        if !seen.get(name).is_some_and(|known| Arc::ptr_eq(known, pin)) {
            seen.insert(name.to_string(), pin.clone());
        }
        Some(pin.clone())
    }

    /// What the upstream last listed for this tool, unless it said since that
    /// its tool list changed.
    pub fn seen_tool(&self, name: &str) -> Option<Arc<SeenTool>> {
        let mut seen = lock(&self.seen);
        if self.upstream.take_list_changed() {
            seen.clear();
        }
        seen.get(name).cloned()
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }
}

/// The cap on a session's waiting requests: room for one more while fewer
/// than `limit` wait.
fn room(waiting: usize, limit: usize) -> bool {
    waiting < limit
}

/// Whether a session unused for `unused` is idle (see [`Sessions::remove_idle`]).
fn is_idle(unused: Duration, waiting: bool, max: Duration, patience: Duration) -> bool {
    match waiting {
        false => unused > max,
        true => unused > max + patience,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The open sessions, by id.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    pub fn insert(&self, session: Arc<Session>) {
        lock(&self.by_id).insert(session.id.clone(), session);
    }

    /// The session, if it is this agent's on this server and its upstream is
    /// alive (a dead one is dropped). Marks it used.
    pub fn get(&self, id: &str, client_id: &str, server: &str) -> Option<Arc<Session>> {
        let mut sessions = lock(&self.by_id);
        let session = sessions.get(id)?.clone();
        if session.client_id != client_id || session.server != server {
            return None;
        }
        if !session.upstream.is_alive() {
            sessions.remove(id);
            return None;
        }
        session.touch();
        Some(session)
    }

    /// Makes room for one more session of this agent on this server: while it
    /// has `limit` or more, the one it used least recently is removed (and
    /// returned, to be closed). A client that never ends its sessions keeps
    /// working; it never holds more than `limit` upstreams.
    pub fn make_room(&self, client_id: &str, server: &str, limit: usize) -> Vec<Arc<Session>> {
        let mut sessions = lock(&self.by_id);
        let mut mine: Vec<(Duration, String)> = sessions
            .values()
            .filter(|s| s.client_id == client_id && s.server == server)
            .map(|s| (s.idle_for(), s.id.clone()))
            .collect();
        mine.sort_by_key(|s| std::cmp::Reverse(s.0));
        let excess = (mine.len() + 1).saturating_sub(limit);
        mine.into_iter()
            .take(excess)
            .filter_map(|(_, id)| sessions.remove(&id))
            .collect()
    }

    /// Removes (and returns, to be closed) every session on one server.
    pub fn remove_server(&self, server: &str) -> Vec<Arc<Session>> {
        let mut sessions = lock(&self.by_id);
        let ids: Vec<String> = sessions
            .values()
            .filter(|s| s.server == server)
            .map(|s| s.id.clone())
            .collect();
        ids.iter().filter_map(|id| sessions.remove(id)).collect()
    }

    /// Open sessions on one server.
    pub fn count_on(&self, server: &str) -> usize {
        lock(&self.by_id)
            .values()
            .filter(|s| s.server == server)
            .count()
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.by_id).remove(id)
    }

    /// Removes every session of an agent.
    pub fn remove_agent(&self, client_id: &str) -> Vec<Arc<Session>> {
        let mut sessions = lock(&self.by_id);
        let ids: Vec<String> = sessions
            .values()
            .filter(|s| s.client_id == client_id)
            .map(|s| s.id.clone())
            .collect();
        ids.iter().filter_map(|id| sessions.remove(id)).collect()
    }

    /// Removes the sessions unused for longer than `max`: one waiting on its
    /// upstream (for a task's result) is in use, for `patience` more at most.
    pub fn remove_idle(&self, max: Duration, patience: Duration) -> Vec<Arc<Session>> {
        let mut sessions = lock(&self.by_id);
        let ids: Vec<String> = sessions
            .values()
            .filter(|s| is_idle(s.idle_for(), s.waiting() > 0, max, patience))
            .map(|s| s.id.clone())
            .collect();
        ids.iter().filter_map(|id| sessions.remove(id)).collect()
    }

    pub fn drain(&self) -> Vec<Arc<Session>> {
        lock(&self.by_id).drain().map(|(_, s)| s).collect()
    }

    pub fn len(&self) -> usize {
        lock(&self.by_id).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_waiting_on_its_upstream_is_idle_only_past_the_longest_wait() {
        let (max, patience) = (Duration::from_secs(1800), Duration::from_secs(3600));
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert!(!is_idle(minutes(29), false, max, patience));
        assert!(is_idle(minutes(31), false, max, patience));
        assert!(!is_idle(minutes(31), true, max, patience));
        assert!(!is_idle(minutes(89), true, max, patience));
        assert!(is_idle(minutes(91), true, max, patience));
    }
}
