//! Tasks (MCP 2025-11-25): a request sent with `params.task` is answered at
//! once with a task id, and its result is fetched later with `tasks/result`.
//! A server may bind its tasks to the login it was reached with, and every
//! agent reaches a server with the same login (Gatehouse's own, or the
//! server's secret), so such a server would show one agent's tasks to
//! another, results included. A session therefore names, and lists, only the
//! tasks its own requests created; any other task id is unknown to it, as the
//! spec answers a task id that is not the requester's.
//!
//! Kept per session, in memory, the newest [`KEPT`]: a session's upstream
//! session (its process, or its `Mcp-Session-Id`) is where its tasks live.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::Value;

use super::jsonrpc::Message;

/// How many of its newest tasks a session may still name.
pub const KEPT: usize = 1024;
/// The longest task id kept (the server chose it): a longer one is not
/// noted, so no session can name it.
const LONGEST_ID: usize = 1024;

/// The tasks a session's own requests created, oldest first: each id, and
/// the tool whose call created it.
#[derive(Default)]
pub struct Tasks {
    created: Mutex<VecDeque<(String, String)>>,
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
        if !created.iter().any(|(known, _)| *known == id) {
            if created.len() == KEPT {
                created.pop_front();
            }
            created.push_back((id.clone(), tool.to_string()));
        }
        Some(id)
    }

    /// The tool whose call created the task, if this session created it.
    pub fn tool_of(&self, id: &str) -> Option<String> {
        let created = lock(&self.created);
        created
            .iter()
            .find(|(t, _)| t == id)
            .map(|(_, tool)| tool.clone())
    }

    fn owns(&self, id: &str) -> bool {
        self.tool_of(id).is_some()
    }

    /// Whether a request may go upstream as far as tasks go: `tasks/get`,
    /// `tasks/result` and `tasks/cancel` must name one of this session's
    /// tasks. Other methods are not about a task.
    pub fn check(&self, method: &str, params: Option<&Value>) -> Result<(), NotYours> {
        if !matches!(method, "tasks/get" | "tasks/result" | "tasks/cancel") {
            return Ok(());
        }
        match params.and_then(|p| p.get("taskId")) {
            Some(Value::String(id)) if self.owns(id) => Ok(()),
            Some(Value::String(id)) => Err(NotYours(format!(
                "no task {:?} in this session: a session may name only the tasks its own requests created",
                crate::audit::event::name(id)
            ))),
            _ => Err(NotYours(format!("{method} needs a taskId (a string)"))),
        }
    }

    /// A `tasks/list` answer with only this session's tasks. What is not a
    /// list of tasks is left as it is (an error passes through).
    pub fn filter_list(&self, answer: &mut Message) {
        let Some(Ok(mut result)) = answer.member::<Value>("result") else {
            return;
        };
        let Some(Value::Array(tasks)) = result.get_mut("tasks") else {
            return;
        };
        let created = lock(&self.created);
        tasks.retain(|t| {
            t.get("taskId")
                .and_then(Value::as_str)
                .is_some_and(|id| created.iter().any(|(c, _)| c == id))
        });
        drop(created);
        let id = answer.response_id().map(|id| id.into_owned());
        *answer = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}).into();
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
        assert!(tasks.check("tasks/cancel", None).is_err());
        assert_eq!(tasks.check("tools/call", None), Ok(()));
        // An answer that created no task (a plain result, an error) notes nothing.
        let plain: Message = json!({"jsonrpc": "2.0", "id": 2, "result": {"content": []}}).into();
        assert_eq!(tasks.note_created(&plain, "research"), None);
    }

    #[test]
    fn only_the_newest_tasks_are_kept() {
        let tasks = Tasks::default();
        for i in 0..=KEPT {
            tasks.note_created(&created(&format!("t-{i}")), "research");
        }
        assert!(!tasks.owns("t-0"));
        assert!(tasks.owns("t-1") && tasks.owns(&format!("t-{KEPT}")));
    }

    #[test]
    fn a_listing_shows_only_the_sessions_tasks() {
        let tasks = Tasks::default();
        tasks.note_created(&created("mine"), "research");
        let mut answer: Message = json!({"jsonrpc": "2.0", "id": "l", "result": {
            "tasks": [{"taskId": "theirs"}, {"taskId": "mine"}, {"no": "id"}],
            "nextCursor": "c"}})
        .into();
        tasks.filter_list(&mut answer);
        let answer = answer.into_value();
        assert_eq!(answer["id"], "l");
        assert_eq!(answer["result"]["tasks"], json!([{"taskId": "mine"}]));
        assert_eq!(answer["result"]["nextCursor"], "c");
    }
}
