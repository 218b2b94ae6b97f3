//! Servers managed while Gatehouse runs: `gatehouse servers add|rm|enable|
//! disable|restart|logs`, and hand edits of the config file, take effect
//! without a restart, with agents holding sessions; a bad edit changes
//! nothing and says why.

use std::time::{Duration, Instant};

use crate::support::serve::{self, Serve};
use crate::support::*;
use gatehouse::api::{AskChoice, ToolChoice};
use serde_json::json;

fn fixture_script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upstream.py")
}

/// `gatehouse servers add` of the fixture as `keyed`, with the secret
/// `API_KEY` (read from stdin); `options` go before the name.
fn add_keyed<'a>(options: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["servers", "add"];
    args.extend_from_slice(options);
    args.extend([
        "keyed",
        "--secret-env",
        "API_KEY",
        "--",
        "python3",
        fixture_script(),
    ]);
    args
}

/// Waits until `ok` holds (the config file is read every 2 s).
fn eventually(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + STEP;
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_added_and_removed_while_agents_work() {
    let gh = Serve::start(&config_text(""), &[]);
    let (_, demo) = gh
        .agent("Agent", "demo", ToolChoice::All, AskChoice::None)
        .await;
    let started = Instant::now();
    let added = gh.cli_ok(&["servers", "add", "fx", "--", "python3", fixture_script()]);
    let took = started.elapsed();
    assert!(added.contains("Added: fx"), "{added}");
    assert!(
        added.contains("fx answers with 4 tool(s): lookup, purge"),
        "{added}"
    );
    eprintln!("servers add to tools listed: {took:?}");
    let text = std::fs::read_to_string(gh.config_path()).unwrap();
    assert!(text.contains("[servers.fx]"), "{text}");

    let (_, fx) = gh
        .agent("Agent", "fx", ToolChoice::All, AskChoice::None)
        .await;
    assert_eq!(
        fx.call_text("lookup", json!({"word": "w"})).await,
        "lookup:w"
    );

    let removed = gh.cli_ok(&["servers", "rm", "fx"]);
    assert!(
        removed.contains("Removed (sessions ended, grants revoked): fx"),
        "{removed}"
    );
    let (status, _) = fx.request("tools/list", json!({})).await;
    assert_eq!(status, 404, "its session ended");
    let grants = gh.cli_json(&["grants", "--all"]);
    let fx_grant = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["server"] == "fx")
        .unwrap();
    assert!(
        fx_grant["revoked_at"].is_number(),
        "revoked but still listed: {fx_grant}"
    );
    assert!(
        !demo.tool_names().await.is_empty(),
        "the other server's session lives on"
    );
    let log = gh.log();
    assert!(log.iter().any(|e| e["kind"] == "config_changed"));
    assert!(log
        .iter()
        .any(|e| e["kind"] == "grant_revoked" && e["detail"]["reason"] == "server removed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hand_edit_is_noticed_and_a_bad_one_changes_nothing() {
    let gh = Serve::start(
        &format!("{}{}", config_text(""), fixture_server("fx", &[])),
        &[],
    );
    let (_, fx) = gh
        .agent("Agent", "fx", ToolChoice::All, AskChoice::None)
        .await;
    let path = gh.config_path();
    let good = std::fs::read_to_string(&path).unwrap();

    // A bad edit: the config before it runs on, and the status says why.
    std::fs::write(&path, format!("{good}\nunknown_key = 1\n")).unwrap();
    eventually("the problem is reported", || {
        gh.cli_json(&["status"])["config_problem"]
            .as_str()
            .is_some_and(|p| p.contains("unknown_key"))
    });
    assert!(gh
        .cli_ok(&["status"])
        .contains("THE CONFIG FILE IS NOT IN FORCE"));
    assert_eq!(
        fx.call_text("lookup", json!({"word": "w"})).await,
        "lookup:w"
    );
    std::fs::write(&path, format!("{good}\n[servers.fx]\ncommand = \"x\"\n")).unwrap();
    eventually("a duplicate name is reported", || {
        gh.cli_json(&["status"])["config_problem"]
            .as_str()
            .is_some_and(|p| p.contains("fx"))
    });

    // A good edit of fx's environment: its session restarts.
    let changed = good.replace("env = {  }", "env = { CHANGED = \"1\" }");
    assert_ne!(changed, good);
    std::fs::write(&path, changed).unwrap();
    eventually("the problem is gone", || {
        gh.cli_json(&["status"])["config_problem"].is_null()
    });
    let (status, _) = fx.request("tools/list", json!({})).await;
    assert_eq!(status, 404, "the changed server's session ended");
    let log = gh.log();
    let change = log.iter().find(|e| e["kind"] == "config_changed").unwrap();
    assert_eq!(change["detail"]["changed"], json!(["fx"]), "{change}");
    assert_eq!(
        change["actor"]
            .as_str()
            .map(|a| a.ends_with("(config file)")),
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_keeps_the_grants_and_enabling_serves_again() {
    let gh = Serve::start(
        &format!("{}{}", config_text(""), fixture_server("fx", &[])),
        &[],
    );
    let (agent, _) = gh
        .agent("Agent", "fx", ToolChoice::All, AskChoice::None)
        .await;
    let out = gh.cli_ok(&["servers", "disable", "fx"]);
    assert!(
        out.contains("Disabled (sessions ended, grants kept): fx"),
        "{out}"
    );
    assert!(gh
        .cli_ok(&["servers", "list"])
        .contains("fx               disabled"));
    assert_eq!(
        gh.mcp("fx", Some(agent.access()), None, &initialize())
            .await
            .status(),
        404
    );
    gh.cli_ok(&["servers", "enable", "fx"]);
    let s = gh.session("fx", agent.access()).await;
    assert_eq!(
        s.call_text("lookup", json!({"word": "back"})).await,
        "lookup:back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_server_shows_its_last_words_and_restarts() {
    let crash =
        "import sys; print('fatal: cannot open the database', file=sys.stderr); sys.exit(3)";
    let gh = Serve::start(
        &format!(
            "{}[servers.crashy]\ncommand = \"python3\"\nargs = [\"-c\", {crash:?}]\n",
            config_text("")
        ),
        &[],
    );
    let tools = gh.cli(&["servers", "tools", "crashy"]);
    assert!(!tools.status.success());
    let list = gh.cli_ok(&["servers", "list"]);
    assert!(list.contains("crashy           CRASHED"), "{list}");
    assert!(list.contains("| fatal: cannot open the database"), "{list}");
    let logs = gh.cli_ok(&["servers", "logs", "crashy"]);
    assert_eq!(logs.trim(), "fatal: cannot open the database");
    let restarted = gh.cli_ok(&["servers", "restart", "crashy"]);
    assert!(restarted.contains("Restarted crashy"), "{restarted}");
    assert!(gh
        .cli_ok(&["servers", "list"])
        .contains("crashy           not started"));
}

#[test]
fn bad_additions_change_nothing() {
    let gh = Serve::start(&config_text(""), &[]);
    let before = std::fs::read_to_string(gh.config_path()).unwrap();
    for (args, says) in [
        (
            &["servers", "add", "demo", "--", "python3", "x.py"][..],
            "another server named \"demo\"",
        ),
        (
            &["servers", "add", "nope", "--", "/nonexistent/mcp-server"],
            "no such command",
        ),
        (
            &["servers", "add", "ftp", "--url", "ftp://files.example/mcp"],
            "must be an http or https URL",
        ),
        (
            &["servers", "add", "plain", "--url", "http://mcp.example/mcp"],
            "plain http only for this machine",
        ),
        (
            &["servers", "add", "Bad Name", "--", "python3"],
            "server names use",
        ),
        (&["servers", "rm", "nobody"], "no server named \"nobody\""),
        (&["servers", "add", "both"], "give the command after `--`"),
    ] {
        let out = gh.cli(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(gh.config_path()).unwrap(),
        before,
        "nothing written"
    );
    assert!(gh.cli_ok(&["servers", "list"]).contains("demo"));
}

#[test]
fn a_first_run_writes_the_default_config_with_the_demo_server() {
    let home = tempfile::tempdir().unwrap();
    let config_home = home.path().join(".config");
    let data = home.path().join("data");
    let mut serve = std::process::Command::new(gatehouse_bin())
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(&data)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", &config_home)
        .env_remove("GATEHOUSE_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serve.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let file = config_home.join("gatehouse/gatehouse.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let status = crate::support::serve::run(&data, &["--json", "status"]);
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert!(first.starts_with("Gatehouse is running at"), "{first}");
    assert!(
        text.contains("[servers.demo]") && text.contains("# The built-in demo server"),
        "{text}"
    );
    let status: serde_json::Value = serde_json::from_str(&status.1).unwrap();
    assert_eq!(status["config_path"], file.display().to_string());
    assert_eq!(status["servers"][0]["name"], "demo");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_given_to_servers_add_reaches_only_the_server() {
    let gh = Serve::start(
        &format!("secret_store = \"file\"\n{}", config_text("")),
        &[],
    );
    let probe = gh.dir().join("seen");
    let probe_env = format!("SECRET_PROBE_OUT={}", probe.display());
    let out = gh.cli_with_stdin(
        &[
            "servers",
            "add",
            "keyed",
            "--secret-env",
            "API_KEY",
            "--env",
            "SECRET_PROBE_NAME=API_KEY",
            "--env",
            &probe_env,
            "--",
            "python3",
            fixture_script(),
        ],
        "sk-typed-once-0123456789\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(gh.config_path()).unwrap();
    assert!(
        text.contains("API_KEY = { secret = \"API_KEY\" }"),
        "{text}"
    );
    assert!(
        !text.contains("sk-typed-once"),
        "the value never goes to the file"
    );
    let (_, s) = gh
        .agent("Agent", "keyed", ToolChoice::All, AskChoice::None)
        .await;
    assert_eq!(
        s.call_text("lookup", json!({"word": "w"})).await,
        "lookup:w"
    );
    assert_eq!(
        std::fs::read_to_string(&probe).unwrap(),
        "sk-typed-once-0123456789"
    );
    let list = gh.cli_json(&["servers", "list"]);
    let keyed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "keyed")
        .unwrap();
    assert_eq!(keyed["secrets"], json!(["API_KEY"]), "{keyed}");
    assert!(keyed["holders"].to_string().contains("Agent"), "{keyed}");
}

/// When its secret cannot be stored, `servers add` adds nothing: no entry
/// is left in the config file to fail at every start for want of it.
#[tokio::test]
async fn an_add_whose_secret_cannot_be_stored_leaves_no_server() {
    let gh = Serve::start(
        &format!("secret_store = \"file\"\n{}", config_text("")),
        &[],
    );
    let before = std::fs::read_to_string(gh.config_path()).unwrap();
    // The secrets file is written through `secrets.tmp`: a directory there
    // fails every write.
    std::fs::create_dir_all(gh.data_dir.join("secrets.tmp")).unwrap();
    let out = gh.cli_with_stdin(&add_keyed(&[]), "sk-typed-once-0123456789\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("was not added"), "{stderr}");
    assert_eq!(std::fs::read_to_string(gh.config_path()).unwrap(), before);
    let list = gh.cli_json(&["servers", "list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "keyed"),
        "{list}"
    );
}

/// The same when Gatehouse is not running: the CLI writes the file itself,
/// and undoes its entry as the running Gatehouse would. (Before, the entry
/// stayed, and every later add of the server was refused as a duplicate.)
#[test]
fn an_add_made_while_gatehouse_is_not_running_whose_secret_cannot_be_stored_leaves_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let text = format!("secret_store = \"file\"\n{}", config_text(""));
    std::fs::write(&config, &text).unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(data_dir.join("secrets.tmp")).unwrap();
    let add = add_keyed(&["--config", config.to_str().unwrap()]);
    let out = serve::cli(&data_dir, &add, "sk-typed-once-0123456789\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("was not added"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);

    // Once the secret can be stored, the same add goes through.
    std::fs::remove_dir(data_dir.join("secrets.tmp")).unwrap();
    let out = serve::cli(&data_dir, &add, "sk-typed-once-0123456789\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Gatehouse is not running"), "{stdout}");
    let now = std::fs::read_to_string(&config).unwrap();
    assert!(
        now.contains("[servers.keyed]") && !now.contains("sk-typed"),
        "{now}"
    );
}

/// A server added from the CLI or the app is in force when the add returns,
/// and the change it reports is its own, even while Gatehouse reads the
/// file back for hand edits at that moment (it does every 2 s; here without
/// pause). Before, that read could take the edit for a hand edit: the add
/// reported no change and returned before the server was served.
#[tokio::test(flavor = "multi_thread")]
async fn an_added_server_is_in_force_when_the_add_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatehouse.toml");
    let text = config_text("");
    std::fs::write(&path, &text).unwrap();
    let config = gatehouse::Config::load(&path).unwrap();
    let running = gatehouse::daemon::start(config, dir.path()).await.unwrap();
    let api = running.gatehouse();
    let done = std::sync::atomic::AtomicBool::new(false);
    let results = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = api.reload_from_file(gatehouse::api::Actor::ConfigFile);
            }
        });
        let results: Vec<_> = (0..40)
            .map(|i| {
                let name = format!("added{i}");
                let new = gatehouse::api::NewServer {
                    name: name.clone(),
                    command: Some("python3".into()),
                    args: vec![fixture_script().into()],
                    url: None,
                    env: Default::default(),
                    headers: Default::default(),
                    secrets: Vec::new(),
                    description: None,
                    start_at_launch: false,
                };
                let change = api.add_server(new, gatehouse::api::Actor::Cli);
                let in_force = api.config().servers.contains_key(&name);
                (name, change.map(|c| c.added), in_force)
            })
            .collect();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        results
    });
    for (name, added, in_force) in results {
        assert_eq!(added.unwrap(), std::slice::from_ref(&name), "{name}");
        assert!(in_force, "{name}");
    }
    running.shutdown().await;
}
