//! The member-local database (`database/local.db`): member-only configuration such as
//! `core.https_address`, and `raft_nodes`, this member's copy of the raft configuration.

use std::collections::BTreeMap;
use std::path::Path;

use super::Result;
use super::db::{Database, int, text};
use super::migrate::Migration;
use super::value::{Batch, Stmt, Value};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
CREATE TABLE config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    UNIQUE (key)
);
CREATE TABLE raft_nodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    address TEXT NOT NULL,
    role INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL DEFAULT '',
    UNIQUE (address)
);
CREATE TABLE patches (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    applied_at DATETIME NOT NULL,
    UNIQUE (name)
);
",
    },
    Migration {
        version: 2,
        sql: "
CREATE TABLE replica_positions (
    id INTEGER PRIMARY KEY NOT NULL,
    last_index INTEGER NOT NULL,
    term INTEGER NOT NULL,
    seen_at TEXT NOT NULL
);
",
    },
];

/// How far a replica's log reached when last heard of (heartbeats carry it).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaPosition {
    pub id: u64,
    pub last_index: u64,
    pub term: u64,
    pub seen_at: String,
}

/// A row of `raft_nodes`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RaftNode {
    pub id: u64,
    pub address: String,
    pub role: i64,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct LocalDb {
    db: Database,
}

impl LocalDb {
    pub async fn open(path: &Path) -> Result<LocalDb> {
        Ok(LocalDb { db: Database::open(path, MIGRATIONS).await? })
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub async fn config(&self) -> Result<BTreeMap<String, String>> {
        let rows = self.db.query(&Stmt::new("SELECT key, value FROM config ORDER BY key", vec![])).await?;
        Ok(rows.rows.iter().map(|r| (text(r, 0), text(r, 1))).collect())
    }

    /// Sets (Some) or removes (None) each key, all in one transaction.
    pub async fn update_config(&self, changes: &BTreeMap<String, Option<String>>) -> Result<()> {
        let mut b = Batch::new();
        for (k, v) in changes {
            match v {
                Some(v) => b.push(
                    "INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    vec![k.into(), v.into()],
                ),
                None => b.push("DELETE FROM config WHERE key = ?", vec![k.into()]),
            };
        }
        if !b.is_empty() {
            self.db.apply(&b).await?;
        }
        Ok(())
    }

    pub async fn raft_nodes(&self) -> Result<Vec<RaftNode>> {
        let rows = self.db.query(&Stmt::new("SELECT id, address, role, name FROM raft_nodes ORDER BY id", vec![])).await?;
        Ok(rows
            .rows
            .iter()
            .map(|r| RaftNode { id: int(r, 0) as u64, address: text(r, 1), role: int(r, 2), name: text(r, 3) })
            .collect())
    }

    pub async fn replica_positions(&self) -> Result<Vec<ReplicaPosition>> {
        let rows =
            self.db.query(&Stmt::new("SELECT id, last_index, term, seen_at FROM replica_positions ORDER BY id", vec![])).await?;
        Ok(rows
            .rows
            .iter()
            .map(|r| ReplicaPosition {
                id: int(r, 0) as u64,
                last_index: int(r, 1) as u64,
                term: int(r, 2) as u64,
                seen_at: text(r, 3),
            })
            .collect())
    }

    pub async fn record_replica_positions(&self, positions: &[ReplicaPosition]) -> Result<()> {
        let mut b = Batch::new();
        for p in positions {
            b.push(
                "INSERT OR REPLACE INTO replica_positions (id, last_index, term, seen_at) VALUES (?, ?, ?, ?)",
                vec![Value::Int(p.id as i64), Value::Int(p.last_index as i64), Value::Int(p.term as i64), (&p.seen_at).into()],
            );
        }
        if !b.is_empty() {
            self.db.apply(&b).await?;
        }
        Ok(())
    }

    pub async fn replace_raft_nodes(&self, nodes: &[RaftNode]) -> Result<()> {
        let mut b = Batch::new();
        b.push("DELETE FROM raft_nodes", vec![]);
        for n in nodes {
            b.push(
                "INSERT INTO raft_nodes (id, address, role, name) VALUES (?, ?, ?, ?)",
                vec![Value::Int(n.id as i64), (&n.address).into(), Value::Int(n.role), (&n.name).into()],
            );
        }
        self.db.apply(&b).await?;
        Ok(())
    }
}
