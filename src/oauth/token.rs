//! The token endpoint (OAuth 2.1 §4.1.3 and §4.3), bearer checks for the
//! gateway, RFC 7009 revocation and RFC 7662 introspection.
//!
//! Tokens are opaque 256-bit random strings looked up by hash, so revocation
//! takes effect on the very next request. Access tokens are bound to one
//! fronted server (RFC 8707 audience). Refresh tokens rotate on every use;
//! a rotated one presented again after [`REFRESH_REUSE_GRACE_MS`] revokes its
//! whole family. A replayed authorization code revokes what it issued.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::client_auth::{self, PresentedCredentials};
use super::{
    AuthServer, ErrorCode, OAuthError, ResourceUrl, REFRESH_REUSE_GRACE_MS, REFRESH_TOKEN_TTL_MS,
};
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::UnixMs;
use crate::crypto::{self, Secret};
use crate::store::clients;
use crate::store::consent;
use crate::store::grants::{self, Duration, Grant};
use crate::store::live::LiveGrant;
use crate::store::tokens::{self, TokenKey, TokenKind, TokenRow};
use crate::store::Tx;

/// Form parameters, each at most once (RFC 6749 §3.2).
pub fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter `{k}` appears more than once"
            )));
        }
    }
    Ok(out)
}

pub fn credentials(
    form: &HashMap<String, String>,
    authorization: Option<&str>,
) -> Result<PresentedCredentials, OAuthError> {
    Ok(PresentedCredentials {
        basic: authorization
            .map(PresentedCredentials::parse_basic)
            .transpose()?,
        form_client_id: form.get("client_id").cloned(),
        form_secret: form.get("client_secret").cloned(),
    })
}

/// A `/token` request whose grant type and parameters are in order; what
/// it is checked against is read in the exchange's transaction. It carries
/// what the exchange reads of the form, and nothing else.
pub enum TokenRequest {
    Code(CodeRequest),
    Refresh(RefreshRequest),
}

/// `grant_type=authorization_code`.
pub struct CodeRequest {
    code_hash: String,
    verifier: String,
    /// Must repeat the authorization request's, if that had one.
    redirect_uri: Option<String>,
    /// Must name the grant's server, if given (RFC 8707).
    resource: Option<String>,
}

/// `grant_type=refresh_token`.
pub struct RefreshRequest {
    token: TokenKey,
    /// May narrow the granted scope, never widen it.
    scope: Option<String>,
    /// Must name the grant's server, if given (RFC 8707).
    resource: Option<String>,
}

impl TokenRequest {
    /// The form's grant type and the parameters it needs (no store access:
    /// a malformed request never reaches the writer).
    pub fn parse(form: &HashMap<String, String>) -> Result<TokenRequest, OAuthError> {
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => Ok(TokenRequest::Code(CodeRequest {
                code_hash: crypto::hash(require(form, "code")?),
                verifier: require(form, "code_verifier")?.to_string(),
                redirect_uri: form.get("redirect_uri").cloned(),
                resource: form.get("resource").cloned(),
            })),
            Some("refresh_token") => Ok(TokenRequest::Refresh(RefreshRequest {
                token: TokenKey::of(require(form, "refresh_token")?),
                scope: form.get("scope").cloned(),
                resource: form.get("resource").cloned(),
            })),
            Some(other) => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!(
                    "grant_type {other:?} is not supported; use authorization_code or refresh_token"
                ),
            )),
            None => Err(OAuthError::invalid_request("grant_type is required")),
        }
    }
}

/// `POST /token`, as one write transaction.
pub fn exchange(
    auth: &AuthServer,
    form: &HashMap<String, String>,
    creds: &PresentedCredentials,
    now: UnixMs,
) -> Result<Issued, OAuthError> {
    let request = TokenRequest::parse(form)?;
    let client = client_auth::authenticate(&auth.store, creds)?;
    auth.store
        .write(|tx| exchange_in(auth, tx, &request, &client.client_id, now))
}

/// `POST /token` from an async handler: the exchange is one write in the
/// store's group commit, so concurrent refreshes share commits and none
/// holds the database lock on an async worker. Only the parsed request
/// goes to the writer.
pub async fn exchange_queued(
    auth: &AuthServer,
    form: &HashMap<String, String>,
    creds: PresentedCredentials,
    now: UnixMs,
) -> Result<Issued, OAuthError> {
    let request = TokenRequest::parse(form)?;
    let client = client_auth::authenticate(&auth.store, &creds)?.client_id;
    let owned = auth.clone();
    auth.store
        .write_queued(move |tx| exchange_in(&owned, tx, &request, &client, now))
        .await
}

