//! `lxd sql` against the running daemon (`/internal/sql`): the user's SQL, passed through to
//! the member's local database or to the global one.

use super::Result;
use crate::store::global::GlobalDb;
use crate::store::local::LocalDb;
use crate::store::sql::{self, SqlDb, SqlResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Local,
    Global,
}

pub struct Sql {
    local: LocalDb,
    global: GlobalDb,
}

impl Sql {
    pub fn new(local: LocalDb, global: GlobalDb) -> Sql {
        Sql { local, global }
    }

    fn db(&self, target: Target) -> SqlDb<'_> {
        match target {
            Target::Local => SqlDb::Local(self.local.database()),
            Target::Global => SqlDb::Global(&self.global),
        }
    }

    /// Runs each `;`-separated statement in its own transaction.
    pub async fn run(&self, target: Target, text: &str) -> Result<Vec<SqlResult>> {
        Ok(sql::run(self.db(target), text).await?)
    }

    /// The database as SQL text (`.dump`), or only its schema (`.schema`).
    pub async fn dump(&self, target: Target, schema_only: bool) -> Result<String> {
        Ok(sql::dump(self.db(target), schema_only).await?)
    }
}
