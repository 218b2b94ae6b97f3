//! Real third-party MCP servers behind Gatehouse: config snippets for them, the
//! TypeScript client's arguments, folder and data-directory inspection, and
//! server-everything run as a streamable-HTTP server by the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::sdk::{node_package, Agent, Sdk};
use super::serve::Serve;
use super::STEP;

pub const FILESYSTEM: &str = "@modelcontextprotocol/server-filesystem/dist/index.js";
pub const EVERYTHING: &str = "@modelcontextprotocol/server-everything/dist/index.js";

/// A `[servers.NAME]` table that runs `node SCRIPT ARGS…`, then `extra` lines.
pub fn stdio_server(name: &str, script: &Path, args: &[&str], extra: &str) -> String {
    let mut all = vec![script.display().to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    format!("[servers.{name}]\ncommand = \"node\"\nargs = {all:?}\n{extra}")
}

/// `gatehouse serve` fronting server-filesystem (as `files`) on this folder.
pub fn filesystem_gatehouse(folder: &Path) -> Serve {
    let folder = folder.to_str().expect("utf-8 path");
    Serve::start(
        &stdio_server("files", &node_package(FILESYSTEM), &[folder], ""),
        &[],
    )
}

/// The folder's entries and their contents (flat: the tests make no subfolders).
pub fn snapshot(folder: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(folder)
        .expect("read the temp folder")
        .map(|e| {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap_or_default())
        })
        .collect()
}

/// The risk class the consent request shows for this item.
pub fn risk_of<'a>(request: &'a Value, tool: &str) -> &'a str {
    request["tools"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == tool))
        .and_then(|t| t["risk"].as_str())
        .unwrap_or_else(|| panic!("{tool} not in {request}"))
}

/// The request's real tools of one risk class (not `@resources`/`@prompts`).
pub fn tools_of_risk(request: &Value, risk: &str) -> Vec<String> {
    let mut tools: Vec<String> = request["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter(|t| t["risk"] == risk && !t["name"].as_str().unwrap_or("@").starts_with('@'))
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect();
    tools.sort();
    tools
}

/// The audited `tools/call`s of one agent to one tool, oldest first.
pub fn tool_calls<'a>(log: &'a [Value], agent: &str, tool: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|e| e["kind"] == "tool_call" && e["agent"] == agent && e["tool"] == tool)
        .collect()
}

/// `--call NAME=JSON` for each call, then the other client options.
pub fn client_args(calls: &[(&str, Value)], options: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (tool, args) in calls {
        out.extend(["--call".to_string(), format!("{tool}={args}")]);
    }
    out.extend(options.iter().map(|o| o.to_string()));
    out
}

/// Starts the TypeScript SDK client as the agent `name`.
pub fn spawn(gh: &Serve, server: &str, name: &str, args: &[String]) -> Agent {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Agent::spawn(Sdk::TypeScript, gh, server, name, &args)
}

/// The person approves a pending item (with these extra CLI options).
pub fn approve(gh: &Serve, item: &Value, options: &[&str]) {
    let id = item["id"].as_str().expect("id");
    gh.cli_ok(&[&["approve", id][..], options].concat());
}

/// `gatehouse serve` fronting server-everything (`everything`) and the demo server (`demo`).
pub fn everything_and_demo() -> Serve {
    let config = format!(
        "{}\n[servers.demo]\ncommand = {:?}\nargs = [\"demo-server\"]\n",
        stdio_server("everything", &node_package(EVERYTHING), &["stdio"], ""),
        super::gatehouse_bin()
    );
    Serve::start(&config, &[])
}

/// `gatehouse serve` fronting server-everything over stdio (`extra`: more server keys).
pub fn everything_gatehouse(extra: &str, env: &[(&str, &str)]) -> Serve {
    let server = stdio_server("everything", &node_package(EVERYTHING), &["stdio"], extra);
    Serve::start(&server, env)
}

/// Every file under `dir` (recursively) whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry"))
    {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path);
            }
        }
    }
    found
}

/// server-everything started by the test as a streamable-HTTP server on a free loopback
/// port; killed on drop. Its `app.listen(PORT)` would bind every interface (and it has an
/// unauthenticated tool that prints its environment), so a preload pins it to 127.0.0.1,
/// and it gets no environment but PATH and PORT.
pub struct HttpEverything {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    dir: tempfile::TempDir,
}

/// A preload that makes a Node server listen on loopback only (server-everything binds every interface).
const LOOPBACK_ONLY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/loopback_only.cjs"
);

impl HttpEverything {
    /// Its MCP endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn start() -> HttpEverything {
        let script = node_package(EVERYTHING);
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let dir = tempfile::tempdir().expect("temp dir");
            let log = dir.path().join("server.log");
            let err = dir.path().join("server.err");
            let child = Command::new("node")
                .arg("--require")
                .arg(LOOPBACK_ONLY)
                .arg(&script)
                .arg("streamableHttp")
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("PORT", port.to_string())
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).expect("log"))
                .stderr(std::fs::File::create(&err).expect("log"))
                .spawn()
                .expect("start server-everything");
            let mut server = HttpEverything {
                child,
                port,
                log,
                dir,
            };
            let ready = format!("listening on port {port}");
            let deadline = Instant::now() + STEP;
            loop {
                let said = std::fs::read_to_string(&err).unwrap_or_default();
                if said.contains(&ready) {
                    return server;
                }
                if server.child.try_wait().ok().flatten().is_some() {
                    break; // e.g. the port was taken meanwhile: try another
                }
                assert!(Instant::now() < deadline, "server did not start: {said}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("server-everything (streamableHttp) did not start on any port");
    }
}

impl Drop for HttpEverything {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let err = std::fs::read_to_string(self.dir.path().join("server.err"));
            eprintln!(
                "--- server-everything stderr ---\n{}",
                err.unwrap_or_default()
            );
        }
    }
}
