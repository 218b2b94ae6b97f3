//! A `tools/list` answer filtered to what the agent may see, written from
//! the upstream's text. Each tool definition is read (parsed, named, written
//! out by Gatehouse) once per session for as long as its text stays the same,
//! so a listing costs a scan of the answer and a lookup per tool: nothing
//! that passes through unchanged is parsed or serialised again. The agent
//! gets each definition as Gatehouse wrote it from what it checked, never
//! the upstream's own bytes (a member named twice cannot mean one thing to
//! Gatehouse and another to the agent).

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock};

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::jsonrpc::{self, Message};
use super::pinning::{pin_hash, pinned_fields};
use super::policy;
use super::session::SeenTool;

/// One tool definition as the upstream listed it.
pub struct Definition {
    /// The definition as the upstream wrote it.
    text: Box<str>,
    /// The same as the agent gets it: written by Gatehouse from what it read.
    listed: Box<str>,
    name: Option<Box<str>>,
    /// The same, marked as not granted yet (written when first needed).
    askable: OnceLock<Box<str>>,
    /// Its pinned fields and pin (hashed when first needed).
    pin: OnceLock<Arc<SeenTool>>,
}

impl Definition {
    fn read(text: &str) -> Definition {
        // Unreadable (a number out of range, a lone surrogate): never listed.
        let tool: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        Definition {
            text: text.into(),
            listed: tool.to_string().into(),
            name: tool.get("name").and_then(Value::as_str).map(Into::into),
            askable: OnceLock::new(),
            pin: OnceLock::new(),
        }
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The definition as a tree (read again: only a few are ever needed so).
    fn tool(&self) -> Value {
        serde_json::from_str(&self.listed).unwrap_or(Value::Null)
    }

    /// Its pinned fields and their pin.
    pub fn pin(&self) -> &Arc<SeenTool> {
        self.pin.get_or_init(|| {
            let fields = pinned_fields(&self.tool());
            let hash = pin_hash(&fields);
            Arc::new(SeenTool { fields, hash })
        })
    }

    fn askable(&self) -> &str {
        self.askable.get_or_init(|| {
            let mut tool = self.tool();
            policy::mark_askable(&mut tool);
            tool.to_string().into()
        })
    }
}

/// The most definition text a session keeps (each definition is kept twice,
/// as the upstream wrote it and as the agent gets it, and the last result's
/// text once more). A 1,000-tool server lists about 240 KiB.
const MAX_KEPT_BYTES: usize = 2 * 1024 * 1024;

/// The definitions a session's upstream listed last, in order, and the
/// result they came in (its text, and what was read from it).
#[derive(Default)]
pub struct Definitions {
    last: Mutex<Vec<Arc<Definition>>>,
    result: Mutex<Option<(Box<str>, Arc<ReadResult>)>>,
}

/// An object's members, each read as a tree.
type Members = Vec<(String, Value)>;

/// A listing's `result` as read: its members other than `tools`, and its tools.
struct ReadResult {
    members: Members,
    tools: Vec<Arc<Definition>>,
}

impl Definitions {
    /// What was read from a result of exactly this text last time.
    fn same_result(&self, text: &str) -> Option<Arc<ReadResult>> {
        let result = self.result.lock().unwrap_or_else(|p| p.into_inner());
        let (last, read) = result.as_ref()?;
        (**last == *text).then(|| read.clone())
    }

    /// Keeps what was read from a result (one too big to keep is read again).
    fn keep_result(&self, text: &str, read: &Arc<ReadResult>) {
        let kept = (text.len() <= MAX_KEPT_BYTES).then(|| (text.into(), read.clone()));
        *self.result.lock().unwrap_or_else(|p| p.into_inner()) = kept;
    }

