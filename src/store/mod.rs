//! THE schema module: the local and global schemas with their numbered migrations, and every SQL
//! statement rxd runs, wrapped in typed functions. Nothing outside `store` writes SQL text.
//!
//! Writes to the global database are expressed as a [`Batch`] of parameterised statements with
//! optional row-count guards, so that the same batch can be applied identically on every replica.
//! Callers never build statements themselves; the typed functions in [`global`] and [`local`] do.

pub mod db;
pub mod global;
pub mod local;
pub mod migrate;
pub mod value;

pub use db::{Database, Rows};
pub use value::{Batch, Guard, Stmt, Value};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] sqlx::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A batch guard did not hold; the message says which check failed.
    #[error("{0}")]
    Guard(String),
    #[error("database {path} is damaged: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("failed to prepare {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The replicated database cannot answer right now (no leader, no quorum).
    #[error("{0}")]
    Unavailable(String),
    #[error("database schema {found} at {path} is newer than this binary's {known}; refusing to use it")]
    SchemaTooNew { path: String, found: i64, known: i64 },
}

pub type Result<T> = std::result::Result<T, StoreError>;
