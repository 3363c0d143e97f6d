//! Cluster groups (`cluster_groups`, `nodes_cluster_groups`): named sets of members. Group
//! `default` always exists and every member starts in it.

use super::GlobalDb;
use crate::store::db::{text, version_of};
use crate::store::{Batch, Result, Rows, Stmt, Version};

#[derive(Clone, Debug, Default)]
pub struct Group {
    pub name: String,
    pub description: String,
    pub members: Vec<String>,
}

fn list_stmts() -> [Stmt; 2] {
    [
        Stmt::new("SELECT name, description FROM cluster_groups ORDER BY id", vec![]),
        Stmt::new(
            "SELECT g.name, n.name FROM nodes_cluster_groups ng JOIN cluster_groups g ON g.id = ng.group_id
             JOIN nodes n ON n.id = ng.node_id ORDER BY n.name",
            vec![],
        ),
    ]
}

pub async fn list(db: &GlobalDb) -> Result<Vec<Group>> {
    let [groups, members] = db.query_many(list_stmts()).await?;
    Ok(from_rows(&groups, &members))
}

/// Every group, and the version a guarded write of group `name` needs.
pub async fn list_versioned(db: &GlobalDb, name: &str) -> Result<(Vec<Group>, Version)> {
    let version_stmts = vec![
        Stmt::new("SELECT description FROM cluster_groups WHERE name = ?", vec![name.into()]),
        Stmt::new(
            "SELECT ng.node_id FROM nodes_cluster_groups ng JOIN cluster_groups g ON g.id = ng.group_id
             WHERE g.name = ? ORDER BY ng.node_id",
            vec![name.into()],
        ),
    ];
    let [a, b] = list_stmts();
    let mut stmts = vec![a, b];
    stmts.extend(version_stmts.iter().cloned());
    let sets = db.query_all(&stmts).await?;
    Ok((from_rows(&sets[0], &sets[1]), version_of(version_stmts, &sets[2..])))
}

fn from_rows(groups: &Rows, members: &Rows) -> Vec<Group> {
    groups
        .rows
        .iter()
        .map(|g| {
            let name = text(g, 0);
            let members = members.rows.iter().filter(|m| text(m, 0) == name).map(|m| text(m, 1)).collect();
            Group { name, description: text(g, 1), members }
        })
        .collect()
}

fn set_members(b: &mut Batch, name: &str, members: &[String]) {
    b.push("DELETE FROM nodes_cluster_groups WHERE group_id = (SELECT id FROM cluster_groups WHERE name = ?)", vec![name.into()]);
    for m in members {
        b.require_some("SELECT COUNT(*) FROM nodes WHERE name = ?", vec![m.into()], format!("Cluster member \"{m}\" not found"));
        b.push(
            "INSERT INTO nodes_cluster_groups (node_id, group_id) SELECT n.id, g.id FROM nodes n, cluster_groups g WHERE n.name = ? AND g.name = ?",
            vec![m.into(), name.into()],
        );
    }
}

pub fn create(b: &mut Batch, g: &Group) {
    b.require_none("SELECT COUNT(*) FROM cluster_groups WHERE name = ?", vec![(&g.name).into()], "Cluster group already exists");
    b.push("INSERT INTO cluster_groups (name, description) VALUES (?, ?)", vec![(&g.name).into(), (&g.description).into()]);
    set_members(b, &g.name, &g.members);
}

/// Replaces description and members; a member left in no group is kept in this one.
pub fn update(b: &mut Batch, g: &Group) {
    b.push("UPDATE cluster_groups SET description = ? WHERE name = ?", vec![(&g.description).into(), (&g.name).into()]);
    set_members(b, &g.name, &g.members);
    b.push(
        "INSERT INTO nodes_cluster_groups (node_id, group_id)
         SELECT n.id, (SELECT id FROM cluster_groups WHERE name = ?) FROM nodes n
         WHERE NOT EXISTS (SELECT 1 FROM nodes_cluster_groups ng WHERE ng.node_id = n.id)",
        vec![(&g.name).into()],
    );
}

pub fn rename(b: &mut Batch, old: &str, new: &str) {
    b.require_none(
        "SELECT COUNT(*) FROM cluster_groups WHERE name = ?",
        vec![new.into()],
        format!("Name \"{new}\" already in use"),
    );
    b.push("UPDATE cluster_groups SET name = ? WHERE name = ?", vec![new.into(), old.into()]);
}

pub fn delete(b: &mut Batch, name: &str) {
    b.require_none(
        "SELECT COUNT(*) FROM nodes_cluster_groups WHERE group_id = (SELECT id FROM cluster_groups WHERE name = ?)",
        vec![name.into()],
        "Only empty cluster groups can be removed",
    );
    b.push("DELETE FROM cluster_groups WHERE name = ?", vec![name.into()]);
}
