//! Statements run on a pooled connection's SQLite handle directly. sqlx runs each statement on
//! the connection's worker thread and answers through a channel: two thread wake-ups per
//! statement, which on a busy two-core host cost more than SQLite itself (a 64-key profile
//! batch spent 5 ms in them on each replica). Here the handle is locked out of the worker once
//! and a whole batch, or a whole set of reads, runs through rusqlite in that one turn.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use super::db::Rows;
use super::value::{Stmt, Value};
use super::{Result, StoreError};

/// Runs `work` with the connection's handle, in one round trip to sqlx's worker (which waits
/// until the handle is given back). `work` runs on the calling thread and must not block on
/// anything but SQLite: the caller holds the write lock already, or only reads (which never
/// wait for a lock in WAL mode).
pub async fn with_handle<T>(
    conn: &mut sqlx::SqliteConnection,
    work: impl FnOnce(&rusqlite::Connection) -> Result<T>,
) -> Result<T> {
    let mut locked = conn.lock_handle().await?;
    let raw = locked.as_raw_handle();
    // SAFETY: the handle is valid and locked out of sqlx's worker for as long as `locked`
    // lives; this connection is dropped (finalizing its statements, never closing the
    // handle: `from_handle` does not own it) before `locked` is.
    let direct = unsafe { rusqlite::Connection::from_handle(raw.as_ptr()) }.map_err(StoreError::Statement)?;
    let out = work(&direct);
    drop(direct);
    drop(locked);
    out
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Real(v) => ValueRef::Real(*v),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A column as stored: its storage class decides the kind, as for rows read through sqlx.
impl FromSql for Value {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(v) => Value::Int(v),
            ValueRef::Real(v) => Value::Real(v),
            ValueRef::Text(t) => Value::Text(String::from_utf8(t.to_vec()).map_err(|e| FromSqlError::Other(Box::new(e)))?),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        })
    }
}

fn prepared<'c>(c: &'c rusqlite::Connection, stmt: &Stmt) -> Result<rusqlite::CachedStatement<'c>> {
    // A batch often repeats one statement with other values (a row per key): cached, it is
    // compiled once per batch.
    c.prepare_cached(&stmt.sql).map_err(StoreError::Statement)
}

/// Runs a statement to completion; the rows it changed (rows it returns are not kept).
pub fn execute(c: &rusqlite::Connection, stmt: &Stmt) -> Result<u64> {
    let mut s = prepared(c, stmt)?;
    let mut rows = s.query(rusqlite::params_from_iter(&stmt.params)).map_err(StoreError::Statement)?;
    while rows.next().map_err(StoreError::Statement)?.is_some() {}
    drop(rows);
    Ok(c.changes())
}

/// The rows a query returns, with its column names (named even when there are no rows).
pub fn query(c: &rusqlite::Connection, stmt: &Stmt) -> Result<Rows> {
    let mut s = prepared(c, stmt)?;
    let columns: Vec<String> = s.column_names().into_iter().map(str::to_string).collect();
    let width = columns.len();
    let mut rows = s.query(rusqlite::params_from_iter(&stmt.params)).map_err(StoreError::Statement)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(StoreError::Statement)? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(row.get::<_, Value>(i).map_err(StoreError::Statement)?);
        }
        out.push(values);
    }
    Ok(Rows { columns, rows: out })
}

/// Reads in one read transaction: they all see the same state of the file.
pub fn query_all(c: &rusqlite::Connection, stmts: &[Stmt]) -> Result<Vec<Rows>> {
    if let [only] = stmts {
        return Ok(vec![query(c, only)?]);
    }
    let tx = c.unchecked_transaction().map_err(StoreError::Statement)?;
    let sets = stmts.iter().map(|s| query(&tx, s)).collect::<Result<Vec<_>>>()?;
    tx.commit().map_err(StoreError::Statement)?;
    Ok(sets)
}

/// Whether SQLite refused a statement for what it says (the same on every replica: a missing
/// table, a constraint, a type) rather than for the state of this machine (I/O, a full disk,
/// memory, a lock, a damaged file).
pub fn is_deterministic(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    match e {
        rusqlite::Error::SqliteFailure(f, _) => !matches!(
            f.code,
            DatabaseBusy
                | DatabaseLocked
                | OutOfMemory
                | ReadOnly
                | OperationInterrupted
                | SystemIoFailure
                | DatabaseCorrupt
                | DiskFull
                | CannotOpen
                | FileLockingProtocolFailed
                | NotADatabase
        ),
        _ => true,
    }
}

/// Whether a statement failed on a UNIQUE or PRIMARY KEY constraint.
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    const UNIQUE: std::ffi::c_int = 2067;
    const PRIMARY_KEY: std::ffi::c_int = 1555;
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == UNIQUE || f.extended_code == PRIMARY_KEY)
}
