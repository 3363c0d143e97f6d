//! The replicated state machine: the global SQLite database (`database/global/state.db`).
//! Each committed entry's batch is applied in one transaction that also records the applied
//! index, so a restart neither repeats nor skips an entry. Snapshots are `VACUUM INTO` copies
//! of the file; installing one swaps the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use protobuf::Message as _;
use raft::prelude::ConfState;
use tokio::sync::RwLock;

use crate::store::db::{Database, Durability, apply_in};
use crate::store::global::MIGRATIONS;
use crate::store::{Batch, StoreError};

/// What applying one entry produced: the batch's result for the proposer.
pub type ApplyResult = Result<Vec<u64>, StoreError>;

#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub index: u64,
    pub term: u64,
    pub conf: ConfState,
}

#[derive(Clone)]
pub struct StateMachine {
    path: PathBuf,
    db: Arc<RwLock<Database>>,
}

const APPLIED_TABLE: &str = "CREATE TABLE IF NOT EXISTS raft_applied (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    idx INTEGER NOT NULL,
    term INTEGER NOT NULL,
    conf_state BLOB NOT NULL
)";

/// Whether an error is a deterministic outcome of the batch (the same on every replica) rather
/// than a fault of this machine.
fn deterministic(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::NotFound(_)
            | StoreError::Conflict(_)
            | StoreError::Guard(_)
            | StoreError::Sqlite(
                sqlx::Error::Database(_)
                    | sqlx::Error::RowNotFound
                    | sqlx::Error::ColumnDecode { .. }
                    | sqlx::Error::ColumnNotFound(_)
                    | sqlx::Error::ColumnIndexOutOfBounds { .. }
                    | sqlx::Error::TypeNotFound { .. }
            )
    )
}

impl StateMachine {
    pub async fn open(path: &Path) -> Result<StateMachine, StoreError> {
        // The log is durable; the state machine can be replayed from its applied index.
        let db = Database::open_with(path, MIGRATIONS, Durability::Replayable).await?;
        sqlx::Executor::execute(db.pool(), APPLIED_TABLE).await?;
        Ok(StateMachine { path: path.to_path_buf(), db: Arc::new(RwLock::new(db)) })
    }

    /// The database for reads (held for the duration of a query so a snapshot install waits).
    pub fn database(&self) -> Arc<RwLock<Database>> {
        self.db.clone()
    }

    pub fn applied<'a>(&'a self) -> crate::util::BoxFuture<'a, Result<Applied, StoreError>> {
        Box::pin(async move {
            let db = self.db.read().await;
            let row: Option<(i64, i64, Vec<u8>)> =
                sqlx::query_as("SELECT idx, term, conf_state FROM raft_applied WHERE id = 1").fetch_optional(db.pool()).await?;
            Ok(match row {
                Some((idx, term, cs)) => Applied {
                    index: idx as u64,
                    term: term as u64,
                    conf: ConfState::parse_from_bytes(&cs).map_err(|e| StoreError::Corrupt {
                        path: self.path.display().to_string(),
                        reason: format!("applied configuration: {e}"),
                    })?,
                },
                None => Applied::default(),
            })
        })
    }

    async fn record(conn: &mut sqlx::SqliteConnection, index: u64, term: u64, conf: &ConfState) -> Result<(), StoreError> {
        sqlx::query("INSERT OR REPLACE INTO raft_applied (id, idx, term, conf_state) VALUES (1, ?, ?, ?)")
            .bind(index as i64)
            .bind(term as i64)
            .bind(conf.write_to_bytes().unwrap_or_default())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Applies one committed entry. `batch` is None for entries with no SQL (leader no-ops,
    /// configuration changes). The outer error is a local fault (the node must stop); the inner
    /// result is the batch's deterministic outcome.
    pub fn apply<'a>(
        &'a self,
        index: u64,
        term: u64,
        batch: Option<&'a Batch>,
        conf: &'a ConfState,
    ) -> crate::util::BoxFuture<'a, Result<ApplyResult, StoreError>> {
        Box::pin(async move {
            let db = self.db.read().await;
            let mut tx = db.pool().begin().await?;
            let outcome = match batch {
                Some(b) => apply_in(&mut tx, b).await,
                None => Ok(Vec::new()),
            };
            match outcome {
                Ok(affected) => {
                    Self::record(&mut tx, index, term, conf).await?;
                    tx.commit().await?;
                    Ok(Ok(affected))
                }
                Err(e) if deterministic(&e) => {
                    tx.rollback().await?;
                    let mut tx = db.pool().begin().await?;
                    Self::record(&mut tx, index, term, conf).await?;
                    tx.commit().await?;
                    Ok(Err(e))
                }
                Err(e) => Err(e),
            }
        })
    }

    /// Copies the database (applied index included) to `dest`.
    pub fn snapshot_to<'a>(&'a self, dest: &'a Path) -> crate::util::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let _ = std::fs::remove_file(dest);
            let db = self.db.read().await;
            sqlx::query("VACUUM INTO ?").bind(dest.display().to_string()).execute(db.pool()).await?;
            Ok(())
        })
    }

    /// Replaces the database with a received snapshot file and reopens it.
    pub fn install<'a>(&'a self, file: &'a Path) -> crate::util::BoxFuture<'a, Result<Applied, StoreError>> {
        Box::pin(async move {
            let mut db = self.db.write().await;
            db.close().await;
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
            }
            std::fs::rename(file, &self.path)
                .map_err(|source| StoreError::Io { path: self.path.display().to_string(), source })?;
            if let Some(d) = self.path.parent().and_then(|dir| std::fs::File::open(dir).ok()) {
                let _ = d.sync_all();
            }
            *db = Database::open_with(&self.path, MIGRATIONS, Durability::Replayable).await?;
            sqlx::Executor::execute(db.pool(), APPLIED_TABLE).await?;
            drop(db);
            self.applied().await
        })
    }

    /// Offline recovery: records `conf` as the applied configuration (index and term kept).
    pub fn set_applied_conf<'a>(&'a self, conf: &'a ConfState) -> crate::util::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let applied = self.applied().await?;
            let db = self.db.read().await;
            let mut tx = db.pool().begin().await?;
            Self::record(&mut tx, applied.index, applied.term, conf).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn close(&self) {
        self.db.read().await.close().await;
    }
}
