//! JSON with comments and trailing commas (JSONC, as VS Code and Claude Code
//! accept it), read with the position of every value, so that a change can
//! replace exactly the text of the values it changes and leave everything
//! else (comments, spacing, fields Gatehouse does not know) byte for byte.

use serde_json::Value;

/// A parsed value and where its text is (`start..end` in bytes).
#[derive(Debug, Clone)]
pub struct Node {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Object(Vec<Member>),
    Array(Vec<Node>),
    Scalar,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub key: String,
    /// Where the key's quoted text starts (its line's indentation is the member's).
    pub key_start: usize,
    pub value: Node,
}

/// Why a file could not be read, with its line and column.
#[derive(Debug, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Node {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Member> {
        match &self.kind {
            Kind::Object(members) => members.iter().find(|m| m.key == key),
            _ => None,
        }
    }

    /// The node at a path of object keys.
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        let mut node = self;
        for key in path {
            node = &node.get(key)?.value;
        }
        Some(node)
    }
}

/// Parses `text` (JSON, comments and trailing commas allowed).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        text: text.as_bytes(),
        src: text,
        pos: 0,
    };
    p.skip()?;
    let node = p.value(0)?;
    p.skip()?;
    if p.pos != p.text.len() {
        return Err(p.error("unexpected text after the end"));
    }
    Ok(node)
}

/// The value of `node`'s text as JSON (comments and trailing commas dropped).
pub fn value(text: &str, node: &Node) -> Value {
    let src = &text[node.start..node.end];
    match &node.kind {
        Kind::Scalar => serde_json::from_str(src).unwrap_or(Value::Null),
        Kind::Array(items) => Value::Array(items.iter().map(|n| value(text, n)).collect()),
        Kind::Object(members) => Value::Object(
            members
                .iter()
                .map(|m| (m.key.clone(), value(text, &m.value)))
                .collect(),
        ),
    }
}

struct Parser<'a> {
    text: &'a [u8],
    src: &'a str,
    pos: usize,
}

const MAX_DEPTH: usize = 128;

impl Parser<'_> {
    fn error(&self, message: &str) -> SyntaxError {
        let before = &self.src[..self.pos.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        SyntaxError {
            line,
            column,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    /// Skips whitespace and comments.
    fn skip(&mut self) -> Result<(), SyntaxError> {
        loop {
            match (self.peek(), self.text.get(self.pos + 1)) {
                (Some(b' ' | b'\t' | b'\n' | b'\r'), _) => self.pos += 1,
                (Some(b'/'), Some(b'/')) => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                (Some(b'/'), Some(b'*')) => {
                    let end = self.src[self.pos + 2..]
                        .find("*/")
                        .ok_or_else(|| self.error("a /* comment is never closed"))?;
                    self.pos += end + 4;
                }
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        let start = self.pos;
        let kind = match self.peek() {
            Some(b'{') => Kind::Object(self.object(depth)?),
            Some(b'[') => Kind::Array(self.array(depth)?),
            Some(b'"') => {
                self.string()?;
                Kind::Scalar
            }
            Some(_) => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.pos += 1;
                }
                let word = &self.src[start..self.pos];
                if word.is_empty() || serde_json::from_str::<Value>(word).is_err() {
                    self.pos = start;
                    return Err(self.error("expected a value"));
                }
                Kind::Scalar
            }
            None => return Err(self.error("the file ends where a value should be")),
        };
        Ok(Node {
            start,
            end: self.pos,
            kind,
        })
    }

    /// A string; returns its decoded text.
    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => self.pos += 2,
                Some(b'\n') | None => return Err(self.error("a string is never closed")),
                Some(_) => self.pos += 1,
            }
        }
        serde_json::from_str(&self.src[start..self.pos]).map_err(|_| {
            self.pos = start;
            self.error("not a valid string")
        })
    }

    fn object(&mut self, depth: usize) -> Result<Vec<Member>, SyntaxError> {
        self.pos += 1;
        let mut members = Vec::new();
        loop {
            self.skip()?;
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(members);
                }
                Some(b'"') => {}
                _ => return Err(self.error("expected a \"key\" or }")),
            }
            let key_start = self.pos;
            let key = self.string()?;
            self.skip()?;
            if self.peek() != Some(b':') {
                return Err(self.error("expected : after a key"));
            }
            self.pos += 1;
            self.skip()?;
            let value = self.value(depth + 1)?;
            members.push(Member {
                key,
                key_start,
                value,
            });
            self.skip()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.error("expected , or }")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Vec<Node>, SyntaxError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip()?;
            if self.peek() == Some(b']') {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                _ => return Err(self.error("expected , or ]")),
            }
        }
    }
}

/// The indentation (spaces and tabs) of the line `pos` is on.
pub fn indentation_at(text: &str, pos: usize) -> &str {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let end = line
        .find(|c: char| c != ' ' && c != '\t')
        .unwrap_or(line.len());
    &line[..end]
}

/// `value` pretty-printed to stand where a member indented by `indent`
/// has its value: continuation lines are indented to match.
pub fn render(value: &Value, indent: &str) -> String {
    let pretty = serde_json::to_string_pretty(value).expect("serializable");
    let mut out = String::new();
    for (i, line) in pretty.lines().enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        out.push_str(line);
    }
    out
}

/// `text` with each `(start, end, replacement)` applied (spans must not overlap).
pub fn splice(text: &str, mut edits: Vec<(usize, usize, String)>) -> String {
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (start, end, with) in edits {
        out.replace_range(start..end, &with);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VSCODE: &str = r#"{
  // Servers for this workspace
  "inputs": [],
  "servers": {
    /* the files */
    "fs": {
      "type": "stdio",
      "command": "npx", // pinned below
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp",],
    },
  },
}
"#;

    #[test]
    fn comments_and_trailing_commas_are_read_with_positions() {
        let root = parse(VSCODE).unwrap();
        let fs = root.at(&["servers", "fs"]).unwrap();
        assert_eq!(
            value(VSCODE, fs),
            json!({"type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]})
        );
        let member = root.at(&["servers"]).unwrap().get("fs").unwrap();
        assert_eq!(indentation_at(VSCODE, member.key_start), "    ");
    }

    #[test]
    fn a_splice_changes_only_the_value() {
        let root = parse(VSCODE).unwrap();
        let fs = root.at(&["servers", "fs"]).unwrap();
        let new = render(&json!({"type": "http", "url": "http://x"}), "    ");
        let out = splice(VSCODE, vec![(fs.start, fs.end, new)]);
        assert!(out.contains("// Servers for this workspace") && out.contains("/* the files */"));
        assert!(
            out.contains(
                "\"fs\": {\n      \"type\": \"http\",\n      \"url\": \"http://x\"\n    },"
            ),
            "{out}"
        );
        let again = parse(&out).unwrap();
        assert_eq!(
            value(&out, again.at(&["servers", "fs"]).unwrap())["type"],
            "http"
        );
    }

    #[test]
    fn errors_say_where() {
        let e = parse("{\n  \"a\": 1,\n  oops\n}").unwrap_err();
        assert_eq!((e.line, e.column), (3, 3), "{e}");
        assert!(parse("{\"a\": /* open").is_err());
        assert!(parse(&"[".repeat(1000)).is_err());
        assert!(parse("{} {}").is_err());
    }
}
