//! A streamable-HTTP upstream: each request is a POST whose answer is JSON or
//! an SSE stream; the upstream's session id and the client's protocol version
//! go along; its GET stream of server messages is relayed.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::Value;

use super::{
    message_channel, note_list_changed, MessageSender, MessageStream, ServerStream, UpstreamError,
    UpstreamHeaders, MAX_MESSAGE_BYTES,
};
use crate::gateway::jsonrpc::{self, Message};
use crate::upstream_oauth::UpstreamAuth;

pub struct HttpConnection {
    server: String,
    /// Gatehouse's own login at the server, if it asks for one.
    login: Arc<UpstreamAuth>,
    /// Held by the one open GET stream.
    stream_lock: Arc<tokio::sync::Mutex<()>>,
    /// The task relaying the GET stream: ended with the connection, not
    /// only when the server ends the stream (a server may keep it open
    /// after its session's DELETE, and the agent's stream with it).
    stream_relay: Mutex<StreamRelay>,
    pub(super) list_changed: Arc<AtomicBool>,
    url: url::Url,
    http: reqwest::Client,
    session_id: Mutex<Option<String>>,
}

impl HttpConnection {
    pub(super) fn new(
        server: &str,
        url: url::Url,
        headers: &[(String, String)],
        login: Arc<UpstreamAuth>,
    ) -> Result<HttpConnection, UpstreamError> {
        let start_error = |reason: String| UpstreamError::Start {
            server: server.to_string(),
            reason,
        };
        let mut default_headers = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| start_error(format!("header {name:?}: {e}")))?;
            let mut value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| start_error(format!("header {name}: invalid value")))?;
            value.set_sensitive(true);
            default_headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(default_headers)
            .build()
            .map_err(|e| start_error(e.to_string()))?;
        Ok(HttpConnection {
            server: server.to_string(),
            login,
            stream_lock: Arc::default(),
            stream_relay: Mutex::default(),
            list_changed: Arc::default(),
            url,
            http,
            session_id: Mutex::new(None),
        })
    }

    fn failed(&self, reason: impl Into<String>) -> UpstreamError {
        UpstreamError::Failed {
            server: self.server.clone(),
            reason: reason.into(),
        }
    }

    fn post(&self, msg: &Value, headers: &UpstreamHeaders) -> reqwest::RequestBuilder {
        let req = self
            .http
            .post(self.url.clone())
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(msg.to_string());
        self.with_session(req, headers)
    }

    /// Sends a request with Gatehouse's login at the server (if it has one);
    /// a refusal (401, or 403 for more scope) is retried once after a
    /// refresh, else the server needs the person to log in.
    async fn authorized(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UpstreamError> {
        for attempt in 0..2 {
            let mut req = build();
            if let Some(token) = self.login.bearer(&self.server).await {
                req = req.bearer_auth(token);
            }
            let response = req.send().await.map_err(|e| self.failed(e.to_string()))?;
            let status = response.status().as_u16();
            if status != 401 && status != 403 {
                return Ok(response);
            }
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if challenge.is_empty() && status == 403 {
                return Ok(response);
            }
            let retried = attempt > 0;
            if self
                .login
                .refused(&self.server, &self.url, status, &challenge, retried)
                .await
            {
                continue;
            }
            let reason = self
                .login
                .needs_login(&self.server)
                .map_or_else(|| format!("answered HTTP {status}"), |n| n.reason);
            return Err(UpstreamError::NeedsLogin {
                server: self.server.clone(),
                reason,
            });
        }
        unreachable!("the loop returns")
    }

    /// Adds the upstream's session id and the client's protocol version.
    fn with_session(
        &self,
        mut req: reqwest::RequestBuilder,
        headers: &UpstreamHeaders,
    ) -> reqwest::RequestBuilder {
        if let Some(sid) = self
            .session_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            req = req.header("mcp-session-id", sid);
        }
        if let Some(v) = &headers.protocol_version {
            req = req.header("mcp-protocol-version", v);
        }
        if let Some(v) = &headers.method {
            req = req.header("mcp-method", v);
        }
        if let Some(v) = &headers.name {
            req = req.header("mcp-name", v);
        }
        req
    }

    pub(super) async fn request(
        &self,
        msg: Value,
        headers: &UpstreamHeaders,
    ) -> Result<MessageStream, UpstreamError> {
        let mut response = self.authorized(|| self.post(&msg, headers)).await?;
        if let Some(sid) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            *self.session_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(sid.to_string());
        }
        let status = response.status();
        if !status.is_success() {
            // A JSON-RPC error in the body says more than the status does
            // (an unsupported protocol version, a bad request): pass it on.
            let body = crate::fetch::capped_body(&mut response, MAX_MESSAGE_BYTES)
                .await
                .unwrap_or_default();
            let error = serde_json::from_slice::<Value>(&body)
                .ok()
                .filter(|m| m.get("error").is_some() && jsonrpc::is_response(m));
            let Some(error) = error else {
                return Err(self.failed(format!("answered HTTP {status}")));
            };
            return Ok(MessageStream::one(error.into()));
        }
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let (tx, rx) = message_channel();
        if is_sse {
            let mut messages = SseMessages::new(response, self.list_changed.clone());
            let stream = Relayed::Post(match jsonrpc::classify(&msg) {
                Some(jsonrpc::Kind::Request { id, .. }) => Some(jsonrpc::id_key(&id)),
                _ => None,
            });
            // Most answers are one event: read it here, with no relay task.
            if let Some((first, size)) = messages.next().await {
                let done = stream.ends_with(&first);
                tx.send(first, Some(size)).await;
                if !done {
                    tokio::spawn(relay_sse(messages, tx, stream));
                }
            }
        } else {
            let body = crate::fetch::capped_body(&mut response, MAX_MESSAGE_BYTES)
                .await
                .map_err(|e| self.failed(e))?;
            let msg = Message::read(&body)
                .ok_or_else(|| self.failed("answered with a body that is not JSON"))?;
            tx.send(msg, Some(body.len())).await;
        }
        Ok(rx)
    }

    pub(super) async fn send(
        &self,
        msg: Value,
        headers: &UpstreamHeaders,
    ) -> Result<(), UpstreamError> {
        let response = self.authorized(|| self.post(&msg, headers)).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.failed(format!("answered HTTP {}", response.status())))
        }
    }

    /// The upstream's GET stream of server messages, relayed (one at a time).
    pub(super) async fn open_stream(&self, headers: &UpstreamHeaders) -> Option<ServerStream> {
        let lease = self.stream_lock.clone().try_lock_owned().ok()?;
        let get = || {
            let req = self
                .http
                .get(self.url.clone())
                .header("accept", "text/event-stream");
            self.with_session(req, headers)
        };
        let response = self.authorized(get).await.ok()?;
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !response.status().is_success() || !is_sse {
            return None;
        }
        let (tx, rx) = message_channel();
        let messages = SseMessages::new(response, self.list_changed.clone());
        let relay = tokio::spawn(relay_sse(messages, tx, Relayed::Get)).abort_handle();
        self.replace_stream_relay(Some(relay));
        Some(Box::pin(futures::stream::unfold(
            (rx, lease),
            |(mut rx, lease)| async move { rx.recv().await.map(|m| (m, (rx, lease))) },
        )))
    }

    /// Makes `next` the GET stream's relay, ending the one before; with
    /// `None`, ends it for good (the connection closes), so that a stream
    /// opened while it closed ends too.
    fn replace_stream_relay(&self, next: Option<tokio::task::AbortHandle>) {
        let mut relay = self.stream_relay.lock().unwrap_or_else(|p| p.into_inner());
        relay.closed |= next.is_none();
        let (kept, refused) = match relay.closed {
            true => (None, next),
            false => (next, None),
        };
        let earlier = std::mem::replace(&mut relay.running, kept);
        for handle in [earlier, refused].into_iter().flatten() {
            handle.abort();
        }
    }

    pub(super) async fn close(&self) {
        self.replace_stream_relay(None);
        let sid = self
            .session_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(sid) = sid {
            let _ = self
                .authorized(|| {
                    self.http
                        .delete(self.url.clone())
                        .header("mcp-session-id", sid.as_str())
                })
                .await;
        }
    }
}

