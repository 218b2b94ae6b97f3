//! OS notifications for what wants the person while no Gatehouse window is in
//! front of them: a consent request or step-up, a held call, a changed tool,
//! a token used by another program. Clicking one opens the consent window
//! (or the main window). An agent that floods gets one notification per
//! [`WINDOW`], and the next one says how many were folded into it.
//!
//! Everything shown came from outside (agent, tool and server names, paths)
//! and is made inert first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gatehouse::api::{AuditEvent, EventKind, INSTRUCTIONS};
use gatehouse::text::inert;

/// At most one notification per agent in this long.
pub const WINDOW: Duration = Duration::from_secs(10);

/// What a notification says, and where a click takes the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub title: String,
    pub body: String,
    /// Open the consent window (else the main window).
    pub to_consent: bool,
}

/// Outside text made inert, and plain for notification servers that read
/// markup in the body (`&`, `<`, `>` escaped).
fn plain(text: &str) -> String {
    inert(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The notification an audit event deserves, if any.
pub fn note_for(event: &AuditEvent) -> Option<Note> {
    let agent = plain(
        event
            .agent
            .as_deref()
            .or(event.client_id.as_deref())
            .unwrap_or("An agent"),
    );
    let server = plain(event.server.as_deref().unwrap_or("a server"));
    let tool = plain(event.tool.as_deref().unwrap_or("a tool"));
    let (title, body, to_consent) = match event.kind {
        EventKind::ConsentRequested if event.detail["step_up"].is_string() => (
            format!("{agent} asks for more tools"),
            format!("on {server}. Review it in Gatehouse."),
            true,
        ),
        EventKind::ConsentRequested => (
            format!("{agent} asks for access"),
            format!("to {server}. Review it in Gatehouse."),
            true,
        ),
        EventKind::CallHeld => (
            format!("{agent} wants to run {tool}"),
            format!("on {server}. It waits for your decision."),
            true,
        ),
        EventKind::ToolChanged if event.tool.as_deref() == Some(INSTRUCTIONS) => (
            format!("{server} changed its instructions"),
            format!("{agent} keeps the instructions it had until you review the change."),
            true,
        ),
        EventKind::ToolChanged => (
            format!("{tool} changed on {server}"),
            "It is blocked until you review the change.".to_string(),
            true,
        ),
        EventKind::ProgramMismatch => {
            let by = event.detail["used_by"]
                .as_str()
                .map_or("an executable it may not read".into(), plain);
            let verb = if event.detail["refused"] == true {
                "was refused"
            } else {
                "was let through (flagged)"
            };
            (
                format!("{agent}'s access used by another program"),
                format!("{by} presented its token; it {verb}."),
                false,
            )
        }
        _ => return None,
    };
    Some(Note {
        title,
        body,
        to_consent,
    })
}

/// Folds a flood into one notification per key (an agent) per window.
#[derive(Default)]
pub struct Coalescer {
    /// Per key: when the last notification was shown, and how many were held since.
    shown: HashMap<String, (Instant, usize)>,
}

impl Coalescer {
    /// Whether to show a notification for `key` now: `Some(n)` with the
    /// number of earlier ones folded into it, or `None` to hold this one.
    pub fn offer(&mut self, key: &str, now: Instant) -> Option<usize> {
        match self.shown.get_mut(key) {
            Some((at, held)) if now.duration_since(*at) < WINDOW => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let folded = std::mem::take(held);
                *at = now;
                Some(folded)
            }
            None => {
                if self.shown.len() >= 1024 {
                    self.shown
                        .retain(|_, (at, _)| now.duration_since(*at) < WINDOW);
                }
                self.shown.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

/// Shows a notification; a click runs `on_click` (where the desktop tells).
pub fn show(note: Note, folded: usize, on_click: impl FnOnce() + Send + 'static) {
    let body = match folded {
        0 => note.body,
        1 => format!("{} (and 1 more since the last notice)", note.body),
        n => format!("{} (and {n} more since the last notice)", note.body),
    };
    std::thread::spawn(move || {
        let mut n = notify_rust::Notification::new();
        n.appname("Gatehouse").summary(&note.title).body(&body);
        #[cfg(all(unix, not(target_os = "macos")))]
        {
            n.action("default", "Review");
            match n.show() {
                Ok(handle) => handle.wait_for_action(|action| {
                    if action == "default" {
                        on_click();
                    }
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "no notification shown (no notification service?)")
                }
            }
        }
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        {
            let _ = on_click;
            if let Err(e) = n.show() {
                tracing::warn!(error = %e, "no notification shown");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse::api::Outcome;
    use serde_json::json;

    #[test]
    fn a_flood_from_one_agent_is_one_notice_per_window() {
        let mut c = Coalescer::default();
        let t0 = Instant::now();
        assert_eq!(c.offer("a", t0), Some(0));
        for i in 1..=5 {
            assert_eq!(c.offer("a", t0 + Duration::from_secs(i)), None);
        }
        // Another agent is not held back by the first one's flood.
        assert_eq!(c.offer("b", t0 + Duration::from_secs(2)), Some(0));
        // After the window, the next one says how many were folded in.
        assert_eq!(c.offer("a", t0 + WINDOW + Duration::from_secs(1)), Some(5));
        assert_eq!(c.offer("a", t0 + WINDOW + Duration::from_secs(2)), None);
        assert_eq!(c.offer("a", t0 + 3 * WINDOW), Some(1));
    }

    fn event(kind: EventKind, detail: serde_json::Value) -> AuditEvent {
        AuditEvent {
            id: 1,
            at: 0,
            kind,
            outcome: Outcome::Allowed,
            client_id: Some("gh_client_x".into()),
            agent: Some("Evil\u{1b}]52;c;AAAA\u{7}Agent".into()),
            server: Some("demo".into()),
            tool: Some("delete_note".into()),
            grant_id: None,
            actor: None,
            duration_ms: None,
            detail,
            prev_seal: None,
            seal: None,
        }
    }

    #[test]
    fn each_kind_that_wants_the_person_has_its_words_inert() {
        let asked = note_for(&event(EventKind::ConsentRequested, json!({}))).unwrap();
        assert!(asked.title.ends_with("asks for access"), "{asked:?}");
        assert!(!asked.title.contains('\u{1b}'), "inert: {asked:?}");
        let more = note_for(&event(
            EventKind::ConsentRequested,
            json!({"step_up": "gr_1"}),
        ))
        .unwrap();
        assert!(more.title.ends_with("asks for more tools"));
        let changed = note_for(&event(EventKind::ToolChanged, json!({}))).unwrap();
        assert_eq!(changed.title, "delete_note changed on demo");
        let told = AuditEvent {
            tool: Some(INSTRUCTIONS.into()),
            ..event(EventKind::ToolChanged, json!({}))
        };
        let told = note_for(&told).unwrap();
        assert_eq!(told.title, "demo changed its instructions");
        assert!(told.body.starts_with("Evil") && !told.body.contains('\u{1b}') && told.to_consent);
        let held = note_for(&event(EventKind::CallHeld, json!({}))).unwrap();
        assert!(held.title.ends_with("wants to run delete_note") && held.to_consent);
        let mismatch = note_for(&event(
            EventKind::ProgramMismatch,
            json!({"used_by": "/usr/bin/python3", "refused": true}),
        ))
        .unwrap();
        assert!(mismatch.body.contains("/usr/bin/python3") && mismatch.body.contains("refused"));
        let markup = note_for(&event(
            EventKind::ProgramMismatch,
            json!({"used_by": "/tmp/<b>x</b>&"}),
        ))
        .unwrap();
        assert!(
            markup.body.contains("/tmp/&lt;b&gt;x&lt;/b&gt;&amp;"),
            "{markup:?}"
        );
        assert!(!mismatch.to_consent);
        assert_eq!(note_for(&event(EventKind::ToolCall, json!({}))), None);
    }
}
