//! Interop with real third-party MCP servers behind Gatehouse, driven by the official
//! TypeScript SDK client (`tests/interop/ts_client.mjs`, SDK 1.32.2) with the person played
//! by the `gatehouse` CLI (support/sdk.rs, support/serve.rs; helpers in support/servers.rs).
//!
//! It proves, with `@modelcontextprotocol/server-filesystem` on a temp folder (stdio): its
//! read and write tools land in different risk classes; a read-only grant lists and runs
//! only the read tools, and a write is refused (403 step-up) before it reaches the server:
//! the folder is unchanged. An ask-every-time write is held in `gatehouse pending` with its
//! arguments, runs when approved, and when denied fails at the client with a JSON-RPC error
//! and writes nothing. With `@modelcontextprotocol/server-everything`: progress
//! notifications reach the client (stdio and HTTP); resources are hidden and unreadable
//! unless `@resources` is granted; the flow works over streamable HTTP to a server the test
//! starts; an upstream secret reaches the server's environment and appears nowhere in the
//! data directory but the secret store, nor in the serve log or the audit log.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::sdk::{events, names, node_package, one, text_of};
use crate::support::serve::Serve;
use crate::support::servers::*;
use serde_json::{json, Value};

/// server-filesystem 2026.8.31's read-only tools (`readOnlyHint: true`), sorted.
const FS_READ: [&str; 10] = [
    "directory_tree",
    "get_file_info",
    "list_allowed_directories",
    "list_directory",
    "list_directory_with_sizes",
    "read_file",
    "read_media_file",
    "read_multiple_files",
    "read_text_file",
    "search_files",
];

/// A read-only grant on server-filesystem: only the read tools are listed and work; a
/// write is refused with a step-up 403 and the folder is left exactly as it was.
#[test]
fn filesystem_read_only_grant_refuses_writes() {
    let folder = tempfile::tempdir().expect("temp folder");
    let notes = folder.path().join("notes.txt");
    std::fs::write(&notes, "hello from the temp folder\n").expect("write notes");
    let before = snapshot(folder.path());
    let gh = filesystem_gatehouse(folder.path());
    let name = "TS filesystem reader";
    let new_file = folder.path().join("new.txt");
    let args = client_args(
        &[
            ("read_text_file", json!({ "path": notes })),
            ("write_file", json!({ "path": new_file, "content": "no" })),
            ("list_directory", json!({ "path": folder.path() })),
        ],
        &["--relist"],
    );
    let mut agent = spawn(&gh, "files", name, &args);
    let request = gh.pending_request(&mut agent);
    assert_eq!(request["server"], "files");

    // Read and write tools land in different classes.
    let read = tools_of_risk(&request, "read");
    assert_eq!(read, FS_READ, "{request}");
    for tool in ["write_file", "edit_file", "move_file"] {
        assert_eq!(risk_of(&request, tool), "destructive", "{tool}");
    }
    assert_eq!(risk_of(&request, "create_directory"), "write");

    approve(&gh, &request, &["--tools", &read.join(",")]);
    let all = agent.finish();
    let lists = events(&all, "tools");
    assert_eq!(names(&lists[0]["names"]), read);
    assert_eq!(names(&lists[1]["names"]), read);
    let calls = events(&all, "call");
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0]["ok"], true, "{}", calls[0]);
    assert_eq!(text_of(calls[0]), "hello from the temp folder\n");
    // TS SDK 1.x cannot widen a grant (typescript-sdk #2255): the 403 step-up is final.
    assert_eq!(calls[1]["ok"], false, "{}", calls[1]);
    assert_eq!(calls[1]["error"]["code"], 403, "{}", calls[1]);
    assert_eq!(calls[2]["ok"], true, "{}", calls[2]);
    assert_eq!(text_of(calls[2]), "[FILE] notes.txt");

    assert_eq!(snapshot(folder.path()), before, "the folder changed");
    let log = gh.log();
    let writes = tool_calls(&log, name, "write_file");
    assert!(!writes.is_empty(), "{log:?}");
    assert!(
        writes.iter().all(|e| e["outcome"] == "denied"),
        "{writes:?}"
    );
    let reads = tool_calls(&log, name, "read_text_file");
    assert!(reads.iter().any(|e| e["outcome"] == "allowed"), "{reads:?}");
}