impl Drop for HttpConnection {
    fn drop(&mut self) {
        self.replace_stream_relay(None);
    }
}

/// The task relaying a connection's GET stream, and whether the connection closed.
#[derive(Default)]
struct StreamRelay {
    running: Option<tokio::task::AbortHandle>,
    closed: bool,
}

/// The messages of an SSE response, one `data:` event at a time.
struct SseMessages {
    stream: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: Vec<u8>,
    /// Where the first line not yet read starts in `buffer`.
    start: usize,
    /// How much of `buffer` is known to hold no line end.
    scanned: usize,
    data: String,
    list_changed: Arc<AtomicBool>,
}

impl SseMessages {
    fn new(response: reqwest::Response, list_changed: Arc<AtomicBool>) -> SseMessages {
        SseMessages {
            stream: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
            start: 0,
            scanned: 0,
            data: String::new(),
            list_changed,
        }
    }

    /// The next message and its size (as read); `None` when the stream
    /// ends, fails or overflows.
    async fn next(&mut self) -> Option<(Message, usize)> {
        loop {
            while let Some(pos) = self.buffer[self.scanned..].iter().position(|b| *b == b'\n') {
                let end = self.scanned + pos + 1;
                let line = String::from_utf8_lossy(&self.buffer[self.start..end]);
                self.start = end;
                self.scanned = end;
                let line = line.trim_end_matches(['\n', '\r']);
                if line.is_empty() {
                    let data = std::mem::take(&mut self.data);
                    if let Some(msg) = Message::read(data.as_bytes()) {
                        note_list_changed(&msg, &self.list_changed);
                        return Some((msg, data.len()));
                    }
                } else if let Some(rest) = line.strip_prefix("data:") {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
                    if self.data.len() > MAX_MESSAGE_BYTES {
                        return None;
                    }
                }
            }
            // The lines read go, once a chunk (not one by one: each would
            // move the rest of the buffer); what is left holds no line end,
            // so only the new bytes are looked through.
            self.buffer.drain(..self.start);
            self.start = 0;
            self.scanned = self.buffer.len();
            let chunk = self.stream.next().await?.ok()?;
            self.buffer.extend_from_slice(&chunk);
            if self.buffer.len() > MAX_MESSAGE_BYTES {
                return None;
            }
        }
    }
}

