//! Cluster-wide server configuration (`config` table): only keys set to a non-default value.

use std::collections::BTreeMap;

use super::GlobalDb;
use crate::store::db::text;
use crate::store::{Batch, Result, Stmt};

pub async fn get_all(db: &GlobalDb) -> Result<BTreeMap<String, String>> {
    let rows = db.query(&Stmt::new("SELECT key, value FROM config ORDER BY key", vec![])).await?;
    Ok(rows.rows.iter().map(|r| (text(r, 0), text(r, 1))).collect())
}

/// Adds to `b` the statements setting (Some) or removing (None) each key.
pub fn update(b: &mut Batch, changes: &BTreeMap<String, Option<String>>) {
    for (k, v) in changes {
        match v {
            Some(v) => b.push(
                "INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                vec![k.into(), v.into()],
            ),
            None => b.push("DELETE FROM config WHERE key = ?", vec![k.into()]),
        };
    }
}
