//! Storage pools as an API resource, standalone and across a cluster: a pool is defined per
//! member first (`--target`, pending), then created on every member in one call (each member
//! makes its own directories when told to by the one asked), or removed everywhere. At join
//! time the leader refuses a joiner whose pools differ from the cluster's (member-specific
//! keys aside), and the joiner records its own pool sources once it is a member.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::profiles::profile_url;
use super::validation::validate_name;
use super::{Error, Result};
use crate::api::{ClusterMemberConfigKey, StoragePool, StoragePoolPut, StoragePoolsPost, etag_of};
use crate::client::Connection;
use crate::cluster::{Cluster, NOTIFIER_AGENT, Peer};
use crate::events::EventHub;
use crate::paths::Paths;
use crate::storage::{self, dir, is_member_key};
use crate::store::Batch;
use crate::store::global::storage_pools::{self as store, STATE_CREATED, STATE_ERRORED};
use crate::store::global::{GlobalDb, nodes as store_nodes};

fn status_name(state: i64) -> &'static str {
    match state {
        STATE_CREATED => "Created",
        STATE_ERRORED => "Errored",
        _ => "Pending",
    }
}

/// The ETag of a pool as one view shows it: its configuration and description.
fn etag(p: &StoragePool) -> String {
    etag_of(&(&p.config, &p.description))
}

/// Who asks to create or delete a pool, which decides what the call does.
#[derive(Clone, Debug)]
pub enum Scope {
    /// A client of a standalone member, or of a cluster without `?target=`: the whole pool.
    Whole,
    /// `?target=<member>` in a cluster: only that member's definition.
    Member(String),
    /// Another member telling this one to create or delete its own part.
    OwnPart,
}

pub struct Pools {
    paths: Paths,
    global: GlobalDb,
    cluster: Arc<Cluster>,
    events: Arc<EventHub>,
}

impl Pools {
    pub fn new(paths: Paths, global: GlobalDb, cluster: Arc<Cluster>, events: Arc<EventHub>) -> Pools {
        Pools { paths, global, cluster, events }
    }

    fn default_root(&self, name: &str) -> PathBuf {
        self.paths.storage_pools().join(name)
    }

    fn to_api(p: store::Pool, used_by: Vec<String>) -> StoragePool {
        StoragePool {
            config: p.config,
            description: p.description,
            name: p.name,
            driver: p.driver,
            used_by,
            status: status_name(p.state).into(),
            locations: p.locations,
        }
    }

    /// In a cluster, without `?target`, a pool shows only its cluster-wide keys.
    fn view(&self, mut pool: StoragePool, targeted: bool) -> StoragePool {
        if self.cluster.is_clustered() && !targeted {
            pool.config.retain(|k, _| !is_member_key(k));
        }
        pool
    }

    async fn used_by(&self, name: &str) -> Result<Vec<String>> {
        Ok(store::used_by_profiles(&self.global, name)
            .await?
            .into_iter()
            .map(|(project, profile)| profile_url(&project, &profile))
            .collect())
    }

    /// The pools as this member sees them (`targeted`: with its member-specific keys).
    pub async fn list(&self, targeted: bool) -> Result<Vec<StoragePool>> {
        let mut out = Vec::new();
        for p in store::list(&self.global, self.cluster.node_id()).await? {
            let used = self.used_by(&p.name).await?;
            out.push(self.view(Self::to_api(p, used), targeted));
        }
        Ok(out)
    }

    /// One pool as this member sees it, with its ETag.
    pub async fn get(&self, name: &str, targeted: bool) -> Result<(StoragePool, String)> {
        let (p, _) = store::get(&self.global, self.cluster.node_id(), name).await?;
        let used = self.used_by(name).await?;
        let pool = self.view(Self::to_api(p, used), targeted);
        let etag = etag(&pool);
        Ok((pool, etag))
    }

    /// The directory a pool keeps its contents in on this member.
    pub async fn root(&self, pool: &str) -> Result<PathBuf> {
        let (p, _) = store::get(&self.global, self.cluster.node_id(), pool).await?;
        Ok(p.config.get("source").filter(|s| !s.is_empty()).map(PathBuf::from).unwrap_or_else(|| self.default_root(pool)))
    }

