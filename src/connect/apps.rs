//! The AI clients `gatehouse connect` knows: where each keeps its MCP
//! servers on this OS, in which format, and what an entry that goes through
//! Gatehouse looks like for it (the gateway URL where it can sign in to an
//! HTTP server with OAuth; `gatehouse bridge` where it can only launch stdio
//! servers).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A client application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum App {
    ClaudeCode,
    ClaudeDesktop,
    Cursor,
    VsCode,
    Windsurf,
    Codex,
}

/// How a client's file keeps its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (comments and trailing commas kept) with the servers under this key.
    Json(&'static str),
    /// TOML (`[mcp_servers.<name>]`), as Codex keeps it.
    CodexToml,
}

/// Where the home and configuration directories are (taken from the
/// environment, so tests can point them at a temp dir).
#[derive(Debug, Clone)]
pub struct Dirs {
    pub home: PathBuf,
    /// `~/.config` on Linux, `~/Library/Application Support` on macOS, `%APPDATA%` on Windows.
    pub config: PathBuf,
}

impl Dirs {
    pub fn from_env() -> Option<Dirs> {
        Some(Dirs {
            home: dirs::home_dir()?,
            config: dirs::config_dir()?,
        })
    }
}

/// One server as a client configures it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "transport")]
pub enum Upstream {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
    },
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

/// What an entry of a client's file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A server Gatehouse can front.
    Server(Upstream),
    /// Already goes through Gatehouse.
    Connected,
    /// Cannot be carried over, and why (it stays as it is).
    Unsupported(String),
}

impl App {
    pub const ALL: [App; 6] = [
        App::ClaudeCode,
        App::ClaudeDesktop,
        App::Cursor,
        App::VsCode,
        App::Windsurf,
        App::Codex,
    ];

    pub fn id(self) -> &'static str {
        match self {
            App::ClaudeCode => "claude-code",
            App::ClaudeDesktop => "claude-desktop",
            App::Cursor => "cursor",
            App::VsCode => "vscode",
            App::Windsurf => "windsurf",
            App::Codex => "codex",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            App::ClaudeCode => "Claude Code",
            App::ClaudeDesktop => "Claude Desktop",
            App::Cursor => "Cursor",
            App::VsCode => "VS Code",
            App::Windsurf => "Windsurf",
            App::Codex => "Codex",
        }
    }

    pub fn parse(id: &str) -> Option<App> {
        App::ALL.into_iter().find(|a| a.id() == id)
    }

    /// Whether it signs in to HTTP servers with OAuth itself (else it gets the bridge).
    pub fn speaks_http(self) -> bool {
        matches!(self, App::ClaudeCode | App::Cursor | App::VsCode)
    }

    pub fn format(self) -> Format {
        match self {
            App::VsCode => Format::Json("servers"),
            App::Codex => Format::CodexToml,
            _ => Format::Json("mcpServers"),
        }
    }

    /// Whether it has a per-project file (`--project DIR`).
    pub fn has_project_scope(self) -> bool {
        matches!(self, App::ClaudeCode | App::Cursor | App::VsCode)
    }

    /// Its file: the user's, or the project's under `project`.
    pub fn file(self, dirs: &Dirs, project: Option<&Path>) -> Result<PathBuf, String> {
        if let Some(dir) = project {
            return match self {
                App::ClaudeCode => Ok(dir.join(".mcp.json")),
                App::Cursor => Ok(dir.join(".cursor/mcp.json")),
                App::VsCode => Ok(dir.join(".vscode/mcp.json")),
                _ => Err(format!("{} has no per-project MCP file", self.title())),
            };
        }
        Ok(match self {
            App::ClaudeCode => dirs.home.join(".claude.json"),
            App::ClaudeDesktop => dirs.config.join("Claude/claude_desktop_config.json"),
            App::Cursor => dirs.home.join(".cursor/mcp.json"),
            App::VsCode => dirs.config.join("Code/User/mcp.json"),
            App::Windsurf => dirs.home.join(".codeium/windsurf/mcp_config.json"),
            App::Codex => std::env::var_os("CODEX_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| dirs.home.join(".codex"))
                .join("config.toml"),
        })
    }

    /// Reads one entry of its file.
    pub fn read_entry(self, entry: &Value, gateway: &str) -> Entry {
        let text = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
        let map = |k: &str| -> Result<BTreeMap<String, String>, String> {
            match entry.get(k) {
                None => Ok(BTreeMap::new()),
                Some(Value::Object(o)) => o
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        other => Ok((k.clone(), other.to_string())),
                    })
                    .collect(),
                Some(_) => Err(format!("`{k}` is not a table of values")),
            }
        };
        let url = text("url").or_else(|| text("serverUrl"));
        if let Some(url) = &url {
            if url.starts_with(&format!("{gateway}/mcp/")) {
                return Entry::Connected;
            }
        }
        let uses_variables =
            entry.to_string().contains("${input:") || entry.get("envFile").is_some();
        if uses_variables {
            return Entry::Unsupported(
                "it takes values from VS Code inputs or an env file, which Gatehouse cannot read"
                    .into(),
            );
        }
        if let Some(command) = text("command") {
            let args: Vec<String> = entry
                .get("args")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if is_bridge(&command, &args) {
                return Entry::Connected;
            }
            return match map("env") {
                Ok(env) => Entry::Server(Upstream::Stdio { command, args, env }),
                Err(why) => Entry::Unsupported(why),
            };
        }
        match (url, text("type").as_deref()) {
            (Some(_), Some("sse")) => Entry::Unsupported(
                "it uses the old HTTP+SSE transport; Gatehouse fronts streamable HTTP servers"
                    .into(),
            ),
            (Some(url), _) => match map("headers") {
                Ok(headers) => Entry::Server(Upstream::Http { url, headers }),
                Err(why) => Entry::Unsupported(why),
            },
            (None, _) => Entry::Unsupported("it has neither a command nor a URL".into()),
        }
    }

    /// The entry that sends it through Gatehouse to server `name`: the
    /// gateway URL, or `bridge` (the command `bridge` runs as).
    pub fn through_gatehouse(self, name: &str, gateway: &str, bridge: &[String]) -> Value {
        let url = format!("{gateway}/mcp/{name}");
        if self.speaks_http() {
            return match self {
                App::Cursor => json!({"url": url}),
                _ => json!({"type": "http", "url": url}),
            };
        }
        let mut args: Vec<String> = bridge[1..].to_vec();
        args.extend([
            "bridge".into(),
            name.into(),
            "--name".into(),
            self.title().into(),
        ]);
        json!({"command": bridge[0], "args": args})
    }
}

