//! THE schema module: the local and global schemas with their numbered migrations, the raft
//! log's and the replicated state machine's tables, and every SQL statement rxd runs, wrapped
//! in typed functions. SQL text from outside rxd (`lxd sql`, queued patch files) passes
//! through [`sql`] and nowhere else.
//!
//! Writes to the global database are expressed as a [`Batch`] of parameterised statements with
//! guards (row counts, or a [`Version`]: rows that must be unchanged since a read), so that the
//! same batch is decided identically on every replica. Callers never build statements
//! themselves; the typed functions in [`global`], [`local`], [`raft_log`] and [`raft_state`] do.
//!
//! May call: util.

pub mod db;
pub mod direct;
pub mod global;
pub mod local;
pub mod migrate;
pub mod raft_log;
pub mod raft_state;
pub mod sql;
pub mod value;

pub use db::{Database, Rows};
pub use value::{Batch, Guard, Stmt, Value, Version};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] sqlx::Error),
    /// SQLite refused a statement run on a connection's handle directly.
    #[error("database error: {0}")]
    Statement(rusqlite::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A [`Version`] guard failed: what the caller read has changed since.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The replicated database cannot answer right now (no leader, no quorum).
    #[error("{0}")]
    Unavailable(String),
    /// Something that cannot happen when every part does its job (a malformed batch, an
    /// answer of the wrong shape).
    #[error("{0}")]
    Internal(String),
    /// The leader's verdict on a forwarded request, with its status (a kind the ones above
    /// do not name).
    #[error("{message}")]
    Remote { status: u16, message: String },
    #[error("database {path} is damaged: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("failed to prepare {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("database schema {found} at {path} is newer than this binary's {known}; refusing to use it")]
    SchemaTooNew { path: String, found: i64, known: i64 },
}

impl StoreError {
    /// The HTTP status this error answers with (the same on every member).
    pub fn status(&self) -> u16 {
        match self {
            StoreError::NotFound(_) => 404,
            StoreError::Conflict(_) => 409,
            StoreError::PreconditionFailed(_) => 412,
            StoreError::Unavailable(_) => 503,
            StoreError::Remote { status, .. } => *status,
            StoreError::Sqlite(_)
            | StoreError::Statement(_)
            | StoreError::Internal(_)
            | StoreError::Corrupt { .. }
            | StoreError::Io { .. }
            | StoreError::SchemaTooNew { .. } => 500,
        }
    }

    /// The error another member reported with `status`, as the same kind here.
    pub fn from_status(status: u16, message: String) -> StoreError {
        match status {
            404 => StoreError::NotFound(message),
            409 => StoreError::Conflict(message),
            412 => StoreError::PreconditionFailed(message),
            503 => StoreError::Unavailable(message),
            status => StoreError::Remote { status, message },
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