/// The exchange inside its write transaction, for the client already
/// authenticated (one that fails to changes nothing). A code is spent by
/// whichever authenticated client presents it, and a replay revokes what it
/// issued (RFC 6749 §4.1.2), recorded with who presented it. A refusal that
/// is itself recorded (a replayed code or refresh token) calls [`Tx::keep`].
fn exchange_in(
    auth: &AuthServer,
    tx: &mut Tx<'_>,
    request: &TokenRequest,
    client_id: &str,
    now: UnixMs,
) -> Result<Issued, OAuthError> {
    match request {
        TokenRequest::Code(code) => exchange_code(auth, tx, client_id, code, now),
        TokenRequest::Refresh(request) => refresh(auth, tx, client_id, request, now),
    }
}

fn require<'a>(form: &'a HashMap<String, String>, key: &str) -> Result<&'a str, OAuthError> {
    form.get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("{key} is required")))
}

/// A `resource` on the token request must name the grant's server.
fn check_resource(
    auth: &AuthServer,
    resource: Option<&str>,
    grant: &Grant,
) -> Result<(), OAuthError> {
    if let Some(resource) = resource {
        let server = auth.resolve_resource(Some(resource), Some(&grant.server))?;
        if server != grant.server {
            return Err(OAuthError::invalid_target(
                "resource differs from the authorized one",
            ));
        }
    }
    Ok(())
}

fn exchange_code(
    auth: &AuthServer,
    tx: &mut Tx<'_>,
    client_id: &str,
    request: &CodeRequest,
    now: UnixMs,
) -> Result<Issued, OAuthError> {
    let code_hash = request.code_hash.as_str();
    let Some(row) = tokens::get_code(tx.conn(), code_hash)? else {
        return Err(OAuthError::invalid_grant("unknown authorization code"));
    };
    // A code is used once (RFC 6749 §4.1.2): whichever client presents
    // it, and whatever else is wrong with the request, it is spent now; a
    // refusal below commits the spending alone.
    let first_use = row.used_at.is_none() && tokens::use_code(tx.conn(), code_hash, now)?;
    tx.keep();
    if !first_use {
        let revoked = tokens::revoke_for_code(tx.conn(), code_hash, now)?;
        // The event is the code's client's; who presented it is in its detail
        // (another client, when a code leaked).
        let detail = json!({"token_families_revoked": revoked, "presented_by": client_id});
        tx.record(
            NewEvent::new(EventKind::CodeReplayed, Outcome::Denied)
                .client(&row.client_id)
                .grant(&row.grant_id)
                .detail(detail),
            now,
        )?;
        return Err(OAuthError::invalid_grant(
            "authorization code was already used; the tokens it issued are revoked",
        ));
    }
    // The tokens and their audit event commit together or not at all.
    tx.attempt(|tx| {
        let grant = check_redemption(auth, tx, client_id, &row, request, now)?;
        let family = crypto::short_id("fam_");
        tokens::insert_family(tx.conn(), &family, &row)?;
        let body = issue(auth, tx, client_id, &grant, &family, Some(code_hash), now)?;
        tx.record(
            NewEvent::new(EventKind::TokenIssued, Outcome::Allowed)
                .client(client_id)
                .server(&grant.server)
                .grant(&grant.id)
                .detail(json!({"scope": grant.scope, "expires_in": body.expires_in})),
            now,
        )?;
        Ok(body)
    })
}

/// The checks of a code's redemption after it is spent (reads only): the
/// code is this client's and unexpired, the redirect URI and the PKCE
/// verifier match its request, its grant is in force and names the resource.
fn check_redemption(
    auth: &AuthServer,
    tx: &Tx<'_>,
    client_id: &str,
    row: &tokens::CodeRow,
    redemption: &CodeRequest,
    now: UnixMs,
) -> Result<Grant, OAuthError> {
    if row.client_id != client_id {
        return Err(OAuthError::invalid_grant("unknown authorization code"));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("authorization code expired"));
    }
    let request = consent::get(tx.conn(), &row.request_id)?
        .ok_or_else(|| OAuthError::invalid_grant("unknown authorization code"))?;
    match &redemption.redirect_uri {
        Some(uri) if uri != &request.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request",
            ))
        }
        None if request.redirect_uri_given => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: the authorization request had one",
            ))
        }
        _ => {}
    }
    let verifier = &redemption.verifier;
    if !crypto::is_valid_pkce_value(verifier)
        || !crypto::pkce_s256_matches(verifier, &request.code_challenge)
    {
        return Err(OAuthError::invalid_grant("PKCE verification failed"));
    }
    let grant = active_grant(tx, &row.grant_id, now)?;
    check_resource(auth, redemption.resource.as_deref(), &grant)?;
    Ok(grant)
}

