//! `gatehouse serve` as a real process in a temp directory (`config.toml`,
//! `data/`, `serve.log`), and the `gatehouse` CLI as the person. Stopped with
//! SIGTERM on drop (its log is printed when a test fails).

use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::sdk::{read_lines, Agent};
use super::{gatehouse_bin, Gh, STEP};

pub struct Serve {
    child: Child,
    dir: tempfile::TempDir,
    gh: Gh,
    env: Vec<(String, String)>,
}

/// Starts `gatehouse serve` (config in `dir`, log appended to `dir/serve.log`)
/// and waits for the line that says where it listens.
fn spawn(dir: &Path, data_dir: &Path, port: u16, env: &[(&str, &str)]) -> (Child, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .expect("log file");
    let mut child = Command::new(gatehouse_bin())
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(dir.join("config.toml"))
        .args(["--port", &port.to_string()])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start gatehouse serve");
    let lines = read_lines(child.stdout.take().expect("stdout"));
    let first = lines.recv_timeout(STEP);
    let url = first
        .as_ref()
        .ok()
        .and_then(|l| l.as_str())
        .and_then(|l| l.strip_prefix("Gatehouse is running at "))
        .map(|u| u.trim().to_string());
    let Some(url) = url else {
        let _ = child.kill();
        let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
        panic!("gatehouse serve did not start ({first:?}):\n{log}");
    };
    std::thread::spawn(move || lines.iter().for_each(drop));
    (child, url)
}

impl Deref for Serve {
    type Target = Gh;
    fn deref(&self) -> &Gh {
        &self.gh
    }
}

impl Serve {
    /// `gatehouse serve` with this config file (and these extra environment variables).
    pub fn start(config: &str, env: &[(&str, &str)]) -> Serve {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        let data_dir = dir.path().join("data");
        let (child, url) = spawn(dir.path(), &data_dir, 0, env);
        Serve {
            child,
            gh: Gh::new(url, data_dir),
            dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Stops it and starts it again on the same port and data directory
    /// (what a client sees when the person restarts Gatehouse).
    pub fn restart(&mut self) {
        self.stop();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (child, url) = spawn(self.dir.path(), &self.gh.data_dir, self.gh.port, &env);
        assert_eq!(url, self.gh.url);
        self.child = child;
    }

    pub fn mcp_url(&self, server: &str) -> String {
        self.resource(server)
    }

    /// The temp directory: `config.toml`, `data/`, `serve.log` and the clients' stderr.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&self.data_dir, args, "")
    }

    pub fn cli_with_stdin(&self, args: &[&str], input: &str) -> Output {
        cli(&self.data_dir, args, input)
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

    /// Waits for the agent's one consent request to appear in `gatehouse pending`.
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

    /// Waits for a pending item of the agent that `matches` (e.g. a held call of one tool).
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

    /// Kills it (SIGKILL: no chance to finish anything) and waits.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops with SIGTERM and waits (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        // SIGTERM lets Gatehouse stop its upstream servers; SIGKILL only as a last resort.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log_path());
            eprintln!("--- gatehouse serve log ---\n{}", log.unwrap_or_default());
        }
    }
}

/// Runs the CLI against a data dir with `input` on its stdin.
pub fn cli(data_dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(gatehouse_bin())
        .arg("--data-dir")
        .arg(data_dir)
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

/// The CLI's (exit code, stdout, stderr).
pub fn run(data_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = cli(data_dir, args, "");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}
