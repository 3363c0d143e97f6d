//! Cluster members (`nodes` and the tables hanging off it: member config, stored roles,
//! failure domains, cluster groups). A standalone server has exactly one placeholder row named
//! `none` at address `0.0.0.0`.

use std::collections::{BTreeMap, HashMap};

use super::GlobalDb;
use crate::store::db::{int, text, version_of};
use crate::store::{Batch, Result, Rows, Stmt, StoreError, Value, Version};

pub const STANDALONE_NAME: &str = "none";
pub const STANDALONE_ADDRESS: &str = "0.0.0.0";

/// `nodes.state`: a normal member, a joiner not yet admitted, an evacuated member.
pub const STATE_CREATED: i64 = 0;
pub const STATE_PENDING: i64 = 1;
pub const STATE_EVACUATED: i64 = 2;

/// Roles stored in `nodes_roles` (the database roles come from raft, not from here).
pub const STORED_ROLES: &[(i64, &str)] = &[(1, "event-hub"), (2, "ovn-chassis")];

#[derive(Clone, Debug)]
pub struct Node {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub address: String,
    pub schema: i64,
    pub api_extensions: i64,
    pub heartbeat: String,
    pub state: i64,
    pub arch: i64,
    /// `default` when the member has none.
    pub failure_domain: String,
}

const COLUMNS: &str = "nodes.id, nodes.name, nodes.description, nodes.address, nodes.schema, nodes.api_extensions,
    COALESCE(nodes.heartbeat, ''), nodes.state, nodes.arch, COALESCE(nodes_failure_domains.name, 'default')";

fn from_row(r: &[Value]) -> Node {
    Node {
        id: int(r, 0),
        name: text(r, 1),
        description: text(r, 2),
        address: text(r, 3),
        schema: int(r, 4),
        api_extensions: int(r, 5),
        heartbeat: text(r, 6),
        state: int(r, 7),
        arch: int(r, 8),
        failure_domain: text(r, 9),
    }
}

fn list_stmt() -> Stmt {
    Stmt::new(
        format!(
            "SELECT {COLUMNS} FROM nodes LEFT JOIN nodes_failure_domains ON nodes_failure_domains.id = nodes.failure_domain_id ORDER BY nodes.id"
        ),
        vec![],
    )
}

pub async fn list(db: &GlobalDb) -> Result<Vec<Node>> {
    let rows = db.query(&list_stmt()).await?;
    Ok(rows.rows.iter().map(|r| from_row(r)).collect())
}

/// The member at `address`.
pub async fn get_by_address(db: &GlobalDb, address: &str) -> Result<Node> {
    let rows = db
        .query(&Stmt::new(
            format!(
                "SELECT {COLUMNS} FROM nodes LEFT JOIN nodes_failure_domains ON nodes_failure_domains.id = nodes.failure_domain_id
                 WHERE nodes.address = ?"
            ),
            vec![address.into()],
        ))
        .await?;
    rows.rows.first().map(|r| from_row(r)).ok_or_else(|| StoreError::NotFound(format!("No cluster member at {address}")))
}

/// What a member carries besides its row: config, stored roles and groups.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    pub config: BTreeMap<String, String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
}

fn extras_stmt() -> Stmt {
    Stmt::new(
        "SELECT node_id, 'config', key, value FROM nodes_config
         UNION ALL SELECT node_id, 'role', CAST(role AS TEXT), '' FROM nodes_roles
         UNION ALL SELECT node_id, 'group', cluster_groups.name, '' FROM nodes_cluster_groups
            JOIN cluster_groups ON cluster_groups.id = nodes_cluster_groups.group_id
         ORDER BY 1, 2, 3",
        vec![],
    )
}

/// The extras of every member, by node id, in one read.
pub async fn extras(db: &GlobalDb) -> Result<HashMap<i64, Extras>> {
    Ok(extras_from(&db.query(&extras_stmt()).await?))
}

fn extras_from(rows: &Rows) -> HashMap<i64, Extras> {
    let mut out: HashMap<i64, Extras> = HashMap::new();
    for r in &rows.rows {
        let e = out.entry(int(r, 0)).or_default();
        match text(r, 1).as_str() {
            "config" => {
                e.config.insert(text(r, 2), text(r, 3));
            }
            "role" => {
                let id: i64 = text(r, 2).parse().unwrap_or(0);
                if let Some((_, name)) = STORED_ROLES.iter().find(|(i, _)| *i == id) {
                    e.roles.push(name.to_string());
                }
            }
            _ => e.groups.push(text(r, 2)),
        }
    }
    out
}

