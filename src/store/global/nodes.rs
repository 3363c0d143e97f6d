//! Cluster members (`nodes` table). A standalone server has exactly one placeholder row named
//! `none` at address `0.0.0.0`.

use super::GlobalDb;
use crate::store::db::{int, text};
use crate::store::{Batch, Result, Stmt, Value};

pub const STANDALONE_NAME: &str = "none";
pub const STANDALONE_ADDRESS: &str = "0.0.0.0";

#[derive(Clone, Debug)]
pub struct Node {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub address: String,
    pub schema: i64,
    pub api_extensions: i64,
    pub heartbeat: String,
    pub state: i64,
    pub arch: i64,
}

const COLUMNS: &str = "id, name, description, address, schema, api_extensions, COALESCE(heartbeat, ''), state, arch";

fn from_row(r: &[Value]) -> Node {
    Node {
        id: int(r, 0),
        name: text(r, 1),
        description: text(r, 2),
        address: text(r, 3),
        schema: int(r, 4),
        api_extensions: int(r, 5),
        heartbeat: text(r, 6),
        state: int(r, 7),
        arch: int(r, 8),
    }
}

pub async fn list(db: &GlobalDb) -> Result<Vec<Node>> {
    let rows = db.query(&Stmt::new(format!("SELECT {COLUMNS} FROM nodes ORDER BY id"), vec![])).await?;
    Ok(rows.rows.iter().map(|r| from_row(r)).collect())
}

/// Makes sure the standalone placeholder row exists and records this binary's versions on it.
/// `now` comes from the caller so the batch is deterministic.
pub fn ensure_standalone(b: &mut Batch, schema: i64, api_extensions: i64, arch: i64, now: &str) {
    b.push(
        "INSERT INTO nodes (id, name, description, address, schema, api_extensions, heartbeat, state, arch)
         SELECT 1, ?, '', ?, ?, ?, ?, 0, ? WHERE NOT EXISTS (SELECT 1 FROM nodes)",
        vec![STANDALONE_NAME.into(), STANDALONE_ADDRESS.into(), schema.into(), api_extensions.into(), now.into(), arch.into()],
    );
    b.push(
        "UPDATE nodes SET schema = ?, api_extensions = ?, heartbeat = ? WHERE address = ?",
        vec![schema.into(), api_extensions.into(), now.into(), STANDALONE_ADDRESS.into()],
    );
}
