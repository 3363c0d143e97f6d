//! One SQLite file behind a small connection pool: opening (with integrity checks and
//! migrations), running a [`Batch`] in one transaction, and reading rows as [`Value`]s (both
//! through [`direct`], a whole batch or set of reads in one turn on a connection's handle).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::direct;
use super::migrate::{self, Migration};
use super::value::{Batch, GuardExpect, Step, Stmt, Value, Version};
use super::{Result, StoreError};

/// Rows of a query: column names and values in order.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// How hard commits hold against a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is on disk when it returns (fsync).
    Full,
    /// Commits are atomic and the file stays sound, but the newest ones may be lost on a crash.
    Replayable,
}

#[derive(Clone, Debug)]
pub struct Database {
    pool: SqlitePool,
    path: PathBuf,
}

/// Copies the SQLite file at `src` to `dst` as one consistent snapshot (`VACUUM INTO`), through
/// a connection of its own: the copy holds every committed row whether or not the source's
/// write-ahead log was checkpointed, and the source's `-wal`/`-shm` files are never needed.
pub async fn backup_file(src: &Path, dst: &Path) -> Result<()> {
    use sqlx::Connection;
    let io = |source| StoreError::Io { path: dst.display().to_string(), source };
    match std::fs::remove_file(dst) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let opts = SqliteConnectOptions::new().filename(src).busy_timeout(Duration::from_secs(5));
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
    let copied = sqlx::query("VACUUM INTO ?").bind(dst.display().to_string()).execute(&mut conn).await;
    conn.close().await?;
    copied?;
    Ok(())
}

impl Database {
    /// Opens (creating if needed) the SQLite file at `path`, checks it is a sound database and
    /// brings its schema up to date with `migrations`.
    pub async fn open(path: &Path, migrations: &[Migration]) -> Result<Database> {
        Self::open_with(path, migrations, Durability::Full).await
    }

    /// Opens with an explicit durability: `Replayable` is for files whose every change can be
    /// replayed from elsewhere after a crash (the raft state machine, rebuilt from the log from
    /// its recorded applied index): commits skip the fsync but can never corrupt the file.
    pub async fn open_with(path: &Path, migrations: &[Migration], durability: Durability) -> Result<Database> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.display().to_string(), source })?;
        }
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Replayable => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let corrupt = |reason: String| StoreError::Corrupt { path: path.display().to_string(), reason };
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts)
            .await
            .map_err(|e| corrupt(e.to_string()))?;
        let check: (String,) = sqlx::query_as("PRAGMA quick_check").fetch_one(&pool).await.map_err(|e| corrupt(e.to_string()))?;
        if check.0 != "ok" {
            return Err(corrupt(check.0));
        }
        let db = Database { pool, path: path.to_path_buf() };
        migrate::apply(&db.pool, path, migrations).await?;
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction that holds the write lock from its start: a batch reads (its guards)
    /// before it writes, and a read transaction cannot take the write lock once another
    /// connection has written (SQLite answers "database is locked" at once instead of waiting).
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Runs `batch` in one transaction; returns the rows affected by each statement. A failed
    /// guard or statement rolls the whole batch back.
    pub async fn apply(&self, batch: &Batch) -> Result<Vec<u64>> {
        let mut tx = self.begin_write().await?;
        let affected = apply_in(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(affected)
    }

    pub async fn query(&self, stmt: &Stmt) -> Result<Rows> {
        let mut conn = self.pool.acquire().await?;
        direct::with_handle(&mut conn, |c| direct::query(c, stmt)).await
    }

    /// Runs several reads in one read transaction: they all see the same state of the file.
    pub async fn query_many(&self, stmts: &[Stmt]) -> Result<Vec<Rows>> {
        let mut conn = self.pool.acquire().await?;
        direct::with_handle(&mut conn, |c| direct::query_all(c, stmts)).await
    }

    /// Runs arbitrary SQL text (the `lxd sql` path): a SELECT returns rows, anything else the
    /// number of rows affected.
    pub async fn run_raw(&self, sql: &str) -> Result<RawResult> {
        let trimmed = sql.trim_start();
        let is_select = trimmed.len() >= 6 && trimmed[..6].eq_ignore_ascii_case("select")
            || trimmed.len() >= 6 && trimmed[..6].eq_ignore_ascii_case("pragma");
        if is_select {
            let stmt = Stmt::new(sql, vec![]);
            Ok(RawResult::Rows(self.query(&stmt).await?))
        } else {
            let stmt = Stmt::new(sql, vec![]);
            let mut tx = self.begin_write().await?;
            let n = direct::with_handle(&mut tx, |c| direct::execute(c, &stmt)).await?;
            tx.commit().await?;
            Ok(RawResult::Affected(n))
        }
    }
}