/// Whether a command line is `gatehouse … bridge …`.
fn is_bridge(command: &str, args: &[String]) -> bool {
    Path::new(command)
        .file_stem()
        .is_some_and(|s| s.to_string_lossy().starts_with("gatehouse"))
        && args.iter().any(|a| a == "bridge")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: &str = "http://127.0.0.1:7390";

    #[test]
    fn entries_are_read_as_each_client_writes_them() {
        let stdio = json!({"command": "npx", "args": ["-y", "pkg"], "env": {"KEY": "v"}});
        assert_eq!(
            App::ClaudeDesktop.read_entry(&stdio, GW),
            Entry::Server(Upstream::Stdio {
                command: "npx".into(),
                args: vec!["-y".into(), "pkg".into()],
                env: BTreeMap::from([("KEY".into(), "v".into())]),
            })
        );
        let windsurf = json!({"serverUrl": "https://mcp.example/mcp", "headers": {"Authorization": "Bearer x"}});
        assert!(matches!(
            App::Windsurf.read_entry(&windsurf, GW),
            Entry::Server(Upstream::Http { .. })
        ));
        let ours = json!({"type": "http", "url": format!("{GW}/mcp/fs")});
        assert_eq!(App::VsCode.read_entry(&ours, GW), Entry::Connected);
        let bridged = json!({"command": "/usr/bin/gatehouse", "args": ["bridge", "fs"]});
        assert_eq!(
            App::ClaudeDesktop.read_entry(&bridged, GW),
            Entry::Connected
        );
        let input = json!({"type": "stdio", "command": "x", "env": {"K": "${input:key}"}});
        assert!(matches!(
            App::VsCode.read_entry(&input, GW),
            Entry::Unsupported(_)
        ));
        let sse = json!({"type": "sse", "url": "https://old.example/sse"});
        assert!(matches!(
            App::ClaudeCode.read_entry(&sse, GW),
            Entry::Unsupported(_)
        ));
    }

    #[test]
    fn stdio_only_clients_get_the_bridge() {
        let bridge = vec!["/opt/gatehouse".to_string()];
        assert_eq!(
            App::ClaudeDesktop.through_gatehouse("fs", GW, &bridge),
            json!({"command": "/opt/gatehouse", "args": ["bridge", "fs", "--name", "Claude Desktop"]})
        );
        assert_eq!(
            App::Cursor.through_gatehouse("fs", GW, &bridge),
            json!({"url": format!("{GW}/mcp/fs")})
        );
        assert_eq!(
            App::ClaudeCode.through_gatehouse("fs", GW, &bridge),
            json!({"type": "http", "url": format!("{GW}/mcp/fs")})
        );
    }
}
