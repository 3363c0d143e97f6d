//! Storage pools with the `dir` driver: a pool is a directory holding `containers/`, `custom/`,
//! `images/` and friends. This module validates pool config and creates and removes the
//! directories together with the database records.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::profiles::validate_name;
use super::{Daemon, Error, Result};
use crate::api::{StoragePool, StoragePoolPut, StoragePoolsPost};
use crate::store::Batch;
use crate::store::global::storage_pools::{self as store_pools, STATE_CREATED, STATE_ERRORED};

/// Keys that may differ between members.
pub const MEMBER_KEYS: &[&str] =
    &["size", "source", "volatile.initial_source", "zfs.pool_name", "lvm.thinpool_name", "lvm.vg_name"];
const DIR_KEYS: &[&str] = &["source", "volatile.initial_source", "rsync.bwlimit", "rsync.compression"];
const SUBDIRS: &[&str] = &[
    "containers",
    "containers-snapshots",
    "custom",
    "custom-snapshots",
    "images",
    "virtual-machines",
    "virtual-machines-snapshots",
];

fn validate_config(driver: &str, config: &BTreeMap<String, String>) -> Result<()> {
    if driver != "dir" {
        return Err(Error::BadRequest(format!("Storage driver \"{driver}\" is not supported (supported: dir)")));
    }
    for k in config.keys() {
        if !DIR_KEYS.contains(&k.as_str()) && !k.starts_with("user.") {
            return Err(Error::BadRequest(format!("Invalid option for dir storage driver: \"{k}\"")));
        }
    }
    Ok(())
}

fn status_name(state: i64) -> &'static str {
    match state {
        STATE_CREATED => "Created",
        STATE_ERRORED => "Errored",
        _ => "Pending",
    }
}

/// Checks a pool definition for one member: only member-specific keys, valid for the driver.
pub fn validate_member_config(driver: &str, config: &BTreeMap<String, String>) -> Result<()> {
    for k in config.keys() {
        if !MEMBER_KEYS.contains(&k.as_str()) {
            return Err(Error::BadRequest(format!("Config key \"{k}\" may not be used as node-specific key")));
        }
    }
    validate_config(driver, config)
}

/// Checks the cluster-wide part of a pool: no member-specific keys.
pub fn validate_cluster_config(driver: &str, config: &BTreeMap<String, String>) -> Result<()> {
    if let Some(k) = config.keys().find(|k| MEMBER_KEYS.contains(&k.as_str())) {
        return Err(Error::BadRequest(format!("Config key \"{k}\" is node-specific")));
    }
    validate_config(driver, config)
}

impl Daemon {
    /// Creates the pool's directories on this member (at `source`, or under the daemon's
    /// directory, recording `source` in `config`). Returns the root and whether it was made here.
    fn prepare_pool_dirs(&self, name: &str, config: &mut BTreeMap<String, String>) -> Result<(PathBuf, bool)> {
        let (root, created_root) = match config.get("source").filter(|s| !s.is_empty()) {
            Some(src) => {
                let path = PathBuf::from(src);
                if !path.is_dir() {
                    return Err(Error::BadRequest(format!("Source path '{src}' doesn't exist")));
                }
                (path, false)
            }
            None => {
                let path = self.paths.storage_pools().join(name);
                config.insert("source".into(), path.display().to_string());
                let fresh = !path.exists();
                (path, fresh)
            }
        };
        let make = || -> std::io::Result<()> {
            std::fs::create_dir_all(&root)?;
            for sub in SUBDIRS {
                std::fs::create_dir_all(root.join(sub))?;
            }
            Ok(())
        };
        make().map_err(|e| Error::Internal(format!("Failed to create storage pool directory {}: {e}", root.display())))?;
        Ok((root, created_root))
    }

    /// In a cluster: defines the pool on member `node_id` (pending); nothing is created yet.
    pub async fn define_storage_pool(&self, req: &StoragePoolsPost, node_id: i64, node_name: &str) -> Result<()> {
        validate_name("storage pool", &req.name)?;
        if req.driver.is_empty() {
            return Err(Error::BadRequest("No driver provided".into()));
        }
        validate_member_config(&req.driver, &req.config)?;
        let mut b = Batch::new();
        store_pools::define_pending(&mut b, &req.name, &req.driver, node_id, node_name, &req.config);
        self.global.apply(&b).await?;
        Ok(())
    }