/// Ask every time: each write_file call waits in `gatehouse pending` with its arguments;
/// the approved one is written, the denied one fails at the client and writes nothing.
#[test]
fn filesystem_ask_every_time_write() {
    let folder = tempfile::tempdir().expect("temp folder");
    std::fs::write(folder.path().join("notes.txt"), "kept\n").expect("write notes");
    let approved = folder.path().join("approved.txt");
    let denied = folder.path().join("denied.txt");
    let gh = filesystem_gatehouse(folder.path());
    let name = "TS filesystem writer";
    let args = client_args(
        &[
            ("write_file", json!({ "path": approved, "content": "yes" })),
            ("write_file", json!({ "path": denied, "content": "no" })),
        ],
        &[],
    );
    let mut agent = spawn(&gh, "files", name, &args);
    let request = gh.pending_request(&mut agent);
    let mut tools = tools_of_risk(&request, "read");
    tools.push("write_file".into());
    approve(
        &gh,
        &request,
        &["--tools", &tools.join(","), "--ask", "write_file"],
    );

    let held_for = |path: &Path| {
        let path = path.to_str().expect("utf-8").to_string();
        move |p: &Value| p["kind"] == "tool_call" && p["arguments"]["path"] == path.as_str()
    };
    let first = gh.pending_where(&mut agent, held_for(&approved));
    assert_eq!(first["server"], "files");
    assert_eq!(first["tools"][0]["name"], "write_file", "{first}");
    assert_eq!(first["arguments"]["content"], "yes", "{first}");
    assert!(first["id"].as_str().unwrap().starts_with("hc_"), "{first}");
    assert!(!approved.exists(), "a held call ran before it was approved");
    approve(&gh, &first, &[]);
    let call = agent.expect("call");
    assert_eq!(call["ok"], true, "{call}");
    assert_eq!(std::fs::read_to_string(&approved).unwrap(), "yes");

    let second = gh.pending_where(&mut agent, held_for(&denied));
    assert_ne!(second["id"], first["id"]);
    let after_first = snapshot(folder.path());
    gh.cli_ok(&["deny", second["id"].as_str().expect("id")]);
    let all = agent.finish();
    let calls = events(&all, "call");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1]["ok"], false, "{}", calls[1]);
    let code = calls[1]["error"]["code"].as_i64().unwrap_or(0);
    assert!(code < 0, "expected a JSON-RPC error, got {}", calls[1]);
    assert!(!denied.exists(), "the denied write reached the server");
    assert_eq!(snapshot(folder.path()), after_first);

    let log = gh.log();
    let writes = tool_calls(&log, name, "write_file");
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[0]["outcome"], "allowed", "{}", writes[0]);
    assert_eq!(writes[0]["detail"]["held_call"], first["id"]);
    assert_eq!(writes[1]["outcome"], "denied", "{}", writes[1]);
    assert_eq!(writes[1]["detail"]["held_call"], second["id"]);
}

