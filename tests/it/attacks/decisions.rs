//! An agent (or another local process) that lies about who it is, or changes
//! what it asks for while the person reads it: a decision binds to exactly
//! what the person was shown, and a name cannot pass for another.

use std::time::Duration;

use super::{assert_inert, assert_unchanged, stored};
use crate::support::serve::run;
use crate::support::*;
use gatehouse::api::{AskChoice, DurationChoice, ErrorCode, Target, ToolChoice};
use gatehouse::control::Request;

/// An agent that registered and opened a consent request on `demo`.
async fn asks(fx: &Fixture, name: &str) -> String {
    let client_id = fx.register(name).await;
    let (status, _) = fx.authorize(&fx.authorize_url(&client_id, &[])).await;
    assert_eq!(status, 303);
    client_id
}

fn all_tools() -> gatehouse::api::Approval {
    approval(
        ToolChoice::All,
        AskChoice::default(),
        DurationChoice::Forever,
    )
}

/// An approval sent as is (without listing first); it must fail.
async fn approve_unlisted(fx: &Fixture, target: Target) -> gatehouse::api::Error {
    let approval = all_tools();
    fx.control(Request::Approve { target, approval })
        .await
        .unwrap_err()
}

/// The person approves by name; the answer must be this error, and nothing is granted.
async fn approve_by_name_fails(fx: &Fixture, name: &str, code: ErrorCode) -> String {
    let before = stored(fx);
    let err = fx
        .decide(Target::Client(name.into()), all_tools())
        .await
        .unwrap_err();
    assert_eq!(err.code, code, "{err}");
    assert_unchanged(fx, &before);
    err.message
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_by_a_name_two_agents_share() {
    let fx = Fixture::start("").await;
    let mine = asks(&fx, "Claude Code").await;
    let theirs = asks(&fx, "Claude Code").await;
    let message = approve_by_name_fails(&fx, "Claude Code", ErrorCode::Ambiguous).await;
    assert!(
        message.contains(&mine) && message.contains(&theirs),
        "lists both: {message}"
    );
    assert_eq!(fx.pending().await.len(), 2, "both still wait");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_by_a_name_that_is_another_agents_client_id() {
    let fx = Fixture::start("").await;
    let mine = asks(&fx, "Claude Code").await;
    asks(&fx, &mine).await;
    approve_by_name_fails(&fx, &mine, ErrorCode::Ambiguous).await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_by_a_name_in_other_case_or_spacing() {
    let fx = Fixture::start("").await;
    asks(&fx, "Claude Code").await;
    approve_by_name_fails(&fx, "claude code", ErrorCode::NotFound).await;
    approve_by_name_fails(&fx, " Claude Code ", ErrorCode::NotFound).await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_by_a_name_two_agents_share() {
    let fx = Fixture::start("").await;
    asks(&fx, "Claude Code").await;
    asks(&fx, "Claude Code").await;
    fx.pending().await;
    let err = fx
        .deny(Target::Client("Claude Code".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Ambiguous);
    assert_eq!(fx.pending().await.len(), 2);
    fx.stop().await;
}

/// A request the CLI never listed cannot be approved by name: the person
/// has not seen it.
#[tokio::test(flavor = "multi_thread")]
async fn approve_by_name_what_was_never_shown() {
    let fx = Fixture::start("").await;
    asks(&fx, "Agent").await;
    let before = stored(&fx);
    let err = approve_unlisted(&fx, Target::Client("Agent".into())).await;
    assert_eq!(err.code, ErrorCode::Conflict, "{err}");
    assert_unchanged(&fx, &before);
    fx.stop().await;
}

/// The agent replaces its request (asking for more) after the person listed
/// it: the decision by name, and the old id, both refuse.
#[tokio::test(flavor = "multi_thread")]
async fn request_replaced_while_the_person_reads_it() {
    let fx = Fixture::start("").await;
    let client_id = fx.register("Agent").await;
    let modest = fx.authorize_url(&client_id, &[("scope", "tool:list_notes")]);
    assert_eq!(fx.authorize(&modest).await.0, 303);
    let shown = fx.pending().await;
    let shown_id = shown[0]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let greedy = fx.authorize_url(&client_id, &[("scope", "tool:list_notes tool:delete_note")]);
    // Even with the same PKCE challenge: a request that asks for more is a new one.
    assert_eq!(fx.authorize(&greedy).await.0, 303);
    let before = stored(&fx);
    let err = approve_unlisted(&fx, Target::Client("Agent".into())).await;
    assert_eq!(err.code, ErrorCode::Conflict, "{err}");
    let err = approve_unlisted(&fx, Target::Id(shown_id)).await;
    assert_eq!(err.code, ErrorCode::NotFound, "{err}");
    assert_unchanged(&fx, &before);
    fx.stop().await;
}

/// A second agent whose name, after cleaning, is another's.
async fn lookalike(fake: &str) {
    let fx = Fixture::start("").await;
    let real = asks(&fx, "Claude Code").await;
    asks(&fx, fake).await;
    let pending = fx.pending().await;
    let impostor = pending
        .iter()
        .find(|p| p["client_id"] != real.as_str())
        .unwrap();
    let name = impostor["client_name"].as_str().unwrap();
    assert!(
        !name.contains(|c: char| super::RAW.contains(&c) || c == '\u{3000}'),
        "{name:?}"
    );
    assert_eq!(
        impostor["lookalike_of"]["client_id"],
        real.as_str(),
        "{impostor}"
    );
    let (_, out, _) = run(&fx.data_dir, &["pending"]);
    assert_inert(&out);
    assert!(out.contains("looks like"), "{out}");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lookalike_with_a_zero_width_space() {
    lookalike("Claude\u{200B} Code").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lookalike_with_an_ideographic_space() {
    lookalike("Claude\u{3000}Code").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lookalike_with_cyrillic_letters() {
    lookalike("\u{0421}laude C\u{043E}de").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lookalike_with_a_bidi_override() {
    lookalike("Claude Code\u{202E}").await;
}

/// A name that writes its own badge and pads the real one out of sight.
#[tokio::test(flavor = "multi_thread")]
async fn name_that_forges_a_verified_badge() {
    let fx = Fixture::start("").await;
    let forged = format!("Claude (verified: anthropic.com){}x", " ".repeat(300));
    asks(&fx, &forged).await;
    let pending = fx.pending().await;
    let name = pending[0]["client_name"].as_str().unwrap();
    assert!(name.chars().count() <= 64, "{name:?}");
    assert!(!name.contains("  "), "padding collapsed: {name:?}");
    assert_eq!(pending[0]["verified"], false);
    let (_, out, _) = run(&fx.data_dir, &["pending"]);
    let line = out.lines().next().unwrap();
    let badge = line.find("[UNVERIFIED").expect("the real badge");
    let claim = line.find("(verified: anthropic.com)").expect("the name");
    assert!(badge < claim, "the badge comes before the name: {line}");
    fx.stop().await;
}

/// `--for` with a number of seconds that overflows: refused, still pending.
#[tokio::test(flavor = "multi_thread")]
async fn approve_for_a_duration_that_overflows() {
    let fx = Fixture::start("").await;
    asks(&fx, "Agent").await;
    let id = fx.pending().await[0]["id"].as_str().unwrap().to_string();
    let before = stored(&fx);
    for huge in [
        "9223372036854775s",
        "18446744073709551616s",
        "106752d",
        "-5m",
    ] {
        let (code, out, err) = run(
            &fx.data_dir,
            &["approve", &id, "--all-tools", &format!("--for={huge}")],
        );
        assert_ne!(code, 0, "{huge}: {out}");
        assert!(err.contains("--for"), "{huge}: {err}");
    }
    assert_unchanged(&fx, &before);
    assert_eq!(fx.pending().await.len(), 1);
    fx.stop().await;
}