/// Every member with its extras and the cluster configuration, from one read point, and (for
/// member `name`) the version a guarded write of its writable part needs.
pub struct MembersView {
    pub nodes: Vec<Node>,
    pub extras: HashMap<i64, Extras>,
    pub config: std::collections::BTreeMap<String, String>,
    pub version: Option<Version>,
}

/// What a member's ETag covers in the database (its database roles come from raft).
fn member_reads(name: &str) -> Vec<Stmt> {
    const ID: &str = "(SELECT id FROM nodes WHERE name = ?)";
    vec![
        Stmt::new("SELECT description, failure_domain_id FROM nodes WHERE name = ?", vec![name.into()]),
        Stmt::new(format!("SELECT key, value FROM nodes_config WHERE node_id = {ID} ORDER BY key"), vec![name.into()]),
        Stmt::new(format!("SELECT role FROM nodes_roles WHERE node_id = {ID} ORDER BY role"), vec![name.into()]),
        Stmt::new(format!("SELECT group_id FROM nodes_cluster_groups WHERE node_id = {ID} ORDER BY group_id"), vec![name.into()]),
    ]
}

pub async fn members_view(db: &GlobalDb, versioned: Option<&str>) -> Result<MembersView> {
    let version_stmts = versioned.map(member_reads).unwrap_or_default();
    let mut stmts = vec![list_stmt(), extras_stmt(), Stmt::new("SELECT key, value FROM config ORDER BY key", vec![])];
    stmts.extend(version_stmts.iter().cloned());
    let sets = db.query_all(&stmts).await?;
    let (head, version_sets) = sets.split_at(3);
    Ok(MembersView {
        nodes: head[0].rows.iter().map(|r| from_row(r)).collect(),
        extras: extras_from(&head[1]),
        config: head[2].rows.iter().map(|r| (text(r, 0), text(r, 1))).collect(),
        version: versioned.map(|_| version_of(version_stmts, version_sets)),
    })
}

/// The writable part of a member, as `PUT /1.0/cluster/members/<name>` replaces it.
pub struct MemberUpdate<'a> {
    pub description: &'a str,
    pub config: &'a BTreeMap<String, String>,
    pub roles: &'a [i64],
    pub failure_domain: &'a str,
    pub groups: &'a [String],
}

pub fn update(b: &mut Batch, id: i64, u: &MemberUpdate) {
    b.push("UPDATE nodes SET description = ? WHERE id = ?", vec![u.description.into(), id.into()]);
    b.push("DELETE FROM nodes_config WHERE node_id = ?", vec![id.into()]);
    for (k, v) in u.config {
        b.push("INSERT INTO nodes_config (node_id, key, value) VALUES (?, ?, ?)", vec![id.into(), k.into(), v.into()]);
    }
    b.push("DELETE FROM nodes_roles WHERE node_id = ?", vec![id.into()]);
    for r in u.roles {
        b.push("INSERT INTO nodes_roles (node_id, role) VALUES (?, ?)", vec![id.into(), (*r).into()]);
    }
    if u.failure_domain == "default" {
        b.push("UPDATE nodes SET failure_domain_id = NULL WHERE id = ?", vec![id.into()]);
    } else {
        b.push("INSERT OR IGNORE INTO nodes_failure_domains (name) VALUES (?)", vec![u.failure_domain.into()]);
        b.push(
            "UPDATE nodes SET failure_domain_id = (SELECT id FROM nodes_failure_domains WHERE name = ?) WHERE id = ?",
            vec![u.failure_domain.into(), id.into()],
        );
    }
    b.push("DELETE FROM nodes_cluster_groups WHERE node_id = ?", vec![id.into()]);
    for g in u.groups {
        b.require_some("SELECT 1 FROM cluster_groups WHERE name = ?", vec![g.into()], format!("Cluster group \"{g}\" not found"));
        b.push(
            "INSERT INTO nodes_cluster_groups (node_id, group_id) SELECT ?, id FROM cluster_groups WHERE name = ?",
            vec![id.into(), g.into()],
        );
    }
}

/// Admits a joiner's row (pending until it has caught up) in the default group.
pub fn insert_pending(b: &mut Batch, name: &str, address: &str, schema: i64, api_extensions: i64, arch: i64, now: &str) {
    b.push(
        "INSERT INTO nodes (name, description, address, schema, api_extensions, heartbeat, state, arch) VALUES (?, '', ?, ?, ?, ?, ?, ?)",
        vec![name.into(), address.into(), schema.into(), api_extensions.into(), now.into(), STATE_PENDING.into(), arch.max(1).into()],
    );
    b.push(
        "INSERT INTO nodes_cluster_groups (node_id, group_id) SELECT nodes.id, 1 FROM nodes WHERE address = ?",
        vec![address.into()],
    );
}

