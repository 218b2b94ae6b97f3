//! The `pauses` table: every agent, or one agent, paused by the person.

use rusqlite::{params, Connection};

use super::StoreError;
use crate::clock::UnixMs;

/// The target that pauses every agent.
pub const ALL: &str = "*";

/// One pause in force: its target (`*` or a client id), when and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseRow {
    pub target: String,
    pub paused_at: UnixMs,
    pub paused_by: String,
}

pub fn list(conn: &Connection) -> Result<Vec<PauseRow>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT target, paused_at, paused_by FROM pauses ORDER BY target")?;
    let rows = stmt.query_map([], |r| {
        Ok(PauseRow {
            target: r.get(0)?,
            paused_at: r.get(1)?,
            paused_by: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Pauses `target`; false when it already was (the first pause is kept).
pub fn pause(conn: &Connection, target: &str, now: UnixMs, by: &str) -> Result<bool, StoreError> {
    let added = conn.execute(
        "INSERT OR IGNORE INTO pauses (target, paused_at, paused_by) VALUES (?1, ?2, ?3)",
        params![target, now, by],
    )?;
    Ok(added == 1)
}

/// Resumes `target`; false when it was not paused.
pub fn resume(conn: &Connection, target: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM pauses WHERE target = ?1", params![target])? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_pause_is_kept_until_resumed() {
        let store = Store::open_in_memory().unwrap();
        store
            .write(|tx| {
                assert!(pause(tx.conn(), ALL, 5, "cli")?);
                assert!(!pause(tx.conn(), ALL, 9, "desktop")?, "already paused");
                assert!(pause(tx.conn(), "c_1", 7, "desktop")?);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let rows = store.read(list).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].target.as_str(),
                rows[0].paused_at,
                rows[0].paused_by.as_str()
            ),
            (ALL, 5, "cli")
        );
        store
            .write(|tx| {
                assert!(resume(tx.conn(), ALL)?);
                assert!(!resume(tx.conn(), ALL)?);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(store.read(list).unwrap().len(), 1);
    }
}
