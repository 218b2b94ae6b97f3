//! Changes to the config file, made the way a person would make them: the
//! rest of the file (comments, order, spacing) stays as it was (`toml_edit`),
//! the new text is checked to be a valid config before it is written, and it
//! is written whole (a temp file and a rename), so Gatehouse, which reads the
//! file while it runs, never sees half an edit.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Config, Value};

/// A server as it is written to the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// A stdio server: the command, its arguments and environment.
    pub command: Option<String>,
    pub args: Vec<Value>,
    pub env: BTreeMap<String, Value>,
    /// An HTTP server: its URL and request headers.
    pub url: Option<String>,
    pub headers: BTreeMap<String, Value>,
    pub description: Option<String>,
    pub start_at_launch: bool,
}

/// The outcome of adding a server.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    Added,
    /// The same server was already there under that name.
    AlreadyThere,
}

fn toml_value(value: &Value) -> toml_edit::Value {
    match value {
        Value::Plain(text) => text.as_str().into(),
        Value::Secret(r) => {
            let mut t = toml_edit::InlineTable::new();
            t.insert("secret", r.secret.as_str().into());
            if !r.prefix.is_empty() {
                t.insert("prefix", r.prefix.as_str().into());
            }
            toml_edit::Value::InlineTable(t)
        }
    }
}

fn table_of(entry: &Entry) -> toml_edit::Table {
    let mut table = toml_edit::Table::new();
    let map = |m: &BTreeMap<String, Value>| {
        let mut t = toml_edit::InlineTable::new();
        for (k, v) in m {
            t.insert(k, toml_value(v));
        }
        toml_edit::value(t)
    };
    if let Some(command) = &entry.command {
        table.insert("command", toml_edit::value(command.as_str()));
        let args: toml_edit::Array = entry.args.iter().map(toml_value).collect();
        table.insert("args", toml_edit::value(args));
        if !entry.env.is_empty() {
            table.insert("env", map(&entry.env));
        }
    }
    if let Some(url) = &entry.url {
        table.insert("url", toml_edit::value(url.as_str()));
        if !entry.headers.is_empty() {
            table.insert("headers", map(&entry.headers));
        }
    }
    if let Some(description) = &entry.description {
        table.insert("description", toml_edit::value(description.as_str()));
    }
    if entry.start_at_launch {
        table.insert("start", toml_edit::value("at_start"));
    }
    table
}

/// The document's `[servers]` table (made if missing).
fn servers(doc: &mut toml_edit::DocumentMut) -> Result<&mut toml_edit::Table, String> {
    doc.entry("servers")
        .or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| "`servers` in the config file is not a table".to_string())
}

/// Adds `[servers.<name>]`; an identical one already there is fine, a
/// different one is an error.
pub fn insert_server(
    doc: &mut toml_edit::DocumentMut,
    name: &str,
    entry: &Entry,
) -> Result<Added, String> {
    if !super::is_valid_name(name) {
        return Err(format!(
            "{name:?}: server names use a-z, 0-9, '-' and '_' (at most 64)"
        ));
    }
    let table = table_of(entry);
    let servers = servers(doc)?;
    if let Some(existing) = servers.get(name) {
        let same = |key: &str| {
            existing.get(key).map(|i| i.to_string().trim().to_string())
                == table.get(key).map(|i| i.to_string().trim().to_string())
        };
        if same("command") && same("args") && same("url") {
            return Ok(Added::AlreadyThere);
        }
        return Err(format!("there is already another server named {name:?}"));
    }
    servers.insert(name, toml_edit::Item::Table(table));
    Ok(Added::Added)
}

/// Removes `[servers.<name>]` (and the comments that belong to it).
pub fn remove_server(doc: &mut toml_edit::DocumentMut, name: &str) -> Result<(), String> {
    servers(doc)?
        .remove(name)
        .map(|_| ())
        .ok_or_else(|| format!("there is no server named {name:?} in the config file"))
}

/// Sets `enabled` of a server (`true` removes the key: enabled is the default).
pub fn set_enabled(
    doc: &mut toml_edit::DocumentMut,
    name: &str,
    enabled: bool,
) -> Result<(), String> {
    let table = servers(doc)?
        .get_mut(name)
        .and_then(|t| t.as_table_like_mut())
        .ok_or_else(|| format!("there is no server named {name:?} in the config file"))?;
    if enabled {
        table.remove("enabled");
    } else {
        table.insert("enabled", toml_edit::value(false));
    }
    Ok(())
}

