//! Instance snapshots (`instances_snapshots`, `instances_snapshots_config`): the configuration
//! an instance had when its files were copied aside.

use std::collections::BTreeMap;

use super::GlobalDb;
use crate::store::db::{int, text};
use crate::store::{Batch, Result, Stmt, StoreError};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub stateful: bool,
    pub description: String,
    pub config: BTreeMap<String, String>,
}

const INSTANCE_ID: &str = "(SELECT i.id FROM instances i JOIN projects p ON p.id = i.project_id WHERE p.name = ? AND i.name = ?)";

/// An instance's snapshots, oldest first.
pub async fn list(db: &GlobalDb, project: &str, instance: &str) -> Result<Vec<Snapshot>> {
    let [rows, config] = db
        .query_many([
            Stmt::new(
                format!(
                    "SELECT id, name, creation_date, stateful, description FROM instances_snapshots
                 WHERE instance_id = {INSTANCE_ID} ORDER BY creation_date, id"
                ),
                vec![project.into(), instance.into()],
            ),
            Stmt::new(
                format!(
                    "SELECT c.instance_snapshot_id, c.key, c.value FROM instances_snapshots_config c
                 JOIN instances_snapshots s ON s.id = c.instance_snapshot_id WHERE s.instance_id = {INSTANCE_ID}"
                ),
                vec![project.into(), instance.into()],
            ),
        ])
        .await?;
    let mut out: Vec<Snapshot> = rows
        .rows
        .iter()
        .map(|r| Snapshot {
            id: int(r, 0),
            name: text(r, 1),
            created_at: text(r, 2),
            stateful: int(r, 3) != 0,
            description: text(r, 4),
            ..Default::default()
        })
        .collect();
    for r in &config.rows {
        if let Some(s) = out.iter_mut().find(|s| s.id == int(r, 0)) {
            s.config.insert(text(r, 1), text(r, 2));
        }
    }
    Ok(out)
}

pub async fn get(db: &GlobalDb, project: &str, instance: &str, name: &str) -> Result<Snapshot> {
    list(db, project, instance)
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| StoreError::NotFound("Instance snapshot not found".into()))
}

/// Snapshot counts per instance id (for `lxc list`).
pub async fn counts(db: &GlobalDb) -> Result<BTreeMap<i64, i64>> {
    let rows = db.query(&Stmt::new("SELECT instance_id, COUNT(*) FROM instances_snapshots GROUP BY instance_id", vec![])).await?;
    Ok(rows.rows.iter().map(|r| (int(r, 0), int(r, 1))).collect())
}

pub fn create(b: &mut Batch, project: &str, instance: &str, s: &Snapshot) {
    b.require_none(
        format!("SELECT COUNT(*) FROM instances_snapshots WHERE instance_id = {INSTANCE_ID} AND name = ?"),
        vec![project.into(), instance.into(), (&s.name).into()],
        format!("Snapshot \"{}\" already exists", s.name),
    );
    b.push(
        format!(
            "INSERT INTO instances_snapshots (instance_id, name, creation_date, stateful, description)
             VALUES ({INSTANCE_ID}, ?, ?, ?, ?)"
        ),
        vec![
            project.into(),
            instance.into(),
            (&s.name).into(),
            (&s.created_at).into(),
            s.stateful.into(),
            (&s.description).into(),
        ],
    );
    for (k, v) in &s.config {
        b.push(
            format!(
                "INSERT INTO instances_snapshots_config (instance_snapshot_id, key, value)
                 VALUES ((SELECT id FROM instances_snapshots WHERE instance_id = {INSTANCE_ID} AND name = ?), ?, ?)"
            ),
            vec![project.into(), instance.into(), (&s.name).into(), k.into(), v.into()],
        );
    }
}

pub fn rename(b: &mut Batch, project: &str, instance: &str, name: &str, new_name: &str) {
    b.require_none(
        format!("SELECT COUNT(*) FROM instances_snapshots WHERE instance_id = {INSTANCE_ID} AND name = ?"),
        vec![project.into(), instance.into(), new_name.into()],
        format!("Snapshot \"{new_name}\" already exists"),
    );
    b.push(
        format!("UPDATE instances_snapshots SET name = ? WHERE instance_id = {INSTANCE_ID} AND name = ?"),
        vec![new_name.into(), project.into(), instance.into(), name.into()],
    );
}

pub fn delete(b: &mut Batch, project: &str, instance: &str, name: &str) {
    b.push(
        format!("DELETE FROM instances_snapshots WHERE instance_id = {INSTANCE_ID} AND name = ?"),
        vec![project.into(), instance.into(), name.into()],
    );
}
