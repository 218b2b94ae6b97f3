//! `gatehouse connect` / `disconnect` on sample configs of every client (as
//! each client's documentation writes them, comments included), in a temp
//! home directory: the dry run changes nothing, `--apply` rewrites only the
//! server entries (and moves the secrets into the keychain), `disconnect`
//! restores the file byte for byte; bad input is refused before any write.

use std::path::{Path, PathBuf};
use std::process::Command;

use gatehouse::connect::{self, App, Dirs, Options};
use serde_json::Value;

use crate::support::gatehouse_bin;

/// A temp home with one client's file in place.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn config_dir(&self) -> PathBuf {
        self.home().join(".config")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn gatehouse_toml(&self) -> PathBuf {
        self.config_dir().join("gatehouse/gatehouse.toml")
    }

    /// Puts a fixture (tests/fixtures/clients/<name>) at `path` under home.
    fn place(&self, fixture: &str, path: &str) -> PathBuf {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/clients")
            .join(fixture);
        let to = self.home().join(path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap();
        to
    }

    /// The CLI with this home: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(gatehouse_bin())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.config_dir())
            .env_remove("CODEX_HOME")
            .env_remove("GATEHOUSE_CONFIG")
            // No keychain answers: the tests never touch the person's own.
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "gatehouse {args:?}: {out}{err}");
        out
    }

    fn options(&self, app: App) -> Options {
        Options {
            app,
            project: None,
            dirs: Dirs {
                home: self.home(),
                config: self.config_dir(),
            },
            gatehouse_config: self.gatehouse_toml(),
            data_dir: self.data_dir(),
            gateway: "http://127.0.0.1:7390".into(),
            gatehouse_command: vec!["gatehouse".into()],
            move_secrets: false,
        }
    }
}

/// The entries of a JSON(C) client file after connect, by name.
fn entries(text: &str, key: &str) -> serde_json::Map<String, Value> {
    let root = connect::jsonc::parse(text).unwrap();
    connect::jsonc::value(text, root.at(&[key]).unwrap())
        .as_object()
        .unwrap()
        .clone()
}

/// What each connected entry must look like for this client.
fn through_gatehouse(entry: &Value, name: &str, bridged: bool) {
    if bridged {
        let args: Vec<&str> = entry["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            entry["command"].as_str().unwrap().ends_with("gatehouse"),
            "{entry}"
        );
        let at = args.iter().position(|a| *a == "bridge").expect("bridge");
        assert_eq!(args[at + 1], name, "{entry}");
    } else {
        let url = entry["url"].as_str().unwrap();
        assert!(url.ends_with(&format!("/mcp/{name}")), "{entry}");
        assert!(url.starts_with("http://127.0.0.1:"), "{entry}");
    }
}

/// A whole round trip for one client file: dry run, apply (secrets moved),
/// check, disconnect, byte for byte.
fn round_trip(
    client: &str,
    fixture: &str,
    path: &str,
    connected: &[&str],
    kept: &[&str],
    secrets: &[&str],
) {
    let home = Home::new();
    let file = home.place(fixture, path);
    let original = std::fs::read(&file).unwrap();

    let dry = home.ok(&["connect", client]);
    assert!(dry.contains("dry run"), "{dry}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        original,
        "a dry run changes nothing"
    );
    assert!(!home.gatehouse_toml().exists());

    let applied = home.ok(&["connect", client, "--apply", "--move-secrets"]);
    let text = std::fs::read_to_string(&file).unwrap();
    let app = App::parse(client).unwrap();
    let bridged = !app.speaks_http();
    if client == "codex" {
        let doc: toml::Table = toml::from_str(&text).unwrap();
        for name in connected {
            let entry = serde_json::to_value(&doc["mcp_servers"][*name]).unwrap();
            through_gatehouse(&entry, name, true);
        }
        assert!(
            text.contains("# Kept as is by Gatehouse") && text.contains("[profiles.fast]"),
            "{text}"
        );
    } else {
        let key = if client == "vscode" {
            "servers"
        } else {
            "mcpServers"
        };
        if client == "vscode" {
            assert!(
                text.contains("\t// 💡 Inputs are prompted")
                    && text.contains("\t\t// https://github.com/ppl-ai"),
                "comments kept: {text}"
            );
        }
        let all = entries(&text, key);
        for name in connected {
            through_gatehouse(&all[*name], &gatehouse_name(name), bridged);
        }
        for name in kept {
            assert_eq!(
                all[*name],
                entries(std::str::from_utf8(&original).unwrap(), key)[*name],
                "{name} is left as it was"
            );
        }
    }
    // Gatehouse fronts them now, without the secrets in its config.
    let config_text = std::fs::read_to_string(home.gatehouse_toml()).unwrap();
    let config = gatehouse::Config::load(&home.gatehouse_toml())
        .unwrap_or_else(|e| panic!("{e}\n{config_text}"));
    for name in connected {
        assert!(
            config.servers.contains_key(&gatehouse_name(name)),
            "{name}: {config_text}"
        );
    }
    for secret in secrets {
        assert!(
            !config_text.contains(secret),
            "{secret} left in plain text:\n{config_text}"
        );
        assert!(!text.contains(secret), "{secret} left in the client's file");
        let kept = std::fs::read_to_string(home.data_dir().join("secrets.json")).unwrap();
        assert!(
            kept.contains(secret),
            "{secret} is in the keychain (the file fallback here)"
        );
    }
    assert!(applied.contains("now reaches"), "{applied}");

    let undone = home.ok(&["disconnect", client]);
    assert!(undone.contains("byte for byte"), "{undone}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        original,
        "restored byte for byte"
    );
}

