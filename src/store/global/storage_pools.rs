//! Storage pools (`storage_pools`, `storage_pools_nodes`, `storage_pools_config`). Keys with a
//! member id are member-specific (e.g. `source`); keys with a NULL member are cluster-wide.

use std::collections::BTreeMap;

use super::GlobalDb;
use crate::store::db::{int, text, version_of};
use crate::store::{Batch, Result, Stmt, StoreError, Value, Version};

pub const STATE_PENDING: i64 = 0;
pub const STATE_CREATED: i64 = 1;
pub const STATE_ERRORED: i64 = 2;

#[derive(Clone, Debug, Default)]
pub struct Pool {
    pub id: i64,
    pub name: String,
    pub driver: String,
    pub description: String,
    pub state: i64,
    /// Cluster-wide keys plus the keys of the member asked about.
    pub config: BTreeMap<String, String>,
    pub locations: Vec<String>,
}

/// Pools as seen from member `node_id`.
pub async fn list(db: &GlobalDb, node_id: i64) -> Result<Vec<Pool>> {
    let [rows, cfg, locs] = db
        .query_many([
        Stmt::new("SELECT id, name, driver, description, state FROM storage_pools ORDER BY name", vec![]),
        Stmt::new(
            "SELECT storage_pool_id, key, value FROM storage_pools_config WHERE node_id IS NULL OR node_id = ?",
            vec![Value::Int(node_id)],
        ),
        Stmt::new(
            "SELECT spn.storage_pool_id, n.name FROM storage_pools_nodes spn JOIN nodes n ON n.id = spn.node_id ORDER BY n.name",
            vec![],
        ),
        ])
        .await?;
    let mut pools: Vec<Pool> = rows
        .rows
        .iter()
        .map(|r| Pool {
            id: int(r, 0),
            name: text(r, 1),
            driver: text(r, 2),
            description: text(r, 3),
            state: int(r, 4),
            ..Default::default()
        })
        .collect();
    for p in pools.iter_mut() {
        for r in cfg.rows.iter().filter(|r| int(r, 0) == p.id) {
            p.config.insert(text(r, 1), text(r, 2));
        }
        p.locations = locs.rows.iter().filter(|r| int(r, 0) == p.id).map(|r| text(r, 1)).collect();
    }
    Ok(pools)
}

/// The names of every pool.
pub async fn names(db: &GlobalDb) -> Result<Vec<String>> {
    let rows = db.query(&Stmt::new("SELECT name FROM storage_pools ORDER BY name", vec![])).await?;
    Ok(rows.rows.iter().map(|r| text(r, 0)).collect())
}

/// One pool as seen from member `node_id`, and the version a guarded write of its description
/// and configuration needs.
pub async fn get(db: &GlobalDb, node_id: i64, name: &str) -> Result<(Pool, Version)> {
    const POOL_ID: &str = "(SELECT id FROM storage_pools WHERE name = ?)";
    let description = Stmt::new("SELECT description FROM storage_pools WHERE name = ?", vec![name.into()]);
    let config = Stmt::new(
        format!(
            "SELECT key, value, node_id FROM storage_pools_config WHERE storage_pool_id = {POOL_ID}
             AND (node_id IS NULL OR node_id = ?) ORDER BY key, node_id"
        ),
        vec![name.into(), Value::Int(node_id)],
    );
    let stmts = [
        Stmt::new("SELECT id, name, driver, description, state FROM storage_pools WHERE name = ?", vec![name.into()]),
        Stmt::new(
            format!(
                "SELECT n.name FROM storage_pools_nodes spn JOIN nodes n ON n.id = spn.node_id
                 WHERE spn.storage_pool_id = {POOL_ID} ORDER BY n.name"
            ),
            vec![name.into()],
        ),
        description.clone(),
        config.clone(),
    ];
    let [row, locations, desc, cfg] = db.query_many(stmts).await?;
    let r = row.rows.first().ok_or_else(|| StoreError::NotFound("Storage pool not found".into()))?;
    let mut pool = Pool {
        id: int(r, 0),
        name: text(r, 1),
        driver: text(r, 2),
        description: text(r, 3),
        state: int(r, 4),
        locations: locations.rows.iter().map(|r| text(r, 0)).collect(),
        ..Default::default()
    };
    for r in &cfg.rows {
        pool.config.insert(text(r, 0), text(r, 1));
    }
    Ok((pool, version_of(vec![description, config], &[desc, cfg])))
}