pub enum RawResult {
    Rows(Rows),
    Affected(u64),
}

/// Applies a batch inside an open transaction, in one turn on the connection's handle.
pub async fn apply_in(conn: &mut sqlx::SqliteConnection, batch: &Batch) -> Result<Vec<u64>> {
    direct::with_handle(conn, |c| apply_steps(c, batch)).await
}

/// The steps of a batch, in order, on a handle inside an open write transaction (shared with
/// the replicated state machine, which records the applied entry in the same turn).
pub fn apply_steps(c: &rusqlite::Connection, batch: &Batch) -> Result<Vec<u64>> {
    let mut affected = Vec::with_capacity(batch.stmts.len());
    for step in &batch.steps {
        match *step {
            Step::Stmt(i) => {
                let stmt = batch.stmts.get(i).ok_or_else(malformed)?;
                let n = direct::execute(c, stmt).map_err(|e| match e {
                    StoreError::Statement(e) if direct::is_unique_violation(&e) => {
                        StoreError::Conflict(format!("This entry already exists ({})", sqlite_message(&e)))
                    }
                    e => e,
                })?;
                affected.push(n);
            }
            Step::Guard(i) => {
                let g = batch.guards.get(i).ok_or_else(malformed)?;
                // A guard is a count or an existence probe: no row counts as zero.
                let rows = direct::query(c, &g.stmt)?;
                let n = rows.rows.first().and_then(|r| r.first()).and_then(Value::as_i64).unwrap_or(0);
                let ok = match g.expect {
                    GuardExpect::Zero => n == 0,
                    GuardExpect::NonZero => n != 0,
                };
                if !ok {
                    return Err(if g.not_found {
                        StoreError::NotFound(g.message.clone())
                    } else {
                        StoreError::Conflict(g.message.clone())
                    });
                }
            }
            Step::Unchanged(i) => {
                let u = batch.unchanged.get(i).ok_or_else(malformed)?;
                let sets = u.version.stmts.iter().map(|s| direct::query(c, s)).collect::<Result<Vec<_>>>()?;
                if digest(&sets) != u.version.digest {
                    return Err(StoreError::PreconditionFailed(u.message.clone()));
                }
            }
        }
    }
    Ok(affected)
}

/// SQLite's own words for a failure.
fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        e => e.to_string(),
    }
}

fn malformed() -> StoreError {
    StoreError::Internal("malformed batch".into())
}

/// A value in an unambiguous text form (its type and its content), for digests.
fn canonical(v: &Value, out: &mut String) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = match v {
        Value::Null => write!(out, "n;"),
        Value::Int(i) => write!(out, "i{i};"),
        Value::Real(r) => write!(out, "r{};", r.to_bits()),
        Value::Text(t) => write!(out, "t{}:{t}", t.len()),
        Value::Blob(b) => write!(out, "b{}:{}", b.len(), b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    };
}

/// The digest of what some statements read: the same rows give the same digest in any order,
/// on any replica.
pub fn digest(sets: &[Rows]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for set in sets {
        let mut rows: Vec<String> = set
            .rows
            .iter()
            .map(|r| {
                let mut line = String::new();
                for v in r {
                    canonical(v, &mut line);
                }
                line
            })
            .collect();
        rows.sort();
        hasher.update(format!("{}\n", rows.len()));
        for r in rows {
            hasher.update(r.len().to_string());
            hasher.update(":");
            hasher.update(r);
        }
    }
    format!("{:x}", hasher.finalize())
}

/// The version of what `stmts` read (`sets` are their results, in order).
pub fn version_of(stmts: Vec<Stmt>, sets: &[Rows]) -> Version {
    Version { digest: digest(sets), stmts }
}

// Helpers for typed query functions.
pub(crate) fn text(row: &[Value], i: usize) -> String {
    row.get(i).map(Value::render).unwrap_or_default()
}
pub(crate) fn int(row: &[Value], i: usize) -> i64 {
    row.get(i).and_then(Value::as_i64).unwrap_or(0)
}
