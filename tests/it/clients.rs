//! `gatehouse clients add|list|rm`: pre-registered clients without editing
//! the config file, public or confidential, removable for good.

use crate::support::serve::Serve;
use crate::support::*;
use serde_json::Value;

fn gatehouse() -> Serve {
    Serve::start(
        &config_text("[clients.configured]\nredirect_uris = [\"http://127.0.0.1:1/cb\"]\n"),
        &[],
    )
}

/// Authorizes `client_id` (no `resource`: its server is bound) and lets the
/// person approve: the code.
async fn code_for(gh: &Serve, client_id: &str) -> String {
    let (status, wait) = gh.authorize(&gh.authorize_url(client_id, &[])).await;
    assert_eq!(status, 303, "{wait}");
    let item = gh.wait_for_pending("authorization").await;
    gh.approve_id(item["id"].as_str().unwrap()).await;
    query(&gh.wait_for_redirect(&wait).await, "code").unwrap()
}

/// Exchanges the code, with the client secret if given.
async fn exchange(gh: &Serve, client_id: &str, code: &str, secret: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
    ];
    form.extend(secret.map(|s| ("client_secret", s)));
    gh.token_request(&form).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_client_added_with_the_cli() {
    let gh = gatehouse();
    let added = gh.cli_json(&[
        "clients",
        "add",
        "Inspector",
        "--redirect-uri",
        REDIRECT,
        "--server",
        "demo",
    ]);
    let client_id = added["client"]["client_id"].as_str().unwrap().to_string();
    assert!(added["client_secret"].is_null(), "{added}");
    let code = code_for(&gh, &client_id).await;
    let (status, tokens) = exchange(&gh, &client_id, &code, None).await;
    assert_eq!(status, 200, "{tokens}");
    let list = gh.cli_ok(&["clients", "list"]);
    assert!(
        list.contains("Inspector") && list.contains("[public, added]"),
        "{list}"
    );
    assert!(
        list.contains("configured") && list.contains("config file"),
        "{list}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confidential_client_and_its_removal() {
    let gh = gatehouse();
    let text = gh.cli_ok(&[
        "clients",
        "add",
        "Backend",
        "--redirect-uri",
        REDIRECT,
        "--secret",
        "--server",
        "demo",
    ]);
    let client_id = text
        .split("client id ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    let secret = text
        .split("keep it safe): ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    assert!(secret.starts_with("gh_cs_"), "{text}");
    assert!(
        !gh.cli_ok(&["clients", "list"]).contains(&secret),
        "shown once only"
    );

    let code = code_for(&gh, &client_id).await;
    let (status, refused) = exchange(&gh, &client_id, &code, None).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("invalid_client")),
        "{refused}"
    );
    // Someone without the secret cannot even spend the code.
    let (status, tokens) = exchange(&gh, &client_id, &code, Some(&secret)).await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        gh.mcp("demo", Some(token), None, &initialize())
            .await
            .status(),
        200
    );

    let removed = gh.cli_ok(&["clients", "rm", "Backend"]);
    assert!(removed.contains("revoked 1 grant(s)"), "{removed}");
    assert_eq!(
        gh.mcp("demo", Some(token), None, &initialize())
            .await
            .status(),
        401
    );
    let (status, _) = gh.authorize(&gh.authorize_url(&client_id, &[])).await;
    assert_eq!(status, 400, "a removed client never signs in again");
    assert!(!gh.cli_ok(&["clients", "list"]).contains("Backend"));
}

#[test]
fn bad_client_additions_say_what_is_wrong() {
    let gh = gatehouse();
    for (args, says) in [
        (
            &[
                "clients",
                "add",
                "X",
                "--redirect-uri",
                "javascript:alert(1)",
            ][..],
            "redirect URI",
        ),
        (
            &[
                "clients",
                "add",
                "X",
                "--redirect-uri",
                REDIRECT,
                "--server",
                "nope",
            ],
            "no server named \"nope\"",
        ),
        (&["clients", "rm", "configured"], "config file"),
        (&["clients", "rm", "nobody"], "no pre-registered client"),
    ] {
        let out = gh.cli(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = gh.cli(&["clients", "add", "X"]);
    assert!(!out.status.success(), "a redirect URI is required");
}
