//! Another OS user on the same machine: it cannot read Gatehouse's files, so
//! it tries to make Gatehouse use files it planted (a database with a token
//! it minted, a secrets file, a link to somewhere else), or to answer the
//! CLI in the daemon's place. Gatehouse refuses, with one message that says
//! what is wrong, and changes nothing it did not create. (Planting files as
//! another user needs root, as CI runs; elsewhere those cases say so and pass.)

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::serve::run;
use crate::support::*;

/// The uid of `nobody`: another user.
const OTHER: u32 = 65534;

fn root() -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    eprintln!("not root: cannot act as another user here; skipped");
    false
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

/// Starting Gatehouse on `dir` must fail with a message that contains `says`.
async fn refused(dir: &Path, says: &str) {
    let config = gatehouse::Config::parse(&config_text(""), Path::new("t.toml")).unwrap();
    let err = match gatehouse::daemon::start(config, dir).await {
        Ok(running) => {
            running.shutdown().await;
            panic!("Gatehouse started on {}", dir.display());
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(says), "{err}");
}

/// A private data directory to plant things in.
fn data_dir(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    let dir = tmp.path().join("data");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn data_dir_is_a_link_to_another_users_directory() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let theirs = tmp.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    chown(&theirs, OTHER);
    let link = tmp.path().join("data");
    symlink(&theirs, &link).unwrap();
    refused(&link, "another user").await;
    assert!(
        fs::read_dir(&theirs).unwrap().next().is_none(),
        "nothing written there"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn data_dir_owned_by_another_user() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    chown(&dir, OTHER);
    refused(&dir, "another user").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn data_dir_writable_by_everyone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    refused(&dir, "writable by other users").await;
    assert_eq!(mode(&dir), 0o777, "not chmod'ed behind the person's back");
    assert!(!dir.join("gatehouse.db").exists());
}

/// A file another user planted in the data directory.
async fn planted(name: &str) {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let file = dir.join(name);
    fs::write(&file, b"planted").unwrap();
    chown(&file, OTHER);
    refused(&dir, "another user").await;
    assert_eq!(fs::read(&file).unwrap(), b"planted", "left as it was");
}

#[tokio::test(flavor = "multi_thread")]
async fn database_planted_by_another_user() {
    planted("gatehouse.db").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn write_ahead_log_planted_by_another_user() {
    planted("gatehouse.db-wal").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_file_planted_by_another_user() {
    planted("secrets.json").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn database_writable_by_the_group() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let db = dir.join("gatehouse.db");
    fs::write(&db, b"").unwrap();
    fs::set_permissions(&db, fs::Permissions::from_mode(0o664)).unwrap();
    refused(&dir, "writable by other users").await;
    assert_eq!(mode(&db), 0o664);
}

#[tokio::test(flavor = "multi_thread")]
async fn database_is_a_link() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    let elsewhere = tmp.path().join("elsewhere.db");
    fs::write(&elsewhere, b"").unwrap();
    symlink(&elsewhere, dir.join("gatehouse.db")).unwrap();
    refused(&dir, "symlink").await;
    assert_eq!(fs::read(&elsewhere).unwrap(), b"", "never followed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_gatehouse_makes_its_files_private() {
    let fx = Fixture::start("").await;
    assert_eq!(mode(&fx.data_dir), 0o700);
    for name in [
        "gatehouse.db",
        "gatehouse.db-wal",
        "gatehouse.db-shm",
        "control.sock",
    ] {
        let path = fx.data_dir.join(name);
        assert_eq!(mode(&path) & 0o077, 0, "{name} is {:o}", mode(&path));
    }
    fx.stop().await;
}

/// A fake daemon on the control socket: `python3` binds it as this user,
/// then `setup` runs (e.g. it becomes another user), then it answers every
/// request with `answer` until killed.
fn fake_daemon(dir: &Path, setup: &str, answer: &str) -> Child {
    let script = format!(
        r#"
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
{setup}
s.listen(4)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    f = c.makefile("rwb")
    for line in f:
        f.write(b'{answer}\n'); f.flush()
"#
    );
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.join("control.sock"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    child
}

/// The CLI asked to revoke everything by a fake daemon must not believe it.
fn cli_refuses_fake(dir: &Path, setup: &str) {
    let mut fake = fake_daemon(dir, setup, r#"{"ok":{"grants_revoked":2}}"#);
    let (code, out, err) = run(dir, &["revoke", "--all"]);
    fake.kill().unwrap();
    fake.wait().unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("Revoked"), "{out}");
    assert!(err.contains("not") && err.contains("refusing"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fake_daemon_run_by_another_user() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    cli_refuses_fake(&dir, &format!("os.setgid({OTHER}); os.setuid({OTHER})"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fake_daemon_socket_owned_by_another_user() {
    if !root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(&tmp);
    cli_refuses_fake(&dir, &format!("os.lchown(path, {OTHER}, {OTHER})"));
}

#[tokio::test(flavor = "multi_thread")]
async fn control_socket_is_a_link_to_another_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let mut fake = fake_daemon(&elsewhere, "", r#"{"ok":{"grants_revoked":2}}"#);
    let dir = data_dir(&tmp);
    symlink(elsewhere.join("control.sock"), dir.join("control.sock")).unwrap();
    let (code, out, err) = run(&dir, &["revoke", "--all"]);
    fake.kill().unwrap();
    fake.wait().unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("refusing"), "{err}");
}
