//! Gatehouse as an OAuth client of the remote MCP servers it fronts. When a
//! server answers 401, it "needs login": the person logs in once in the
//! system browser (`gatehouse servers login`, or the app), the answer comes
//! back to Gatehouse's own loopback callback, and the tokens go to the OS
//! keychain. Gatehouse sends them on every request to that server and
//! refreshes them before they expire; they never reach an agent, the
//! database, the log or the audit log. Agents keep using their own tokens
//! with Gatehouse, checked against their grants as for any server.
//!
//! The flow follows the MCP authorization spec as a client: discovery
//! (`discovery`), client identity (a hand-registered client from the config,
//! else a Client ID Metadata Document that Gatehouse serves when the
//! authorization server takes them, else dynamic registration), PKCE S256,
//! `resource` (RFC 8707), `iss` checked (RFC 9207), the scope from the
//! challenge or the metadata, and a new login for more scope on `403
//! insufficient_scope`. The OAuth exchanges are the `oauth2` crate's.

#![allow(clippy::disallowed_methods)] // an edge: tokens expire in real time

pub mod discovery;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{ServerConfig, Upstream, Value};
use crate::credentials::CredentialStore;
use discovery::{AuthServer, Challenge};

/// How long a started login waits for the browser to come back.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// A token is refreshed when it has less than this left.
const REFRESH_MARGIN_MS: i64 = 60_000;

/// How Gatehouse identifies itself to an authorization server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    pub client_id: String,
    pub client_secret: Option<String>,
    /// "none", "client_secret_basic" or "client_secret_post".
    pub auth_method: String,
}

/// What Gatehouse keeps (in the keychain) of one server's login.
#[derive(Clone, Serialize, Deserialize)]
struct Tokens {
    access_token: String,
    refresh_token: Option<String>,
    /// Milliseconds since the epoch.
    expires_at: Option<i64>,
    scope: Option<String>,
    token_endpoint: String,
    issuer: String,
    resource: String,
    identity: Identity,
}

/// A login the person started, waiting for the browser to come back.
struct Attempt {
    server: String,
    verifier: PkceCodeVerifier,
    identity: Identity,
    auth: AuthServer,
    resource: String,
    scope: Option<String>,
    started: Instant,
}

/// Why a server needs the person to log in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct NeedsLogin {
    pub reason: String,
    /// The scope the server asked for, if it said.
    pub scope: Option<String>,
}

/// The upstream logins of one running Gatehouse.
pub struct UpstreamAuth {
    credentials: Arc<CredentialStore>,
    /// `http://127.0.0.1:<port>`, known once Gatehouse listens.
    base: OnceLock<String>,
    pending: Mutex<HashMap<String, Attempt>>,
    needs: Mutex<HashMap<String, NeedsLogin>>,
    /// Why the last login the person started at a server failed.
    failures: Mutex<HashMap<String, String>>,
    /// The last challenge each server answered with (where its metadata is,
    /// what scope it wants).
    challenges: Mutex<HashMap<String, Challenge>>,
    /// Where Gatehouse's Client ID Metadata Document is published, when the
    /// person publishes it at an https URL of their own (else the loopback one).
    metadata_url: Mutex<Option<String>>,
    /// Each server's login as last read or kept, or that it has none (each
    /// request to a server would otherwise read the keychain for it).
    cache: Mutex<HashMap<String, Option<Tokens>>>,
    refreshing: tokio::sync::Mutex<()>,
}

fn now_ms() -> i64 {
    crate::clock::now()
}