    /// Each listed definition, read once while its text stays the same. A
    /// listing like the last one costs a comparison per tool; only the last
    /// listing's definitions are kept, so a server that keeps changing them
    /// cannot grow the session.
    fn read(&self, listed: &[&RawValue]) -> Vec<Arc<Definition>> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let unchanged = listed.len() == last.len()
            && listed
                .iter()
                .zip(last.iter())
                .all(|(raw, def)| raw.get() == &*def.text);
        if unchanged {
            return last;
        }
        let by_text: HashMap<&str, &Arc<Definition>> =
            last.iter().map(|def| (&*def.text, def)).collect();
        let read: Vec<_> = listed
            .iter()
            .map(|raw| match by_text.get(raw.get()) {
                Some(def) => Arc::clone(def),
                None => Arc::new(Definition::read(raw.get())),
            })
            .collect();
        // A listing too big to keep is read again next time.
        let size: usize = listed.iter().map(|raw| raw.get().len()).sum();
        let kept = if size <= MAX_KEPT_BYTES {
            read.clone()
        } else {
            Vec::new()
        };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = kept;
        read
    }
}

/// What the agent sees of one listed tool.
pub enum Shown {
    Hidden,
    AsListed,
    /// Shown, marked as not granted yet: calling it asks the person.
    Askable,
}

/// The answer with only the tools `shown` lets the agent see; `None` when
/// it is an error, which passes as it is. A result Gatehouse cannot read as
/// a tool list becomes an error: the agent never gets a listing unfiltered.
pub fn filter(
    answer: &Message,
    definitions: &Definitions,
    mut shown: impl FnMut(&Definition) -> Shown,
) -> Option<Message> {
    let id = answer.response_id()?.into_owned();
    let Some((outer, result)) = read(answer, definitions) else {
        let why = "the server's tool list could not be read; nothing of it was passed on";
        let unreadable = jsonrpc::error(id, jsonrpc::UPSTREAM_FAILED, why);
        return answer.has_result().then_some(Message::Parsed(unreadable));
    };
    let size: usize = result.tools.iter().map(|def| def.listed.len()).sum();
    let mut out = String::with_capacity(size + 256);
    out.push('{');
    for (name, value) in &outer {
        push_member(&mut out, name, value);
    }
    out.push_str("\"result\":{");
    for (name, value) in &result.members {
        push_member(&mut out, name, value);
    }
    out.push_str("\"tools\":[");
    let mut first = true;
    for def in &result.tools {
        if def.name.is_none() {
            continue; // not a tool Gatehouse can check
        }
        let tool = match shown(def) {
            Shown::Hidden => continue,
            Shown::AsListed => &*def.listed,
            Shown::Askable => def.askable(),
        };
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(tool);
    }
    out.push_str("]}}");
    Some(Message::response(id, out))
}

/// The answer's members other than `result`, and its result read. A result
/// the same, to the byte, as the session's last listing is not read again
/// (what was read from it is kept; only the members around it are read).
fn read(answer: &Message, definitions: &Definitions) -> Option<(Members, Arc<ReadResult>)> {
    let result_text = answer.member_text("result");
    let same = result_text.and_then(|t| definitions.same_result(t));
    if let (Some(read), Some(names)) = (same, answer.member_names()) {
        let outer = names
            .filter(|name| *name != "result")
            .map(|name| {
                let value = serde_json::from_str(answer.member_text(name)?).ok()?;
                Some((name.to_string(), value))
            })
            .collect::<Option<Vec<_>>>();
        if let Some(outer) = outer {
            return Some((outer, read));
        }
    }
    let text = answer.text();
    // A member named twice: read what a tree keeps of it instead.
    let canonical: Option<String>;
    let (listing, as_written) = match Listing::read(&text) {
        Some(listing) => (listing, true),
        None => {
            canonical = serde_json::from_str::<Value>(&text)
                .ok()
                .map(|v| v.to_string());
            (canonical.as_deref().and_then(Listing::read)?, false)
        }
    };
    let read = Arc::new(ReadResult {
        tools: definitions.read(&listing.picked.picked),
        members: listing.picked.members,
    });
    if let (Some(result_text), true) = (result_text, as_written) {
        definitions.keep_result(result_text, &read);
    }
    Some((listing.members, read))
}

