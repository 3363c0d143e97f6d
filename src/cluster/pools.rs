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

/// Every other member, or "peer node <address> is down" when one of them is not reachable
/// (operations that change every member's part need all of them).
pub async fn all_peers_up(d: &Daemon) -> Result<Vec<crate::store::global::nodes::Node>> {
    let rt = d.cluster_runtime().ok_or_else(|| Error::BadRequest("This server is not clustered".into()))?;
    let cfg = crate::store::global::config::get_all(&d.global).await?;
    let threshold = super::rebalance::offline_threshold(&cfg);
    let now = crate::util::time::now_nanos();
    let mut peers = Vec::new();
    for n in crate::store::global::nodes::list(&d.global).await? {
        if n.id as u64 == rt.id || n.state == crate::store::global::nodes::STATE_PENDING {
            continue;
        }
        if !super::rebalance::heartbeat_fresh(&n, threshold, now) {
            return Err(Error::Internal(format!("peer node {} is down", n.address)));
        }
        peers.push(n);
    }
    Ok(peers)
}

/// `POST /1.0/storage-pools` in a cluster (no target): the pool, defined per member with
/// `--target`, is created on every member. Nothing is changed while a member is down.
pub async fn create_everywhere(d: &Daemon, req: StoragePoolsPost) -> Result<()> {
    use crate::daemon::storage::validate_cluster_config;
    let existing = store_pools::list(&d.global, d.node_id()).await?.into_iter().find(|p| p.name == req.name);
    let members = crate::store::global::nodes::list(&d.global).await?;
    let single = members.iter().filter(|n| n.state != crate::store::global::nodes::STATE_PENDING).count() == 1;
    if existing.is_none() && single {
        return d.create_storage_pool(req).await;
    }
    validate_cluster_config(&req.driver, &req.config).map_err(|e| Error::Internal(e.to_string()))?;
    let Some(pool) = existing else {
        return Err(Error::Internal("Pool not pending on any node (use --target <node> first)".into()));
    };
    if pool.state == STATE_CREATED {
        return Err(Error::Internal("The storage pool is already created".into()));
    }
    if !req.driver.is_empty() && req.driver != pool.driver {
        return Err(Error::Internal(format!(
            "Requested storage pool driver \"{}\" doesn't match driver in existing database record \"{}\"",
            req.driver, pool.driver
        )));
    }
    let partial = pool.state == store_pools::STATE_ERRORED;
    if partial && !req.config.is_empty() {
        return Err(Error::Internal(
            "Storage pool already partially created. Please do not specify any global config when re-running create".into(),
        ));
    }
    let peers = all_peers_up(d).await?;
    let parts = store_pools::members_of(&d.global, &req.name).await?;
    let global: BTreeMap<String, String> = if partial {
        shared(
            &store_pools::list(&d.global, 0)
                .await?
                .into_iter()
                .find(|p| p.name == req.name)
                .map(|p| p.config)
                .unwrap_or_default(),
        )
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    } else {
        req.config.clone()
    };
    // Assume failure until every member has its part.
    let mut b = Batch::new();
    store_pools::set_global(&mut b, &req.name, &req.description, &global, store_pools::STATE_ERRORED);
    d.global.apply(&b).await?;
    let part_of = |id: i64| parts.iter().find(|(n, _, _)| *n == id);
    let request_for = |id: i64| {
        let mut config = global.clone();
        if let Some((_, _, own)) = part_of(id) {
            config.extend(own.clone());
        }
        StoragePoolsPost { config, description: req.description.clone(), name: req.name.clone(), driver: pool.driver.clone() }
    };
    if part_of(d.node_id()).is_none_or(|(_, state, _)| *state != STATE_CREATED) {
        d.create_storage_pool_part(request_for(d.node_id())).await?;
    }
    for peer in peers {
        if part_of(peer.id).is_some_and(|(_, state, _)| *state == STATE_CREATED) {
            continue;
        }
        let body = serde_json::to_vec(&request_for(peer.id)).map_err(|e| Error::Internal(e.to_string()))?;
        let (status, _, reply) = super::forward::send(d, &peer.address, "POST", "/1.0/storage-pools", Some(body), &[]).await?;
        if status >= 300 {
            let msg = serde_json::from_slice::<crate::api::Envelope>(&reply).map(|e| e.error).unwrap_or_default();
            return Err(Error::Internal(format!("Failed to create storage pool on member {}: {msg}", peer.name)));
        }
    }
    let mut b = Batch::new();
    store_pools::set_state(&mut b, &req.name, STATE_CREATED);
    d.global.apply(&b).await?;
    d.events.lifecycle("default", "storage-pool-created", format!("/1.0/storage-pools/{}", req.name), None);
    Ok(())
}

/// `DELETE /1.0/storage-pools/<name>` in a cluster: every member removes its part (all must be
/// up), then the records go.
pub async fn delete_everywhere(d: &Daemon, name: &str) -> Result<()> {
    let pool = store_pools::get(&d.global, d.node_id(), name).await?;
    if d.storage_pool_in_use(name).await? {
        return Err(Error::BadRequest("The storage pool is currently in use".into()));
    }
    let peers = all_peers_up(d).await?;
    let parts = store_pools::members_of(&d.global, name).await?;
    for peer in peers {
        if !parts.iter().any(|(id, state, _)| *id == peer.id && *state == STATE_CREATED) {
            continue;
        }
        let (status, _, reply) =
            super::forward::send(d, &peer.address, "DELETE", &format!("/1.0/storage-pools/{name}"), None, &[]).await?;
        if status >= 300 {
            let msg = serde_json::from_slice::<crate::api::Envelope>(&reply).map(|e| e.error).unwrap_or_default();
            return Err(Error::Internal(format!("Failed to delete storage pool on member {}: {msg}", peer.name)));
        }
    }
    if parts.iter().any(|(id, state, _)| *id == d.node_id() && *state == STATE_CREATED) {
        d.delete_storage_pool_part(name, pool.config.get("source").map(String::as_str));
    }
    let mut b = Batch::new();
    store_pools::delete(&mut b, name);
    d.global.apply(&b).await?;
    d.events.lifecycle("default", "storage-pool-deleted", format!("/1.0/storage-pools/{name}"), None);
    Ok(())
}