/// Creates a pool that exists only on member `node_id` (the standalone case), state created.
pub fn create_local(b: &mut Batch, node_id: i64, p: &Pool, member_keys: &[&str]) {
    b.require_none(
        "SELECT COUNT(*) FROM storage_pools WHERE name = ?",
        vec![(&p.name).into()],
        format!("Storage pool \"{}\" already exists", p.name),
    );
    b.push(
        "INSERT INTO storage_pools (name, driver, description, state) VALUES (?, ?, ?, ?)",
        vec![(&p.name).into(), (&p.driver).into(), (&p.description).into(), STATE_CREATED.into()],
    );
    b.push(
        "INSERT INTO storage_pools_nodes (storage_pool_id, node_id, state) VALUES ((SELECT id FROM storage_pools WHERE name = ?), ?, ?)",
        vec![(&p.name).into(), node_id.into(), STATE_CREATED.into()],
    );
    for (k, v) in &p.config {
        let node: Value = if member_keys.contains(&k.as_str()) { Value::Int(node_id) } else { Value::Null };
        b.push(
            "INSERT INTO storage_pools_config (storage_pool_id, node_id, key, value) VALUES ((SELECT id FROM storage_pools WHERE name = ?), ?, ?, ?)",
            vec![(&p.name).into(), node, k.into(), v.into()],
        );
    }
}

/// Replaces the description and the cluster-wide keys plus member `node_id`'s keys.
pub fn update(
    b: &mut Batch,
    node_id: i64,
    name: &str,
    description: &str,
    config: &BTreeMap<String, String>,
    member_keys: &[&str],
) {
    b.require_some("SELECT COUNT(*) FROM storage_pools WHERE name = ?", vec![name.into()], "Storage pool not found");
    b.push("UPDATE storage_pools SET description = ? WHERE name = ?", vec![description.into(), name.into()]);
    b.push(
        "DELETE FROM storage_pools_config WHERE storage_pool_id = (SELECT id FROM storage_pools WHERE name = ?) AND (node_id IS NULL OR node_id = ?)",
        vec![name.into(), node_id.into()],
    );
    for (k, v) in config {
        let node: Value = if member_keys.contains(&k.as_str()) { Value::Int(node_id) } else { Value::Null };
        b.push(
            "INSERT INTO storage_pools_config (storage_pool_id, node_id, key, value) VALUES ((SELECT id FROM storage_pools WHERE name = ?), ?, ?, ?)",
            vec![name.into(), node, k.into(), v.into()],
        );
    }
}

pub fn delete(b: &mut Batch, name: &str) {
    b.require_some("SELECT COUNT(*) FROM storage_pools WHERE name = ?", vec![name.into()], "Storage pool not found");
    b.push("DELETE FROM storage_pools WHERE name = ?", vec![name.into()]);
}

/// Profiles (as `project/profile`) whose devices use the pool.
pub async fn used_by_profiles(db: &GlobalDb, name: &str) -> Result<Vec<(String, String)>> {
    let rows = db
        .query(&Stmt::new(
            "SELECT pr.name, p.name FROM profiles_devices_config c
             JOIN profiles_devices d ON d.id = c.profile_device_id
             JOIN profiles p ON p.id = d.profile_id JOIN projects pr ON pr.id = p.project_id
             WHERE d.type = 'disk' AND c.key = 'pool' AND c.value = ? ORDER BY pr.name, p.name",
            vec![name.into()],
        ))
        .await?;
    Ok(rows.rows.iter().map(|r| (text(r, 0), text(r, 1))).collect())
}

/// Records that member `node_id` has pool `name`, with its member-specific keys.
pub fn add_member(b: &mut Batch, name: &str, node_id: i64, member_config: &BTreeMap<String, String>) {
    b.push(
        "INSERT OR IGNORE INTO storage_pools_nodes (storage_pool_id, node_id, state) VALUES ((SELECT id FROM storage_pools WHERE name = ?), ?, ?)",
        vec![name.into(), node_id.into(), STATE_CREATED.into()],
    );
    for (k, v) in member_config {
        b.push(
            "INSERT OR REPLACE INTO storage_pools_config (storage_pool_id, node_id, key, value) VALUES ((SELECT id FROM storage_pools WHERE name = ?), ?, ?, ?)",
            vec![name.into(), node_id.into(), k.into(), v.into()],
        );
    }
}

