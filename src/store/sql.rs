//! SQL text from outside rxd: `lxd sql` (arbitrary statements against the local database or
//! the global one, whose writes go through the cluster like every other write, and `.dump` /
//! `.schema`) and queued patch files (`database/patch.global.sql`). These are the only places
//! SQL text does not come from this module's typed functions.

use serde::Serialize;

use super::Result;
use super::db::{Database, RawResult};
use super::global::GlobalDb;
use super::{Batch, Rows, Stmt, Value};

/// One statement's outcome, in LXD's `/internal/sql` shape.
#[derive(Serialize)]
pub struct SqlResult {
    #[serde(rename = "type")]
    pub kind: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    pub rows_affected: u64,
}

fn is_read(stmt: &str) -> bool {
    let s = stmt.trim_start().to_ascii_lowercase();
    s.starts_with("select") || s.starts_with("pragma") || s.starts_with("explain")
}

fn rows_result(rows: Rows) -> SqlResult {
    SqlResult {
        kind: "select".into(),
        columns: rows.columns,
        rows: rows.rows.iter().map(|r| r.iter().map(Value::to_json).collect()).collect(),
        rows_affected: 0,
    }
}

fn exec_result(n: u64) -> SqlResult {
    SqlResult { kind: "exec".into(), columns: vec![], rows: vec![], rows_affected: n }
}

/// The database a query runs against: a member's local file (possibly with the daemon
/// stopped), or the global database through whatever backend serves it.
#[derive(Clone, Copy)]
pub enum SqlDb<'a> {
    Local(&'a Database),
    Global(&'a GlobalDb),
}

async fn query(db: SqlDb<'_>, sql: &str) -> Result<Rows> {
    Ok(match db {
        SqlDb::Local(local) => match local.run_raw(sql).await? {
            RawResult::Rows(r) => r,
            RawResult::Affected(_) => Rows::default(),
        },
        SqlDb::Global(global) => global.query(&Stmt::new(sql, vec![])).await?,
    })
}

/// Runs each `;`-separated statement in its own transaction.
pub async fn run(db: SqlDb<'_>, text: &str) -> Result<Vec<SqlResult>> {
    let mut out = Vec::new();
    for stmt in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        if is_read(stmt) {
            out.push(rows_result(query(db, stmt).await?));
            continue;
        }
        let n = match db {
            SqlDb::Local(local) => match local.run_raw(stmt).await? {
                RawResult::Affected(n) => n,
                RawResult::Rows(_) => 0,
            },
            SqlDb::Global(global) => {
                let mut b = Batch::new();
                b.push(stmt, vec![]);
                global.apply(&b).await?.first().copied().unwrap_or(0)
            }
        };
        out.push(exec_result(n));
    }
    Ok(out)
}

/// A value as an SQL literal (quotes doubled).
pub fn literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Int(i) => i.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Text(s) => format!("'{}'", s.replace('\'', "''")),
        Value::Blob(b) => format!("X'{}'", b.iter().map(|x| format!("{x:02X}")).collect::<String>()),
    }
}

/// The database as SQL text, like `sqlite3 .dump` (or only the DDL with `schema_only`).
pub async fn dump(db: SqlDb<'_>, schema_only: bool) -> Result<String> {
    let tables =
        query(db, "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").await?;
    let mut out = String::new();
    if !schema_only {
        out.push_str("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n");
    }
    for t in &tables.rows {
        let name = t.first().map(Value::render).unwrap_or_default();
        let ddl = t.get(1).map(Value::render).unwrap_or_default();
        out.push_str(&ddl);
        out.push_str(";\n");
        if schema_only {
            continue;
        }
        let rows = query(db, &format!("SELECT * FROM \"{}\"", name.replace('"', "\"\""))).await?;
        for r in &rows.rows {
            let values: Vec<String> = r.iter().map(literal).collect();
            out.push_str(&format!("INSERT INTO {name} VALUES({});\n", values.join(",")));
        }
    }
    if !schema_only {
        let seq = query(db, "SELECT name, seq FROM sqlite_sequence").await.unwrap_or_default();
        out.push_str("DELETE FROM sqlite_sequence;\n");
        for r in &seq.rows {
            out.push_str(&format!(
                "INSERT INTO sqlite_sequence VALUES({});\n",
                r.iter().map(literal).collect::<Vec<_>>().join(",")
            ));
        }
        out.push_str("COMMIT;\n");
    }
    Ok(out)
}

/// The statements of a queued patch file, as one batch applied through the cluster.
pub fn patch_batch(text: &str) -> Batch {
    let mut b = Batch::new();
    for stmt in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        b.push(stmt, vec![]);
    }
    b
}