fn refresh(
    auth: &AuthServer,
    tx: &mut Tx<'_>,
    client_id: &str,
    request: &RefreshRequest,
    now: UnixMs,
) -> Result<Issued, OAuthError> {
    let row = tokens::get_token(tx.conn(), &request.token)?
        .filter(|t| t.kind == TokenKind::Refresh && t.client_id == client_id)
        .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
    if row.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("refresh token was revoked"));
    }
    if let Some(rotated_at) = row.rotated_at {
        // Within the grace window it may be the client's own racing retry,
        // and the family stays; but it may be a thief who refreshed first,
        // so it is logged either way.
        let racing = now - rotated_at <= REFRESH_REUSE_GRACE_MS;
        let revoked = match racing {
            true => 0,
            false => tokens::revoke_family(tx.conn(), &row.family_id, now)?,
        };
        tx.record(
            NewEvent::new(EventKind::RefreshReused, Outcome::Denied)
                .client(client_id)
                .grant(&row.grant_id)
                .detail(json!({
                    "family": row.family_id,
                    "token_families_revoked": revoked,
                    "ms_after_rotation": now - rotated_at,
                })),
            now,
        )?;
        tx.keep();
        return Err(OAuthError::invalid_grant(match racing {
            true => "refresh token was already used",
            false => "refresh token reuse detected; this token family is revoked",
        }));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("refresh token expired"));
    }
    let grant = active_grant(tx, &row.grant_id, now)?;
    check_resource(auth, request.resource.as_deref(), &grant)?;
    if let Some(scope) = &request.scope {
        if scope
            .split_whitespace()
            .any(|s| !grant.scope.split_whitespace().any(|g| g == s))
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "a refresh cannot widen the granted scope",
            ));
        }
    }
    if !tokens::rotate(tx.conn(), row.id, now)? {
        return Err(OAuthError::invalid_grant("refresh token was already used"));
    }
    let body = issue(
        auth,
        tx,
        client_id,
        &grant,
        &row.family_id,
        row.code_hash.as_deref(),
        now,
    )?;
    tx.record(
        NewEvent::new(EventKind::TokenRefreshed, Outcome::Allowed)
            .client(client_id)
            .server(&grant.server)
            .grant(&grant.id)
            .detail(json!({"expires_in": body.expires_in})),
        now,
    )?;
    Ok(body)
}

fn active_grant(tx: &Tx<'_>, grant_id: &str, now: UnixMs) -> Result<Grant, OAuthError> {
    grants::get(tx.conn(), grant_id)?
        .filter(|g| g.is_active(now))
        .ok_or_else(|| {
            OAuthError::invalid_grant("the grant behind this request was revoked or has ended")
        })
}

