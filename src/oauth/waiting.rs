//! The waiting page's side of the authorization response (OAuth 2.1
//! §4.1.2): the browser polls [`poll`] with its handle until the person
//! decides; then it is sent back to the client with a code (minted now, so its
//! one minute starts when the browser collects it, and handed out once) or
//! with `access_denied`. Both carry `state` and `iss` (RFC 9207).

use super::authorize::{error_redirect, redirect_host};
use super::{AuthServer, ErrorCode, OAuthError, CODE_TTL_MS};
use crate::clock::UnixMs;
use crate::crypto::{self, Secret};
use crate::store::clients;
use crate::store::consent::{self, ConsentRequest, Status};
use crate::store::tokens::{self, CodeRow};

/// What the waiting page should do now.
#[derive(Debug)]
pub enum PollOutcome {
    /// Still waiting for the person.
    Waiting(WaitingPage),
    /// Decided: send the browser back to the client.
    Redirect(String),
    /// Unknown handle, or the code was already handed out.
    Finished,
}

/// What the browser's waiting page shows: who asks for which server, and the
/// phrase the consent window shows too.
#[derive(Debug, Clone)]
pub struct WaitingPage {
    /// What the agent calls itself; `None` if it is unknown.
    pub client_name: Option<String>,
    pub verified: bool,
    pub server: String,
    pub phrase: String,
    pub redirect_host: String,
}

/// Checks the waiting page's request. On approval the authorization code is
/// minted now (so its short life starts when the browser collects it) and
/// handed out once.
pub fn poll(auth: &AuthServer, handle: &str, now: UnixMs) -> Result<PollOutcome, OAuthError> {
    let Some(request) = auth
        .store
        .read(|c| consent::by_handle(c, &crypto::hash(handle)))?
    else {
        return Ok(PollOutcome::Finished);
    };
    match request.status {
        Status::Pending if request.expires_at > now => {
            let client = auth.store.read(|c| clients::get(c, &request.client_id))?;
            Ok(PollOutcome::Waiting(WaitingPage {
                client_name: client.as_ref().map(|c| c.name.clone()),
                verified: client.is_some_and(|c| c.is_verified()),
                server: request.server,
                phrase: request.phrase,
                redirect_host: redirect_host(&request.redirect_uri),
            }))
        }
        Status::Pending => {
            super::consent::expire(auth, &request, now)?;
            Ok(PollOutcome::Redirect(denied_redirect(
                auth,
                &request,
                "nobody approved the request in time",
            )))
        }
        Status::Denied => Ok(PollOutcome::Redirect(denied_redirect(
            auth,
            &request,
            "the user denied the request",
        ))),
        Status::Expired => Ok(PollOutcome::Redirect(denied_redirect(
            auth,
            &request,
            "nobody approved the request in time",
        ))),
        Status::Delivered => Ok(PollOutcome::Finished),
        Status::Approved => {
            let code = Secret::generate("gh_code_");
            let grant_id = request.grant_id.clone().ok_or_else(|| {
                OAuthError::new(ErrorCode::ServerError, "approved request without a grant")
            })?;
            let delivered = auth.store.write(|tx| {
                if !consent::transition(
                    tx.conn(),
                    &request.id,
                    Status::Approved,
                    Status::Delivered,
                    now,
                    None,
                    None,
                )? {
                    return Ok::<_, OAuthError>(false);
                }
                tokens::insert_code(
                    tx.conn(),
                    &CodeRow {
                        code_hash: code.hash(),
                        request_id: request.id.clone(),
                        grant_id,
                        client_id: request.client_id.clone(),
                        created_at: now,
                        expires_at: now + CODE_TTL_MS,
                        used_at: None,
                    },
                )?;
                Ok(true)
            })?;
            if !delivered {
                return Ok(PollOutcome::Finished);
            }
            let mut url = url::Url::parse(&request.redirect_uri).map_err(|_| {
                OAuthError::new(ErrorCode::ServerError, "stored redirect URI is invalid")
            })?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("code", code.expose());
                if let Some(state) = &request.state {
                    q.append_pair("state", state);
                }
                q.append_pair("iss", &auth.issuer);
            }
            Ok(PollOutcome::Redirect(url.into()))
        }
    }
}

fn denied_redirect(auth: &AuthServer, request: &ConsentRequest, why: &str) -> String {
    error_redirect(
        auth,
        &request.redirect_uri,
        request.state.as_deref(),
        &OAuthError::access_denied(why),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::consent::{self as decision, AskChoice, DurationChoice, ToolChoice};
    use crate::testing::*;

    #[test]
    fn the_page_waits_then_sends_the_browser_back_once() {
        let auth = auth_server("");
        let client = public_client(&auth, "agent", T0);
        let (id, handle) = request(&auth, &client, None, T0);
        match poll(&auth, handle.expose(), T0 + 1).unwrap() {
            PollOutcome::Waiting(page) => {
                assert_eq!(page.client_name.as_deref(), Some("agent"));
                assert_eq!(
                    (page.server.as_str(), page.redirect_host.as_str()),
                    ("demo", "127.0.0.1")
                );
                assert!(!page.verified);
            }
            other => panic!("{other:?}"),
        }
        decision::approve(
            &auth,
            &id,
            &ToolChoice::All,
            &AskChoice::None,
            DurationChoice::Forever,
            "me",
            T0 + 2,
        )
        .unwrap();
        let back = redirect_after(&auth, &handle, T0 + 3);
        assert!(query(&back, "code").unwrap().starts_with("gh_code_"));
        assert_eq!(query(&back, "state").as_deref(), Some("st"));
        assert_eq!(
            query(&back, "iss").as_deref(),
            Some("http://127.0.0.1:7390")
        );
        assert!(matches!(
            poll(&auth, handle.expose(), T0 + 4).unwrap(),
            PollOutcome::Finished
        ));
        assert!(matches!(
            poll(&auth, "gh_wait_unknown", T0).unwrap(),
            PollOutcome::Finished
        ));
    }

    #[test]
    fn nobody_answering_is_access_denied() {
        let auth = auth_server("");
        let client = public_client(&auth, "agent", T0);
        let (_, handle) = request(&auth, &client, None, T0);
        let late = T0 + auth.config.get().consent_timeout_ms;
        let back = redirect_after(&auth, &handle, late);
        assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
        assert!(audit_kinds(&auth.store).contains(&"consent_expired".to_string()));
    }
}