fn gatehouse_name(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[test]
fn connect_claude_code() {
    let key = "patABCDEFGH12345678.0123456789abcdef";
    round_trip(
        "claude-code",
        "claude-code.json",
        ".claude.json",
        &["sentry", "airtable"],
        &[],
        &[key],
    );
}

#[test]
fn connect_claude_desktop_through_the_bridge() {
    round_trip(
        "claude-desktop",
        "claude-desktop.json",
        ".config/Claude/claude_desktop_config.json",
        &["filesystem"],
        &[],
        &[],
    );
}

#[test]
fn connect_cursor() {
    round_trip(
        "cursor",
        "cursor.json",
        ".cursor/mcp.json",
        &["server-name", "remote-server"],
        &[],
        &["value-of-the-key-1234", "value-of-the-key-5678"],
    );
}

#[test]
fn connect_vscode_keeps_comments_and_inputs() {
    round_trip(
        "vscode",
        "vscode.json",
        ".config/Code/User/mcp.json",
        &["fetch", "github"],
        &["Perplexity"],
        &[],
    );
}

#[test]
fn connect_windsurf_through_the_bridge() {
    round_trip(
        "windsurf",
        "windsurf.json",
        ".codeium/windsurf/mcp_config.json",
        &["github", "figma"],
        &[],
        &["github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"],
    );
}

#[test]
fn connect_codex_toml() {
    round_trip(
        "codex",
        "codex.toml",
        ".codex/config.toml",
        &["docs"],
        &[],
        &["sk-proj-0123456789abcdefXYZ"],
    );
}

#[test]
fn connect_a_project_file() {
    let home = Home::new();
    let project = home.dir.path().join("app");
    std::fs::create_dir_all(&project).unwrap();
    let file = project.join(".mcp.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/clients/claude-code-project.json"),
        &file,
    )
    .unwrap();
    let original = std::fs::read(&file).unwrap();
    let project_arg = project.to_str().unwrap();
    home.ok(&[
        "connect",
        "claude-code",
        "--project",
        project_arg,
        "--apply",
    ]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("{\n  // Shared with the team"), "{text}");
    through_gatehouse(
        &entries(&text, "mcpServers")["shared-server"],
        "shared-server",
        false,
    );
    home.ok(&["disconnect", "claude-code", "--project", project_arg]);
    assert_eq!(std::fs::read(&file).unwrap(), original);
}

#[test]
fn connect_list_shows_what_each_client_has() {
    let home = Home::new();
    home.place("vscode.json", ".config/Code/User/mcp.json");
    home.place("windsurf.json", ".codeium/windsurf/mcp_config.json");
    let list = home.ok(&["connect", "--list"]);
    for client in [
        "claude-code",
        "claude-desktop",
        "cursor",
        "vscode",
        "windsurf",
        "codex",
    ] {
        assert!(list.contains(client), "{list}");
    }
    assert!(list.contains("Perplexity: cannot be connected"), "{list}");
    assert!(list.contains("fetch: direct"), "{list}");
    assert!(list.contains("not found"), "{list}");
    home.ok(&["connect", "windsurf", "--apply"]);
    let list = home.ok(&["connect", "--list"]);
    assert!(list.contains("github: through Gatehouse"), "{list}");
}