fn account(server: &str) -> String {
    format!("upstream-login/{server}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An HTTP client for the oauth2 crate: never follows a redirect.
fn oauth_http() -> Result<oauth2::reqwest::Client, String> {
    oauth2::reqwest::Client::builder()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| e.to_string())
}

/// The URL of an HTTP server, or an error for a stdio one.
pub fn server_url(server: &ServerConfig) -> Result<url::Url, String> {
    match &server.upstream {
        Upstream::Http { url, .. } => Ok(url.clone()),
        Upstream::Stdio { .. } => Err(format!(
            "{} runs on stdio: there is nothing to log in to",
            server.name
        )),
    }
}

impl UpstreamAuth {
    pub fn new(credentials: Arc<CredentialStore>) -> UpstreamAuth {
        UpstreamAuth {
            credentials,
            base: OnceLock::new(),
            pending: Mutex::default(),
            needs: Mutex::default(),
            failures: Mutex::default(),
            challenges: Mutex::default(),
            metadata_url: Mutex::default(),
            cache: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Tells it where Gatehouse listens (for the callback and the metadata document).
    pub fn set_base(&self, base: &str) {
        let _ = self.base.set(base.to_string());
    }

    fn base(&self) -> String {
        self.base.get().cloned().unwrap_or_default()
    }

    /// Where the browser comes back to.
    pub fn redirect_uri(&self) -> String {
        format!("{}/oauth/callback", self.base())
    }

    /// Where Gatehouse's Client ID Metadata Document is: the URL the person
    /// published it at (config `client_metadata_url`), else the one
    /// Gatehouse serves on loopback (which only a local authorization server can read).
    pub fn client_metadata_url(&self) -> String {
        lock(&self.metadata_url)
            .clone()
            .unwrap_or_else(|| format!("{}/oauth/client.json", self.base()))
    }

    /// Uses a published metadata document URL (or, with `None`, the loopback one).
    pub fn set_client_metadata_url(&self, url: Option<String>) {
        *lock(&self.metadata_url) = url;
    }

    pub fn client_metadata(&self) -> serde_json::Value {
        let mut doc = client_description(&self.redirect_uri());
        doc["client_id"] = json!(self.client_metadata_url());
        doc
    }

    /// Why the server needs a login now, if it does.
    pub fn needs_login(&self, server: &str) -> Option<NeedsLogin> {
        lock(&self.needs).get(server).cloned()
    }

    /// Why the last login the person started at the server failed, if it did.
    pub fn login_error(&self, server: &str) -> Option<String> {
        lock(&self.failures).get(server).cloned()
    }

    /// Whether Gatehouse holds a login for the server.
    pub fn logged_in(&self, server: &str) -> bool {
        self.tokens(server).is_some()
    }

    fn tokens(&self, server: &str) -> Option<Tokens> {
        if let Some(known) = lock(&self.cache).get(server) {
            return known.clone();
        }
        self.remember(server, self.credentials.upstream_login(&account(server)))
    }

    /// [`Self::tokens`] for the request path: the store is read off the
    /// async workers (a locked keychain may wait for the person).
    async fn load(&self, server: &str) -> Option<Tokens> {
        if let Some(known) = lock(&self.cache).get(server) {
            return known.clone();
        }
        let (store, account) = (self.credentials.clone(), account(server));
        let read = tokio::task::spawn_blocking(move || store.upstream_login(&account)).await;
        self.remember(server, read.ok()?)
    }

    /// Caches a login read from the store, unless a login kept or forgotten
    /// while it was read got there first (that one is newer). A store that
    /// failed is asked again next time; no login is remembered.
    fn remember(
        &self,
        server: &str,
        read: Result<Option<String>, crate::credentials::SecretError>,
    ) -> Option<Tokens> {
        let tokens = read
            .ok()?
            .and_then(|t| serde_json::from_str::<Tokens>(&t).ok());
        let mut cache = lock(&self.cache);
        cache.entry(server.to_string()).or_insert(tokens).clone()
    }

    /// Keeps a new login in the store (off the async workers) and the cache.
    async fn keep(&self, server: &str, tokens: Tokens) -> Result<(), String> {
        let text = serde_json::to_string(&tokens).map_err(|e| e.to_string())?;
        let (store, account) = (self.credentials.clone(), account(server));
        let kept =
            tokio::task::spawn_blocking(move || store.set_upstream_login(&account, Some(&text)))
                .await;
        let kept = kept
            .map_err(|e| e.to_string())
            .and_then(|k| k.map_err(|e| e.to_string()));
        kept.map_err(|e| format!("cannot keep the login in the keychain: {e}"))?;
        lock(&self.cache).insert(server.to_string(), Some(tokens));
        lock(&self.needs).remove(server);
        lock(&self.failures).remove(server);
        Ok(())
    }

    /// Forgets a server's login (the person logs out, or the server is removed).
    pub fn logout(&self, server: &str) {
        lock(&self.cache).insert(server.to_string(), None);
        let _ = self.credentials.set_upstream_login(&account(server), None);
    }

    fn mark(&self, server: &str, reason: String, scope: Option<String>) {
        tracing::warn!(server, %reason, "the server needs the person to log in");
        lock(&self.needs).insert(server.to_string(), NeedsLogin { reason, scope });
    }

    /// The access token to send to the server, refreshed first if it is
    /// about to expire; `None` when there is no login (or it cannot be renewed).
    pub async fn bearer(&self, server: &str) -> Option<String> {
        let tokens = self.load(server).await?;
        let fresh = tokens
            .expires_at
            .is_none_or(|at| at - now_ms() > REFRESH_MARGIN_MS);
        if fresh {
            return Some(tokens.access_token);
        }
        self.refresh(server, &tokens.access_token).await.ok()
    }

    /// The server at `url` refused Gatehouse's request (`status`, its
    /// challenge). True when a retry may work (the token was refreshed);
    /// otherwise the server is marked as needing a login. A request refused
    /// again after a retry (`retried`) needs a login too.
    pub async fn refused(
        &self,
        server: &str,
        url: &url::Url,
        status: u16,
        challenge: &str,
        retried: bool,
    ) -> bool {
        let c = Challenge::parse(challenge);
        lock(&self.challenges).insert(server.to_string(), c.clone());
        if retried {
            let scope = self.load(server).await.and_then(|t| t.scope).or(c.scope);
            self.mark(
                server,
                format!("the server refused Gatehouse's renewed login (HTTP {status})"),
                scope,
            );
            return false;
        }
        if status == 401 {
            if let Some(moved) = self.moved_to(server, url, &c).await {
                self.logout(server);
                self.mark(
                    server,
                    format!(
                        "the server now takes logins from another authorization server ({moved})"
                    ),
                    c.scope,
                );
                return false;
            }
        }
        if status == 403 && c.error.as_deref() == Some("insufficient_scope") {
            let have = self.load(server).await.and_then(|t| t.scope);
            let scope = union(have.as_deref(), c.scope.as_deref());
            self.mark(
                server,
                "the server asks for more scope than Gatehouse was given".into(),
                scope,
            );
            return false;
        }
        match self.load(server).await {
            Some(tokens) if self.refresh(server, &tokens.access_token).await.is_ok() => true,
            Some(_) => false,
            None => {
                self.mark(server, "the server asks for a login".into(), c.scope);
                false
            }
        }
    }

    /// The authorization server the server at `url` now names, when its
    /// protected-resource metadata no longer lists the one Gatehouse's
    /// login came from (its tokens and client are not valid there).
    async fn moved_to(&self, server: &str, url: &url::Url, c: &Challenge) -> Option<String> {
        let tokens = self.load(server).await?;
        let now = discovery::resource(url, c).await.ok()?;
        (!now.authorization_servers.contains(&tokens.issuer))
            .then(|| now.authorization_servers[0].clone())
    }

    /// Renews the access token with the refresh token (once, if several
    /// requests find it stale at the same time).
    async fn refresh(&self, server: &str, stale: &str) -> Result<String, String> {
        let _one = self.refreshing.lock().await;
        let Some(tokens) = self.load(server).await else {
            return Err("no login".into());
        };
        if tokens.access_token != stale {
            return Ok(tokens.access_token);
        }
        let Some(refresh) = tokens.refresh_token.clone() else {
            self.mark(
                server,
                "the login expired (no refresh token)".into(),
                tokens.scope.clone(),
            );
            return Err("expired".into());
        };
        let client = oauth_client(&tokens.identity, None, &tokens.token_endpoint)?;
        let answer = client
            .exchange_refresh_token(&RefreshToken::new(refresh))
            .add_extra_param("resource", tokens.resource.clone())
            .request_async(&oauth_http()?)
            .await;
        match answer {
            Ok(answer) => {
                let renewed = Tokens {
                    access_token: answer.access_token().secret().clone(),
                    refresh_token: answer
                        .refresh_token()
                        .map(|r| r.secret().clone())
                        .or(tokens.refresh_token.clone()),
                    expires_at: answer.expires_in().map(|d| now_ms() + d.as_millis() as i64),
                    scope: scope_of(&answer).or(tokens.scope.clone()),
                    ..tokens
                };
                let access = renewed.access_token.clone();
                self.keep(server, renewed).await?;
                tracing::info!(server, "renewed the server's access token");
                Ok(access)
            }
            Err(e) => {
                let reason = format!("the login could not be renewed ({})", describe(&e));
                self.mark(server, reason.clone(), tokens.scope.clone());
                lock(&self.cache).remove(server);
                Err(reason)
            }
        }
    }

    /// Starts a login: finds the server's authorization server, how to be
    /// its client, and returns the URL for the person's browser.
    pub async fn start(
        &self,
        server: &ServerConfig,
        headers: &[(String, String)],
    ) -> Result<String, String> {
        lock(&self.failures).remove(&server.name);
        let url = server_url(server)?;
        // The challenge the server refused a request with; else ask it now.
        let known = lock(&self.challenges).get(&server.name).cloned();
        let challenge = match known {
            Some(c) => c,
            None => probe(&url, headers).await?,
        };
        let resource = discovery::resource(&url, &challenge).await?;
        let reach = discovery::reach_for(&url);
        let issuer = resource.authorization_servers[0].clone();
        let auth = discovery::auth_server(&issuer, reach).await?;
        let identity = self.identity(server, &auth).await?;
        let scope = server
            .oauth
            .as_ref()
            .and_then(|o| o.scope.clone())
            .or_else(|| self.needs_login(&server.name).and_then(|n| n.scope))
            .or(challenge.scope)
            .or_else(|| {
                (!resource.scopes_supported.is_empty()).then(|| resource.scopes_supported.join(" "))
            });
        let client = oauth_client(
            &identity,
            Some(&auth.authorization_endpoint),
            &auth.token_endpoint,
        )?
        .set_redirect_uri(RedirectUrl::new(self.redirect_uri()).map_err(|e| e.to_string())?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .map_err(|e| e.to_string())?
            .set_pkce_challenge(challenge)
            .add_extra_param("resource", resource.resource.clone());
        for s in scope.iter().flat_map(|s| s.split_whitespace()) {
            request = request.add_scope(Scope::new(s.to_string()));
        }
        let (auth_url, state) = request.url();
        let mut pending = lock(&self.pending);
        pending.retain(|_, a| a.started.elapsed() < LOGIN_TIMEOUT);
        pending.insert(
            state.secret().clone(),
            Attempt {
                server: server.name.clone(),
                verifier,
                identity,
                auth,
                resource: resource.resource,
                scope,
                started: Instant::now(),
            },
        );
        Ok(auth_url.to_string())
    }

    /// How Gatehouse is this authorization server's client: a client from
    /// the config; else one it registered there before (kept); else its
    /// metadata document, if the server takes them; else a registration now.
    async fn identity(&self, server: &ServerConfig, auth: &AuthServer) -> Result<Identity, String> {
        if let Some(o) = &server.oauth {
            let secret = match &o.client_secret {
                None => None,
                Some(Value::Plain(s)) => Some(s.clone()),
                Some(Value::Secret(r)) => Some(
                    self.credentials
                        .get(&server.name, &r.secret)
                        .map_err(|e| e.to_string())?,
                ),
            };
            let auth_method = match &secret {
                None => "none",
                Some(_)
                    if auth
                        .token_endpoint_auth_methods_supported
                        .iter()
                        .any(|m| m == "client_secret_basic")
                        || auth.token_endpoint_auth_methods_supported.is_empty() =>
                {
                    "client_secret_basic"
                }
                Some(_) => "client_secret_post",
            };
            return Ok(Identity {
                client_id: o.client_id.clone(),
                client_secret: secret,
                auth_method: auth_method.into(),
            });
        }
        let registered = format!("upstream-client/{}", auth.issuer);
        if let Some(kept) = self.credentials.upstream_login(&registered).ok().flatten() {
            if let Ok(identity) = serde_json::from_str::<Identity>(&kept) {
                return Ok(identity);
            }
        }
        if auth.client_id_metadata_document_supported {
            return Ok(Identity {
                client_id: self.client_metadata_url(),
                client_secret: None,
                auth_method: "none".into(),
            });
        }
        let Some(endpoint) = &auth.registration_endpoint else {
            return Err(format!(
                "{} takes neither client metadata documents nor registrations: register a client there and give it in the config ([servers.{}.oauth] client_id = …)",
                auth.issuer, server.name
            ));
        };
        let identity = register(
            endpoint,
            &self.redirect_uri(),
            discovery::reach_for(&server_url(server)?),
        )
        .await?;
        let text = serde_json::to_string(&identity).map_err(|e| e.to_string())?;
        let _ = self
            .credentials
            .set_upstream_login(&registered, Some(&text));
        Ok(identity)
    }

    /// The browser came back: checks the answer, exchanges the code, keeps
    /// the tokens. Returns the server logged in to.
    pub async fn finish(&self, query: &HashMap<String, String>) -> Result<String, String> {
        let state = query.get("state").ok_or("the answer carries no state")?;
        let attempt = lock(&self.pending)
            .remove(state)
            .filter(|a| a.started.elapsed() < LOGIN_TIMEOUT)
            .ok_or("this answer is not for a login Gatehouse started (or it took too long): start it again")?;
        let server = attempt.server.clone();
        let finished = self.complete(attempt, query).await;
        if let Err(e) = &finished {
            tracing::warn!(server, error = %e, "the login failed");
            lock(&self.failures).insert(server, e.clone());
        }
        finished
    }

    /// Checks the browser's answer to an attempt and exchanges its code.
    async fn complete(
        &self,
        attempt: Attempt,
        query: &HashMap<String, String>,
    ) -> Result<String, String> {
        // RFC 9207: the answer must come from the authorization server the
        // request went to.
        match query.get("iss") {
            Some(iss) if *iss != attempt.auth.issuer => {
                return Err(format!(
                    "the answer says it comes from {iss:?}, not {:?}: refused (a mix-up attack?)",
                    attempt.auth.issuer
                ))
            }
            None if attempt.auth.authorization_response_iss_parameter_supported => {
                return Err("the answer does not say which server sent it (no iss), though its metadata says it does: refused".into())
            }
            _ => {}
        }
        if let Some(error) = query.get("error") {
            let description = query.get("error_description").cloned().unwrap_or_default();
            return Err(format!(
                "the server refused the login: {error} {description}"
            ));
        }
        let code = query.get("code").ok_or("the answer carries no code")?;
        let client = oauth_client(&attempt.identity, None, &attempt.auth.token_endpoint)?
            .set_redirect_uri(RedirectUrl::new(self.redirect_uri()).map_err(|e| e.to_string())?);
        let answer = client
            .exchange_code(AuthorizationCode::new(code.clone()))
            .set_pkce_verifier(attempt.verifier)
            .add_extra_param("resource", attempt.resource.clone())
            .request_async(&oauth_http()?)
            .await
            .map_err(|e| format!("the code exchange failed: {}", describe(&e)))?;
        let tokens = Tokens {
            access_token: answer.access_token().secret().clone(),
            refresh_token: answer.refresh_token().map(|r| r.secret().clone()),
            expires_at: answer.expires_in().map(|d| now_ms() + d.as_millis() as i64),
            scope: scope_of(&answer).or(attempt.scope),
            token_endpoint: attempt.auth.token_endpoint.clone(),
            issuer: attempt.auth.issuer.clone(),
            resource: attempt.resource,
            identity: attempt.identity,
        };
        self.keep(&attempt.server, tokens).await?;
        tracing::info!(server = %attempt.server, "logged in to the server");
        Ok(attempt.server)
    }
}

/// Asks the server without a token and reads its challenge.
async fn probe(url: &url::Url, headers: &[(String, String)]) -> Result<Challenge, String> {
    let http = crate::fetch::client_for(url, discovery::reach_for(url)).await?;
    let mut request = http
        .post(url.clone())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")}}})
            .to_string(),
        );
    for (k, v) in headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let answer = request
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let header = answer
        .headers()
        .get("www-authenticate")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    match answer.status().as_u16() {
        401 => Ok(Challenge::parse(&header)),
        status if (200..300).contains(&status) => Err(format!(
            "{url} does not ask for a login (it answered {status})"
        )),
        status => Err(format!(
            "{url} answered {status}, not a login challenge (401)"
        )),
    }
}

/// How Gatehouse describes itself to an authorization server, both in
/// dynamic registration (RFC 7591) and in its client metadata document: a
/// public native client (RFC 8252) with a loopback redirect.
fn client_description(redirect_uri: &str) -> serde_json::Value {
    json!({
        "client_name": "Gatehouse",
        "application_type": "native",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// Dynamic client registration (RFC 7591) as a public client.
async fn register(
    endpoint: &str,
    redirect_uri: &str,
    reach: crate::fetch::Reach,
) -> Result<Identity, String> {
    let url = url::Url::parse(endpoint)
        .map_err(|e| format!("registration endpoint {endpoint:?}: {e}"))?;
    let http = crate::fetch::client_for(&url, reach).await?;
    let answer = http
        .post(url)
        .json(&client_description(redirect_uri))
        .send()
        .await
        .map_err(|e| format!("cannot register at {endpoint}: {e}"))?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    let Some(client_id) = body["client_id"].as_str().filter(|_| status.is_success()) else {
        return Err(format!(
            "{endpoint} refused the registration ({status}): {body}"
        ));
    };
    let secret = body["client_secret"].as_str().map(str::to_string);
    let auth_method = body["token_endpoint_auth_method"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            if secret.is_some() {
                "client_secret_basic"
            } else {
                "none"
            }
            .into()
        });
    Ok(Identity {
        client_id: client_id.to_string(),
        client_secret: secret,
        auth_method,
    })
}

type Client = BasicClient<
    oauth2::EndpointMaybeSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// The oauth2 crate's client for this identity and these endpoints.
fn oauth_client(
    identity: &Identity,
    authorize: Option<&str>,
    token: &str,
) -> Result<Client, String> {
    let mut client = BasicClient::new(ClientId::new(identity.client_id.clone()))
        .set_auth_uri_option(
            authorize
                .map(|a| AuthUrl::new(a.to_string()))
                .transpose()
                .map_err(|e| e.to_string())?,
        )
        .set_token_uri(TokenUrl::new(token.to_string()).map_err(|e| e.to_string())?);
    if let Some(secret) = &identity.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.clone()));
    }
    Ok(client.set_auth_type(match identity.auth_method.as_str() {
        "client_secret_post" | "none" => AuthType::RequestBody,
        _ => AuthType::BasicAuth,
    }))
}

fn scope_of(answer: &oauth2::basic::BasicTokenResponse) -> Option<String> {
    answer
        .scopes()
        .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
}

/// Both scopes, without repeats.
fn union(a: Option<&str>, b: Option<&str>) -> Option<String> {
    let mut all: Vec<&str> = Vec::new();
    for s in a.into_iter().chain(b).flat_map(str::split_whitespace) {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    (!all.is_empty()).then(|| all.join(" "))
}

/// An oauth2 request error, said plainly (never with a token in it).
fn describe<E: std::error::Error>(
    e: &oauth2::RequestTokenError<
        E,
        oauth2::StandardErrorResponse<oauth2::basic::BasicErrorResponseType>,
    >,
) -> String {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => match r.error_description() {
            Some(d) => format!("{}: {d}", r.error()),
            None => r.error().to_string(),
        },
        oauth2::RequestTokenError::Parse(e, _) => {
            format!("the token answer is not a valid token response: {e}")
        }
        oauth2::RequestTokenError::Request(e) => e.to_string(),
        oauth2::RequestTokenError::Other(e) => e.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_united() {
        assert_eq!(union(Some("a b"), Some("b c")).as_deref(), Some("a b c"));
        assert_eq!(union(None, None), None);
    }

    /// Whether a server has a login is read from the store once, not at
    /// each request (a keychain read is a D-Bus round trip on Linux): what
    /// is in the store besides what this process kept and forgot is not
    /// read again.
    #[tokio::test]
    async fn a_servers_login_or_its_absence_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(CredentialStore::file(dir.path()));
        let auth = UpstreamAuth::new(store.clone());
        assert!(!auth.logged_in("remote"));
        let tokens: Tokens = serde_json::from_value(serde_json::json!({
            "access_token": "at", "refresh_token": null, "expires_at": null, "scope": null,
            "token_endpoint": "https://as.example/token", "issuer": "https://as.example",
            "resource": "https://mcp.example/mcp",
            "identity": {"client_id": "c", "client_secret": null, "auth_method": "none"}
        }))
        .unwrap();
        let text = serde_json::to_string(&tokens).unwrap();
        store
            .set_upstream_login(&account("remote"), Some(&text))
            .unwrap();
        assert!(!auth.logged_in("remote"), "the store was read again");
        assert!(
            auth.load("remote").await.is_none(),
            "the store was read again"
        );
        let fresh = UpstreamAuth::new(store.clone());
        assert!(
            fresh.load("remote").await.is_some(),
            "a fresh cache reads the store"
        );
        auth.keep("remote", tokens).await.unwrap();
        assert!(auth.logged_in("remote"));
        assert!(UpstreamAuth::new(store.clone()).logged_in("remote"));
        auth.logout("remote");
        assert!(!auth.logged_in("remote"));
        assert!(!UpstreamAuth::new(store).logged_in("remote"));
    }

    #[test]
    fn the_metadata_document_names_the_callback() {
        let auth = UpstreamAuth::new(Arc::new(CredentialStore::file(std::path::Path::new(
            "/nonexistent",
        ))));
        auth.set_base("http://127.0.0.1:7390");
        let doc = auth.client_metadata();
        assert_eq!(doc["client_id"], "http://127.0.0.1:7390/oauth/client.json");
        assert_eq!(
            doc["redirect_uris"][0],
            "http://127.0.0.1:7390/oauth/callback"
        );
    }
}
