//! Instances (`instances`, `instances_config`, `instances_devices`, `instances_devices_config`,
//! `instances_profiles`), scoped by project and placed on a member (`node_id`).

use std::collections::BTreeMap;

use super::GlobalDb;
use super::profiles::Devices;
use crate::store::db::{int, text, version_of};
use crate::store::{Batch, Result, Stmt, StoreError, Value, Version};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Instance {
    pub id: i64,
    pub project: String,
    pub name: String,
    pub node_id: i64,
    /// The member's name (joined from `nodes`).
    pub location: String,
    pub architecture: String,
    pub ephemeral: bool,
    pub stateful: bool,
    pub description: String,
    pub created_at: String,
    pub last_used_at: String,
    pub config: BTreeMap<String, String>,
    pub devices: Devices,
    pub profiles: Vec<String>,
}

const ID_SQL: &str = "(SELECT i.id FROM instances i JOIN projects p ON p.id = i.project_id WHERE p.name = ? AND i.name = ?)";

/// Instances of `project` (all projects when None), optionally only those on `node_id`.
pub async fn list(db: &GlobalDb, project: Option<&str>, node_id: Option<i64>) -> Result<Vec<Instance>> {
    select(db, project, node_id, None).await
}

/// Instances matching every filter given: one row each, their configuration, devices and
/// profiles folded in as JSON by SQLite (a row costs far more to hand over than to build).
async fn select(db: &GlobalDb, project: Option<&str>, node_id: Option<i64>, name: Option<&str>) -> Result<Vec<Instance>> {
    let rows = db.query(&select_stmt(project, node_id, name)).await?;
    rows.rows.iter().map(|r| from_row(r)).collect()
}

fn select_stmt(project: Option<&str>, node_id: Option<i64>, name: Option<&str>) -> Stmt {
    let mut conds = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    if let Some(p) = project {
        conds.push("p.name = ?");
        params.push(p.into());
    }
    if let Some(n) = node_id {
        conds.push("i.node_id = ?");
        params.push(n.into());
    }
    if let Some(n) = name {
        conds.push("i.name = ?");
        params.push(n.into());
    }
    let filter = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    Stmt::new(
        format!(
            "SELECT i.id, p.name, i.name, i.node_id, COALESCE(n.name, ''), i.architecture, i.ephemeral, i.stateful,
                        i.description, i.creation_date, COALESCE(i.last_use_date, ''),
                        (SELECT json_group_object(c.key, c.value) FROM instances_config c WHERE c.instance_id = i.id),
                        (SELECT json_group_object(d.name, json_patch(json_object('type', d.type),
                                    (SELECT json_group_object(dc.key, dc.value) FROM instances_devices_config dc
                                     WHERE dc.instance_device_id = d.id)))
                         FROM instances_devices d WHERE d.instance_id = i.id),
                        (SELECT json_group_array(name) FROM
                            (SELECT pr.name AS name FROM instances_profiles ip JOIN profiles pr ON pr.id = ip.profile_id
                             WHERE ip.instance_id = i.id ORDER BY ip.apply_order))
                 FROM instances i JOIN projects p ON p.id = i.project_id LEFT JOIN nodes n ON n.id = i.node_id {filter}
                 ORDER BY i.name"
        ),
        params,
    )
}

fn from_row(r: &[Value]) -> Result<Instance> {
    Ok(Instance {
        id: int(r, 0),
        project: text(r, 1),
        name: text(r, 2),
        node_id: int(r, 3),
        location: text(r, 4),
        architecture: text(r, 5),
        ephemeral: int(r, 6) != 0,
        stateful: int(r, 7) != 0,
        description: text(r, 8),
        created_at: text(r, 9),
        last_used_at: text(r, 10),
        config: folded(r, 11)?,
        devices: folded(r, 12)?,
        profiles: folded(r, 13)?,
    })
}

/// A column SQLite folded into JSON.
fn folded<T: serde::de::DeserializeOwned>(row: &[Value], i: usize) -> Result<T> {
    serde_json::from_str(&text(row, i)).map_err(|e| StoreError::Internal(format!("malformed folded column: {e}")))
}

fn not_found() -> StoreError {
    StoreError::NotFound("Instance not found".into())
}

pub async fn get(db: &GlobalDb, project: &str, name: &str) -> Result<Instance> {
    select(db, Some(project), None, Some(name)).await?.pop().ok_or_else(not_found)
}

