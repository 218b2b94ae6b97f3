//! The official MCP SDK clients as agents (tests/interop/ts_client.mjs and
//! py_client.py): each runs against a [`Serve`], and the JSON-line events it
//! prints are collected. A client is stopped on drop, also when a test fails.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::serve::Serve;
use super::STEP;

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

fn setup_missing(what: &str) -> ! {
    panic!("interop test setup is missing: {what}. Run `scripts/setup-interop` (needs node and python3), then run the tests again.")
}

/// A file of an installed npm package in tests/interop/node_modules (checked to exist).
pub fn node_package(path: &str) -> PathBuf {
    let full = interop_dir().join("node_modules").join(path);
    if !full.exists() {
        setup_missing(&format!("tests/interop/node_modules/{path}"));
    }
    full
}

/// The official SDK clients, each pinned (tests/interop/package.json,
/// requirements.txt, requirements-py1.txt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sdk {
    /// `@modelcontextprotocol/sdk` 1.x.
    TypeScript,
    /// `@modelcontextprotocol/client` 2.x.
    TypeScript2,
    /// `mcp` 2.x.
    Python,
    /// `mcp` 1.x.
    Python1,
    /// `rmcp` (the Rust SDK) with its `auth` feature (tests/interop/rmcp_client).
    Rust,
}

impl Sdk {
    /// The client as the docs name it, with its pinned version.
    pub fn label(self) -> &'static str {
        match self {
            Sdk::TypeScript => "TypeScript SDK 1.32.2 (`@modelcontextprotocol/sdk`)",
            Sdk::TypeScript2 => "TypeScript SDK 2.4.0 (`@modelcontextprotocol/client`)",
            Sdk::Python => "Python SDK 2.3.0 (`mcp`)",
            Sdk::Python1 => "Python SDK 1.30.0 (`mcp`)",
            Sdk::Rust => "Rust SDK 3.11.0 (`rmcp`, `auth`)",
        }
    }

    /// `script` (an HTTP client, or a stdio client that launches the bridge)
    /// run on this SDK, after checking its installation.
    fn run(self, http_script: &str, bridge_script: &str, bridge: bool) -> Command {
        let dir = interop_dir();
        let (program, probe): (PathBuf, &[&str]) = match self {
            Sdk::TypeScript | Sdk::TypeScript2 => {
                for path in [
                    "node_modules/@modelcontextprotocol/sdk/package.json",
                    "node_modules/@modelcontextprotocol/client/package.json",
                    "node_modules/@modelcontextprotocol/server-everything/dist/index.js",
                ] {
                    if !dir.join(path).exists() {
                        setup_missing(&format!("tests/interop/{path}"));
                    }
                }
                ("node".into(), &["--version"][..])
            }
            Sdk::Python => (
                dir.join(".venv/bin/python"),
                &["-c", "import mcp, httpx2"][..],
            ),
            Sdk::Python1 => (
                dir.join(".venv1/bin/python"),
                &["-c", "import mcp, httpx"][..],
            ),
            Sdk::Rust => (
                dir.join("rmcp_client/target/debug/rmcp_client"),
                &["--help"][..],
            ),
        };
        let ok = Command::new(&program)
            .args(probe)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            setup_missing(&format!(
                "`{} {}` does not run",
                program.display(),
                probe.join(" ")
            ));
        }
        let mut command = Command::new(program);
        command.current_dir(&dir);
        let script = if bridge { bridge_script } else { http_script };
        if !script.is_empty() {
            command.arg(dir.join(script));
        }
        if self == Sdk::TypeScript2 {
            command.env("MCP_TS_SDK", "2");
        }
        command
    }

    /// The command that runs this SDK's HTTP client (`ts_client.mjs`, `py_client.py`).
    pub fn command(self) -> Command {
        match self {
            Sdk::TypeScript | Sdk::TypeScript2 => self.run("ts_client.mjs", "", false),
            Sdk::Python | Sdk::Python1 => self.run("py_client.py", "", false),
            Sdk::Rust => self.run("", "", false),
        }
    }

    /// The command that runs this SDK's stdio client, which launches `gatehouse bridge`.
    pub fn bridge_command(self) -> Command {
        match self {
            Sdk::TypeScript | Sdk::TypeScript2 => self.run("", "ts_bridge_client.mjs", true),
            Sdk::Python | Sdk::Python1 => self.run("", "py_bridge_client.py", true),
            Sdk::Rust => unreachable!("the rmcp test client speaks streamable HTTP only"),
        }
    }
}

