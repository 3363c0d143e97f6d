//! Storage pools at join time: the leader refuses a joiner whose pools differ from the
//! cluster's (except in member-specific keys), and the joiner records its own pool sources once
//! it is a member.

use std::collections::BTreeMap;

use crate::api::{ClusterMemberConfigKey, StoragePool, StoragePoolsPost};
use crate::client::Connection;
use crate::daemon::storage::MEMBER_KEYS;
use crate::daemon::{Daemon, Error, Result};
use crate::store::Batch;
use crate::store::global::storage_pools::{self as store_pools, STATE_CREATED};

/// On the joiner, before asking to be admitted: creates locally every pool the cluster has and
/// this member lacks, with the member-specific keys the user gave (`member_config`). Returns
/// the names created, for undo.
pub async fn create_missing(d: &Daemon, cluster: &Connection, member_config: &[ClusterMemberConfigKey]) -> Result<Vec<String>> {
    let theirs: Vec<StoragePool> = cluster
        .get_json("/1.0/storage-pools?recursion=1")
        .await
        .map_err(|e| Error::Internal(format!("Failed to initialize member: {e}")))?;
    let ours: Vec<String> = d.storage_pools().await?.into_iter().map(|p| p.name).collect();
    let mut created = Vec::new();
    for pool in theirs.into_iter().filter(|p| p.status != "Pending" && !ours.contains(&p.name)) {
        let mut config: BTreeMap<String, String> =
            pool.config.into_iter().filter(|(k, _)| !MEMBER_KEYS.contains(&k.as_str())).collect();
        for c in member_config.iter().filter(|c| c.entity == "storage-pool" && c.name == pool.name) {
            if MEMBER_KEYS.contains(&c.key.as_str()) && !c.value.is_empty() {
                config.insert(c.key.clone(), c.value.clone());
            } else {
                tracing::warn!(pool = %pool.name, key = %c.key, "ignoring a key that is not member-specific");
            }
        }
        let req = StoragePoolsPost { config, description: pool.description, name: pool.name.clone(), driver: pool.driver };
        if let Err(e) = d.create_storage_pool(req).await {
            undo_created(d, &created).await;
            return Err(Error::Internal(format!("Failed to initialize member: {e}")));
        }
        created.push(pool.name);
    }
    Ok(created)
}

/// Removes the pools [`create_missing`] made, when the join fails later.
pub async fn undo_created(d: &Daemon, names: &[String]) {
    for name in names {
        let _ = d.delete_storage_pool(name).await;
    }
}

/// The joiner's pools, read before its own global data is replaced by the cluster's.
pub async fn local_pools(d: &Daemon) -> Result<Vec<StoragePool>> {
    d.storage_pools().await
}

fn shared(config: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    config.iter().filter(|(k, _)| !MEMBER_KEYS.contains(&k.as_str())).map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// On the leader: every created pool of the cluster must exist on the joiner with the same
/// driver and the same cluster-wide config.
pub async fn check_match(d: &Daemon, joiner: &[StoragePool]) -> Result<()> {
    // Node id 0 matches no member: only the cluster-wide keys are read.
    for pool in store_pools::list(&d.global, 0).await?.into_iter().filter(|p| p.state == STATE_CREATED) {
        let Some(theirs) = joiner.iter().find(|p| p.name == pool.name) else {
            return Err(Error::BadRequest(format!("Missing storage pool {}", pool.name)));
        };
        if theirs.driver != pool.driver {
            return Err(Error::BadRequest(format!("Mismatching driver for storage pool {}", pool.name)));
        }
        let (ours, their_cfg) = (shared(&pool.config), shared(&theirs.config));
        let mut keys: Vec<&str> =
            ours.keys().chain(their_cfg.keys()).copied().filter(|k| ours.get(k) != their_cfg.get(k)).collect();
        keys.sort();
        keys.dedup();
        if !keys.is_empty() {
            return Err(Error::BadRequest(format!(
                "Mismatching config for storage pool {}: different values for keys: {}",
                pool.name,
                keys.join(", ")
            )));
        }
    }
    Ok(())
}

/// On the joiner, once it is a member: its pools join the cluster's under its id.
pub async fn adopt(d: &Daemon, node_id: i64, own: &[StoragePool]) -> Result<()> {
    let mut b = Batch::new();
    for pool in store_pools::list(&d.global, 0).await?.into_iter().filter(|p| p.state == STATE_CREATED) {
        let member: BTreeMap<String, String> = own
            .iter()
            .find(|p| p.name == pool.name)
            .map(|p| {
                p.config.iter().filter(|(k, _)| MEMBER_KEYS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
            })
            .unwrap_or_default();
        store_pools::add_member(&mut b, &pool.name, node_id, &member);
    }
    if !b.is_empty() {
        d.global.apply(&b).await?;
    }
    Ok(())
}