/// A token response (RFC 6749 §5.1), serialized as it stands: no JSON
/// tree is built for it, on the writer or on the way out. Its `Debug`
/// leaves the tokens out.
#[derive(Serialize)]
pub struct Issued {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub scope: String,
    /// The server the access token is for (RFC 8707).
    pub resource: String,
    /// None when the grant is for one session ("once").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// Mints an access token (and a refresh token unless the grant is "once").
fn issue(
    auth: &AuthServer,
    tx: &Tx<'_>,
    client_id: &str,
    grant: &Grant,
    family: &str,
    code_hash: Option<&str>,
    now: UnixMs,
) -> Result<Issued, OAuthError> {
    let ttl = auth.config.get().access_token_ttl_ms;
    let access_expires = grant.expires_at.map_or(now + ttl, |e| e.min(now + ttl));
    // New tokens, each stored under the id its text carries: the access
    // token's, and the next for the refresh token.
    let first_id = tokens::next_id(tx.conn())?;
    let mint = |id: i64, prefix: &str, kind, expires_at| -> Result<Secret, OAuthError> {
        let secret = Secret::numbered(prefix, id);
        let row = TokenRow {
            id,
            token_hash: secret.hash(),
            kind,
            client_id: client_id.to_string(),
            grant_id: grant.id.clone(),
            family_id: family.to_string(),
            code_hash: code_hash.map(str::to_string),
            issued_at: now,
            expires_at,
            rotated_at: None,
            revoked_at: None,
        };
        tokens::insert_token(tx.conn(), &row)?;
        Ok(secret)
    };
    let access = mint(first_id, "gh_at_", TokenKind::Access, access_expires)?;
    clients::touch(tx.conn(), client_id, now)?;
    let refresh_token = match grant.duration {
        Duration::Once => None,
        _ => {
            let refresh_expires = grant.expires_at.map_or(now + REFRESH_TOKEN_TTL_MS, |e| {
                e.min(now + REFRESH_TOKEN_TTL_MS)
            });
            let refresh = mint(first_id + 1, "gh_rt_", TokenKind::Refresh, refresh_expires)?;
            Some(refresh.into_exposed())
        }
    };
    Ok(Issued {
        access_token: access.into_exposed(),
        token_type: "Bearer",
        expires_in: ((access_expires - now) / 1000).max(1),
        scope: grant.scope.clone(),
        resource: auth.resource_url(&grant.server),
        refresh_token,
    })
}

/// RFC 7009: revoke a token of the authenticated client. Always succeeds for
/// unknown tokens (§2.2). A refresh token takes its whole family with it.
/// One write in the store's group commit.
pub async fn revoke(
    auth: &AuthServer,
    form: HashMap<String, String>,
    creds: PresentedCredentials,
    now: UnixMs,
) -> Result<(), OAuthError> {
    let token = revocation_request(&form)?;
    let client = client_auth::authenticate(&auth.store, &creds)?.client_id;
    auth.store
        .write_queued(move |tx| revoke_in(tx, &token, &client, now))
        .await
}

/// The token a revocation request names. Its `token_type_hint`, if any, is
/// ignored (RFC 7009 §2.1 allows it): every token is found by its hash, and
/// a hint this server does not know must not keep a token alive.
fn revocation_request(form: &HashMap<String, String>) -> Result<TokenKey, OAuthError> {
    let token = require(form, "token")?;
    Ok(TokenKey::of(token))
}

fn revoke_in(
    tx: &mut Tx<'_>,
    token: &TokenKey,
    client_id: &str,
    now: UnixMs,
) -> Result<(), OAuthError> {
    let Some(row) = tokens::get_token(tx.conn(), token)?.filter(|t| t.client_id == client_id)
    else {
        return Ok(());
    };
    if row.revoked_at.is_some() {
        return Ok(());
    }
    // A refresh token takes its family with it; an access token goes alone
    // (neither was revoked: the row says so, read in this write).
    let kind = match row.kind {
        TokenKind::Refresh => {
            tokens::revoke_family(tx.conn(), &row.family_id, now)?;
            "refresh_token"
        }
        TokenKind::Access => {
            tokens::revoke_token(tx.conn(), row.id, now)?;
            "access_token"
        }
    };
    tx.record(
        NewEvent::new(EventKind::TokenRevoked, Outcome::Revoked)
            .client(client_id)
            .grant(&row.grant_id)
            .detail(json!({"by": "client", "kind": kind})),
        now,
    )?;
    Ok(())
}

/// RFC 7662 introspection, for a confidential client (a resource server).
/// A live access token is answered from the store's live state (what the
/// gateway itself decides by); any other token from the database.
pub fn introspect(
    auth: &AuthServer,
    form: &HashMap<String, String>,
    creds: &PresentedCredentials,
    now: UnixMs,
) -> Result<Introspection, OAuthError> {
    let token = TokenKey::of(require(form, "token")?);
    client_auth::authenticate_confidential(&auth.store, creds, "introspection")?;
    if let Some(live) = auth.store.live().access(token.hash(), now) {
        return Ok(Introspection::Active(ActiveToken {
            grant: ActiveGrant::Live(live.grant),
            client_id: live.client_id,
            kind: TokenKind::Access,
            issued_at: live.issued_at,
            expires_at: live.expires_at,
            issuer: auth.issuer.clone(),
        }));
    }
    auth.store.read(|c| {
        let Some(row) = tokens::get_token(c, &token)? else {
            return Ok(Introspection::Inactive);
        };
        let Some(grant) = grants::get(c, &row.grant_id)? else {
            return Ok(Introspection::Inactive);
        };
        if row.revoked_at.is_some()
            || row.expires_at <= now
            || !grant.is_active(now)
            || (row.kind == TokenKind::Refresh && row.rotated_at.is_some())
        {
            return Ok(Introspection::Inactive);
        }
        Ok(Introspection::Active(ActiveToken {
            grant: ActiveGrant::Read(Box::new(grant)),
            client_id: row.client_id.into(),
            kind: row.kind,
            issued_at: row.issued_at,
            expires_at: row.expires_at,
            issuer: auth.issuer.clone(),
        }))
    })
}

/// An introspection answer (RFC 7662 §2.2): `{"active": false}` alone, or
/// what the active token is. It holds what it describes (shared where the
/// live state has it) and is written out as it serializes, with no JSON
/// tree or copied strings in between: introspection is on a resource
/// server's hot path.
#[derive(Debug)]
pub enum Introspection {
    Inactive,
    Active(ActiveToken),
}

/// An active token, as introspection describes it.
#[derive(Debug)]
pub struct ActiveToken {
    grant: ActiveGrant,
    client_id: Arc<str>,
    kind: TokenKind,
    issued_at: UnixMs,
    expires_at: UnixMs,
    issuer: Arc<str>,
}

/// The token's grant: the live state's, or one read from the database.
#[derive(Debug)]
enum ActiveGrant {
    Live(Arc<LiveGrant>),
    Read(Box<Grant>),
}

impl Introspection {
    pub fn is_active(&self) -> bool {
        matches!(self, Introspection::Active(_))
    }
}

impl ActiveToken {
    fn grant(&self) -> &Grant {
        match &self.grant {
            ActiveGrant::Live(live) => &live.grant,
            ActiveGrant::Read(grant) => grant,
        }
    }
}

impl Serialize for Introspection {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let Introspection::Active(token) = self else {
            let mut answer = serializer.serialize_struct("Introspection", 1)?;
            answer.serialize_field("active", &false)?;
            return answer.end();
        };
        let grant = token.grant();
        let token_type = match token.kind {
            TokenKind::Access => "Bearer",
            TokenKind::Refresh => "refresh_token",
        };
        let audience = ResourceUrl {
            origin: &token.issuer,
            server: &grant.server,
        };
        let mut answer = serializer.serialize_struct("Introspection", 9)?;
        answer.serialize_field("active", &true)?;
        answer.serialize_field("scope", &grant.scope)?;
        answer.serialize_field("client_id", &*token.client_id)?;
        answer.serialize_field("token_type", token_type)?;
        answer.serialize_field("exp", &(token.expires_at / 1000))?;
        answer.serialize_field("iat", &(token.issued_at / 1000))?;
        answer.serialize_field("sub", &grant.decided_by)?;
        answer.serialize_field("aud", &audience)?;
        answer.serialize_field("iss", &*token.issuer)?;
        answer.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::bearer;
    use crate::oauth::consent::{DurationChoice, ToolChoice};
    use crate::oauth::CODE_TTL_MS;
    use crate::store::clients::Client;
    use crate::testing::*;