    /// Whether pool `name` is in use (by profiles, for now).
    pub async fn in_use(&self, name: &str) -> Result<bool> {
        Ok(!self.used_by(name).await?.is_empty())
    }

    /// The member-specific keys a joiner is asked for (`member_config` of `GET /1.0/cluster`).
    pub async fn member_config_keys(&self) -> Result<Vec<ClusterMemberConfigKey>> {
        Ok(self
            .list(false)
            .await?
            .into_iter()
            .filter(|p| p.driver == "dir")
            .map(|p| ClusterMemberConfigKey {
                entity: "storage-pool".into(),
                key: "source".into(),
                value: String::new(),
                description: format!("\"source\" property for storage pool \"{}\"", p.name),
                name: p.name,
            })
            .collect())
    }

    /// `POST /1.0/storage-pools`.
    pub async fn create(&self, req: StoragePoolsPost, scope: Scope) -> Result<()> {
        if !self.cluster.is_clustered() {
            return self.create_local(req).await;
        }
        match scope {
            Scope::OwnPart => self.create_own_part(req).await,
            Scope::Member(target) => {
                let node = store_nodes::list(&self.global)
                    .await?
                    .into_iter()
                    .find(|n| n.name == target)
                    .ok_or_else(|| Error::NotFound(format!("No cluster member called '{target}'")))?;
                self.define(&req, node.id, &node.name).await
            }
            Scope::Whole => self.create_everywhere(req).await,
        }
    }

    /// Creates a pool on this (standalone) member: directories first, then the record; the
    /// directories are removed again if the record cannot be written.
    async fn create_local(&self, req: StoragePoolsPost) -> Result<()> {
        validate_name("storage pool", &req.name)?;
        if req.driver.is_empty() {
            return Err(Error::BadRequest("No driver provided".into()));
        }
        storage::validate_config(&req.driver, &req.config)?;
        if store::names(&self.global).await?.contains(&req.name) {
            return Err(Error::Conflict(format!("Storage pool \"{}\" already exists", req.name)));
        }
        let mut config = req.config.clone();
        let (root, created_root) = dir::create(&self.default_root(&req.name), &mut config)?;
        let pool = store::Pool {
            name: req.name.clone(),
            driver: req.driver,
            description: req.description,
            config,
            ..Default::default()
        };
        let mut b = Batch::new();
        store::create_local(&mut b, self.cluster.node_id(), &pool, storage::MEMBER_KEYS);
        if let Err(e) = self.global.apply(&b).await {
            if created_root {
                dir::remove(&root, Some(&root));
            }
            return Err(e.into());
        }
        self.events.lifecycle("default", "storage-pool-created", format!("/1.0/storage-pools/{}", req.name), None);
        Ok(())
    }

    /// In a cluster: defines the pool on member `node_id` (pending); nothing is created yet.
    async fn define(&self, req: &StoragePoolsPost, node_id: i64, node_name: &str) -> Result<()> {
        validate_name("storage pool", &req.name)?;
        if req.driver.is_empty() {
            return Err(Error::BadRequest("No driver provided".into()));
        }
        storage::validate_member_config(&req.driver, &req.config)?;
        let mut b = Batch::new();
        store::define_pending(&mut b, &req.name, &req.driver, node_id, node_name, &req.config);
        self.global.apply(&b).await?;
        Ok(())
    }