/// Which SSE stream is relayed.
enum Relayed {
    /// A POST's: it ends with the answer to its request (that id's key; any
    /// answer when it is not known). An answer to another id does not end it
    /// (the exchange drops it), so the request's own answer still comes.
    Post(Option<String>),
    /// The GET stream: only the server's requests and notifications are
    /// forwarded: an answer there could pass for the answer to an agent's
    /// request, past the listing's filter and the pin checks.
    Get,
}

impl Relayed {
    fn ends_with(&self, msg: &Message) -> bool {
        match (self, msg.response_id()) {
            (Relayed::Post(Some(key)), Some(id)) => jsonrpc::id_key(&id) == *key,
            (Relayed::Post(None), Some(_)) => true,
            _ => false,
        }
    }
}

/// Forwards each message of an SSE response until the stream ends (a POST's:
/// until its answer), or until nobody reads them.
async fn relay_sse(mut messages: SseMessages, tx: MessageSender, stream: Relayed) {
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            // Nobody reads any more (the call timed out, the agent went
            // away): a server that stays silent must not hold this task and
            // its connection for good.
            () = tx.closed() => return,
        };
        let Some((msg, size)) = next else {
            return;
        };
        if matches!(stream, Relayed::Get) && !msg.is_server_message() {
            tracing::warn!(
                "an upstream sent a response (or no message) on its GET stream: dropped"
            );
            continue;
        }
        let done = stream.ends_with(&msg);
        if !tx.send(msg, Some(size)).await || done {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(body: String) -> SseMessages {
        sse_in_chunks(vec![body])
    }

    /// An SSE response whose body arrives in these chunks.
    fn sse_in_chunks<T>(chunks: Vec<T>) -> SseMessages
    where
        T: Send + Sync + 'static,
        axum::body::Bytes: From<T>,
    {
        let chunks = chunks.into_iter().map(Ok::<_, std::io::Error>);
        let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        let response = reqwest::Response::from(axum::http::Response::new(body));
        SseMessages::new(response, Arc::default())
    }

    async fn relayed(body: &str, stream: Relayed) -> Vec<String> {
        let (tx, mut rx) = message_channel();
        relay_sse(sse(body.to_string()), tx, stream).await;
        let mut out = Vec::new();
        while let Some(m) = rx.recv().await {
            out.push(m.text().to_string());
        }
        out
    }

    #[tokio::test]
    async fn the_get_stream_relays_the_servers_requests_and_notifications_only() {
        let body = concat!(
            "data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"rm\"}]}}\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":1,\"message\":\"x\"}}\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"roots/list\"}\n\n",
        );
        let got = relayed(body, Relayed::Get).await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].contains("notifications/message"), "{got:?}");
        assert!(got[1].contains("roots/list"), "{got:?}");
        // A POST's stream ends with its answer, which it forwards.
        let got = relayed(body, Relayed::Post(Some(jsonrpc::id_key(&3.into())))).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("\"id\":3"), "{got:?}");
        // An answer to another id does not end it: the request's own still comes.
        let got = relayed(body, Relayed::Post(Some(jsonrpc::id_key(&4.into())))).await;
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[2].contains("\"id\":4"), "{got:?}");
    }

    async fn texts(mut messages: SseMessages) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((m, _)) = messages.next().await {
            out.push(m.text().to_string());
        }
        out
    }

    /// Chunks end where the network cut them: inside a line, between `\r`
    /// and `\n`, inside a character of several bytes. The events read are
    /// the same wherever the cuts fall.
    #[tokio::test]
    async fn an_event_split_anywhere_across_chunks_reads_the_same() {
        let body = concat!(
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\r\n",
            "data: \"params\":{\"data\":\"caf\u{e9} \u{2713}\"}}\r\n\r\n",
            ": a comment\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
        )
        .as_bytes();
        let whole = texts(sse(String::from_utf8(body.to_vec()).unwrap())).await;
        assert_eq!(whole.len(), 2, "{whole:?}");
        assert!(whole[0].contains("caf\u{e9} \u{2713}"), "{whole:?}");
        assert!(whole[1].contains("\"id\":1"), "{whole:?}");
        for cut in 1..body.len() {
            let halves = vec![body[..cut].to_vec(), body[cut..].to_vec()];
            assert_eq!(texts(sse_in_chunks(halves)).await, whole, "cut at {cut}");
        }
        let bytes: Vec<Vec<u8>> = body.iter().map(|b| vec![*b]).collect();
        assert_eq!(texts(sse_in_chunks(bytes)).await, whole, "byte by byte");
    }

    /// A server that sends a message and then stays silent, its stream
    /// open: once nobody reads (the call timed out, the agent went away),
    /// the relay ends and lets go of the connection.
    #[tokio::test]
    async fn a_relay_ends_when_nobody_reads_though_the_server_stays_silent() {
        use futures::StreamExt;
        let first =
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n";
        let chunks =
            futures::stream::iter([Ok::<_, std::io::Error>(axum::body::Bytes::from(first))])
                .chain(futures::stream::pending());
        let response = reqwest::Response::from(axum::http::Response::new(
            reqwest::Body::wrap_stream(chunks),
        ));
        let (tx, mut rx) = message_channel();
        let relay = tokio::spawn(relay_sse(
            SseMessages::new(response, Arc::default()),
            tx,
            Relayed::Post(None),
        ));
        assert!(rx.recv().await.is_some(), "the first message is relayed");
        drop(rx);
        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), relay).await;
        assert!(ended.is_ok(), "the relay still waits on a silent server");
    }

    #[tokio::test]
    async fn an_event_that_never_ends_is_cut_at_the_message_cap() {
        // Each chunk is a whole line: the buffer never holds much.
        let line = format!("data: {}\n", "A".repeat(64 * 1024));
        let lines = vec![line.clone(); MAX_MESSAGE_BYTES / line.len() + 2];
        let mut messages = sse_in_chunks(lines);
        assert!(messages.next().await.is_none());
        assert!(messages.data.len() <= MAX_MESSAGE_BYTES + line.len());
    }

    /// A GET stream whose relay is stored after the connection closed (the
    /// agent's stream raced the session's end) is ended at once, as is the
    /// relay a new stream replaces.
    #[tokio::test]
    async fn a_stream_relay_ends_with_its_connection_even_when_it_comes_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::credentials::CredentialStore::file(dir.path());
        let login = Arc::new(UpstreamAuth::new(Arc::new(store)));
        let url = url::Url::parse("http://127.0.0.1:9/mcp").unwrap();
        let conn = HttpConnection::new("remote", url, &[], login).unwrap();
        let forever = || tokio::spawn(std::future::pending::<()>());
        let ended = |task: tokio::task::JoinHandle<()>| async move {
            let waited = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
            waited.is_ok_and(|t| t.is_err_and(|e| e.is_cancelled()))
        };

        let (first, second) = (forever(), forever());
        conn.replace_stream_relay(Some(first.abort_handle()));
        conn.replace_stream_relay(Some(second.abort_handle()));
        assert!(ended(first).await, "replaced, so ended");
        assert!(!second.is_finished(), "the one that replaced it runs");
        conn.close().await;
        assert!(ended(second).await, "closed, so ended");

        let late = forever();
        conn.replace_stream_relay(Some(late.abort_handle()));
        assert!(ended(late).await, "came after the close");
    }
}
