//! Projects (`projects`, `projects_config`).

use std::collections::BTreeMap;

use super::GlobalDb;
use crate::store::db::{int, text, version_of};
use crate::store::{Batch, Result, Stmt, StoreError, Version};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub config: BTreeMap<String, String>,
}

pub async fn list(db: &GlobalDb) -> Result<Vec<Project>> {
    let [rows, cfg] = db
        .query_many([
            Stmt::new("SELECT id, name, description FROM projects ORDER BY name", vec![]),
            Stmt::new("SELECT project_id, key, value FROM projects_config", vec![]),
        ])
        .await?;
    let mut out: Vec<Project> = rows
        .rows
        .iter()
        .map(|r| Project { id: int(r, 0), name: text(r, 1), description: text(r, 2), config: BTreeMap::new() })
        .collect();
    for r in &cfg.rows {
        if let Some(p) = out.iter_mut().find(|p| p.id == int(r, 0)) {
            p.config.insert(text(r, 1), text(r, 2));
        }
    }
    Ok(out)
}

/// One project, and the version a guarded write of it needs.
pub async fn get(db: &GlobalDb, name: &str) -> Result<(Project, Version)> {
    let stmts = vec![
        Stmt::new("SELECT id, name, description FROM projects WHERE name = ?", vec![name.into()]),
        Stmt::new(
            "SELECT key, value FROM projects_config WHERE project_id = (SELECT id FROM projects WHERE name = ?) ORDER BY key",
            vec![name.into()],
        ),
    ];
    let sets = db.query_all(&stmts).await?;
    let r = sets[0].rows.first().ok_or_else(|| StoreError::NotFound("Project not found".into()))?;
    let mut p = Project { id: int(r, 0), name: text(r, 1), description: text(r, 2), config: BTreeMap::new() };
    for r in &sets[1].rows {
        p.config.insert(text(r, 0), text(r, 1));
    }
    Ok((p, version_of(stmts, &sets)))
}

fn write_config(b: &mut Batch, name: &str, config: &BTreeMap<String, String>) {
    b.push("DELETE FROM projects_config WHERE project_id = (SELECT id FROM projects WHERE name = ?)", vec![name.into()]);
    for (k, v) in config {
        b.push(
            "INSERT INTO projects_config (project_id, key, value) VALUES ((SELECT id FROM projects WHERE name = ?), ?, ?)",
            vec![name.into(), k.into(), v.into()],
        );
    }
}

/// Creates the project and, when it has its own profiles, its `default` profile.
pub fn create(b: &mut Batch, p: &Project) {
    b.require_none(
        "SELECT COUNT(*) FROM projects WHERE name = ?",
        vec![(&p.name).into()],
        format!("Error inserting {} into database: The project already exists", p.name),
    );
    b.push("INSERT INTO projects (name, description) VALUES (?, ?)", vec![(&p.name).into(), (&p.description).into()]);
    write_config(b, &p.name, &p.config);
    if p.config.get("features.profiles").map(String::as_str) == Some("true") {
        b.push(
            "INSERT INTO profiles (name, description, project_id) VALUES ('default', ?, (SELECT id FROM projects WHERE name = ?))",
            vec![format!("Default LXD profile for project {}", p.name).into(), (&p.name).into()],
        );
    }
}

pub fn update(b: &mut Batch, name: &str, description: &str, config: &BTreeMap<String, String>) {
    b.require_some("SELECT COUNT(*) FROM projects WHERE name = ?", vec![name.into()], "Project not found");
    b.push("UPDATE projects SET description = ? WHERE name = ?", vec![description.into(), name.into()]);
    write_config(b, name, config);
}

pub fn rename(b: &mut Batch, name: &str, new_name: &str) {
    b.require_some("SELECT COUNT(*) FROM projects WHERE name = ?", vec![name.into()], "Project not found");
    b.require_none(
        "SELECT COUNT(*) FROM projects WHERE name = ?",
        vec![new_name.into()],
        format!("A project named \"{new_name}\" already exists"),
    );
    b.push("UPDATE projects SET name = ? WHERE name = ?", vec![new_name.into(), name.into()]);
}

/// Deletes an empty project: only its own `default` profile may remain.
pub fn delete(b: &mut Batch, name: &str) {
    b.require_some("SELECT COUNT(*) FROM projects WHERE name = ?", vec![name.into()], "Project not found");
    b.require_none(
        "SELECT COUNT(*) FROM profiles p JOIN projects pr ON pr.id = p.project_id WHERE pr.name = ? AND p.name != 'default'",
        vec![name.into()],
        "Only empty projects can be removed",
    );
    b.push("DELETE FROM projects WHERE name = ?", vec![name.into()]);
}
