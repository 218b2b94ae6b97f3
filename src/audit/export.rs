//! The audit log as a file: JSON Lines (one event per line, as the API shows
//! it) or CSV (a header row, then one row per event, `detail` as a JSON cell;
//! cells that a spreadsheet would read as a formula are quoted). Both carry
//! each event's seals, so an exported file verifies on its own
//! (`gatehouse log verify --file`).

use serde::{Deserialize, Serialize};

use super::AuditEvent;

/// File formats for exporting the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// One JSON event per line.
    Jsonl,
    /// A header row, then one row per event; `detail` as a JSON cell.
    Csv,
}

impl ExportFormat {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

const CSV_HEADER: &str =
    "id,at,kind,outcome,client_id,agent,server,tool,grant_id,actor,duration_ms,detail,prev_seal,seal";

fn csv_cell(s: &str) -> String {
    // Quote everything that could break a row or be read as a formula.
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(['=', '+', '-', '@']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_row(e: &AuditEvent) -> String {
    let opt = |v: &Option<String>| csv_cell(v.as_deref().unwrap_or(""));
    [
        e.id.to_string(),
        e.at.to_string(),
        e.kind.as_str().to_string(),
        e.outcome.as_str().to_string(),
        opt(&e.client_id),
        opt(&e.agent),
        opt(&e.server),
        opt(&e.tool),
        opt(&e.grant_id),
        opt(&e.actor),
        e.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        csv_cell(&e.detail.to_string()),
        opt(&e.prev_seal),
        opt(&e.seal),
    ]
    .join(",")
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Read(E),
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes every event `next_page` yields, in its order. `next_page` gets the
/// id of the last event written (`None` at first) and returns the next page;
/// an empty page ends the export. Returns the number of events written.
pub fn export<E: std::error::Error + 'static>(
    format: ExportFormat,
    out: &mut impl std::io::Write,
    mut next_page: impl FnMut(Option<i64>) -> Result<Vec<AuditEvent>, E>,
) -> Result<usize, ExportError<E>> {
    if format == ExportFormat::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    let mut last = None;
    let mut written = 0;
    loop {
        let events = next_page(last).map_err(ExportError::Read)?;
        let Some(tail) = events.last() else { break };
        last = Some(tail.id);
        for e in &events {
            match format {
                ExportFormat::Jsonl => writeln!(
                    out,
                    "{}",
                    serde_json::to_string(e).map_err(std::io::Error::other)?
                )?,
                ExportFormat::Csv => writeln!(out, "{}", csv_row(e))?,
            }
        }
        written += events.len();
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{EventKind, Outcome};

    fn event(id: i64) -> AuditEvent {
        AuditEvent {
            id,
            at: id * 10,
            kind: EventKind::ToolCall,
            outcome: Outcome::Allowed,
            client_id: None,
            agent: Some("=cmd|' /C calc'!A0".into()),
            server: Some("demo".into()),
            tool: Some("read_note".into()),
            grant_id: None,
            actor: None,
            duration_ms: Some(3),
            detail: serde_json::json!({"arguments": {"title": "a, \"b\"\n=c"}}),
            prev_seal: Some("p".repeat(64)),
            seal: Some("s".repeat(64)),
        }
    }

    /// Pages of 2 from a list, newest first, below the cursor.
    fn pages(
        all: Vec<AuditEvent>,
    ) -> impl FnMut(Option<i64>) -> Result<Vec<AuditEvent>, std::io::Error> {
        move |before| {
            Ok(all
                .iter()
                .filter(|e| before.is_none_or(|b| e.id < b))
                .take(2)
                .cloned()
                .collect())
        }
    }

    #[test]
    fn jsonl_is_one_event_per_line_in_page_order() {
        let mut out = Vec::new();
        let n = export(
            ExportFormat::Jsonl,
            &mut out,
            pages((1..=5).rev().map(event).collect()),
        )
        .unwrap();
        assert_eq!(n, 5);
        let lines: Vec<AuditEvent> = std::str::from_utf8(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines.iter().map(|e| e.id).collect::<Vec<_>>(),
            [5, 4, 3, 2, 1]
        );
        assert_eq!(lines[0], event(5));
    }

    #[test]
    fn csv_cells_stay_in_their_cell_and_formulas_are_quoted() {
        let mut out = Vec::new();
        export(ExportFormat::Csv, &mut out, pages(vec![event(7)])).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(CSV_HEADER));
        assert!(text.starts_with(&format!(
            "{CSV_HEADER}\n7,70,tool_call,allowed,,\"=cmd|' /C calc'!A0\",demo,read_note,,,3,"
        )));
        // The detail cell is quoted: its commas, quotes and newline stay inside one cell.
        assert!(text.contains(r#""{""arguments"":{""title"":""a, \""b\""\n=c""}}""#));
    }
}