/// The long-running tool's progress notifications pass through Gatehouse to the client.
#[test]
fn everything_progress_reaches_the_client() {
    let gh = everything_gatehouse("", &[]);
    let tool = "trigger-long-running-operation";
    let args = client_args(
        &[(tool, json!({ "duration": 1, "steps": 4 }))],
        &["--progress"],
    );
    let mut agent = spawn(&gh, "everything", "TS progress agent", &args);
    let request = gh.pending_request(&mut agent);
    assert_eq!(risk_of(&request, tool), "read");
    approve(&gh, &request, &["--tools", tool]);
    let all = agent.finish();
    let call = one(&all, "call");
    assert_eq!(call["ok"], true, "{call}");
    assert!(text_of(call).starts_with("Long running operation completed"));
    let progress: Vec<(i64, i64)> = events(&all, "progress")
        .iter()
        .map(|p| {
            (
                p["progress"].as_i64().unwrap(),
                p["total"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(progress, [(1, 4), (2, 4), (3, 4), (4, 4)], "{all:?}");
}

/// Resources are hidden under a tools-only grant (an empty list; a read gets the 403
/// step-up challenge, which SDK 1.32.2 cannot follow), and listed and readable once
/// `@resources` (scope `resources:read`) is granted.
#[test]
fn everything_resources_hidden_unless_granted() {
    let gh = everything_gatehouse("", &[]);
    let uri = "demo://resource/static/document/features.md";
    let args = client_args(&[], &["--resources", "--read", uri]);

    let mut tools_only = spawn(&gh, "everything", "TS tools-only agent", &args);
    let request = gh.pending_request(&mut tools_only);
    approve(&gh, &request, &["--tools", "echo"]);
    let all = tools_only.finish();
    assert_eq!(names(&one(&all, "tools")["names"]), ["echo"]);
    assert_eq!(one(&all, "resources")["uris"], json!([]), "{all:?}");
    let read = one(&all, "resource_read");
    assert_eq!(read["ok"], false, "{read}");
    assert_eq!(read["error"]["code"], 403, "{read}");

    let mut granted = spawn(&gh, "everything", "TS resources agent", &args);
    let request = gh.pending_request(&mut granted);
    assert_eq!(risk_of(&request, "@resources"), "read", "{request}");
    approve(&gh, &request, &["--tools", "echo,@resources"]);
    let tokens = granted.expect("tokens");
    assert_eq!(tokens["scope"], "tool:echo resources:read");
    let all = granted.finish();
    let uris = one(&all, "resources")["uris"].clone();
    assert!(uris.as_array().unwrap().contains(&json!(uri)), "{uris}");
    let read = one(&all, "resource_read");
    assert_eq!(read["ok"], true, "{read}");
    let text = read["contents"][0]["text"].as_str().unwrap_or_default();
    assert!(!text.is_empty(), "{read}");
}

/// The first client of a server that nobody has started yet is challenged with everything
/// the server offers, resources included (Gatehouse lists the server before answering).
#[test]
fn first_request_on_a_cold_server_offers_resources() {
    let gh = everything_gatehouse("", &[]);
    let mut agent = spawn(&gh, "everything", "TS cold agent", &[]);
    let request = gh.pending_request(&mut agent);
    let scope = agent.expect("authorize")["scope"].clone();
    gh.cli_ok(&["deny", request["id"].as_str().expect("id")]);
    agent.finish();
    let scope = scope.as_str().unwrap_or_default();
    assert!(scope.contains("resources:read"), "challenge scope {scope}");
    assert_eq!(risk_of(&request, "@resources"), "read", "{request}");
}

/// The whole flow over streamable HTTP to a real server: filtered list, calls, progress.
#[test]
fn everything_over_streamable_http() {
    let server = HttpEverything::start();
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let gh = Serve::start(&format!("[servers.remote]\nurl = {url:?}\n"), &[]);
    let name = "TS HTTP agent";
    let slow = "trigger-long-running-operation";
    let calls = [
        ("echo", json!({ "message": "over HTTP" })),
        (slow, json!({ "duration": 1, "steps": 2 })),
    ];
    let mut agent = spawn(&gh, "remote", name, &client_args(&calls, &["--progress"]));
    let request = gh.pending_request(&mut agent);
    assert_eq!(request["server"], "remote");
    assert_eq!(risk_of(&request, "echo"), "read");
    approve(&gh, &request, &["--tools", &format!("echo,get-sum,{slow}")]);
    let all = agent.finish();
    assert_eq!(one(&all, "connected")["server"], "mcp-servers/everything");
    let listed = names(&one(&all, "tools")["names"]);
    assert_eq!(listed, ["echo", "get-sum", slow]);
    let calls = events(&all, "call");
    assert!(calls.iter().all(|c| c["ok"] == true), "{calls:?}");
    assert_eq!(text_of(calls[0]), "Echo: over HTTP");
    // The upstream's progress comes back on its SSE response stream; it is relayed.
    let progress: Vec<&Value> = events(&all, "progress")
        .into_iter()
        .map(|p| &p["progress"])
        .collect();
    assert_eq!(progress, [&json!(1), &json!(2)], "{all:?}");
    let upstream = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(upstream.contains("Received MCP POST request"), "{upstream}");
    let audited = tool_calls(&gh.log(), name, "echo").len();
    assert_eq!(audited, 1, "one audited echo call");
}

/// A tool that runs as a task (MCP tasks), over streamable HTTP, with the
/// TypeScript SDK's task API: the task is created, its status polled, its
/// result read, and the session's task list names it. The call is audited
/// with the task it created, and the result read with how the call ended.
#[test]
fn everything_task_over_streamable_http() {
    let server = HttpEverything::start();
    let gh = Serve::start(
        &format!("[servers.remote]\nurl = {:?}\n", server.url()),
        &[],
    );
    let (name, tool) = ("TS task agent", "simulate-research-query");
    let task = format!("{tool}={}", json!({ "topic": "gatehouse" }));
    let mut agent = spawn(&gh, "remote", name, &["--task".into(), task]);
    let request = gh.pending_request(&mut agent);
    approve(&gh, &request, &["--tools", tool]);
    let all = agent.finish();
    let created = one(&all, "task_created")["task_id"]
        .as_str()
        .expect("a task id")
        .to_string();
    let result = one(&all, "task_result");
    assert_eq!(result["ok"], true, "{all:?}");
    assert!(text_of(result).contains("gatehouse"), "{result}");
    assert!(!events(&all, "task_status").is_empty(), "{all:?}");
    assert_eq!(one(&all, "tasks")["ids"], json!([created]), "{all:?}");
    let log = gh.log();
    let calls = tool_calls(&log, name, tool);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["detail"]["task"], json!(created), "{}", calls[0]);
    let ended = log
        .iter()
        .filter(|e| e["kind"] == "task_result" && e["agent"] == name && e["tool"] == tool);
    let ended: Vec<&Value> = ended.collect();
    assert_eq!(ended.len(), 1, "the result read is audited: {log:?}");
    assert_eq!(ended[0]["outcome"], "allowed", "{}", ended[0]);
    assert_eq!(ended[0]["detail"]["task"], json!(created), "{}", ended[0]);
}

/// A secret set with `gatehouse secret set` (file store) reaches server-everything's
/// environment (its get-env tool prints it) and is found nowhere else Gatehouse writes.
#[test]
fn secret_reaches_a_real_server_and_nowhere_else() {
    let nanos = std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos();
    let secret = format!("gh-interop-secret-{}-{nanos}", std::process::id());
    let env = "env = { GATEHOUSE_TEST_TOKEN = { secret = \"TEST_TOKEN\" } }\n";
    let server = stdio_server("everything", &node_package(EVERYTHING), &["stdio"], env);
    let config = format!("secret_store = \"file\"\n{server}");
    let gh = Serve::start(&config, &[("RUST_LOG", "debug")]);
    let config = gh.dir().join("config.toml");
    let config = config.to_str().expect("utf-8 path");
    let set = [
        "secret",
        "set",
        "everything",
        "TEST_TOKEN",
        "--config",
        config,
    ];
    let out = gh.cli_with_stdin(&set, &secret);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "secret set: {stderr}");

    let args = client_args(&[("get-env", json!({}))], &[]);
    let mut agent = spawn(&gh, "everything", "TS secret agent", &args);
    let request = gh.pending_request(&mut agent);
    approve(&gh, &request, &["--tools", "get-env"]);
    let all = agent.finish();
    let call = one(&all, "call");
    assert_eq!(call["ok"], true, "{call}");
    let env: Value = serde_json::from_str(&text_of(call)).expect("get-env prints JSON");
    assert_eq!(
        env["GATEHOUSE_TEST_TOKEN"],
        secret.as_str(),
        "not passed on"
    );

    let data = gh.dir().join("data");
    let store = data.join("secrets.json");
    assert_eq!(
        files_containing(&data, &secret),
        std::slice::from_ref(&store)
    );
    let mode = std::fs::metadata(&store)
        .expect("secrets.json")
        .permissions();
    assert_eq!(mode.mode() & 0o777, 0o600, "secrets.json is not private");
    let serve_log = std::fs::read_to_string(gh.dir().join("serve.log")).unwrap();
    assert!(
        !serve_log.contains(&secret),
        "the secret is in the serve log"
    );
    let audit = gh.cli_ok(&["log", "--json", "--limit", "1000"]);
    assert!(!audit.contains(&secret), "the secret is in the audit log");
    let listed = gh.cli_ok(&["secret", "list", "--config", config]);
    assert!(!listed.contains(&secret), "secret list shows the value");
}