    fn code_for(auth: &AuthServer, name: &str, now: UnixMs) -> (Client, String) {
        let client = public_client(auth, name, now);
        let code = approved_code(auth, &client, ToolChoice::All, DurationChoice::Forever, now);
        (client, code)
    }

    #[test]
    fn a_code_buys_tokens_bound_to_its_server() {
        let auth = auth_server("");
        let (client, code) = code_for(&auth, "agent", T0);
        let body = redeem(&auth, &client, &code, T0 + 5_000).unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["resource"], "http://127.0.0.1:7390/mcp/demo");
        assert_eq!(
            body["scope"],
            "tool:read_note tool:write_note tool:delete_note"
        );
        assert!(body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("gh_rt_"));
        let access = body["access_token"].as_str().unwrap();
        assert!(bearer::authenticate(&auth, access, "demo", T0 + 5_000).is_ok());
    }

    #[test]
    fn a_token_response_does_not_show_its_tokens_when_debugged() {
        let auth = auth_server("");
        let (client, code) = code_for(&auth, "agent", T0);
        let issued = super::exchange(&auth, &redemption(&code), &public(&client), T0).unwrap();
        let shown = format!("{issued:?}");
        let refresh = issued.refresh_token.as_deref().unwrap();
        assert!(!shown.contains(&issued.access_token), "{shown}");
        assert!(!shown.contains(refresh), "{shown}");
        assert!(shown.contains("Bearer"), "{shown}");
    }

    #[test]
    fn a_code_expires_after_a_minute() {
        let auth = auth_server("");
        let (client, code) = code_for(&auth, "agent", T0);
        let late = redeem(&auth, &client, &code, T0 + CODE_TTL_MS).unwrap_err();
        assert_eq!(late.code, ErrorCode::InvalidGrant);
        assert!(late.description.contains("expired"), "{late}");
        let (client, code) = code_for(&auth, "punctual", T0);
        assert!(redeem(&auth, &client, &code, T0 + CODE_TTL_MS - 1).is_ok());
    }

    #[test]
    fn a_code_is_single_use_and_a_replay_revokes_what_it_issued() {
        let auth = auth_server("");
        let (client, code) = code_for(&auth, "agent", T0);
        let body = redeem(&auth, &client, &code, T0).unwrap();
        let replay = redeem(&auth, &client, &code, T0 + 1_000).unwrap_err();
        assert_eq!(replay.code, ErrorCode::InvalidGrant);
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(
            bearer::authenticate(&auth, access, "demo", T0 + 2_000).unwrap_err(),
            bearer::BearerError::Invalid("token was revoked")
        );
        let refreshed = refresh_grant(
            &auth,
            &client,
            body["refresh_token"].as_str().unwrap(),
            T0 + 2_000,
        );
        assert_eq!(refreshed.unwrap_err().code, ErrorCode::InvalidGrant);
        assert!(audit_kinds(&auth.store).contains(&"code_replayed".to_string()));
    }

