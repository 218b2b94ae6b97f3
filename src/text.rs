//! Text that came from outside (agent names, tool names and descriptions,
//! arguments, what an upstream prints) shown inert: nothing in it can drive a
//! terminal (escape sequences, carriage returns, bells), reorder what the
//! person reads (bidi overrides), or hide in plain sight (zero-width
//! characters). Such characters are shown as visible escapes, `\u{202E}`.
//! The CLI, the logs and the app all use this one rule (`ui/src/lib/inert.ts`
//! is its TypeScript twin, checked against the same cases).

/// Whether a character must not reach a terminal or a page as itself.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Bidirectional formatting: embeddings, overrides, isolates, marks.
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Zero-width and invisible characters.
            | '\u{00AD}' | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}'
            // Line and paragraph separators (a "new line" a terminal may not show as one).
            | '\u{2028}' | '\u{2029}'
            // Tags (invisible ASCII look-alikes) and private-use planes' non-characters.
            | '\u{E0000}'..='\u{E007F}')
}

/// `text` with every unsafe character shown as `\u{XXXX}` (and a backslash
/// before such an escape doubled, so the shown text is unambiguous).
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe(c) {
            out.push_str(&format!("\\u{{{:X}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// JSON text (as `serde_json` writes it) with every unsafe character written
/// as a JSON `\uXXXX` escape: still the same JSON value, and inert on a terminal.
pub fn inert_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        // serde_json escapes every control character inside a string, so a raw
        // newline or tab is the layout between values: it stays.
        if is_unsafe(c) && !matches!(c, '\n' | '\r' | '\t') {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{:04x}", unit));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Longest name an agent may give itself (characters).
pub const MAX_NAME_CHARS: usize = 64;

/// A name an agent gave itself, as Gatehouse keeps and shows it: unsafe
/// characters dropped (no hidden or reordered text), any run of whitespace
/// (an ideographic space included) one space, trimmed, at most
/// [`MAX_NAME_CHARS`]. An empty name becomes "Unnamed client".
pub fn clean_name(name: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in name.chars().filter(|c| c.is_whitespace() || !is_unsafe(*c)) {
        if c.is_whitespace() {
            space = count > 0;
            continue;
        }
        let needed = if space { 2 } else { 1 };
        if count + needed > MAX_NAME_CHARS {
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
        count += needed;
    }
    if out.is_empty() {
        "Unnamed client".to_string()
    } else {
        out
    }
}

/// What a name looks like, for finding look-alikes: letters that look like
/// Latin ones (Cyrillic, Greek, full-width, `I`/`l`/`1`, `0`/`o`, `rn`/`m`)
/// folded together, case, spaces and punctuation ignored. Two agents whose
/// names have one skeleton look the same to a person.
pub fn skeleton(name: &str) -> String {
    let folded: String = name
        .chars()
        .map(|c| match c {
            // Full-width ASCII forms.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            'I' | '|' | '1' | 'ı' | 'ӏ' | 'Ι' | 'І' | 'і' | 'ι' => 'l',
            '0' | 'О' | 'о' | 'Ο' | 'ο' | 'σ' => 'o',
            'А' | 'а' | 'Α' | 'α' => 'a',
            'В' | 'в' | 'Β' | 'β' => 'b',
            'С' | 'с' | 'ϲ' => 'c',
            'ԁ' => 'd',
            'Е' | 'е' | 'Ё' | 'ё' | 'Ε' | 'ε' => 'e',
            'ɡ' => 'g',
            'Н' | 'н' | 'Η' => 'h',
            'Ј' | 'ј' => 'j',
            'К' | 'к' | 'Κ' | 'κ' => 'k',
            'М' | 'м' | 'Μ' => 'm',
            'Ν' | 'ν' => 'v',
            'Р' | 'р' | 'Ρ' | 'ρ' => 'p',
            'ԛ' => 'q',
            'Ѕ' | 'ѕ' => 's',
            'Т' | 'т' | 'Τ' | 'τ' => 't',
            'υ' => 'u',
            'ԝ' => 'w',
            'Х' | 'х' | 'Χ' | 'χ' => 'x',
            'У' | 'у' | 'Υ' => 'y',
            other => other,
        })
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect();
    folded.replace("rn", "m").replace("vv", "w")
}

/// Whether `text` holds anything [`inert`] would change.
pub fn is_inert(text: &str) -> bool {
    !text.chars().any(is_unsafe)
}

/// `text` cut to at most `max_bytes` (at a character's edge) and marked
/// "…" when it was longer: what the log keeps of text a peer made as long
/// as it liked.
pub fn cut(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_cannot_reach_a_terminal() {
        // OSC 52 (clipboard), OSC 8 (hyperlink), CSI (colour, cursor), BEL, CR.
        let hostile = "read\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\r\u{1b}]8;;https://evil/\u{1b}\\x";
        let shown = inert(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert_eq!(
            shown,
            "read\\u{1B}]52;c;ZXZpbA==\\u{7}\\u{1B}[2J\\u{D}\\u{1B}]8;;https://evil/\\u{1B}\\x"
        );
    }

    #[test]
    fn bidi_and_invisible_characters_are_shown() {
        assert_eq!(inert("Claude\u{202E}edoC"), "Claude\\u{202E}edoC");
        assert_eq!(inert("Clau\u{200B}de"), "Clau\\u{200B}de");
        assert_eq!(
            inert("\u{FEFF}x\u{2066}y\u{2069}"),
            "\\u{FEFF}x\\u{2066}y\\u{2069}"
        );
        assert_eq!(inert("a\u{2028}b"), "a\\u{2028}b");
        assert_eq!(inert("tag\u{E0041}"), "tag\\u{E0041}");
    }

    #[test]
    fn json_stays_the_same_value() {
        let value = serde_json::json!({"name": "a\u{202E}b\u{E0041}", "n": 1});
        let text = inert_json(&serde_json::to_string(&value).unwrap());
        assert!(is_inert(&text), "{text}");
        assert!(
            text.contains("\\u202e") && text.contains("\\udb40\\udc41"),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
        let pretty = inert_json(&serde_json::to_string_pretty(&value).unwrap());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&pretty).unwrap(),
            value
        );
        let del = inert_json(&serde_json::to_string(&serde_json::json!("a\u{7f}\u{9b}b")).unwrap());
        assert_eq!(
            del, "\"a\\u007f\\u009bb\"",
            "DEL and C1 (CSI) are escaped too"
        );
    }

    #[test]
    fn names_are_cleaned_and_capped() {
        assert_eq!(
            clean_name("  Claude\u{3000}Code  "),
            "Claude Code",
            "an ideographic space trims away"
        );
        assert_eq!(clean_name("Clau\u{200B}de\u{202E} Code"), "Claude Code");
        assert_eq!(clean_name("a\n\tb"), "a b");
        assert_eq!(clean_name("\u{200B}\u{3000}"), "Unnamed client");
        let padded = format!("Claude (verified: anthropic.com){}", " ".repeat(500) + "x");
        assert_eq!(clean_name(&padded), "Claude (verified: anthropic.com) x");
        assert_eq!(clean_name(&"x".repeat(300)).chars().count(), MAX_NAME_CHARS);
        // Found by fuzzing: a space before the last character went over the cap.
        let edge = format!("{} b", "a".repeat(MAX_NAME_CHARS - 1));
        assert_eq!(clean_name(&edge), "a".repeat(MAX_NAME_CHARS - 1));
    }

    #[test]
    fn look_alikes_share_a_skeleton() {
        let claude = skeleton("Claude Code");
        for alike in [
            "claude code",
            "CIaude Code",
            "Сlaude Code",
            "Claude-Code",
            "Ｃｌａｕｄｅ Code",
            "C1aude  Code",
        ] {
            assert_eq!(skeleton(alike), claude, "{alike}");
        }
        assert_eq!(
            skeleton("Cursor"),
            skeleton("Cuкsor").replace('k', "r"),
            "k is not r"
        );
        assert_ne!(skeleton("Cursor"), claude);
        assert_eq!(skeleton("modern"), skeleton("modem"), "rn looks like m");
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for ok in [
            "Claude Code",
            "read_note",
            "Ünïcödé — ok",
            "日本語のツール",
            "emoji 🚀",
        ] {
            assert_eq!(inert(ok), ok);
            assert!(is_inert(ok));
        }
        assert_eq!(
            inert("a\tb"),
            "a\\u{9}b",
            "a tab is a control character too"
        );
    }

    #[test]
    fn cut_keeps_short_text_and_cuts_long_text_at_a_character() {
        assert_eq!(cut("read_note", 9), "read_note");
        assert_eq!(cut("read_note", 4), "read…");
        // "é" is two bytes: cut before it, not through it.
        assert_eq!(cut("aé", 2), "a…");
    }
}