/// What an instance's ETag covers: its writable part.
fn writable_reads(project: &str, name: &str) -> Vec<Stmt> {
    let key = || vec![project.into(), name.into()];
    vec![
        Stmt::new(format!("SELECT architecture, ephemeral, stateful, description FROM instances WHERE id = {ID_SQL}"), key()),
        Stmt::new(format!("SELECT key, value FROM instances_config WHERE instance_id = {ID_SQL} ORDER BY key"), key()),
        Stmt::new(
            format!(
                "SELECT d.name, d.type, c.key, c.value FROM instances_devices d
                 LEFT JOIN instances_devices_config c ON c.instance_device_id = d.id
                 WHERE d.instance_id = {ID_SQL} ORDER BY d.name, c.key"
            ),
            key(),
        ),
        Stmt::new(
            format!(
                "SELECT ip.apply_order, pr.name FROM instances_profiles ip JOIN profiles pr ON pr.id = ip.profile_id
                 WHERE ip.instance_id = {ID_SQL} ORDER BY ip.apply_order"
            ),
            key(),
        ),
    ]
}

/// One instance, and the version a guarded write of its writable part needs (both from one
/// read point).
pub async fn get_versioned(db: &GlobalDb, project: &str, name: &str) -> Result<(Instance, Version)> {
    let version_stmts = writable_reads(project, name);
    let mut stmts = vec![select_stmt(Some(project), None, Some(name))];
    stmts.extend(version_stmts.iter().cloned());
    let mut sets = db.query_all(&stmts).await?;
    let row = sets.remove(0);
    let instance = row.rows.first().map(|r| from_row(r)).transpose()?.ok_or_else(not_found)?;
    Ok((instance, version_of(version_stmts, &sets)))
}

/// The id of the member an instance lives on.
pub async fn node_of(db: &GlobalDb, project: &str, name: &str) -> Result<i64> {
    let rows = db
        .query(&Stmt::new(
            "SELECT i.node_id FROM instances i JOIN projects p ON p.id = i.project_id WHERE p.name = ? AND i.name = ?",
            vec![project.into(), name.into()],
        ))
        .await?;
    rows.rows.first().map(|r| int(r, 0)).ok_or_else(not_found)
}

/// Instance count per member id.
pub async fn count_by_node(db: &GlobalDb) -> Result<BTreeMap<i64, i64>> {
    let rows = db.query(&Stmt::new("SELECT node_id, COUNT(*) FROM instances GROUP BY node_id", vec![])).await?;
    Ok(rows.rows.iter().map(|r| (int(r, 0), int(r, 1))).collect())
}

fn write_body(b: &mut Batch, project: &str, name: &str, i: &Instance) {
    for (k, v) in &i.config {
        b.push(
            format!("INSERT INTO instances_config (instance_id, key, value) VALUES ({ID_SQL}, ?, ?)"),
            vec![project.into(), name.into(), k.into(), v.into()],
        );
    }
    for (dev, cfg) in &i.devices {
        let kind = cfg.get("type").cloned().unwrap_or_default();
        b.push(
            format!("INSERT INTO instances_devices (instance_id, name, type) VALUES ({ID_SQL}, ?, ?)"),
            vec![project.into(), name.into(), dev.into(), kind.into()],
        );
        for (k, v) in cfg.iter().filter(|(k, _)| k.as_str() != "type") {
            b.push(
                format!(
                    "INSERT INTO instances_devices_config (instance_device_id, key, value)
                     VALUES ((SELECT id FROM instances_devices WHERE instance_id = {ID_SQL} AND name = ?), ?, ?)"
                ),
                vec![project.into(), name.into(), dev.into(), k.into(), v.into()],
            );
        }
    }
    for (order, profile) in i.profiles.iter().enumerate() {
        b.push(
            format!(
                "INSERT INTO instances_profiles (instance_id, profile_id, apply_order)
                 VALUES ({ID_SQL}, (SELECT pr.id FROM profiles pr JOIN projects p ON p.id = pr.project_id
                                    WHERE p.name = ? AND pr.name = ?), ?)"
            ),
            vec![project.into(), name.into(), project.into(), profile.into(), (order as i64).into()],
        );
    }
}

