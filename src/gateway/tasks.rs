//! Tasks (MCP 2025-11-25): a `tools/call` sent with `params.task` is
//! answered at once with a task id, and its result is fetched later with
//! `tasks/result`. A server may bind its tasks to the login it was reached
//! with, and every agent reaches a server with the same login (Gatehouse's
//! own, or the server's secret), so such a server would show one agent's
//! tasks to another, results included. A session therefore names, lists and
//! hears about only the tasks its own calls created; any other task id is
//! unknown to it, as the spec answers a task id that is not the requester's.
//!
//! Kept per session, in memory, the newest [`KEPT`]: a session's upstream
//! session (its process, or its `Mcp-Session-Id`) is where its tasks live.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::jsonrpc::{self, Message};

/// How many of its newest tasks a session may still name.
pub const KEPT: usize = 1024;
/// The longest task id kept (the server chose it): a longer one is not
/// noted, so no session can name it.
const LONGEST_ID: usize = 1024;
/// The metadata a message uses to say which task it is about.
const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// The tasks a session's own calls created: each id with the tool whose
/// call created it, and the ids in the order they came (oldest first).
#[derive(Default)]
pub struct Tasks {
    created: Mutex<Created>,
}

#[derive(Default)]
struct Created {
    tool_of: HashMap<String, String>,
    order: VecDeque<String>,
}

/// What the session may not do with a task: the message of the
/// invalid-params error that answers it.
#[derive(Debug, PartialEq, Eq)]
pub struct NotYours(pub String);