fn push_member(out: &mut String, name: &str, value: &Value) {
    out.push_str(&Value::from(name).to_string());
    out.push(':');
    out.push_str(&value.to_string());
    out.push(',');
}

/// A listing read in one pass: its tools as written, everything else
/// parsed.
type Listing<'a> = Picked<ResultMember, Picked<ToolsMember, Vec<&'a RawValue>>>;

impl<'a> Listing<'a> {
    fn read(text: &'a str) -> Option<Listing<'a>> {
        serde_json::from_str(text).ok()
    }
}

/// A JSON object with its member `M::NAME` read as `T` and the others
/// parsed; a member named twice makes it unreadable.
struct Picked<M, T> {
    members: Members,
    picked: T,
    member: PhantomData<M>,
}

trait Member {
    const NAME: &'static str;
}

struct ResultMember;
impl Member for ResultMember {
    const NAME: &'static str = "result";
}

struct ToolsMember;
impl Member for ToolsMember {
    const NAME: &'static str = "tools";
}

impl<'de, M: Member, T: Deserialize<'de>> Deserialize<'de> for Picked<M, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object<M, T>(PhantomData<(M, T)>);
        impl<'de, M: Member, T: Deserialize<'de>> Visitor<'de> for Object<M, T> {
            type Value = Picked<M, T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a JSON object with {:?}", M::NAME)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Picked<M, T>, A::Error> {
                let (mut members, mut picked) = (Vec::new(), None);
                jsonrpc::read_members(map, |name, map| {
                    match name == M::NAME {
                        true => picked = Some(map.next_value()?),
                        false => members.push((name, map.next_value()?)),
                    }
                    Ok(())
                })?;
                let picked = picked.ok_or_else(|| de::Error::missing_field(M::NAME))?;
                Ok(Picked {
                    members,
                    picked,
                    member: PhantomData,
                })
            }
        }
        d.deserialize_map(Object(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> Message {
        Message::read(text.as_bytes()).unwrap()
    }

    fn by_name(def: &Definition) -> Shown {
        match def.name() {
            Some("read") => Shown::AsListed,
            Some("ask") => Shown::Askable,
            _ => Shown::Hidden,
        }
    }

    #[test]
    fn keeps_what_is_shown_and_everything_around_it() {
        let answer = read(
            r#"{"jsonrpc":"2.0","id":3,"result":{"tools":[
                {"name":"read","description":"Reads."},
                {"name":"write","description":"Writes."},
                {"name":"ask"},
                {"description":"no name"}
            ],"nextCursor":"c2","_meta":{"k":1}},"extra":true}"#,
        );
        let filtered = filter(&answer, &Definitions::default(), by_name).unwrap();
        let mut want = answer.into_value();
        want["result"]["tools"] = json!([
            {"name":"read","description":"Reads."},
            {"name":"ask","description":policy::ASKABLE_NOTE},
        ]);
        assert_eq!(filtered.response_id().unwrap().into_owned(), json!(3));
        assert_eq!(filtered.into_value(), want);
    }

    #[test]
    fn a_member_named_twice_is_read_once_as_a_tree_reads_it() {
        // A tree keeps the last `tools`, and the last `name` of a tool; the
        // agent is sent what was checked, with each member once.
        let answer = read(
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read"}],"tools":[{"name":"read","name":"write"},{"name":"read"}]}}"#,
        );
        let filtered = filter(&answer, &Definitions::default(), by_name).unwrap();
        assert!(!filtered.text().contains("write"), "{}", filtered.text());
        let want = json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read"}]}});
        assert_eq!(filtered.into_value(), want);
    }

    #[test]
    fn an_error_passes_as_it_is() {
        let text = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}"#;
        assert!(filter(&read(text), &Definitions::default(), by_name).is_none());
    }

    #[test]
    fn a_result_that_cannot_be_read_as_a_tool_list_becomes_an_error() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":{"name":"write"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":[{"name":"write"}]}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"nextCursor":"c"}}"#,
            // What the first scan lets through and a tree does not hold.
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"write"}],"nextCursor":"\ud800"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"write"}],"_meta":{"n":1e400}}}"#,
        ] {
            let filtered = filter(&read(text), &Definitions::default(), |_| Shown::AsListed);
            let filtered = filtered.expect(text).into_value();
            assert_eq!(filtered["id"], 1);
            assert_eq!(
                filtered["error"]["code"],
                jsonrpc::UPSTREAM_FAILED,
                "{text}"
            );
            assert!(!filtered.to_string().contains("write"), "{text}");
        }
    }

    #[test]
    fn a_definition_without_a_name_or_that_cannot_be_read_is_never_listed() {
        let text = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"write","n":1e400},{"name":"\ud800"},{"title":"no name"},{"name":"read"}]}}"#;
        let filtered = filter(&read(text), &Definitions::default(), |_| Shown::AsListed);
        let filtered = filtered.unwrap().into_value();
        assert_eq!(
            filtered["result"]["tools"],
            json!([{"name": "read"}]),
            "{filtered}"
        );
    }

    #[test]
    fn a_result_like_the_last_is_not_read_again_and_still_decided_anew() {
        let definitions = Definitions::default();
        let result = r#"{"tools":[{"name":"read"},{"name":"ask"}],"nextCursor":"c2"}"#;
        let answer = |id: u32, extra: &str| {
            read(&format!(
                r#"{{"jsonrpc":"2.0",{extra}"id":{id},"result":{result}}}"#
            ))
        };
        let first = filter(&answer(1, ""), &definitions, by_name).unwrap();
        let kept = definitions.same_result(result).expect("kept");
        // The same result around another id and another member: read as kept,
        // the members around it read anew.
        let again = filter(&answer(2, r#""extra":[1],"#), &definitions, by_name).unwrap();
        assert!(Arc::ptr_eq(
            &kept,
            &definitions.same_result(result).unwrap()
        ));
        let mut want = first.into_value();
        want["id"] = json!(2);
        want["extra"] = json!([1]);
        assert_eq!(again.into_value(), want);
        // What the agent may see is decided each time.
        let none = filter(&answer(3, ""), &definitions, |_| Shown::Hidden).unwrap();
        assert_eq!(none.into_value()["result"]["tools"], json!([]));
        // A member around it that cannot be read: the answer is not passed on.
        let bad = filter(&answer(4, r#""extra":"\ud800","#), &definitions, by_name).unwrap();
        assert_eq!(bad.into_value()["error"]["code"], jsonrpc::UPSTREAM_FAILED);
    }

    #[test]
    fn a_definition_is_read_once_while_its_text_stays_the_same() {
        let definitions = Definitions::default();
        let listing = |description: &str| {
            read(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[{{"name":"read","description":"{description}"}}]}}}}"#
            ))
        };
        let mut seen = Vec::new();
        for description in ["a", "a", "b"] {
            filter(&listing(description), &definitions, |def| {
                seen.push(def.pin().clone());
                Shown::AsListed
            });
        }
        assert!(Arc::ptr_eq(&seen[0], &seen[1]), "the same text, read once");
        assert!(!Arc::ptr_eq(&seen[1], &seen[2]));
        assert_ne!(seen[1].hash, seen[2].hash);
        assert_eq!(
            definitions.last.lock().unwrap().len(),
            1,
            "only the last listing is kept"
        );
        // Moved, and beside a new one: still read once.
        let both = read(
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"write"},{"name":"read","description":"b"}]}}"#,
        );
        let mut again = Vec::new();
        filter(&both, &definitions, |def| {
            again.push(def.pin().clone());
            Shown::AsListed
        });
        assert!(Arc::ptr_eq(&seen[2], &again[1]));
    }
}
