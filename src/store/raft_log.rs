//! The raft log's file (`database/global/raft.db`): its schema, and the statements that
//! persist entries, the hard state, the configuration and the compaction boundary. Entries and
//! states arrive encoded (protobuf, by the raft driver): this module stores bytes by index.

use std::path::Path;

use super::db::{Database, int};
use super::migrate::Migration;
use super::{Batch, Result, Stmt, StoreError, Value};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "
CREATE TABLE log (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, entry BLOB NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
",
}];

/// One stored entry: index, term, encoded entry.
pub type Stored = (u64, u64, Vec<u8>);

/// What the `meta` table holds (each piece encoded by the driver).
#[derive(Debug, Default)]
pub struct Meta {
    pub hard_state: Option<Vec<u8>>,
    pub conf_state: Option<Vec<u8>>,
    /// (index, term) of the last entry a snapshot replaced.
    pub truncated: (u64, u64),
}

pub async fn open(path: &Path) -> Result<Database> {
    Database::open(path, MIGRATIONS).await
}

/// The metadata and every entry, in index order.
pub async fn load(db: &Database) -> Result<(Meta, Vec<Stored>)> {
    let path = db.path().display().to_string();
    let sets = db
        .query_many(&[
            Stmt::new("SELECT key, value FROM meta", vec![]),
            Stmt::new("SELECT idx, term, entry FROM log ORDER BY idx", vec![]),
        ])
        .await?;
    let [meta_rows, log_rows] = sets.as_slice() else { return Err(StoreError::Internal("unexpected answer to a read".into())) };
    let mut meta = Meta::default();
    for r in &meta_rows.rows {
        let key = r.first().map(Value::render).unwrap_or_default();
        let Some(Value::Blob(v)) = r.get(1) else { continue };
        match key.as_str() {
            "hard_state" => meta.hard_state = Some(v.clone()),
            "conf_state" => meta.conf_state = Some(v.clone()),
            "truncated" => {
                let text = String::from_utf8_lossy(v);
                let (i, t) = text.split_once(':').unwrap_or(("0", "0"));
                meta.truncated = (i.parse().unwrap_or(0), t.parse().unwrap_or(0));
            }
            _ => {}
        }
    }
    let mut entries = Vec::with_capacity(log_rows.rows.len());
    for r in &log_rows.rows {
        let idx = int(r, 0) as u64;
        let Some(Value::Blob(bytes)) = r.get(2) else {
            return Err(StoreError::Corrupt { path, reason: format!("entry {idx} has no data") });
        };
        entries.push((idx, int(r, 1) as u64, bytes.clone()));
    }
    Ok((meta, entries))
}

fn put_meta(b: &mut Batch, key: &str, value: Vec<u8>) {
    b.push("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", vec![key.into(), Value::Blob(value)]);
}

fn truncated(index: u64, term: u64) -> Vec<u8> {
    format!("{index}:{term}").into_bytes()
}

/// A new log that starts after a snapshot boundary at (`index`, `term`) with configuration
/// `conf`: the founding state of a cluster, or what an installed snapshot leaves.
pub fn reset(hard_state: Vec<u8>, conf: Vec<u8>, index: u64, term: u64) -> Batch {
    let mut b = Batch::new();
    b.push("DELETE FROM log", vec![]);
    put_meta(&mut b, "hard_state", hard_state);
    put_meta(&mut b, "conf_state", conf);
    put_meta(&mut b, "truncated", truncated(index, term));
    b
}

/// New entries (replacing any conflicting tail) and the hard state, in one transaction.
pub fn append(entries: &[Stored], hard_state: Option<Vec<u8>>) -> Batch {
    let mut b = Batch::new();
    if let Some((first, _, _)) = entries.first() {
        b.push("DELETE FROM log WHERE idx >= ?", vec![Value::Int(*first as i64)]);
    }
    for (idx, term, entry) in entries {
        b.push(
            "INSERT INTO log (idx, term, entry) VALUES (?, ?, ?)",
            vec![Value::Int(*idx as i64), Value::Int(*term as i64), Value::Blob(entry.clone())],
        );
    }
    if let Some(hs) = hard_state {
        put_meta(&mut b, "hard_state", hs);
    }
    b
}

/// Drops entries up to `index` (inclusive), which a snapshot now covers.
pub fn compact(index: u64, term: u64, conf: Vec<u8>) -> Batch {
    let mut b = Batch::new();
    b.push("DELETE FROM log WHERE idx <= ?", vec![Value::Int(index as i64)]);
    put_meta(&mut b, "truncated", truncated(index, term));
    put_meta(&mut b, "conf_state", conf);
    b
}

/// Offline recovery: replaces some entries (by index) and the configuration the log starts from.
pub fn rewrite(replaced: &[(u64, Vec<u8>)], conf: Vec<u8>) -> Batch {
    let mut b = Batch::new();
    for (idx, entry) in replaced {
        b.push("UPDATE log SET entry = ? WHERE idx = ?", vec![Value::Blob(entry.clone()), Value::Int(*idx as i64)]);
    }
    put_meta(&mut b, "conf_state", conf);
    b
}