/// Each line a stream prints, as JSON where it is JSON.
pub fn read_lines(stream: impl std::io::Read + Send + 'static) -> Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running client script and the JSON events it printed.
pub struct Agent {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Value>,
    pub events: Vec<Value>,
    stderr: PathBuf,
}

impl Agent {
    pub fn spawn(sdk: Sdk, gatehouse: &Serve, server: &str, name: &str, args: &[&str]) -> Agent {
        let mut command = sdk.command();
        command.arg(gatehouse.mcp_url(server)).arg(name).args(args);
        Agent::run(command, gatehouse, name)
    }

    /// An SDK client at a URL of its own (e.g. with `localhost` for the host).
    pub fn spawn_url(sdk: Sdk, gatehouse: &Serve, url: &str, name: &str, args: &[&str]) -> Agent {
        let mut command = sdk.command();
        command.arg(url).arg(name).args(args);
        Agent::run(command, gatehouse, name)
    }

    /// An SDK's stdio client (tests/interop/ts_bridge_client.mjs, py_bridge_client.py),
    /// which launches `gatehouse bridge <server>` as its MCP server.
    pub fn through_bridge(
        sdk: Sdk,
        gatehouse: &Serve,
        server: &str,
        name: &str,
        args: &[&str],
    ) -> Agent {
        let mut command = sdk.bridge_command();
        command
            .arg(super::gatehouse_bin())
            .arg(&gatehouse.data_dir)
            .arg(server)
            .arg(name)
            .args(args);
        Agent::run(command, gatehouse, &format!("{name} via bridge"))
    }

    fn run(mut command: Command, gatehouse: &Serve, name: &str) -> Agent {
        let stderr = gatehouse.dir().join(format!("{name}.stderr"));
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| setup_missing(&format!("cannot start the client {name:?}: {e}")));
        Agent {
            name: name.to_string(),
            lines: read_lines(child.stdout.take().expect("stdout")),
            stdin: child.stdin.take(),
            child,
            events: Vec::new(),
            stderr,
        }
    }

    pub fn report(&self) -> String {
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let events: Vec<String> = self.events.iter().map(Value::to_string).collect();
        format!(
            "client {:?} events:\n{}\nstderr:\n{stderr}",
            self.name,
            events.join("\n")
        )
    }

    /// Takes in what the client printed; false once it has exited and printed everything.
    pub fn pump(&mut self, wait: Duration) -> bool {
        match self.lines.recv_timeout(wait) {
            Ok(v) => {
                self.events.push(v);
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    /// Panics if the client has exited (while something else was awaited) or time is up.
    pub fn check_alive(&mut self, deadline: Instant, waiting_for: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            while self.pump(Duration::from_millis(500)) {}
            panic!(
                "client exited ({status}) while waiting for {waiting_for}\n{}",
                self.report()
            );
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {waiting_for}\n{}",
            self.report()
        );
    }

    /// Waits until the client prints this event.
    pub fn expect(&mut self, event: &str) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(e) = self.events.iter().find(|e| e["event"] == event) {
                return e.clone();
            }
            // Only a closed stdout (the client exited, all it printed taken in) ends the wait.
            let open = self.pump(Duration::from_millis(100));
            assert!(
                open && Instant::now() < deadline,
                "{} waiting for event {event:?}\n{}",
                if open { "timed out" } else { "client exited" },
                self.report()
            );
        }
    }

    pub fn resume(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").expect("write to client");
        stdin.flush().expect("flush");
    }

    /// Waits for a successful exit; returns every event.
    pub fn finish(&mut self) -> Vec<Value> {
        let deadline = Instant::now() + STEP;
        while self.pump(Duration::from_millis(100)) {
            assert!(
                Instant::now() < deadline,
                "client did not exit\n{}",
                self.report()
            );
        }
        let status = self.child.wait().expect("wait for client");
        assert!(
            status.success(),
            "client failed: {status}\n{}",
            self.report()
        );
        assert!(
            self.events.iter().all(|e| e["event"] != "error"),
            "{}",
            self.report()
        );
        self.events.clone()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

pub fn events<'a>(all: &'a [Value], name: &str) -> Vec<&'a Value> {
    all.iter().filter(|e| e["event"] == name).collect()
}

pub fn one<'a>(all: &'a [Value], name: &str) -> &'a Value {
    match events(all, name).as_slice() {
        [e] => e,
        other => panic!("expected one {name:?} event, got {other:?} in {all:?}"),
    }
}

pub fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t.as_str().or(t["name"].as_str()).expect("name").to_string())
        .collect();
    names.sort();
    names
}

pub fn text_of(call: &Value) -> String {
    call["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {call}"))
        .to_string()
}