/// Adds an instance; fails as LXD does when the name is taken in the project.
pub fn create(b: &mut Batch, i: &Instance) {
    b.require_some("SELECT COUNT(*) FROM projects WHERE name = ?", vec![(&i.project).into()], "Project not found");
    b.require_none(
        format!("SELECT COUNT(*) FROM instances WHERE id = {ID_SQL}"),
        vec![(&i.project).into(), (&i.name).into()],
        "Failed creating instance record: Add instance info to the database: This \"instances\" entry already exists",
    );
    for profile in &i.profiles {
        b.require_some(
            "SELECT COUNT(*) FROM profiles pr JOIN projects p ON p.id = pr.project_id WHERE p.name = ? AND pr.name = ?",
            vec![(&i.project).into(), profile.into()],
            format!("Requested profile '{profile}' doesn't exist"),
        );
    }
    b.push(
        "INSERT INTO instances (node_id, name, architecture, type, ephemeral, creation_date, stateful, description, project_id)
         VALUES (?, ?, ?, 0, ?, ?, ?, ?, (SELECT id FROM projects WHERE name = ?))",
        vec![
            i.node_id.into(),
            (&i.name).into(),
            (&i.architecture).into(),
            i.ephemeral.into(),
            (&i.created_at).into(),
            i.stateful.into(),
            (&i.description).into(),
            (&i.project).into(),
        ],
    );
    write_body(b, &i.project, &i.name, i);
}

fn require(b: &mut Batch, project: &str, name: &str) {
    b.require_some(
        format!("SELECT COUNT(*) FROM instances WHERE id = {ID_SQL}"),
        vec![project.into(), name.into()],
        "Instance not found",
    );
}

/// Replaces description, ephemeral, config, devices and profiles.
pub fn replace(b: &mut Batch, project: &str, name: &str, i: &Instance) {
    require(b, project, name);
    b.push(
        format!("UPDATE instances SET description = ?, ephemeral = ? WHERE id = {ID_SQL}"),
        vec![(&i.description).into(), i.ephemeral.into(), project.into(), name.into()],
    );
    for table in ["instances_config", "instances_devices", "instances_profiles"] {
        b.push(format!("DELETE FROM {table} WHERE instance_id = {ID_SQL}"), vec![project.into(), name.into()]);
    }
    write_body(b, project, name, i);
}

/// Sets (Some) or removes (None) single config keys, e.g. `volatile.last_state.power`.
pub fn set_keys(b: &mut Batch, project: &str, name: &str, keys: &[(&str, Option<String>)]) {
    for (k, v) in keys {
        b.push(
            format!("DELETE FROM instances_config WHERE instance_id = {ID_SQL} AND key = ?"),
            vec![project.into(), name.into(), (*k).into()],
        );
        if let Some(v) = v {
            b.push(
                format!(
                    "INSERT INTO instances_config (instance_id, key, value) SELECT {ID_SQL}, ?, ? WHERE {ID_SQL} IS NOT NULL"
                ),
                vec![project.into(), name.into(), (*k).into(), v.into(), project.into(), name.into()],
            );
        }
    }
}

pub fn touch(b: &mut Batch, project: &str, name: &str, now: &str) {
    b.push(format!("UPDATE instances SET last_use_date = ? WHERE id = {ID_SQL}"), vec![now.into(), project.into(), name.into()]);
}

pub fn rename(b: &mut Batch, project: &str, name: &str, new_name: &str) {
    require(b, project, name);
    b.require_none(
        format!("SELECT COUNT(*) FROM instances WHERE id = {ID_SQL}"),
        vec![project.into(), new_name.into()],
        format!("Name \"{new_name}\" already in use"),
    );
    b.push(format!("UPDATE instances SET name = ? WHERE id = {ID_SQL}"), vec![new_name.into(), project.into(), name.into()]);
}

/// Re-points an instance at another member (after its files moved there).
pub fn move_to(b: &mut Batch, project: &str, name: &str, node_id: i64) {
    require(b, project, name);
    b.push(format!("UPDATE instances SET node_id = ? WHERE id = {ID_SQL}"), vec![node_id.into(), project.into(), name.into()]);
}

pub fn delete(b: &mut Batch, project: &str, name: &str) {
    b.push(format!("DELETE FROM instances WHERE id = {ID_SQL}"), vec![project.into(), name.into()]);
}