/// The joiner caught up: it becomes a normal member.
pub fn mark_created(b: &mut Batch, id: i64, now: &str) {
    b.push(
        "UPDATE nodes SET state = ?, heartbeat = ? WHERE id = ? AND state = ?",
        vec![STATE_CREATED.into(), now.into(), id.into(), STATE_PENDING.into()],
    );
}

/// Renames a member: its row and its server certificate's name.
pub fn rename(b: &mut Batch, old: &str, new: &str) {
    b.require_none("SELECT 1 FROM nodes WHERE name = ?", vec![new.into()], "Conflict");
    b.require_some("SELECT 1 FROM nodes WHERE name = ?", vec![old.into()], format!("Member '{old}' not found"));
    b.push("UPDATE nodes SET name = ? WHERE name = ?", vec![new.into(), old.into()]);
    b.push("UPDATE certificates SET name = ? WHERE type = 2 AND name = ?", vec![new.into(), old.into()]);
}

/// The first member of a new cluster: the standalone row gets its name and address.
pub fn name_standalone(b: &mut Batch, name: &str, address: &str, now: &str) {
    b.push("UPDATE nodes SET name = ?, address = ?, heartbeat = ? WHERE id = 1", vec![name.into(), address.into(), now.into()]);
}

/// The statement a queued patch file carries to move member `id` to `address`.
pub fn set_address_sql(id: i64, address: &str) -> String {
    format!("UPDATE nodes SET address = {} WHERE id = {id};\n", crate::store::sql::literal(&Value::from(address)))
}

/// Records a heartbeat (`now`) for the members that answered.
pub fn heartbeat(b: &mut Batch, ids: &[i64], now: &str) {
    for id in ids {
        b.push("UPDATE nodes SET heartbeat = ? WHERE id = ?", vec![now.into(), (*id).into()]);
    }
}

/// Records the version a member runs.
pub fn set_version(b: &mut Batch, id: i64, schema: i64, api_extensions: i64) {
    b.push("UPDATE nodes SET schema = ?, api_extensions = ? WHERE id = ?", vec![schema.into(), api_extensions.into(), id.into()]);
}

/// Forgets a member: its row (and what cascades from it) and its server certificate.
pub fn delete(b: &mut Batch, id: i64, name: &str) {
    b.push("DELETE FROM certificates WHERE type = 2 AND name = ?", vec![name.into()]);
    b.push("DELETE FROM nodes WHERE id = ?", vec![id.into()]);
}

/// Makes sure the standalone placeholder row exists and records this binary's versions on it.
/// `now` comes from the caller so the batch is deterministic.
pub fn ensure_standalone(b: &mut Batch, schema: i64, api_extensions: i64, arch: i64, now: &str) {
    b.push(
        "INSERT INTO nodes (id, name, description, address, schema, api_extensions, heartbeat, state, arch)
         SELECT 1, ?, '', ?, ?, ?, ?, 0, ? WHERE NOT EXISTS (SELECT 1 FROM nodes)",
        vec![STANDALONE_NAME.into(), STANDALONE_ADDRESS.into(), schema.into(), api_extensions.into(), now.into(), arch.into()],
    );
    b.push(
        "INSERT OR IGNORE INTO nodes_cluster_groups (node_id, group_id) SELECT id, 1 FROM nodes WHERE address = ?",
        vec![STANDALONE_ADDRESS.into()],
    );
    b.push(
        "UPDATE nodes SET schema = ?, api_extensions = ?, heartbeat = ? WHERE address = ?",
        vec![schema.into(), api_extensions.into(), now.into(), STANDALONE_ADDRESS.into()],
    );
}

pub async fn get_by_id(db: &GlobalDb, id: i64) -> Result<Node> {
    list(db)
        .await?
        .into_iter()
        .find(|n| n.id == id)
        .ok_or_else(|| crate::store::StoreError::NotFound("Cluster member not found".into()))
}

/// Marks a member evacuated (STATE_EVACUATED) or back in service (STATE_CREATED).
pub fn set_state(b: &mut Batch, id: i64, state: i64) {
    b.push("UPDATE nodes SET state = ? WHERE id = ?", vec![state.into(), id.into()]);
}