/// Defines pool `name` on member `node_id` (pending), creating the pending pool if needed.
pub fn define_pending(
    b: &mut Batch,
    name: &str,
    driver: &str,
    node_id: i64,
    node_name: &str,
    member_config: &BTreeMap<String, String>,
) {
    b.require_none(
        "SELECT COUNT(*) FROM storage_pools WHERE name = ? AND driver != ?",
        vec![name.into(), driver.into()],
        "Storage pool already exists with a different driver",
    );
    b.require_none(
        "SELECT COUNT(*) FROM storage_pools WHERE name = ? AND state != ?",
        vec![name.into(), STATE_PENDING.into()],
        "Storage pool is not in pending state",
    );
    b.require_none(
        "SELECT COUNT(*) FROM storage_pools_nodes WHERE node_id = ? AND storage_pool_id = (SELECT id FROM storage_pools WHERE name = ?)",
        vec![node_id.into(), name.into()],
        format!("The storage pool already defined on node \"{node_name}\""),
    );
    b.push(
        "INSERT OR IGNORE INTO storage_pools (name, driver, description, state) VALUES (?, ?, '', ?)",
        vec![name.into(), driver.into(), STATE_PENDING.into()],
    );
    mark_member(b, name, node_id, STATE_PENDING, member_config);
}

/// Sets member `node_id`'s part of the pool: its state and member-specific keys.
pub fn mark_member(b: &mut Batch, name: &str, node_id: i64, state: i64, member_config: &BTreeMap<String, String>) {
    b.push(
        "INSERT INTO storage_pools_nodes (storage_pool_id, node_id, state) VALUES ((SELECT id FROM storage_pools WHERE name = ?), ?, ?)
         ON CONFLICT (storage_pool_id, node_id) DO UPDATE SET state = excluded.state",
        vec![name.into(), node_id.into(), state.into()],
    );
    for (k, v) in member_config {
        b.push(
            "INSERT OR REPLACE INTO storage_pools_config (storage_pool_id, node_id, key, value) VALUES ((SELECT id FROM storage_pools WHERE name = ?), ?, ?, ?)",
            vec![name.into(), node_id.into(), k.into(), v.into()],
        );
    }
}

/// Sets the pool's description, cluster-wide keys and global state.
pub fn set_global(b: &mut Batch, name: &str, description: &str, config: &BTreeMap<String, String>, state: i64) {
    b.push(
        "UPDATE storage_pools SET description = ?, state = ? WHERE name = ?",
        vec![description.into(), state.into(), name.into()],
    );
    b.push(
        "DELETE FROM storage_pools_config WHERE node_id IS NULL AND storage_pool_id = (SELECT id FROM storage_pools WHERE name = ?)",
        vec![name.into()],
    );
    for (k, v) in config {
        b.push(
            "INSERT INTO storage_pools_config (storage_pool_id, node_id, key, value) VALUES ((SELECT id FROM storage_pools WHERE name = ?), NULL, ?, ?)",
            vec![name.into(), k.into(), v.into()],
        );
    }
}

pub fn set_state(b: &mut Batch, name: &str, state: i64) {
    b.push("UPDATE storage_pools SET state = ? WHERE name = ?", vec![state.into(), name.into()]);
}

/// Each member's part of pool `name`: (node id, state, member-specific config).
pub async fn members_of(db: &GlobalDb, name: &str) -> Result<Vec<(i64, i64, BTreeMap<String, String>)>> {
    let [rows, cfg] = db
        .query_many([
            Stmt::new(
                "SELECT spn.node_id, spn.state FROM storage_pools_nodes spn JOIN storage_pools p ON p.id = spn.storage_pool_id
                 WHERE p.name = ? ORDER BY spn.node_id",
                vec![name.into()],
            ),
            Stmt::new(
                "SELECT c.node_id, c.key, c.value FROM storage_pools_config c JOIN storage_pools p ON p.id = c.storage_pool_id
                 WHERE p.name = ? AND c.node_id IS NOT NULL",
                vec![name.into()],
            ),
        ])
        .await?;
    Ok(rows
        .rows
        .iter()
        .map(|r| {
            let id = int(r, 0);
            let config = cfg.rows.iter().filter(|c| int(c, 0) == id).map(|c| (text(c, 1), text(c, 2))).collect();
            (id, int(r, 1), config)
        })
        .collect())
}