    #[test]
    fn pkce_and_the_redirect_uri_must_match_the_request() {
        let auth = auth_server("");
        let (client, code) = code_for(&auth, "agent", T0);
        let wrong_verifier = form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &"A".repeat(43)),
            ("redirect_uri", REDIRECT),
        ]);
        let e = exchange_with(&auth, &client, &wrong_verifier);
        assert_eq!(
            (e.code, e.description.as_str()),
            (ErrorCode::InvalidGrant, "PKCE verification failed")
        );
        let (client, code) = code_for(&auth, "other", T0);
        let wrong_redirect = form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
        ]);
        let e = exchange_with(&auth, &client, &wrong_redirect);
        assert_eq!(
            (e.code, e.description.as_str()),
            (
                ErrorCode::InvalidGrant,
                "redirect_uri differs from the authorization request"
            )
        );
    }

    #[test]
    fn a_failed_redemption_spends_the_code() {
        let auth = auth_server("");
        let (client, code) = code_for(&auth, "agent", T0);
        let wrong_verifier = form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &"A".repeat(43)),
            ("redirect_uri", REDIRECT),
        ]);
        let e = exchange_with(&auth, &client, &wrong_verifier);
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        let retried = redeem(&auth, &client, &code, T0 + 1).unwrap_err();
        assert_eq!(retried.code, ErrorCode::InvalidGrant);
        assert!(retried.description.contains("already used"), "{retried}");
        // Another client presenting it spends it too.
        let (owner, code) = code_for(&auth, "owner", T0);
        let thief = public_client(&auth, "thief", T0);
        let stolen = redeem(&auth, &thief, &code, T0).unwrap_err();
        assert_eq!(stolen.code, ErrorCode::InvalidGrant);
        assert!(
            redeem(&auth, &owner, &code, T0).is_err(),
            "spent by the thief's attempt"
        );
        let spent = auth
            .store
            .read(|c| tokens::get_code(c, &crypto::hash(&code)))
            .unwrap()
            .unwrap();
        assert_eq!(spent.used_at, Some(T0));
    }

    fn exchange_with(
        auth: &AuthServer,
        client: &Client,
        form: &HashMap<String, String>,
    ) -> OAuthError {
        super::exchange(auth, form, &public(client), T0).unwrap_err()
    }

    #[tokio::test]
    async fn a_revocation_with_a_hint_it_does_not_know_still_revokes() {
        let auth = auth_server("");
        let (client, body) = tokens(&auth, "agent", T0);
        let access = body["access_token"].as_str().unwrap();
        let form = form(&[("token", access), ("token_type_hint", "id_token")]);
        revoke(&auth, form, public(&client), T0 + 1).await.unwrap();
        assert!(bearer::authenticate(&auth, access, "demo", T0 + 2).is_err());
    }

    #[test]
    fn refresh_rotates_and_reuse_after_the_grace_window_revokes_the_family() {
        let auth = auth_server("");
        let (client, first) = tokens(&auth, "agent", T0);
        let first_refresh = first["refresh_token"].as_str().unwrap();
        let second = refresh_grant(&auth, &client, first_refresh, T0).unwrap();
        // A racing retry within the grace window is refused but harms nothing.
        let racing = refresh_grant(&auth, &client, first_refresh, T0 + 2_000).unwrap_err();
        assert_eq!(racing.code, ErrorCode::InvalidGrant);
        // Logged all the same: it may be the one who refreshed first that stole it.
        let reused = |auth: &AuthServer| {
            audit_kinds(&auth.store)
                .iter()
                .filter(|k| *k == "refresh_reused")
                .count()
        };
        assert_eq!(reused(&auth), 1);
        let third = refresh_grant(
            &auth,
            &client,
            second["refresh_token"].as_str().unwrap(),
            T0 + 3_000,
        )
        .unwrap();
        let newest = third["access_token"].as_str().unwrap();
        assert!(bearer::authenticate(&auth, newest, "demo", T0 + 4_000).is_ok());
        // Reuse later is theft: the whole family goes, including the newest tokens.
        let theft = refresh_grant(
            &auth,
            &client,
            first_refresh,
            T0 + REFRESH_REUSE_GRACE_MS + 1,
        )
        .unwrap_err();
        assert_eq!(theft.code, ErrorCode::InvalidGrant);
        assert!(theft.description.contains("reuse"), "{theft}");
        let after = T0 + REFRESH_REUSE_GRACE_MS + 2;
        let newest_refresh = third["refresh_token"].as_str().unwrap();
        assert_eq!(
            refresh_grant(&auth, &client, newest_refresh, after)
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );
        assert!(bearer::authenticate(&auth, newest, "demo", after).is_err());
        assert_eq!(reused(&auth), 2);
    }

    #[test]
    fn a_refresh_keeps_the_audience_and_the_scope() {
        let auth =
            auth_server("[servers.demo]\ncommand = \"x\"\n[servers.other]\ncommand = \"y\"\n");
        let (client, body) = tokens(&auth, "agent", T0);
        let rt = body["refresh_token"].as_str().unwrap();
        let to = |resource: &str| {
            form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("resource", resource),
            ])
        };
        let other = super::exchange(
            &auth,
            &to("http://127.0.0.1:7390/mcp/other"),
            &public(&client),
            T0,
        );
        assert_eq!(other.unwrap_err().code, ErrorCode::InvalidTarget);
        let wider = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", "tool:read_note tool:admin"),
        ]);
        let wider = super::exchange(&auth, &wider, &public(&client), T0);
        assert_eq!(wider.unwrap_err().code, ErrorCode::InvalidScope);
        let same = super::exchange(
            &auth,
            &to("http://127.0.0.1:7390/mcp/demo"),
            &public(&client),
            T0,
        );
        assert_eq!(same.unwrap().resource, "http://127.0.0.1:7390/mcp/demo");
    }

    #[test]
    fn a_refresh_token_expires() {
        let auth = auth_server("");
        let (client, body) = tokens(&auth, "agent", T0);
        let rt = body["refresh_token"].as_str().unwrap();
        let late = refresh_grant(&auth, &client, rt, T0 + REFRESH_TOKEN_TTL_MS).unwrap_err();
        assert_eq!(late.code, ErrorCode::InvalidGrant);
        assert!(late.description.contains("expired"), "{late}");
    }

    #[test]
    fn a_once_grant_has_no_refresh_token() {
        let auth = auth_server("");
        let client = public_client(&auth, "agent", T0);
        let code = approved_code(&auth, &client, ToolChoice::All, DurationChoice::Once, T0);
        let body = redeem(&auth, &client, &code, T0).unwrap();
        assert!(body.get("refresh_token").is_none(), "{body}");
    }

    /// A client authenticates before its write; one removed in between gets
    /// nothing from that write: its removal (one write) revoked its tokens
    /// and the grant of a code approved but not yet redeemed.
    #[test]
    fn a_client_removed_after_it_authenticated_gets_nothing() {
        let auth = auth_server("");
        let (client, body) = tokens(&auth, "agent", T0);
        let refresh = body["refresh_token"].as_str().unwrap();
        let code = approved_code(&auth, &client, ToolChoice::All, DurationChoice::Forever, T0);
        let id = client_auth::authenticate(&auth.store, &public(&client))
            .unwrap()
            .client_id;
        crate::oauth::agents::remove_client(&auth, &id, "person", T0 + 1).unwrap();

        let refreshing = form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]);
        let redeeming = form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
        ]);
        for asked in [&refreshing, &redeeming] {
            let request = TokenRequest::parse(asked).unwrap();
            let e = auth
                .store
                .write(|tx| exchange_in(&auth, tx, &request, &id, T0 + 2))
                .unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidGrant, "{e}");
        }
        assert!(auth.store.live().client(&id).is_none());
    }

    #[test]
    fn introspection_needs_a_confidential_client() {
        let auth = auth_server("");
        let (client, body) = tokens(&auth, "agent", T0);
        let access = body["access_token"].as_str().unwrap();
        let asked = form(&[("token", access)]);
        let e = introspect(&auth, &asked, &public(&client), T0).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert!(e.description.contains("confidential"), "{e}");
    }
}

