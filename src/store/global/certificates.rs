//! The trust store (`certificates` table): client certificates (type 1) and member server
//! certificates (type 2), keyed by SHA-256 fingerprint.

use super::GlobalDb;
use crate::store::db::{int, text, version_of};
use crate::store::{Batch, Result, Stmt, StoreError, Value, Version};

pub const TYPE_CLIENT: i64 = 1;
pub const TYPE_SERVER: i64 = 2;
pub const TYPE_METRICS: i64 = 3;

#[derive(Clone, Debug)]
pub struct Certificate {
    pub id: i64,
    pub fingerprint: String,
    pub kind: i64,
    pub name: String,
    pub certificate: String,
    pub restricted: bool,
    pub projects: Vec<String>,
}

pub fn type_name(kind: i64) -> &'static str {
    match kind {
        TYPE_SERVER => "server",
        TYPE_METRICS => "metrics",
        _ => "client",
    }
}

pub fn type_code(name: &str) -> Option<i64> {
    match name {
        "client" | "" => Some(TYPE_CLIENT),
        "server" => Some(TYPE_SERVER),
        "metrics" => Some(TYPE_METRICS),
        _ => None,
    }
}

const COLUMNS: &str = "c.id, c.fingerprint, c.type, c.name, c.certificate, c.restricted,
        COALESCE((SELECT group_concat(p.name, ',') FROM
                  (SELECT p.name AS name FROM certificates_projects cp JOIN projects p ON p.id = cp.project_id
                   WHERE cp.certificate_id = c.id ORDER BY p.name) p), '')";

fn list_stmt() -> Stmt {
    Stmt::new(format!("SELECT {COLUMNS} FROM certificates c ORDER BY c.fingerprint"), vec![])
}

fn from_rows(rows: crate::store::Rows) -> Vec<Certificate> {
    rows.rows
        .iter()
        .map(|r| Certificate {
            id: int(r, 0),
            fingerprint: text(r, 1),
            kind: int(r, 2),
            name: text(r, 3),
            certificate: text(r, 4),
            restricted: int(r, 5) != 0,
            projects: text(r, 6).split(',').filter(|s| !s.is_empty()).map(String::from).collect(),
        })
        .collect()
}

pub async fn list(db: &GlobalDb) -> Result<Vec<Certificate>> {
    Ok(from_rows(db.query(&list_stmt()).await?))
}

/// The trust store as this member's own copy has it (possibly a moment behind the leader;
/// used for authenticating connections, which must work even without a quorum).
pub async fn list_stale(db: &GlobalDb) -> Result<Vec<Certificate>> {
    let mut sets = db.query_local(&[list_stmt()]).await?;
    Ok(from_rows(sets.pop().unwrap_or_default()))
}

/// Finds a certificate by full fingerprint or unique prefix; with the version a guarded write
/// of it needs.
pub async fn get(db: &GlobalDb, fingerprint: &str) -> Result<(Certificate, Version)> {
    let all = list(db).await?;
    let mut matches = all.into_iter().filter(|c| !fingerprint.is_empty() && c.fingerprint.starts_with(fingerprint));
    let found = match (matches.next(), matches.next()) {
        (Some(c), None) => c,
        (Some(_), Some(_)) => return Err(StoreError::Conflict(format!("More than one certificate matches \"{fingerprint}\""))),
        _ => return Err(StoreError::NotFound("Certificate not found".into())),
    };
    let stmt = Stmt::new(format!("SELECT {COLUMNS} FROM certificates c WHERE c.fingerprint = ?"), vec![found.fingerprint.into()]);
    let [rows] = db.query_many([stmt.clone()]).await?;
    let version = version_of(vec![stmt], std::slice::from_ref(&rows));
    let c = from_rows(rows).pop().ok_or_else(|| StoreError::NotFound("Certificate not found".into()))?;
    Ok((c, version))
}

pub fn insert(b: &mut Batch, c: &Certificate) {
    b.require_none(
        "SELECT COUNT(*) FROM certificates WHERE fingerprint = ?",
        vec![(&c.fingerprint).into()],
        "Certificate already in trust store",
    );
    b.push(
        "INSERT INTO certificates (fingerprint, type, name, certificate, restricted) VALUES (?, ?, ?, ?, ?)",
        vec![(&c.fingerprint).into(), c.kind.into(), (&c.name).into(), (&c.certificate).into(), c.restricted.into()],
    );
    set_projects(b, &c.fingerprint, &c.projects);
}

/// Puts `c` in place of any certificate with the same fingerprint.
pub fn replace(b: &mut Batch, c: &Certificate) {
    b.push("DELETE FROM certificates WHERE fingerprint = ?", vec![(&c.fingerprint).into()]);
    insert(b, c);
}

pub fn update(b: &mut Batch, fingerprint: &str, name: &str, kind: i64, restricted: bool, projects: &[String]) {
    b.require_some("SELECT COUNT(*) FROM certificates WHERE fingerprint = ?", vec![fingerprint.into()], "Certificate not found");
    b.push(
        "UPDATE certificates SET name = ?, type = ?, restricted = ? WHERE fingerprint = ?",
        vec![name.into(), kind.into(), restricted.into(), fingerprint.into()],
    );
    set_projects(b, fingerprint, projects);
}

fn set_projects(b: &mut Batch, fingerprint: &str, projects: &[String]) {
    b.push(
        "DELETE FROM certificates_projects WHERE certificate_id = (SELECT id FROM certificates WHERE fingerprint = ?)",
        vec![fingerprint.into()],
    );
    for p in projects {
        b.require_some("SELECT COUNT(*) FROM projects WHERE name = ?", vec![p.into()], format!("Project \"{p}\" not found"));
        b.push(
            "INSERT INTO certificates_projects (certificate_id, project_id)
             VALUES ((SELECT id FROM certificates WHERE fingerprint = ?), (SELECT id FROM projects WHERE name = ?))",
            vec![fingerprint.into(), p.into()],
        );
    }
}

pub fn delete(b: &mut Batch, fingerprint: &str) {
    b.require_some("SELECT COUNT(*) FROM certificates WHERE fingerprint = ?", vec![fingerprint.into()], "Certificate not found");
    b.push("DELETE FROM certificates WHERE fingerprint = ?", vec![Value::from(fingerprint)]);
}
