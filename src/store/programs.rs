//! The `programs` table: the program (executable, pid, command line, parent
//! chain) seen behind an agent's registration and behind a grant.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::clock::UnixMs;
use crate::peer::Program;

/// Whose program a row is.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// The agent (OAuth client): the program that registered it.
    Client(&'a str),
    /// The grant: the program that asked for it (or first redeemed its code).
    Grant(&'a str),
}

impl Owner<'_> {
    fn key(self) -> String {
        match self {
            Owner::Client(id) => format!("client:{id}"),
            Owner::Grant(id) => format!("grant:{id}"),
        }
    }
}

pub fn get(conn: &Connection, owner: Owner<'_>) -> Result<Option<Program>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT program FROM programs WHERE owner = ?1")?
        .query_row(params![owner.key()], |r| r.get(0))
        .optional()?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("program: {e}"))))
        .transpose()
}

/// Records the program unless the owner has one (the first sighting counts).
pub fn set_if_absent(
    conn: &Connection,
    owner: Owner<'_>,
    program: &Program,
    now: UnixMs,
) -> Result<bool, StoreError> {
    let json = serde_json::to_string(program).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let added = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO programs (owner, program, seen_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![owner.key(), json, now])?;
    Ok(added == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn the_first_sighting_counts() {
        let store = Store::open_in_memory().unwrap();
        let node = Program {
            pid: 42,
            exe: Some("/usr/bin/node".into()),
            cmdline: "node agent.js".into(),
            started_by: vec![],
        };
        let other = Program {
            exe: Some("/tmp/evil".into()),
            ..node.clone()
        };
        store
            .write(|tx| {
                assert!(set_if_absent(tx.conn(), Owner::Grant("gr_1"), &node, 1)?);
                assert!(!set_if_absent(tx.conn(), Owner::Grant("gr_1"), &other, 2)?);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let got = store.read(|c| get(c, Owner::Grant("gr_1"))).unwrap();
        assert_eq!(got, Some(node));
        assert_eq!(store.read(|c| get(c, Owner::Client("gr_1"))).unwrap(), None);
    }
}
