//! Numbered schema migrations, recorded in a `schema` table as LXD does. A database whose
//! version is newer than the binary knows is refused rather than misread.

use std::path::Path;

use sqlx::sqlite::SqlitePool;

use super::{Result, StoreError};

/// One schema step: applied once, in order, inside its own transaction.
pub struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

pub fn apply<'a>(pool: &'a SqlitePool, path: &'a Path, migrations: &'a [Migration]) -> crate::util::BoxFuture<'a, Result<()>> {
    Box::pin(apply_inner(pool, path, migrations))
}

async fn apply_inner(pool: &SqlitePool, path: &Path, migrations: &[Migration]) -> Result<()> {
    sqlx::Executor::execute(
        pool,
        "CREATE TABLE IF NOT EXISTS schema (
            id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            version INTEGER NOT NULL,
            updated_at DATETIME NOT NULL,
            UNIQUE (version)
        )",
    )
    .await?;
    let current: (Option<i64>,) = sqlx::query_as("SELECT MAX(version) FROM schema").fetch_one(pool).await?;
    let current = current.0.unwrap_or(0);
    let known = migrations.last().map(|m| m.version).unwrap_or(0);
    if current > known {
        return Err(StoreError::SchemaTooNew { path: path.display().to_string(), found: current, known });
    }
    for m in migrations {
        if m.version <= current {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::Executor::execute(&mut *tx, m.sql).await?;
        sqlx::query("INSERT INTO schema (version, updated_at) VALUES (?, ?)")
            .bind(m.version)
            .bind(crate::util::time::rfc3339(crate::util::time::now_nanos()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// The latest version in a migration list: the schema number members compare.
pub fn latest(migrations: &[Migration]) -> i64 {
    migrations.last().map(|m| m.version).unwrap_or(0)
}
