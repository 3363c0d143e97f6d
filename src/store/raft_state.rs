//! The replicated state machine's file (`database/global/state.db`): the global schema plus the
//! record of the last applied raft entry, written in the same transaction as the entry's batch
//! so that a restart neither repeats nor skips one; and its snapshots (`VACUUM INTO`).

use std::path::Path;

use super::db::{Database, Durability, apply_steps};
use super::direct;
use super::global::MIGRATIONS;
use super::{Batch, Result, Stmt, StoreError, Value};

const APPLIED_TABLE: &str = "CREATE TABLE IF NOT EXISTS raft_applied (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    idx INTEGER NOT NULL,
    term INTEGER NOT NULL,
    conf_state BLOB NOT NULL
)";

/// The last applied entry: index, term, and the configuration then (encoded by the driver).
pub type Applied = (u64, u64, Vec<u8>);

/// What applying one entry's batch produced for its proposer: the rows each statement changed,
/// or the batch's deterministic failure (the same on every replica).
pub type Outcome = Result<Vec<u64>>;

/// Opens the state machine. The log is durable, so the state machine is replayed from its
/// applied index after a crash: its commits skip the fsync but never corrupt the file.
pub async fn open(path: &Path) -> Result<Database> {
    let db = Database::open_with(path, MIGRATIONS, Durability::Replayable).await?;
    sqlx::Executor::execute(db.pool(), APPLIED_TABLE).await?;
    Ok(db)
}

pub async fn applied(db: &Database) -> Result<Option<Applied>> {
    let row: Option<(i64, i64, Vec<u8>)> =
        sqlx::query_as("SELECT idx, term, conf_state FROM raft_applied WHERE id = 1").fetch_optional(db.pool()).await?;
    Ok(row.map(|(i, t, c)| (i as u64, t as u64, c)))
}

fn record(c: &rusqlite::Connection, index: u64, term: u64, conf: &[u8]) -> Result<()> {
    let stmt = Stmt::new(
        "INSERT OR REPLACE INTO raft_applied (id, idx, term, conf_state) VALUES (1, ?, ?, ?)",
        vec![Value::Int(index as i64), Value::Int(term as i64), Value::Blob(conf.to_vec())],
    );
    direct::execute(c, &stmt)?;
    Ok(())
}

/// Whether an error is a deterministic outcome of the batch (the same on every replica) rather
/// than a fault of this machine. The batch runs on the handle directly, so what sqlx reports
/// (starting, committing, reaching the worker) is always this machine's.
fn deterministic(e: &StoreError) -> bool {
    match e {
        StoreError::NotFound(_) | StoreError::Conflict(_) | StoreError::PreconditionFailed(_) | StoreError::Internal(_) => true,
        StoreError::Statement(e) => direct::is_deterministic(e),
        _ => false,
    }
}

/// Applies one committed entry (`batch` None for entries with no SQL) and records it as
/// applied. The outer error is a local fault (the replica must stop); the inner result is the
/// batch's deterministic outcome, which is recorded as applied too.
pub async fn apply(db: &Database, index: u64, term: u64, batch: Option<&Batch>, conf: &[u8]) -> Result<Outcome> {
    let mut tx = db.begin_write().await?;
    // The batch and the record of it in one turn on the handle: one hop to sqlx's worker.
    let outcome = direct::with_handle(&mut tx, |c| {
        let outcome = match batch {
            Some(b) => apply_steps(c, b),
            None => Ok(Vec::new()),
        };
        if outcome.is_ok() {
            record(c, index, term, conf)?;
        }
        Ok(outcome)
    })
    .await?;
    match outcome {
        Ok(affected) => {
            tx.commit().await?;
            Ok(Ok(affected))
        }
        Err(e) if deterministic(&e) => {
            tx.rollback().await?;
            let mut tx = db.begin_write().await?;
            direct::with_handle(&mut tx, |c| record(c, index, term, conf)).await?;
            tx.commit().await?;
            Ok(Err(e))
        }
        Err(e) => Err(e),
    }
}

/// Offline recovery: records `conf` as the applied configuration (index and term kept).
pub async fn set_applied(db: &Database, index: u64, term: u64, conf: &[u8]) -> Result<()> {
    let mut tx = db.begin_write().await?;
    direct::with_handle(&mut tx, |c| record(c, index, term, conf)).await?;
    tx.commit().await?;
    Ok(())
}

/// Copies the database (applied index included) to `dest` as one consistent file.
pub async fn snapshot_to(db: &Database, dest: &Path) -> Result<()> {
    match std::fs::remove_file(dest) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(StoreError::Io { path: dest.display().to_string(), source: e });
        }
        _ => {}
    }
    sqlx::query("VACUUM INTO ?").bind(dest.display().to_string()).execute(db.pool()).await?;
    Ok(())
}
