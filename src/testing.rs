//! Helpers for the unit tests beside the OAuth steps and the store tables: an
//! authorization server over an in-memory store, a registered public client,
//! and the flow's steps run the real way at fixed times, so a test can move
//! the clock (an expired code, a refresh after the grace window).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::clock::UnixMs;
use crate::config::Config;
use crate::crypto::Secret;
use crate::oauth::authorize::{self, AuthorizeParams};
use crate::oauth::client_auth::PresentedCredentials;
use crate::oauth::consent::{self, AskChoice, DurationChoice, ToolChoice};
use crate::oauth::waiting::{self, PollOutcome};
use crate::oauth::{token, AuthServer};
use crate::store::clients::{self, AuthMethod, Client, ClientKind};
use crate::store::Store;
use crate::tools::{Risk, ToolInfo};

/// A fixed "now" (2027-01-15); tests move from here.
pub const T0: UnixMs = 1_800_000_000_000;
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT: &str = "http://127.0.0.1:8976/callback";

/// An authorization server on port 7390 over an in-memory store, fronting
/// the servers of `toml` (the demo server when empty).
pub fn auth_server(toml: &str) -> AuthServer {
    auth_server_with(Store::open_in_memory().unwrap(), toml)
}

/// A store in a file of `dir` (where an in-memory one would hide the disk's
/// cost: the profiling tests), sealed with a fixed key.
pub fn file_store(dir: &tempfile::TempDir, now: UnixMs) -> Store {
    let key = crate::audit::chain::Key::new([7; 32]);
    Store::open(&dir.path().join("p.db"), key, now).unwrap()
}

/// An authorization server for the demo server over `store`.
pub fn auth_server_on(store: Store) -> AuthServer {
    auth_server_with(store, "")
}

fn auth_server_with(store: Store, toml: &str) -> AuthServer {
    AuthServer {
        store: Arc::new(store),
        config: crate::config::Live::new({
            // The demo server unless the test names its own.
            let mut config = Config::parse(toml, Path::new("t.toml")).unwrap();
            if config.servers.is_empty() {
                config.servers = Config::demo().servers;
            }
            config
        }),
        issuer: "http://127.0.0.1:7390".into(),
        port: 7390,
        user: "me".into(),
    }
}

pub fn tool(name: &str, risk: Risk) -> ToolInfo {
    let definition = json!({"name": name, "description": format!("{name} things")});
    ToolInfo {
        name: name.into(),
        title: None,
        description: format!("{name} things"),
        risk,
        pin: crate::gateway::pinning::pin_of(&definition),
        definition,
    }
}

/// What the demo server offers: one tool of each risk class.
pub fn demo_tools() -> Vec<ToolInfo> {
    vec![
        tool("read_note", Risk::Read),
        tool("write_note", Risk::Write),
        tool("delete_note", Risk::Destructive),
    ]
}

/// Registers a public client (as RFC 7591 registration stores it).
pub fn public_client(auth: &AuthServer, name: &str, now: UnixMs) -> Client {
    let client = Client {
        client_id: format!("gh_client_{name}"),
        name: name.into(),
        kind: ClientKind::Registered,
        redirect_uris: vec![REDIRECT.into()],
        auth_method: AuthMethod::None,
        secret_hash: None,
        bound_server: None,
        metadata: json!({}),
        created_at: now,
        last_seen_at: None,
        fetched_at: None,
        removed_at: None,
    };
    auth.store
        .write(|tx| clients::insert(tx.conn(), &client))
        .unwrap();
    client
}

/// A well-formed `/authorize` of `client` (PKCE S256, its redirect URI, state `st`).
pub fn authorize_params(client: &Client) -> AuthorizeParams {
    AuthorizeParams {
        response_type: Some("code".into()),
        client_id: client.client_id.clone(),
        redirect_uri: Some(REDIRECT.into()),
        code_challenge: Some(CHALLENGE.into()),
        code_challenge_method: Some("S256".into()),
        state: Some("st".into()),
        scope: None,
        resource: None,
    }
}

/// `/authorize` for `client` on the demo server (with this scope): the
/// pending request's id and the browser's handle.
pub fn request(
    auth: &AuthServer,
    client: &Client,
    scope: Option<&str>,
    now: UnixMs,
) -> (String, Secret) {
    let params = AuthorizeParams {
        scope: scope.map(str::to_string),
        resource: Some(auth.resource_url("demo")),
        ..authorize_params(client)
    };
    let validated = authorize::validate(auth, client.clone(), params).unwrap();
    let handle = authorize::create_request(auth, validated, (demo_tools(), None), now).unwrap();
    let id = auth
        .store
        .read(|c| crate::store::consent::by_handle(c, &handle.hash()))
        .unwrap()
        .unwrap()
        .id;
    (id, handle)
}

/// The browser's poll after the person decided: where it is sent.
pub fn redirect_after(auth: &AuthServer, handle: &Secret, now: UnixMs) -> url::Url {
    match waiting::poll(auth, handle.expose(), now).unwrap() {
        PollOutcome::Redirect(to) => url::Url::parse(&to).unwrap(),
        other => panic!("expected a redirect, got {other:?}"),
    }
}

pub fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The whole flow up to the code: request, approval of `tools` for
/// `duration` (none held), the browser's redirect.
pub fn approved_code(
    auth: &AuthServer,
    client: &Client,
    tools: ToolChoice,
    duration: DurationChoice,
    now: UnixMs,
) -> String {
    let (id, handle) = request(auth, client, None, now);
    consent::approve(auth, &id, &tools, &AskChoice::None, duration, "me", now).unwrap();
    query(&redirect_after(auth, &handle, now), "code").expect("a code")
}

pub fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A public client's credentials (its id in the form).
pub fn public(client: &Client) -> PresentedCredentials {
    PresentedCredentials {
        form_client_id: Some(client.client_id.clone()),
        ..Default::default()
    }
}

/// Exchanges a code the way the client does.
pub fn redeem(
    auth: &AuthServer,
    client: &Client,
    code: &str,
    now: UnixMs,
) -> Result<Value, crate::oauth::OAuthError> {
    token::exchange(auth, &redemption(code), &public(client), now).map(wire)
}

/// The token request that redeems `code` the way a public client does.
pub fn redemption(code: &str) -> HashMap<String, String> {
    form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("redirect_uri", REDIRECT),
    ])
}

/// Tokens for a new client with every demo tool until revoked, issued at `now`.
pub fn tokens(auth: &AuthServer, name: &str, now: UnixMs) -> (Client, Value) {
    let client = public_client(auth, name, now);
    let code = approved_code(auth, &client, ToolChoice::All, DurationChoice::Forever, now);
    let body = redeem(auth, &client, &code, now).unwrap();
    (client, body)
}

/// Refreshes the way a public client does.
pub fn refresh_grant(
    auth: &AuthServer,
    client: &Client,
    refresh_token: &str,
    now: UnixMs,
) -> Result<Value, crate::oauth::OAuthError> {
    let grant = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ]);
    token::exchange(auth, &grant, &public(client), now).map(wire)
}

/// A token response as the agent reads it.
pub fn wire(issued: token::Issued) -> Value {
    serde_json::to_value(issued).expect("a token response serializes")
}

/// The kinds of every audit event, oldest first.
pub fn audit_kinds(store: &Store) -> Vec<String> {
    store.settle();
    store
        .read(|c| {
            let mut stmt = c.prepare("SELECT kind FROM audit_events ORDER BY id")?;
            let kinds = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok::<_, crate::store::StoreError>(kinds)
        })
        .unwrap()
}