impl Tasks {
    /// Notes the task an answer to a task-augmented call of `tool` created
    /// (a `CreateTaskResult`: `result.task.taskId`); its id, if it was one.
    pub fn note_created(&self, answer: &Message, tool: &str) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Created {
            task: Task,
        }
        #[derive(serde::Deserialize)]
        struct Task {
            #[serde(rename = "taskId")]
            task_id: String,
        }
        let id = answer.member::<Created>("result")?.ok()?.task.task_id;
        if id.len() > LONGEST_ID {
            tracing::warn!("a server named a task with an id of {} bytes; it cannot be reached through Gatehouse", id.len());
            return None;
        }
        let mut created = lock(&self.created);
        if !created.tool_of.contains_key(&id) {
            if created.order.len() == KEPT {
                if let Some(oldest) = created.order.pop_front() {
                    created.tool_of.remove(&oldest);
                }
            }
            created.order.push_back(id.clone());
            created.tool_of.insert(id.clone(), tool.to_string());
        }
        Some(id)
    }

    /// The tool whose call created the task, if this session created it.
    pub fn tool_of(&self, id: &str) -> Option<String> {
        lock(&self.created).tool_of.get(id).cloned()
    }

    fn owns(&self, id: &str) -> bool {
        lock(&self.created).tool_of.contains_key(id)
    }

    /// Whether a request may go upstream as far as tasks go: `tasks/get`,
    /// `tasks/result` and `tasks/cancel` must name one of this session's
    /// tasks in `taskId`, and any request naming a task in related-task
    /// metadata must name one of them there (a server should ignore it on
    /// those three, but one that read it would be pointed elsewhere). The
    /// server names each task: a call that names its own (an early draft of
    /// tasks had the requester choose) could take another session's.
    pub fn check(&self, method: &str, params: Option<&Value>) -> Result<(), NotYours> {
        let param = |name: &str| params.and_then(|p| p.get(name));
        if method == "tools/call" && param("task").is_some_and(|t| t.get("taskId").is_some()) {
            return Err(NotYours(
                "the server names each task (MCP 2025-11-25): params.task may not carry a taskId"
                    .into(),
            ));
        }
        let related = param("_meta")
            .and_then(|m| m.get(RELATED_TASK))
            .map(|r| r.get("taskId"));
        let named = match method {
            "tasks/get" | "tasks/result" | "tasks/cancel" => Some(param("taskId")),
            _ => None,
        };
        for id in named.into_iter().chain(related) {
            match id {
                Some(Value::String(id)) if self.owns(id) => {}
                Some(Value::String(id)) => {
                    return Err(NotYours(format!(
                        "no task {:?} in this session: a session may name only the tasks its own calls created",
                        crate::audit::event::name(id)
                    )))
                }
                _ => {
                    return Err(NotYours(format!(
                        "{method} names a task without a taskId (a string)"
                    )))
                }
            }
        }
        Ok(())
    }

    /// A `tasks/list` answer with only this session's tasks. An error passes
    /// through; a result that cannot be read as a list of tasks becomes an
    /// error (nothing of it is passed on, as none of it could be checked).
    pub fn filter_list(&self, answer: &mut Message) {
        if !answer.has_result() {
            return;
        }
        let id = answer.response_id().map(|id| id.into_owned());
        let mut result = answer.member::<Value>("result").and_then(Result::ok);
        let Some(tasks) = result
            .as_mut()
            .and_then(|r| r.get_mut("tasks")?.as_array_mut())
        else {
            let why = "the server's task list could not be read; nothing of it was passed on";
            *answer = jsonrpc::error(id.unwrap_or_default(), jsonrpc::UPSTREAM_FAILED, why).into();
            return;
        };
        let created = lock(&self.created);
        tasks.retain(|t| {
            t.get("taskId")
                .and_then(Value::as_str)
                .is_some_and(|id| created.tool_of.contains_key(id))
        });
        drop(created);
        *answer = json!({"jsonrpc": "2.0", "id": id, "result": result}).into();
    }

    /// Whether a server message may reach the agent: a task's status only
    /// when the task is this session's (the spec has requestors not rely on
    /// them, so one about a task not yet noted is no loss).
    pub fn shows(&self, m: &Message) -> bool {
        let Message::Parsed(v) = m else {
            return true;
        };
        if v.get("method").and_then(Value::as_str) != Some("notifications/tasks/status") {
            return true;
        }
        let id = v.get("params").and_then(|p| p.get("taskId"));
        id.and_then(Value::as_str).is_some_and(|id| self.owns(id))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn created(id: &str) -> Message {
        json!({"jsonrpc": "2.0", "id": 1, "result": {"task": {"taskId": id, "status": "working"}}})
            .into()
    }

    #[test]
    fn a_session_names_only_the_tasks_it_created() {
        let tasks = Tasks::default();
        assert_eq!(
            tasks.note_created(&created("t-1"), "research"),
            Some("t-1".into())
        );
        assert_eq!(tasks.tool_of("t-1").as_deref(), Some("research"));
        let get = |id: &str| tasks.check("tasks/get", Some(&json!({"taskId": id})));
        assert_eq!(get("t-1"), Ok(()));
        assert!(get("t-2").is_err());
        assert!(tasks.check("tasks/result", Some(&json!({}))).is_err());
        assert!(tasks
            .check("tasks/result", Some(&json!({"taskId": 7})))
            .is_err());
        assert!(tasks.check("tasks/cancel", None).is_err());
        assert_eq!(tasks.check("tools/call", None), Ok(()));
        // A call may ask for a task, not name it; nor point at another's.
        let ask = json!({"name": "research", "task": {"ttl": 60000}});
        assert_eq!(tasks.check("tools/call", Some(&ask)), Ok(()));
        let named = json!({"name": "research", "task": {"taskId": "t-2"}});
        assert!(tasks.check("tools/call", Some(&named)).is_err());
        let related = json!({"name": "research", "_meta": {RELATED_TASK: {"taskId": "t-2"}}});
        assert!(tasks.check("tools/call", Some(&related)).is_err());
        let own = json!({"name": "research", "_meta": {RELATED_TASK: {"taskId": "t-1"}}});
        assert_eq!(tasks.check("tools/call", Some(&own)), Ok(()));
        // Its own task id, with another's in the related-task metadata.
        let pointed = json!({"taskId": "t-1", "_meta": {RELATED_TASK: {"taskId": "t-2"}}});
        assert!(tasks.check("tasks/result", Some(&pointed)).is_err());
        let same = json!({"taskId": "t-1", "_meta": {RELATED_TASK: {"taskId": "t-1"}}});
        assert_eq!(tasks.check("tasks/result", Some(&same)), Ok(()));
        // An answer that created no task (a plain result, an error, a task
        // id that is not a string or is too long) notes nothing.
        let plain: Message = json!({"jsonrpc": "2.0", "id": 2, "result": {"content": []}}).into();
        assert_eq!(tasks.note_created(&plain, "research"), None);
        let number: Message =
            json!({"jsonrpc": "2.0", "id": 3, "result": {"task": {"taskId": 9}}}).into();
        assert_eq!(tasks.note_created(&number, "research"), None);
        let long = "x".repeat(LONGEST_ID + 1);
        assert_eq!(tasks.note_created(&created(&long), "research"), None);
        assert!(!tasks.owns(&long));
    }

    #[test]
    fn only_the_newest_tasks_are_kept() {
        let tasks = Tasks::default();
        for i in 0..=KEPT {
            tasks.note_created(&created(&format!("t-{i}")), "research");
        }
        assert!(!tasks.owns("t-0"));
        assert!(tasks.owns("t-1") && tasks.owns(&format!("t-{KEPT}")));
        assert_eq!(lock(&tasks.created).order.len(), KEPT);
    }

    /// A listing as the server wrote it (read from its text, as the gateway reads it).
    fn listing(text: &str) -> Message {
        Message::read(text.as_bytes()).expect("a message")
    }

    #[test]
    fn a_listing_shows_only_the_sessions_tasks() {
        let tasks = Tasks::default();
        tasks.note_created(&created("mine"), "research");
        let mut answer = listing(
            r#"{"jsonrpc":"2.0","id":"l","result":{"tasks":[{"taskId":"theirs"},{"taskId":"mine"},{"no":"id"}],"nextCursor":"c"}}"#,
        );
        tasks.filter_list(&mut answer);
        let answer = answer.into_value();
        assert_eq!(answer["id"], "l");
        assert_eq!(answer["result"]["tasks"], json!([{"taskId": "mine"}]));
        assert_eq!(answer["result"]["nextCursor"], "c");
    }

    #[test]
    fn a_listing_that_cannot_be_checked_is_not_passed_on() {
        let tasks = Tasks::default();
        tasks.note_created(&created("mine"), "research");
        let unreadable = [
            // A lone surrogate (a status message cut inside an emoji): its
            // text reads, a tree cannot hold it.
            r#"{"jsonrpc":"2.0","id":1,"result":{"tasks":[{"taskId":"theirs","statusMessage":"\ud83d"},{"taskId":"mine"}]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tasks":{"taskId":"theirs"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        ];
        for text in unreadable {
            let mut answer = listing(text);
            tasks.filter_list(&mut answer);
            let answer = answer.into_value();
            assert_eq!(answer["error"]["code"], jsonrpc::UPSTREAM_FAILED, "{text}");
            assert_eq!(answer["id"], 1);
            assert!(!answer.to_string().contains("theirs"), "{answer}");
        }
        // An error answer passes through as it is.
        let mut error =
            listing(r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"no"}}"#);
        tasks.filter_list(&mut error);
        assert_eq!(error.into_value()["error"]["code"], -32601);
    }

    #[test]
    fn only_the_sessions_task_statuses_reach_it() {
        let tasks = Tasks::default();
        tasks.note_created(&created("mine"), "research");
        let status = |id: &str| -> Message {
            json!({"jsonrpc": "2.0", "method": "notifications/tasks/status",
                "params": {"taskId": id, "status": "working"}})
            .into()
        };
        assert!(tasks.shows(&status("mine")));
        assert!(!tasks.shows(&status("theirs")));
        let progress: Message =
            json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}).into();
        assert!(tasks.shows(&progress));
    }
}
