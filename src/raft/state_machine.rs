//! The replicated state machine: the global SQLite database (`database/global/state.db`,
//! statements in `store::raft_state`). Each committed entry's batch is applied in one
//! transaction that also records the applied index, so a restart neither repeats nor skips an
//! entry. Snapshots are `VACUUM INTO` copies of the file; installing one swaps the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use protobuf::Message as _;
use raft::prelude::ConfState;
use tokio::sync::RwLock;

use crate::store::db::Database;
use crate::store::{Batch, StoreError, raft_state};

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

fn encode(conf: &ConfState) -> Vec<u8> {
    conf.write_to_bytes().unwrap_or_default()
}

impl StateMachine {
    pub async fn open(path: &Path) -> Result<StateMachine, StoreError> {
        let db = raft_state::open(path).await?;
        Ok(StateMachine { path: path.to_path_buf(), db: Arc::new(RwLock::new(db)) })
    }

    /// The database for reads (held for the duration of a query so a snapshot install waits).
    pub fn database(&self) -> Arc<RwLock<Database>> {
        self.db.clone()
    }

    pub fn applied<'a>(&'a self) -> crate::util::BoxFuture<'a, Result<Applied, StoreError>> {
        Box::pin(async move {
            let db = self.db.read().await;
            Ok(match raft_state::applied(&db).await? {
                Some((index, term, cs)) => Applied {
                    index,
                    term,
                    conf: ConfState::parse_from_bytes(&cs).map_err(|e| StoreError::Corrupt {
                        path: self.path.display().to_string(),
                        reason: format!("applied configuration: {e}"),
                    })?,
                },
                None => Applied::default(),
            })
        })
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
            raft_state::apply(&db, index, term, batch, &encode(conf)).await
        })
    }

    /// Copies the database (applied index included) to `dest`.
    pub fn snapshot_to<'a>(&'a self, dest: &'a Path) -> crate::util::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let db = self.db.read().await;
            raft_state::snapshot_to(&db, dest).await
        })
    }

    /// Replaces the database with a received snapshot file and reopens it.
    pub fn install<'a>(&'a self, file: &'a Path) -> crate::util::BoxFuture<'a, Result<Applied, StoreError>> {
        Box::pin(async move {
            let mut db = self.db.write().await;
            db.close().await;
            for suffix in ["-wal", "-shm"] {
                // Left by the closed connections or absent: either way the new file needs none.
                let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
            }
            std::fs::rename(file, &self.path)
                .map_err(|source| StoreError::Io { path: self.path.display().to_string(), source })?;
            if let Some(d) = self.path.parent().and_then(|dir| std::fs::File::open(dir).ok())
                && let Err(e) = d.sync_all()
            {
                tracing::warn!(error = %e, "the installed snapshot's directory entry was not synced");
            }
            *db = raft_state::open(&self.path).await?;
            drop(db);
            self.applied().await
        })
    }

    /// Offline recovery: records `conf` as the applied configuration (index and term kept).
    pub fn set_applied_conf<'a>(&'a self, conf: &'a ConfState) -> crate::util::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let applied = self.applied().await?;
            let db = self.db.read().await;
            raft_state::set_applied(&db, applied.index, applied.term, &encode(conf)).await
        })
    }

    pub async fn close(&self) {
        self.db.read().await.close().await;
    }
}