    /// In a cluster: creates this member's part of a pool (its directories) and records it as
    /// created; `req.config` carries the cluster-wide keys plus this member's own.
    async fn create_own_part(&self, req: StoragePoolsPost) -> Result<()> {
        let mut config = req.config.clone();
        let (root, created_root) = dir::create(&self.default_root(&req.name), &mut config)?;
        let mut b = Batch::new();
        store::mark_member(&mut b, &req.name, self.cluster.node_id(), STATE_CREATED, &storage::member_part(&config));
        if let Err(e) = self.global.apply(&b).await {
            if created_root {
                dir::remove(&root, Some(&root));
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Every other member, or "peer node <address> is down" when one of them is not reachable
    /// (operations that change every member's part need all of them).
    async fn all_peers_up(&self) -> Result<Vec<Peer>> {
        let rt = self.cluster.clustered()?;
        let online = rt.online_others().await?;
        let mut peers = Vec::new();
        for n in store_nodes::list(&self.global).await? {
            if n.id as u64 == rt.id || n.state == store_nodes::STATE_PENDING {
                continue;
            }
            match online.iter().find(|p| p.id == n.id) {
                Some(p) => peers.push(p.clone()),
                None => return Err(Error::Internal(format!("peer node {} is down", n.address))),
            }
        }
        Ok(peers)
    }

    /// `POST /1.0/storage-pools` in a cluster (no target): the pool, defined per member with
    /// `--target`, is created on every member. Nothing is changed while a member is down.
    async fn create_everywhere(&self, req: StoragePoolsPost) -> Result<()> {
        let node_id = self.cluster.node_id();
        let existing = store::list(&self.global, node_id).await?.into_iter().find(|p| p.name == req.name);
        let members = store_nodes::list(&self.global).await?;
        let single = members.iter().filter(|n| n.state != store_nodes::STATE_PENDING).count() == 1;
        if existing.is_none() && single {
            return self.create_local(req).await;
        }
        storage::validate_cluster_config(&req.driver, &req.config).map_err(|e| Error::Internal(e.to_string()))?;
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
        let partial = pool.state == STATE_ERRORED;
        if partial && !req.config.is_empty() {
            return Err(Error::Internal(
                "Storage pool already partially created. Please do not specify any global config when re-running create".into(),
            ));
        }
        let peers = self.all_peers_up().await?;
        let parts = store::members_of(&self.global, &req.name).await?;
        let global: BTreeMap<String, String> = if partial {
            let cluster_wide = store::list(&self.global, 0).await?.into_iter().find(|p| p.name == req.name);
            storage::shared(&cluster_wide.map(|p| p.config).unwrap_or_default())
        } else {
            req.config.clone()
        };
        // Assume failure until every member has its part.
        let mut b = Batch::new();
        store::set_global(&mut b, &req.name, &req.description, &global, STATE_ERRORED);
        self.global.apply(&b).await?;
        let part_of = |id: i64| parts.iter().find(|(n, _, _)| *n == id);
        let request_for = |id: i64| {
            let mut config = global.clone();
            if let Some((_, _, own)) = part_of(id) {
                config.extend(own.clone());
            }
            StoragePoolsPost { config, description: req.description.clone(), name: req.name.clone(), driver: pool.driver.clone() }
        };
        if part_of(node_id).is_none_or(|(_, state, _)| *state != STATE_CREATED) {
            self.create_own_part(request_for(node_id)).await?;
        }
        let rt = self.cluster.clustered()?;
        for peer in peers {
            if part_of(peer.id).is_some_and(|(_, state, _)| *state == STATE_CREATED) {
                continue;
            }
            let body = serde_json::to_vec(&request_for(peer.id))
                .map_err(|e| Error::Internal(format!("encoding the pool for {}: {e}", peer.name)))?;
            let reply = rt.send(&peer.address, "POST", "/1.0/storage-pools", Some(body), &[]).await?;
            if reply.status >= 300 {
                return Err(Error::Internal(format!(
                    "Failed to create storage pool on member {}: {}",
                    peer.name,
                    reply.error_text()
                )));
            }
        }
        let mut b = Batch::new();
        store::set_state(&mut b, &req.name, STATE_CREATED);
        self.global.apply(&b).await?;
        self.events.lifecycle("default", "storage-pool-created", format!("/1.0/storage-pools/{}", req.name), None);
        Ok(())
    }

    /// PUT (or, with `patch`, PATCH) of a pool's description and configuration as this
    /// member's view shows it (`targeted`: with its member-specific keys).
    pub async fn update(
        &self,
        name: &str,
        mut put: StoragePoolPut,
        patch: bool,
        targeted: bool,
        if_match: Option<&str>,
    ) -> Result<()> {
        let node_id = self.cluster.node_id();
        let (stored, version) = store::get(&self.global, node_id, name).await?;
        let used = self.used_by(name).await?;
        let current = self.view(Self::to_api(stored.clone(), used), targeted);
        if let Some(given) = if_match {
            let current_etag = etag(&current);
            if current_etag != given {
                return Err(Error::etag_mismatch(&current_etag, given));
            }
        }
        if self.cluster.is_clustered() {
            if let Some(k) = put.config.keys().find(|k| is_member_key(k)) {
                return Err(Error::BadRequest(format!("Config key \"{k}\" is node-specific")));
            }
            if current.status != "Created" {
                return Err(Error::BadRequest("Cannot update storage pool global config when not in created state".into()));
            }
        }
        if patch {
            let mut config = current.config.clone();
            config.extend(put.config);
            put.config = config;
        }
        storage::validate_config(&stored.driver, &put.config)?;
        if put.config.get("source").is_some_and(|s| Some(s) != stored.config.get("source")) {
            return Err(Error::BadRequest("Pool source cannot be changed when not in pending state".into()));
        }
        let mut config = put.config;
        if let Some(src) = stored.config.get("source") {
            config.insert("source".into(), src.clone());
        }
        let mut b = Batch::new();
        if if_match.is_some() {
            b.require_unchanged(&version, "ETag doesn't match: the storage pool changed meanwhile");
        }
        store::update(&mut b, node_id, name, &put.description, &config, storage::MEMBER_KEYS);
        self.global.apply(&b).await?;
        self.events.lifecycle("default", "storage-pool-updated", format!("/1.0/storage-pools/{name}"), None);
        Ok(())
    }

    /// `DELETE /1.0/storage-pools/<name>`.
    pub async fn delete(&self, name: &str, scope: Scope) -> Result<()> {
        match (self.cluster.is_clustered(), scope) {
            (false, _) => self.delete_local(name).await,
            (true, Scope::OwnPart) => {
                let (own, _) = store::get(&self.global, self.cluster.node_id(), name).await?;
                dir::remove(&self.default_root(name), own.config.get("source").map(std::path::Path::new));
                Ok(())
            }
            (true, _) => self.delete_everywhere(name).await,
        }
    }

    async fn delete_local(&self, name: &str) -> Result<()> {
        let (current, _) = store::get(&self.global, self.cluster.node_id(), name).await?;
        if self.in_use(name).await? {
            return Err(Error::BadRequest("The storage pool is currently in use".into()));
        }
        let mut b = Batch::new();
        store::delete(&mut b, name);
        self.global.apply(&b).await?;
        dir::remove(&self.default_root(name), current.config.get("source").map(std::path::Path::new));
        self.events.lifecycle("default", "storage-pool-deleted", format!("/1.0/storage-pools/{name}"), None);
        Ok(())
    }

    /// In a cluster: every member removes its part (all must be up), then the records go.
    async fn delete_everywhere(&self, name: &str) -> Result<()> {
        let node_id = self.cluster.node_id();
        let (pool, _) = store::get(&self.global, node_id, name).await?;
        if self.in_use(name).await? {
            return Err(Error::BadRequest("The storage pool is currently in use".into()));
        }
        let peers = self.all_peers_up().await?;
        let parts = store::members_of(&self.global, name).await?;
        let rt = self.cluster.clustered()?;
        for peer in peers {
            if !parts.iter().any(|(id, state, _)| *id == peer.id && *state == STATE_CREATED) {
                continue;
            }
            let reply = rt.send(&peer.address, "DELETE", &format!("/1.0/storage-pools/{name}"), None, &[]).await?;
            if reply.status >= 300 {
                return Err(Error::Internal(format!(
                    "Failed to delete storage pool on member {}: {}",
                    peer.name,
                    reply.error_text()
                )));
            }
        }
        if parts.iter().any(|(id, state, _)| *id == node_id && *state == STATE_CREATED) {
            dir::remove(&self.default_root(name), pool.config.get("source").map(std::path::Path::new));
        }
        let mut b = Batch::new();
        store::delete(&mut b, name);
        self.global.apply(&b).await?;
        self.events.lifecycle("default", "storage-pool-deleted", format!("/1.0/storage-pools/{name}"), None);
        Ok(())
    }

    /// On a joiner, before it asks to be admitted: creates locally every pool the cluster has
    /// and this member lacks, with the member-specific keys the user gave (`member_config`).
    /// Returns the names created, for undo.
    pub async fn create_missing(&self, cluster: &Connection, member_config: &[ClusterMemberConfigKey]) -> Result<Vec<String>> {
        let theirs: Vec<StoragePool> = cluster
            .get_json("/1.0/storage-pools?recursion=1")
            .await
            .map_err(|e| Error::Internal(format!("Failed to initialize member: {e}")))?;
        let ours = store::names(&self.global).await?;
        let mut created = Vec::new();
        for pool in theirs.into_iter().filter(|p| p.status != "Pending" && !ours.contains(&p.name)) {
            let mut config = storage::shared(&pool.config);
            for c in member_config.iter().filter(|c| c.entity == "storage-pool" && c.name == pool.name) {
                if is_member_key(&c.key) && !c.value.is_empty() {
                    config.insert(c.key.clone(), c.value.clone());
                } else {
                    tracing::warn!(pool = %pool.name, key = %c.key, "ignoring a key that is not member-specific");
                }
            }
            let req = StoragePoolsPost { config, description: pool.description, name: pool.name.clone(), driver: pool.driver };
            if let Err(e) = self.create_local(req).await {
                self.undo_created(&created).await;
                return Err(Error::Internal(format!("Failed to initialize member: {e}")));
            }
            created.push(pool.name);
        }
        Ok(created)
    }

    /// Removes the pools [`Self::create_missing`] made, when the join fails later.
    pub async fn undo_created(&self, names: &[String]) {
        for name in names {
            if let Err(e) = self.delete_local(name).await {
                tracing::warn!(pool = %name, error = %e, "cannot remove a pool made for a failed join");
            }
        }
    }

    /// On the leader: every created pool of the cluster must exist on the joiner with the same
    /// driver and the same cluster-wide config.
    pub async fn check_joiner(&self, joiner: &[StoragePool]) -> Result<()> {
        // Node id 0 matches no member: only the cluster-wide keys are read.
        for pool in store::list(&self.global, 0).await?.into_iter().filter(|p| p.state == STATE_CREATED) {
            let Some(theirs) = joiner.iter().find(|p| p.name == pool.name) else {
                return Err(Error::BadRequest(format!("Missing storage pool {}", pool.name)));
            };
            if theirs.driver != pool.driver {
                return Err(Error::BadRequest(format!("Mismatching driver for storage pool {}", pool.name)));
            }
            let (ours, their_cfg) = (storage::shared(&pool.config), storage::shared(&theirs.config));
            let mut keys: Vec<&String> =
                ours.keys().chain(their_cfg.keys()).filter(|k| ours.get(*k) != their_cfg.get(*k)).collect();
            keys.sort();
            keys.dedup();
            if !keys.is_empty() {
                let keys: Vec<&str> = keys.into_iter().map(String::as_str).collect();
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
    pub async fn adopt(&self, node_id: i64, own: &[StoragePool]) -> Result<()> {
        let mut b = Batch::new();
        for pool in store::list(&self.global, 0).await?.into_iter().filter(|p| p.state == STATE_CREATED) {
            let member = own.iter().find(|p| p.name == pool.name).map(|p| storage::member_part(&p.config)).unwrap_or_default();
            store::add_member(&mut b, &pool.name, node_id, &member);
        }
        if !b.is_empty() {
            self.global.apply(&b).await?;
        }
        Ok(())
    }

    /// The user agent that marks a request as one member telling another to act on its part.
    pub fn is_notification(from_member: bool, user_agent: Option<&str>) -> bool {
        from_member && user_agent == Some(NOTIFIER_AGENT)
    }
}