#[cfg(test)]
mod group_commit {
    use super::*;
    use crate::oauth::bearer;
    use crate::testing::*;

    /// The token rules hold inside one group commit: a refresh succeeds, a
    /// replayed one revokes its family and keeps that record, an unknown one
    /// changes nothing, each beside the others.
    #[allow(clippy::await_holding_lock)] // it holds the writer's lock on purpose
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_of_refreshes_keeps_each_ones_outcome() {
        let auth = auth_server("");
        let (a, a_body) = tokens(&auth, "a", T0);
        let (b, b_body) = tokens(&auth, "b", T0);
        let b_first = b_body["refresh_token"].as_str().unwrap().to_string();
        let b_next = refresh_grant(&auth, &b, &b_first, T0 + 1).unwrap();
        let b_access = b_next["access_token"].as_str().unwrap().to_string();
        let later = T0 + REFRESH_REUSE_GRACE_MS + 1_000;
        let held = auth.store.hold_writer();
        let mut queued = Vec::new();
        for (client, token) in [
            (
                a.clone(),
                a_body["refresh_token"].as_str().unwrap().to_string(),
            ),
            (b.clone(), b_first),
            (a.clone(), "gh_rt_unknown".to_string()),
        ] {
            let owned = auth.clone();
            let grant = form(&[("grant_type", "refresh_token"), ("refresh_token", &token)]);
            queued.push(tokio::spawn(async move {
                exchange_queued(&owned, &grant, public(&client), later).await
            }));
            let n = queued.len();
            while auth.store.queued() < n {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        let mut results = Vec::new();
        for q in queued {
            results.push(q.await.unwrap());
        }
        let refreshed = results[0].as_ref().expect("a's refresh succeeds");
        let access = refreshed.access_token.as_str();
        assert!(bearer::authenticate(&auth, access, "demo", later).is_ok());
        let replay = results[1].as_ref().unwrap_err();
        assert!(replay.description.contains("reuse detected"), "{replay}");
        assert!(
            bearer::authenticate(&auth, &b_access, "demo", later).is_err(),
            "the replay revoked b's family, though its answer was a refusal"
        );
        assert!(results[2].is_err());
        let kinds = audit_kinds(&auth.store);
        assert!(kinds.contains(&"refresh_reused".to_string()), "{kinds:?}");
        assert_eq!(
            kinds.iter().filter(|k| *k == "token_refreshed").count(),
            2,
            "b's first refresh and a's: {kinds:?}"
        );
    }
}

#[cfg(test)]
mod profile {
    use super::*;
    use crate::testing::*;

    /// How many pages a refresh writes: the WAL frames one chain of
    /// refreshes appends, per refresh (no checkpoint in between).
    #[test]
    #[ignore]
    fn pages_per_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let auth = auth_server_on(crate::testing::file_store(&dir, T0));
        let (client, body) = tokens(&auth, "agent", T0);
        let mut refresh = body["refresh_token"].as_str().unwrap().to_string();
        let wal = dir.path().join("p.db-wal");
        let frames = || {
            // A WAL frame is a 24-byte header and a page; the file has a 32-byte header.
            let page = 4096 + 24;
            (std::fs::metadata(&wal).unwrap().len().saturating_sub(32) / page) as f64
        };
        let n = 200;
        let mut start = 0.0;
        for i in 0..=n {
            if i == 1 {
                // From here on the WAL only grows: SQLite checkpoints at 1,000 pages.
                let conn = auth.store.hold_writer();
                conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
                drop(conn);
                start = frames();
            }
            let before = frames();
            let grant = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
            ];
            let body = exchange(&auth, &form(&grant), &public(&client), T0 + 1 + i).unwrap();
            refresh = body.refresh_token.unwrap();
            if i == n {
                eprintln!("the last refresh wrote {} pages", frames() - before);
            }
        }
        eprintln!("{:.1} pages per refresh", (frames() - start) / n as f64);
    }

