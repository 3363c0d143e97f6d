//! Cluster-wide server configuration (`config` table): only keys set to a non-default value.

use std::collections::BTreeMap;

use super::GlobalDb;
use crate::store::db::{text, version_of};
use crate::store::{Batch, Result, Stmt, Version};

fn all() -> Stmt {
    Stmt::new("SELECT key, value FROM config ORDER BY key", vec![])
}

pub async fn get_all(db: &GlobalDb) -> Result<BTreeMap<String, String>> {
    let rows = db.query(&all()).await?;
    Ok(rows.rows.iter().map(|r| (text(r, 0), text(r, 1))).collect())
}

/// The configuration and the version a guarded write of it needs.
pub async fn get_versioned(db: &GlobalDb) -> Result<(BTreeMap<String, String>, Version)> {
    let [rows] = db.query_many([all()]).await?;
    let config = rows.rows.iter().map(|r| (text(r, 0), text(r, 1))).collect();
    Ok((config, version_of(vec![all()], &[rows])))
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
