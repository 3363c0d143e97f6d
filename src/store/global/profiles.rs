//! Profiles (`profiles`, `profiles_config`, `profiles_devices`, `profiles_devices_config`),
//! scoped by project.

use std::collections::BTreeMap;

use super::GlobalDb;
use crate::store::db::{int, text, version_of};
use crate::store::{Batch, Result, Rows, Stmt, StoreError, Version};

const ID_SQL: &str = "(SELECT p.id FROM profiles p JOIN projects pr ON pr.id = p.project_id WHERE pr.name = ? AND p.name = ?)";

pub type Devices = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub id: i64,
    pub project: String,
    pub name: String,
    pub description: String,
    pub config: BTreeMap<String, String>,
    pub devices: Devices,
}

/// All profiles of `project` (all projects when `None`), with config and devices, by name.
pub async fn list(db: &GlobalDb, project: Option<&str>) -> Result<Vec<Profile>> {
    let (filter, params) = match project {
        Some(p) => ("WHERE pr.name = ?", vec![p.into()]),
        None => ("", vec![]),
    };
    let stmts = [
        Stmt::new(
            format!(
                "SELECT p.id, pr.name, p.name, p.description FROM profiles p
                 JOIN projects pr ON pr.id = p.project_id {filter} ORDER BY p.name"
            ),
            params.clone(),
        ),
        Stmt::new(
            format!(
                "SELECT c.profile_id, c.key, c.value FROM profiles_config c
                 JOIN profiles p ON p.id = c.profile_id JOIN projects pr ON pr.id = p.project_id {filter}"
            ),
            params.clone(),
        ),
        Stmt::new(
            format!(
                "SELECT d.profile_id, d.name, d.type, c.key, c.value FROM profiles_devices d
                 LEFT JOIN profiles_devices_config c ON c.profile_device_id = d.id
                 JOIN profiles p ON p.id = d.profile_id JOIN projects pr ON pr.id = p.project_id {filter}"
            ),
            params,
        ),
    ];
    let [rows, config, devices] = db.query_many(stmts).await?;
    let mut profiles: Vec<Profile> = rows
        .rows
        .iter()
        .map(|r| Profile { id: int(r, 0), project: text(r, 1), name: text(r, 2), description: text(r, 3), ..Default::default() })
        .collect();
    let index: BTreeMap<i64, usize> = profiles.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    for r in &config.rows {
        if let Some(&i) = index.get(&int(r, 0)) {
            profiles[i].config.insert(text(r, 1), text(r, 2));
        }
    }
    for r in &devices.rows {
        if let Some(&i) = index.get(&int(r, 0)) {
            let dev = profiles[i].devices.entry(text(r, 1)).or_default();
            dev.insert("type".into(), text(r, 2));
            if !matches!(r.get(3), Some(crate::store::Value::Null) | None) {
                dev.insert(text(r, 3), text(r, 4));
            }
        }
    }
    Ok(profiles)
}

/// The names of `project`'s profiles.
pub async fn names(db: &GlobalDb, project: &str) -> Result<Vec<String>> {
    let rows = db
        .query(&Stmt::new(
            "SELECT p.name FROM profiles p JOIN projects pr ON pr.id = p.project_id WHERE pr.name = ? ORDER BY p.name",
            vec![project.into()],
        ))
        .await?;
    Ok(rows.rows.iter().map(|r| text(r, 0)).collect())
}

/// The reads of one profile, which are also what its ETag covers.
fn reads(project: &str, name: &str) -> Vec<Stmt> {
    let key = || vec![project.into(), name.into()];
    vec![
        Stmt::new(
            "SELECT p.id, pr.name, p.name, p.description FROM profiles p JOIN projects pr ON pr.id = p.project_id
             WHERE pr.name = ? AND p.name = ?",
            key(),
        ),
        Stmt::new(format!("SELECT key, value FROM profiles_config WHERE profile_id = {ID_SQL} ORDER BY key"), key()),
        Stmt::new(
            format!(
                "SELECT d.name, d.type, c.key, c.value FROM profiles_devices d
                 LEFT JOIN profiles_devices_config c ON c.profile_device_id = d.id
                 WHERE d.profile_id = {ID_SQL} ORDER BY d.name, c.key"
            ),
            key(),
        ),
    ]
}

fn from_reads(sets: &[Rows]) -> Option<Profile> {
    let [row, config, devices] = sets else { return None };
    let r = row.rows.first()?;
    let mut p = Profile { id: int(r, 0), project: text(r, 1), name: text(r, 2), description: text(r, 3), ..Default::default() };
    for r in &config.rows {
        p.config.insert(text(r, 0), text(r, 1));
    }
    for r in &devices.rows {
        let dev = p.devices.entry(text(r, 0)).or_default();
        dev.insert("type".into(), text(r, 1));
        if !matches!(r.get(2), Some(crate::store::Value::Null) | None) {
            dev.insert(text(r, 2), text(r, 3));
        }
    }
    Some(p)
}