/// Whether a command can be started: a path to a file, or a name on the PATH.
pub fn command_exists(program: &str) -> bool {
    if program.contains('/') || program.contains('\\') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

/// Adds a server to the file at `path` (checked: a command that exists, a
/// name not taken by another server, a valid config), written whole.
pub fn add_to_file(path: &Path, name: &str, entry: &Entry) -> Result<Added, String> {
    if let Some(program) = &entry.command {
        if !command_exists(program) {
            return Err(format!(
                "{}: no such command (give its full path, or install it first); nothing was written",
                crate::text::inert(program)
            ));
        }
    }
    let mut doc = read(path)?;
    let added = insert_server(&mut doc, name, entry)?;
    write(path, &doc)?;
    Ok(added)
}

/// Changes one server in the file at `path`: removes it, or switches it.
pub fn change_in_file(
    path: &Path,
    name: &str,
    change: impl FnOnce(&mut toml_edit::DocumentMut, &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut doc = read(path)?;
    change(&mut doc, name)?;
    write(path, &doc)
}

/// Reads the config file (an empty document when there is none).
pub fn read(path: &Path) -> Result<toml_edit::DocumentMut, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    text.parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", path.display()))
}

/// Checks that `doc` is a valid config, then writes it to `path` whole.
pub fn write(path: &Path, doc: &toml_edit::DocumentMut) -> Result<(), String> {
    let before = std::fs::read_to_string(path).unwrap_or_default();
    let text = keep_header(&before, doc.to_string());
    Config::parse(&text, path).map_err(|e| e.to_string())?;
    write_atomic(path, &text)
}

/// The file's opening comment (its first lines that are comments, up to a
/// blank line) stays at the top: a setting added to a file that had none
/// would otherwise land above it (toml_edit puts top-level keys before every
/// table, and the comment belongs to the first table).
fn keep_header(before: &str, after: String) -> String {
    let lines: Vec<&str> = before.split_inclusive('\n').collect();
    let n = lines.iter().take_while(|l| l.starts_with('#')).count();
    if n == 0 || lines.get(n).is_none_or(|l| !l.trim().is_empty()) {
        return after;
    }
    let header: String = lines[..=n].concat();
    match after.find(&header) {
        Some(at) if at > 0 => {
            let (keys, rest) = (&after[..at], &after[at + header.len()..]);
            let gap = if rest.is_empty() || rest.starts_with('\n') {
                ""
            } else {
                "\n"
            };
            format!("{header}{keys}{gap}{rest}")
        }
        _ => after,
    }
}

/// Writes `text` to `path` with a temp file and a rename (keeping the
/// file's permissions), so a reader never sees half of it.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.gatehouse-tmp"));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut file = std::fs::File::create(&temp).map_err(fail)?;
    if let Ok(meta) = std::fs::metadata(path) {
        file.set_permissions(meta.permissions()).map_err(fail)?;
    }
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        fail(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# my servers\nport = 7390\n\n# notes\n[servers.notes]\ncommand = \"npx\" # pinned\nargs = [\"-y\", \"notes\"]\n";

    #[test]
    fn the_opening_comment_stays_on_top_when_a_setting_is_added() {
        let before =
            "# Gatehouse: my file\n# second line\n\n# the demo\n[servers.demo]\ncommand = \"x\"\n";
        let mut doc: toml_edit::DocumentMut = before.parse().unwrap();
        doc["theme"] = toml_edit::value("dark");
        let after = keep_header(before, doc.to_string());
        assert_eq!(
            after,
            "# Gatehouse: my file\n# second line\n\ntheme = \"dark\"\n\n# the demo\n[servers.demo]\ncommand = \"x\"\n"
        );
        // A file whose top-level keys already come first is left as toml_edit writes it.
        let mut doc: toml_edit::DocumentMut = FILE.parse().unwrap();
        doc["theme"] = toml_edit::value("dark");
        assert_eq!(keep_header(FILE, doc.to_string()), doc.to_string());
    }

    #[test]
    fn edits_keep_the_rest_of_the_file() {
        let mut doc: toml_edit::DocumentMut = FILE.parse().unwrap();
        let entry = Entry {
            url: Some("https://mcp.example/mcp".into()),
            headers: BTreeMap::from([(
                "Authorization".into(),
                Value::Secret(super::super::SecretRef {
                    secret: "KEY".into(),
                    prefix: "Bearer ".into(),
                }),
            )]),
            ..Entry::default()
        };
        assert_eq!(insert_server(&mut doc, "remote", &entry), Ok(Added::Added));
        assert_eq!(
            insert_server(&mut doc, "remote", &entry),
            Ok(Added::AlreadyThere)
        );
        assert!(
            insert_server(&mut doc, "notes", &entry).is_err(),
            "another server of that name"
        );
        set_enabled(&mut doc, "notes", false).unwrap();
        let text = doc.to_string();
        assert!(text.starts_with("# my servers\nport = 7390\n\n# notes\n[servers.notes]\ncommand = \"npx\" # pinned\n"), "{text}");
        assert!(
            text.contains(
                "headers = { Authorization = { secret = \"KEY\", prefix = \"Bearer \" } }"
            ),
            "{text}"
        );
        let config = Config::parse(&text, Path::new("c.toml")).unwrap();
        assert!(config.disabled.contains_key("notes") && config.servers.contains_key("remote"));
        remove_server(&mut doc, "remote").unwrap();
        set_enabled(&mut doc, "notes", true).unwrap();
        assert_eq!(doc.to_string(), FILE);
        assert!(remove_server(&mut doc, "nope").is_err());
    }
}