    /// In a cluster: creates this member's part of a pool (its directories) and records it as
    /// created; `req.config` carries the cluster-wide keys plus this member's own.
    pub async fn create_storage_pool_part(&self, req: StoragePoolsPost) -> Result<()> {
        let mut config = req.config.clone();
        let (root, created_root) = self.prepare_pool_dirs(&req.name, &mut config)?;
        let member: BTreeMap<String, String> = config.into_iter().filter(|(k, _)| MEMBER_KEYS.contains(&k.as_str())).collect();
        let mut b = Batch::new();
        store_pools::mark_member(&mut b, &req.name, self.node_id(), STATE_CREATED, &member);
        if let Err(e) = self.global.apply(&b).await {
            if created_root {
                let _ = std::fs::remove_dir_all(&root);
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// In a cluster: removes this member's directories of a pool (the records go with the pool).
    pub fn delete_storage_pool_part(&self, name: &str, source: Option<&str>) {
        remove_pool_dirs(&self.paths.storage_pools().join(name), source.map(PathBuf::from));
    }

    fn pool_to_api(p: store_pools::Pool, used_by: Vec<String>) -> StoragePool {
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

    async fn pool_used_by(&self, name: &str) -> Result<Vec<String>> {
        Ok(store_pools::used_by_profiles(&self.global, name)
            .await?
            .into_iter()
            .map(|(project, profile)| super::profiles::profile_url(&project, &profile))
            .collect())
    }

    pub async fn storage_pools(&self) -> Result<Vec<StoragePool>> {
        let mut out = Vec::new();
        for p in store_pools::list(&self.global, self.node_id()).await? {
            let used = self.pool_used_by(&p.name).await?;
            out.push(Self::pool_to_api(p, used));
        }
        Ok(out)
    }

    pub async fn storage_pool(&self, name: &str) -> Result<StoragePool> {
        let p = store_pools::get(&self.global, self.node_id(), name).await?;
        let used = self.pool_used_by(name).await?;
        Ok(Self::pool_to_api(p, used))
    }

    /// Creates a pool on this (standalone) member: directories first, then the record; the
    /// directories are removed again if the record cannot be written.
    pub async fn create_storage_pool(&self, req: StoragePoolsPost) -> Result<()> {
        validate_name("storage pool", &req.name)?;
        if req.driver.is_empty() {
            return Err(Error::BadRequest("No driver provided".into()));
        }
        validate_config(&req.driver, &req.config)?;
        if store_pools::list(&self.global, self.node_id()).await?.iter().any(|p| p.name == req.name) {
            return Err(Error::Conflict(format!("Storage pool \"{}\" already exists", req.name)));
        }
        let mut config = req.config.clone();
        let (root, created_root) = self.prepare_pool_dirs(&req.name, &mut config)?;
        let pool = store_pools::Pool {
            name: req.name.clone(),
            driver: req.driver,
            description: req.description,
            config,
            ..Default::default()
        };
        let mut b = Batch::new();
        store_pools::create_local(&mut b, self.node_id(), &pool, MEMBER_KEYS);
        if let Err(e) = self.global.apply(&b).await {
            if created_root {
                let _ = std::fs::remove_dir_all(&root);
            }
            return Err(e.into());
        }
        self.events.lifecycle("default", "storage-pool-created", format!("/1.0/storage-pools/{}", req.name), None);
        Ok(())
    }

    pub async fn update_storage_pool(&self, name: &str, put: StoragePoolPut) -> Result<()> {
        let current = store_pools::get(&self.global, self.node_id(), name).await?;
        validate_config(&current.driver, &put.config)?;
        if put.config.get("source").is_some_and(|s| Some(s) != current.config.get("source")) {
            return Err(Error::BadRequest("Pool source cannot be changed when not in pending state".into()));
        }
        let mut config = put.config;
        if let Some(src) = current.config.get("source") {
            config.insert("source".into(), src.clone());
        }
        let mut b = Batch::new();
        store_pools::update(&mut b, self.node_id(), name, &put.description, &config, MEMBER_KEYS);
        self.global.apply(&b).await?;
        self.events.lifecycle("default", "storage-pool-updated", format!("/1.0/storage-pools/{name}"), None);
        Ok(())
    }

    pub async fn delete_storage_pool(&self, name: &str) -> Result<()> {
        let current = store_pools::get(&self.global, self.node_id(), name).await?;
        if !self.pool_used_by(name).await?.is_empty() {
            return Err(Error::BadRequest("The storage pool is currently in use".into()));
        }
        let mut b = Batch::new();
        store_pools::delete(&mut b, name);
        self.global.apply(&b).await?;
        remove_pool_dirs(&self.paths.storage_pools().join(name), current.config.get("source").map(PathBuf::from));
        self.events.lifecycle("default", "storage-pool-deleted", format!("/1.0/storage-pools/{name}"), None);
        Ok(())
    }

    /// Whether pool `name` is in use (by profiles, for now).
    pub async fn storage_pool_in_use(&self, name: &str) -> Result<bool> {
        Ok(!self.pool_used_by(name).await?.is_empty())
    }
}

/// Removes a pool's directories: the whole tree when rxd made it (the default location), only
/// the empty subdirectories it made inside a user-given source.
fn remove_pool_dirs(default_root: &std::path::Path, source: Option<PathBuf>) {
    match source {
        Some(src) if src == default_root => {
            let _ = std::fs::remove_dir_all(&src);
        }
        Some(src) => {
            for sub in SUBDIRS {
                let _ = std::fs::remove_dir(src.join(sub));
            }
        }
        None => {}
    }
}
