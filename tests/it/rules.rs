//! Rules the person keeps for an agent: when they decide every tool a
//! request asks for, no one is asked (the audit event names the rule);
//! otherwise the person decides, starting from what the rules say, and can
//! remember their choices as rules.

use crate::support::serve::Serve;
use crate::support::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_decides_what_it_covers_and_leaves_the_rest_to_the_person() {
    let gh = Serve::start(&config_text(""), &[]);
    let client_id = gh.register("Ruled Agent").await;
    let said = gh.cli_ok(&[
        "rules",
        "add",
        "Ruled Agent",
        "--risk",
        "read",
        "--to",
        "allow",
    ]);
    assert!(said.contains("read tools on every server: allow"), "{said}");
    let rule_id = gh.cli_json(&["rules"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Asking for the read-only tools only: decided by the rule, no window, a code at once.
    let resource = gh.resource("demo");
    let url = gh.authorize_url(
        &client_id,
        &[("scope", "tools:read"), ("resource", &resource)],
    );
    let (status, wait) = gh.authorize(&url).await;
    assert_eq!(status, 303, "{wait}");
    assert!(
        gh.cli_json(&["pending"]).as_array().unwrap().is_empty(),
        "no one was asked"
    );
    let code = query(&gh.wait_for_redirect(&wait).await, "code").expect("a code");
    let (status, tokens) = gh.exchange_code(&client_id, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let log = gh.log();
    let approved = log
        .iter()
        .rev()
        .find(|e| e["kind"] == "consent_approved")
        .unwrap();
    assert_eq!(approved["actor"], format!("rule {rule_id}"), "{approved}");

    // Asking for more than the rules cover: the person decides, shown what the rules say.
    let second = gh.register("Second Agent").await;
    gh.cli_ok(&["rules", "add", &second, "--risk", "read", "--to", "allow"]);
    let url = gh.authorize_url(
        &second,
        &[
            ("scope", "tool:read_note tool:delete_note"),
            ("resource", &resource),
        ],
    );
    let (_, wait) = gh.authorize(&url).await;
    let pending = gh.cli_json(&["pending"]);
    let request = &pending[0];
    let choices: Vec<(&str, &str)> = request["rule_choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["tool"].as_str().unwrap(), c["action"].as_str().unwrap()))
        .collect();
    assert_eq!(choices, [("read_note", "allow")], "{request}");
    // The person allows it, asking every time, and remembers that.
    let id = request["id"].as_str().unwrap();
    gh.cli_ok(&[
        "approve",
        id,
        "--tools",
        "read_note,delete_note",
        "--ask",
        "delete_note",
        "--remember",
    ]);
    gh.wait_for_redirect(&wait).await;
    let rules = gh.cli_json(&["rules", "--agent", &second]);
    let kept: Vec<(Value, Value, Value)> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["target"].clone(),
                r["action"].clone(),
                r["server"].clone(),
            )
        })
        .collect();
    assert!(
        kept.contains(&(
            serde_json::json!({"kind": "tool", "value": "delete_note"}),
            "ask".into(),
            "demo".into()
        )),
        "{rules}"
    );

    // Changed and removed: audited; an unknown rule is a clear error.
    gh.cli_ok(&["rules", "set", &rule_id, "--to", "deny"]);
    gh.cli_ok(&["rules", "rm", &rule_id]);
    let out = gh.cli(&["rules", "rm", &rule_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rule"));
    let changes = gh
        .log()
        .iter()
        .filter(|e| e["kind"] == "rule_changed")
        .count();
    assert!(changes >= 4, "added, remembered, set, removed: {changes}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_that_allow_nothing_deny_at_once() {
    let gh = Serve::start(&config_text(""), &[]);
    let client_id = gh.register("Never").await;
    gh.cli_ok(&[
        "rules",
        "add",
        &client_id,
        "--tool",
        "delete_note",
        "--to",
        "deny",
    ]);
    let url = gh.authorize_url(
        &client_id,
        &[
            ("scope", "tool:delete_note"),
            ("resource", &gh.resource("demo")),
        ],
    );
    let (_, wait) = gh.authorize(&url).await;
    let back = gh.wait_for_redirect(&wait).await;
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert!(gh.cli_json(&["pending"]).as_array().unwrap().is_empty());
}

/// A client id is public: a flow started under it by another program gets a
/// code from the rules, but only the program that registered the agent can
/// redeem it. Another program's attempt spends the code and is audited.
#[tokio::test(flavor = "multi_thread")]
async fn a_code_from_the_rules_is_redeemed_only_by_the_agents_program() {
    let gh = Serve::start(&config_text(""), &[]);
    let client_id = gh.register("Ruled").await;
    gh.cli_ok(&[
        "rules", "add", &client_id, "--risk", "read", "--to", "allow",
    ]);
    let url = gh.authorize_url(
        &client_id,
        &[("scope", "tools:read"), ("resource", &gh.resource("demo"))],
    );
    let (_, wait) = gh.authorize(&url).await;
    let code = query(&gh.wait_for_redirect(&wait).await, "code").unwrap();
    let script = r#"
import sys, urllib.request, urllib.parse, urllib.error
form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": sys.argv[2],
    "code_verifier": sys.argv[3], "client_id": sys.argv[4], "redirect_uri": sys.argv[5]}).encode()
try:
    r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=form)); print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
"#;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            &format!("{}/token", gh.url),
            &code,
            VERIFIER,
            &client_id,
            REDIRECT,
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("400"), "{said}");
    assert!(
        said.contains("invalid_grant") && said.contains("another program"),
        "{said}"
    );
    // Spent: the agent itself cannot use it either now.
    let (status, body) = gh.exchange_code(&client_id, &code).await;
    assert_eq!(status, 400, "{body}");
    let flagged = gh
        .log()
        .into_iter()
        .find(|e| e["kind"] == "program_mismatch")
        .unwrap();
    assert_eq!(flagged["outcome"], "denied", "{flagged}");
    assert_eq!(flagged["detail"]["code_from_rules"], true, "{flagged}");
}