/// Secrets move to the store Gatehouse's config names: with
/// `secret_store = "keychain"` and no keychain, a move is refused before
/// anything is written (not put in the file the person chose against); a
/// connect that moves no secret does not need the store.
#[test]
fn moved_secrets_go_where_the_config_says() {
    let home = Home::new();
    let file = home.place("codex.toml", ".codex/config.toml");
    let config = "secret_store = \"keychain\"\n";
    std::fs::create_dir_all(home.gatehouse_toml().parent().unwrap()).unwrap();
    std::fs::write(home.gatehouse_toml(), config).unwrap();
    refused(
        &home,
        &file,
        &["connect", "codex", "--apply", "--move-secrets"],
        "no OS keychain answers",
    );
    assert_eq!(
        std::fs::read_to_string(home.gatehouse_toml()).unwrap(),
        config
    );
    assert!(!home.data_dir().join("secrets.json").exists());
    let copied = home.ok(&["connect", "codex", "--apply"]);
    assert!(copied.contains("now reaches"), "{copied}");
}

/// The command must fail, say `says`, and leave the file as it was.
fn refused(home: &Home, file: &Path, args: &[&str], says: &str) {
    let before = std::fs::read(file).unwrap();
    let (code, out, err) = home.run(args);
    assert_ne!(code, 0, "{args:?}: {out}");
    assert!(err.contains(says), "{args:?}: {err}");
    assert_eq!(std::fs::read(file).unwrap(), before, "nothing written");
}

#[test]
fn a_file_that_is_not_json_is_refused_with_its_line() {
    let home = Home::new();
    let file = home.place("cursor.json", ".cursor/mcp.json");
    std::fs::write(
        &file,
        "{\n  \"mcpServers\": {\n    \"x\": {\"command\": \"a\",,}\n  }\n}\n",
    )
    .unwrap();
    refused(&home, &file, &["connect", "cursor", "--apply"], "line 3");
}

#[test]
fn a_read_only_file_is_refused_before_any_write() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let file = home.place("cursor.json", ".cursor/mcp.json");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    refused(&home, &file, &["connect", "cursor", "--apply"], "read-only");
    assert!(
        !home.gatehouse_toml().exists(),
        "Gatehouse's config untouched too"
    );
    assert!(!home.data_dir().join("connections/cursor.json").exists());
}

#[test]
fn a_client_already_connected_is_refused() {
    let home = Home::new();
    let file = home.place("cursor.json", ".cursor/mcp.json");
    home.ok(&["connect", "cursor", "--apply"]);
    refused(
        &home,
        &file,
        &["connect", "cursor", "--apply"],
        "already connected",
    );
    let backup = std::fs::read(home.data_dir().join("connections/cursor.backup")).unwrap();
    assert_eq!(
        backup,
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clients/cursor.json")
        )
        .unwrap(),
        "the backup intact"
    );
}

#[test]
fn a_server_name_gatehouse_already_uses_for_another_server() {
    let home = Home::new();
    let file = home.place(
        "claude-desktop.json",
        ".config/Claude/claude_desktop_config.json",
    );
    std::fs::create_dir_all(home.gatehouse_toml().parent().unwrap()).unwrap();
    std::fs::write(
        home.gatehouse_toml(),
        "# mine\n[servers.filesystem]\ncommand = \"other\"\n",
    )
    .unwrap();
    refused(
        &home,
        &file,
        &["connect", "claude-desktop", "--apply"],
        "already fronts another server named \"filesystem\"",
    );
    assert_eq!(
        std::fs::read_to_string(home.gatehouse_toml()).unwrap(),
        "# mine\n[servers.filesystem]\ncommand = \"other\"\n"
    );
}

