//! The harness of tests/interop.rs and tests/interop_servers.rs: `gatehouse serve` in a
//! temp directory, the `gatehouse` CLI as the person, and the SDK client scripts as agents
//! whose JSON-line events are collected. Everything started here is stopped on drop, also
//! when a test fails.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const GATEHOUSE: &str = env!("CARGO_BIN_EXE_gatehouse");
/// Upper bound for any one step (a client's start-up, a consent request, an exit).
pub const STEP: Duration = Duration::from_secs(60);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

fn setup_missing(what: &str) -> ! {
    panic!("interop test setup is missing: {what}. Run `scripts/setup-interop` (needs node and python3), then run the tests again.")
}

/// A file of an installed npm package in tests/interop/node_modules (checked to exist).
#[allow(dead_code)] // not every test crate that includes the harness uses every helper
pub fn node_package(path: &str) -> PathBuf {
    let full = interop_dir().join("node_modules").join(path);
    if !full.exists() {
        setup_missing(&format!("tests/interop/node_modules/{path}"));
    }
    full
}

#[derive(Clone, Copy, Debug)]
pub enum Sdk {
    TypeScript,
    Python,
}

impl Sdk {
    /// The command that runs this client, after checking its installation.
    pub fn command(self) -> Command {
        let dir = interop_dir();
        let (program, script, probe) = match self {
            Sdk::TypeScript => {
                for path in [
                    "node_modules/@modelcontextprotocol/sdk/package.json",
                    "node_modules/@modelcontextprotocol/server-everything/dist/index.js",
                ] {
                    if !dir.join(path).exists() {
                        setup_missing(&format!("tests/interop/{path}"));
                    }
                }
                ("node".into(), "ts_client.mjs", &["--version"][..])
            }
            Sdk::Python => (
                dir.join(".venv/bin/python"),
                "py_client.py",
                &["-c", "import mcp, httpx2"][..],
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
        command.current_dir(&dir).arg(dir.join(script));
        command
    }
}

/// `gatehouse serve` fronting `everything` and `demo`; stopped with SIGTERM on drop.
pub struct Gatehouse {
    child: Child,
    pub url: String,
    dir: tempfile::TempDir,
}

impl Gatehouse {
    pub fn start() -> Gatehouse {
        let everything = interop_dir()
            .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
        if !everything.exists() {
            setup_missing("tests/interop/node_modules (server-everything)");
        }
        let config = format!(
            "[servers.everything]\ncommand = \"node\"\nargs = [{:?}, \"stdio\"]\n\n\
             [servers.demo]\ncommand = {GATEHOUSE:?}\nargs = [\"demo-server\"]\n",
            everything.display().to_string()
        );
        Gatehouse::start_with(&config, &[])
    }

    /// `gatehouse serve` with this config file (and these extra environment variables).
    pub fn start_with(config: &str, env: &[(&str, &str)]) -> Gatehouse {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        let child = Command::new(GATEHOUSE)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .args(["--port", "0"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(dir.path().join("serve.log")).expect("log file"))
            .spawn()
            .expect("start gatehouse serve");
        // From here on, a panic stops the server (Drop).
        let mut gh = Gatehouse {
            child,
            url: String::new(),
            dir,
        };
        let lines = read_lines(gh.child.stdout.take().expect("stdout"));
        let first = lines
            .recv_timeout(STEP)
            .expect("gatehouse serve printed nothing");
        gh.url = first
            .as_str()
            .and_then(|l| l.strip_prefix("Gatehouse is running at "))
            .unwrap_or_else(|| panic!("unexpected first line {first}"))
            .trim()
            .to_string();
        std::thread::spawn(move || lines.iter().for_each(drop));
        gh
    }

    pub fn mcp_url(&self, server: &str) -> String {
        format!("{}/mcp/{server}", self.url)
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(GATEHOUSE)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .output()
            .expect("run the gatehouse CLI")
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "gatehouse {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.cli_ok(&args)).expect("CLI printed JSON")
    }

    /// Waits for the agent's consent request to appear in `gatehouse pending`.
    pub fn pending_request(&self, agent: &mut Agent) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let pending = self.cli_json(&["pending"]);
            let mine: Vec<&Value> = pending
                .as_array()
                .expect("pending is an array")
                .iter()
                .filter(|p| p["client_name"] == agent.name.as_str())
                .collect();
            match mine.as_slice() {
                [one] => return (*one).clone(),
                [] => {}
                many => panic!("{} requests from one client: {many:?}", many.len()),
            }
            agent.check_alive(deadline, "its consent request to appear");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The temp directory: `config.toml`, `data/`, `serve.log` and the clients' stderr.
    #[allow(dead_code)]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the CLI with `input` on its stdin.
    #[allow(dead_code)]
    pub fn cli_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = Command::new(GATEHOUSE)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the gatehouse CLI");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write to the CLI");
        drop(stdin);
        child.wait_with_output().expect("wait for the CLI")
    }

    /// Waits for a pending item of the agent that `matches` (e.g. a held call of one tool).
    #[allow(dead_code)]
    pub fn pending_where(&self, agent: &mut Agent, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let pending = self.cli_json(&["pending"]);
            let found = pending
                .as_array()
                .expect("pending is an array")
                .iter()
                .find(|p| p["client_name"] == agent.name.as_str() && matches(p))
                .cloned();
            if let Some(found) = found {
                return found;
            }
            agent.check_alive(deadline, "a pending item");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The audit log, oldest first.
    pub fn log(&self) -> Vec<Value> {
        let log = self.cli_json(&["log", "--limit", "1000"]);
        log.as_array().expect("log is an array").clone()
    }
}

impl Drop for Gatehouse {
    fn drop(&mut self) {
        // SIGTERM lets Gatehouse stop its upstream servers; SIGKILL only as a last resort.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("serve.log"));
            eprintln!("--- gatehouse serve log ---\n{}", log.unwrap_or_default());
        }
    }
}

fn read_lines(stream: impl std::io::Read + Send + 'static) -> Receiver<Value> {
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
    pub fn spawn(
        sdk: Sdk,
        gatehouse: &Gatehouse,
        server: &str,
        name: &str,
        args: &[&str],
    ) -> Agent {
        let stderr = gatehouse.dir.path().join(format!("{name}.stderr"));
        let mut child = sdk
            .command()
            .arg(gatehouse.mcp_url(server))
            .arg(name)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| setup_missing(&format!("cannot start the {sdk:?} client: {e}")));
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
    fn check_alive(&mut self, deadline: Instant, waiting_for: &str) {
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