    /// [`pages_per_refresh`] when 16 chains refresh at once through the
    /// group-commit writer, so batches share the pages they can.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn pages_per_refresh_batched() {
        let dir = tempfile::tempdir().unwrap();
        let auth = auth_server_on(crate::testing::file_store(&dir, T0));
        let chains: Vec<_> = (0..16)
            .map(|c| tokens(&auth, &format!("agent {c}"), T0))
            .collect();
        auth.store.checkpoint().unwrap();
        auth.store
            .hold_writer()
            .pragma_update(None, "wal_autocheckpoint", 0)
            .unwrap();
        let wal = dir.path().join("p.db-wal");
        let per_chain = 100;
        let tasks: Vec<_> = chains
            .into_iter()
            .map(|(client, body)| {
                let auth = auth.clone();
                let mut refresh = body["refresh_token"].as_str().unwrap().to_string();
                tokio::spawn(async move {
                    for i in 0..per_chain {
                        let form =
                            form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]);
                        let body = exchange_queued(&auth, &form, public(&client), T0 + 1 + i)
                            .await
                            .unwrap();
                        refresh = body.refresh_token.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let pages = std::fs::metadata(&wal).unwrap().len().saturating_sub(32) / (4096 + 24);
        eprintln!(
            "{:.1} pages per refresh, 16 chains at once",
            pages as f64 / (16 * per_chain) as f64
        );
    }

    /// For `perf record`: refreshes on a file store by 1 and 16 concurrent
    /// chains through the group-commit writer (what `/token` does).
    #[allow(clippy::disallowed_methods)] // it times itself
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn refreshes_for_a_profile() {
        let dir = tempfile::tempdir().unwrap();
        let auth = auth_server_on(crate::testing::file_store(&dir, T0));
        for chains in [1, 16] {
            let per_chain = 16_000 / chains;
            let started = std::time::Instant::now();
            let tasks: Vec<_> = (0..chains)
                .map(|c| {
                    let auth = auth.clone();
                    let (client, body) = tokens(&auth, &format!("agent {chains}-{c}"), T0);
                    let mut refresh = body["refresh_token"].as_str().unwrap().to_string();
                    tokio::spawn(async move {
                        for i in 0..per_chain {
                            let form = form(&[
                                ("grant_type", "refresh_token"),
                                ("refresh_token", &refresh),
                            ]);
                            let body =
                                exchange_queued(&auth, &form, public(&client), T0 + i as i64)
                                    .await
                                    .unwrap();
                            refresh = body.refresh_token.unwrap();
                            if c == 0 && i % 1000 == 0 {
                                auth.store.checkpoint().unwrap();
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let s = started.elapsed().as_secs_f64();
            eprintln!(
                "{chains} chains: {:.0} refreshes/s",
                (per_chain * chains) as f64 / s
            );
        }
    }
}