#[test]
fn a_file_changed_between_the_plan_and_the_write() {
    let home = Home::new();
    let file = home.place("cursor.json", ".cursor/mcp.json");
    let opts = home.options(App::Cursor);
    let plan = connect::plan(&opts).unwrap();
    std::fs::write(&file, "{\"mcpServers\": {}}\n").unwrap();
    let credentials = || Ok(gatehouse::api::CredentialStore::file(&home.data_dir()));
    std::fs::create_dir_all(home.data_dir()).unwrap();
    let config = connect::LocalFile(&opts.gatehouse_config);
    let err = connect::apply(&plan, &opts, &credentials, &config).unwrap_err();
    assert!(err.contains("changed since it was read"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"mcpServers\": {}}\n"
    );
    assert!(!home.gatehouse_toml().exists());
}

/// Gatehouse's config as the app changes it while `connect` runs: after
/// connect's write, the app adds a setting, and the client's file changes
/// too, so connect undoes its change.
struct EditedMeanwhile<'a> {
    config: &'a Path,
    client_file: &'a Path,
}

impl connect::ConfigFile for EditedMeanwhile<'_> {
    fn replace(&self, was: Option<&str>, text: Option<&str>) -> Result<(), String> {
        connect::LocalFile(self.config).replace(was, text)?;
        let mut edited = std::fs::read_to_string(self.config).unwrap();
        edited.insert_str(0, "consent_timeout = \"90s\"\n");
        std::fs::write(self.config, edited).unwrap();
        std::fs::write(self.client_file, "{\"mcpServers\": {}}\n").unwrap();
        Ok(())
    }
}

/// Undoing a connect whose client file could not be written never erases
/// an edit made to Gatehouse's config in between: the undo is refused and
/// says that the servers stay.
#[test]
fn undoing_a_connect_keeps_an_edit_made_meanwhile() {
    let home = Home::new();
    let file = home.place("cursor.json", ".cursor/mcp.json");
    let opts = home.options(App::Cursor);
    let plan = connect::plan(&opts).unwrap();
    let credentials = || Ok(gatehouse::api::CredentialStore::file(&home.data_dir()));
    std::fs::create_dir_all(home.data_dir()).unwrap();
    let config = EditedMeanwhile {
        config: &opts.gatehouse_config,
        client_file: &file,
    };
    let err = connect::apply(&plan, &opts, &credentials, &config).unwrap_err();
    assert!(err.contains("changed since it was read"), "{err}");
    assert!(err.contains("keeps the servers added"), "{err}");
    let text = std::fs::read_to_string(home.gatehouse_toml()).unwrap();
    assert!(text.starts_with("consent_timeout = \"90s\""), "{text}");
}

/// With Gatehouse running on the config `connect` changes, the change goes
/// through it: in force when `connect` returns, recorded as the CLI's (not
/// found later by the sweep that looks for hand edits).
#[test]
fn connect_changes_the_config_through_the_running_gatehouse() {
    let gh = crate::support::serve::Serve::start(&crate::support::config_text(""), &[]);
    let home = Home::new();
    home.place("cursor.json", ".cursor/mcp.json");
    let config = gh.config_path();
    let out = Command::new(gatehouse_bin())
        .arg("--data-dir")
        .arg(&gh.data_dir)
        .args(["connect", "cursor", "--apply", "--config"])
        .arg(&config)
        .env("HOME", home.home())
        .env("XDG_CONFIG_HOME", home.config_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Gatehouse serves them now"), "{stdout}");
    let actors: Vec<String> = gh
        .db()
        .prepare("SELECT actor FROM audit_events WHERE kind = 'config_changed'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(actors.len(), 1, "{actors:?}");
    assert!(actors[0].contains("cli"), "{actors:?}");
    let servers = gh.cli_json(&["servers", "list"]).to_string();
    assert!(servers.contains("server-name"), "{servers}");
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("[servers.demo]"));
}

#[test]
fn disconnect_after_the_file_changed_says_so() {
    let home = Home::new();
    let file = home.place("cursor.json", ".cursor/mcp.json");
    let original = std::fs::read(&file).unwrap();
    home.ok(&["connect", "cursor", "--apply"]);
    let mut text = std::fs::read_to_string(&file).unwrap();
    text = text.replacen(
        "\"mcpServers\"",
        "\"theme\": \"dark\",\n  \"mcpServers\"",
        1,
    );
    std::fs::write(&file, &text).unwrap();
    refused(
        &home,
        &file,
        &["disconnect", "cursor"],
        "changed since `gatehouse connect` wrote it",
    );
    let (_, _, err) = home.run(&["disconnect", "cursor"]);
    assert!(
        err.contains("+  \"theme\": \"dark\","),
        "the change is shown: {err}"
    );
    home.ok(&["disconnect", "cursor", "--force"]);
    assert_eq!(std::fs::read(&file).unwrap(), original);
}