/// One profile, and the version a guarded write of it needs.
pub async fn get(db: &GlobalDb, project: &str, name: &str) -> Result<(Profile, Version)> {
    let stmts = reads(project, name);
    let sets = db.query_all(&stmts).await?;
    let p = from_reads(&sets).ok_or_else(|| StoreError::NotFound("Profile not found".into()))?;
    Ok((p, version_of(stmts, &sets)))
}

fn write_device(b: &mut Batch, project: &str, name: &str, dev: &str, cfg: &BTreeMap<String, String>) {
    let kind = cfg.get("type").cloned().unwrap_or_default();
    b.push(
        format!("INSERT INTO profiles_devices (profile_id, name, type) VALUES ({ID_SQL}, ?, ?)"),
        vec![project.into(), name.into(), dev.into(), kind.into()],
    );
    for (k, v) in cfg.iter().filter(|(k, _)| k.as_str() != "type") {
        b.push(
            format!(
                "INSERT INTO profiles_devices_config (profile_device_id, key, value)
                 VALUES ((SELECT id FROM profiles_devices WHERE profile_id = {ID_SQL} AND name = ?), ?, ?)"
            ),
            vec![project.into(), name.into(), dev.into(), k.into(), v.into()],
        );
    }
}

fn write_body(b: &mut Batch, project: &str, name: &str, p: &Profile) {
    for (k, v) in &p.config {
        b.push(
            format!("INSERT INTO profiles_config (profile_id, key, value) VALUES ({ID_SQL}, ?, ?)"),
            vec![project.into(), name.into(), k.into(), v.into()],
        );
    }
    for (dev, cfg) in &p.devices {
        write_device(b, project, name, dev, cfg);
    }
}

fn require(b: &mut Batch, project: &str, name: &str) {
    b.require_some(
        format!("SELECT COUNT(*) FROM profiles WHERE id = {ID_SQL}"),
        vec![project.into(), name.into()],
        "Profile not found",
    );
}

/// Lays `config` and `devices` over the profile's (a device given replaces the one of that
/// name), and sets the description when given: only what changes is written.
pub fn patch(
    b: &mut Batch,
    project: &str,
    name: &str,
    config: &BTreeMap<String, String>,
    devices: &Devices,
    description: Option<&str>,
) {
    require(b, project, name);
    if let Some(d) = description {
        b.push(format!("UPDATE profiles SET description = ? WHERE id = {ID_SQL}"), vec![d.into(), project.into(), name.into()]);
    }
    for (k, v) in config {
        b.push(
            format!(
                "INSERT INTO profiles_config (profile_id, key, value) VALUES ({ID_SQL}, ?, ?)
                 ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value"
            ),
            vec![project.into(), name.into(), k.into(), v.into()],
        );
    }
    for (dev, cfg) in devices {
        b.push(
            format!("DELETE FROM profiles_devices WHERE profile_id = {ID_SQL} AND name = ?"),
            vec![project.into(), name.into(), dev.into()],
        );
        write_device(b, project, name, dev, cfg);
    }
}

pub fn create(b: &mut Batch, project: &str, p: &Profile) {
    b.require_some("SELECT COUNT(*) FROM projects WHERE name = ?", vec![project.into()], "Project not found");
    b.require_none(
        "SELECT COUNT(*) FROM profiles p JOIN projects pr ON pr.id = p.project_id WHERE pr.name = ? AND p.name = ?",
        vec![project.into(), (&p.name).into()],
        format!("Error inserting {} into database: The profile already exists", p.name),
    );
    b.push(
        "INSERT INTO profiles (name, description, project_id) VALUES (?, ?, (SELECT id FROM projects WHERE name = ?))",
        vec![(&p.name).into(), (&p.description).into(), project.into()],
    );
    write_body(b, project, &p.name, p);
}

/// Replaces description, config and devices of an existing profile.
pub fn replace(b: &mut Batch, project: &str, name: &str, p: &Profile) {
    require(b, project, name);
    b.push(
        format!("UPDATE profiles SET description = ? WHERE id = {ID_SQL}"),
        vec![(&p.description).into(), project.into(), name.into()],
    );
    b.push(format!("DELETE FROM profiles_config WHERE profile_id = {ID_SQL}"), vec![project.into(), name.into()]);
    b.push(format!("DELETE FROM profiles_devices WHERE profile_id = {ID_SQL}"), vec![project.into(), name.into()]);
    write_body(b, project, name, p);
}

pub fn rename(b: &mut Batch, project: &str, name: &str, new_name: &str) {
    require(b, project, name);
    b.require_none(
        format!("SELECT COUNT(*) FROM profiles WHERE id = {ID_SQL}"),
        vec![project.into(), new_name.into()],
        format!("Name \"{new_name}\" already in use"),
    );
    b.push(format!("UPDATE profiles SET name = ? WHERE id = {ID_SQL}"), vec![new_name.into(), project.into(), name.into()]);
}

pub fn delete(b: &mut Batch, project: &str, name: &str) {
    require(b, project, name);
    b.push(format!("DELETE FROM profiles WHERE id = {ID_SQL}"), vec![project.into(), name.into()]);
}
