//! Storage pools on this member's disks: which configuration keys a pool takes (and which of
//! them belong to one member), and the drivers that make a pool's directories and remove
//! them. Only `dir` exists today: a pool is a directory holding `containers/`, `custom/`,
//! `images/` and friends. The records of pools are `store`'s; the pool flow across members is
//! `services::storage_pools`.
//!
//! May call: nothing else in rxd.

pub mod dir;

use std::collections::BTreeMap;

/// Keys that may differ between members.
pub const MEMBER_KEYS: &[&str] =
    &["size", "source", "volatile.initial_source", "zfs.pool_name", "lvm.thinpool_name", "lvm.vg_name"];

/// A storage failure, with the API status it answers with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    Invalid(String),
    #[error("Failed to create storage pool directory {path}: {source}")]
    Create { path: String, source: std::io::Error },
}

impl StorageError {
    pub fn status(&self) -> u16 {
        match self {
            StorageError::Invalid(_) => 400,
            StorageError::Create { .. } => 500,
        }
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

pub fn is_member_key(key: &str) -> bool {
    MEMBER_KEYS.contains(&key)
}

/// Checks a pool's configuration for its driver.
pub fn validate_config(driver: &str, config: &BTreeMap<String, String>) -> Result<()> {
    match driver {
        "dir" => dir::validate(config),
        other => Err(StorageError::Invalid(format!("Storage driver \"{other}\" is not supported (supported: dir)"))),
    }
}

/// Checks a pool definition for one member: only member-specific keys, valid for the driver.
pub fn validate_member_config(driver: &str, config: &BTreeMap<String, String>) -> Result<()> {
    if let Some(k) = config.keys().find(|k| !is_member_key(k)) {
        return Err(StorageError::Invalid(format!("Config key \"{k}\" may not be used as node-specific key")));
    }
    validate_config(driver, config)
}

/// Checks the cluster-wide part of a pool: no member-specific keys.
pub fn validate_cluster_config(driver: &str, config: &BTreeMap<String, String>) -> Result<()> {
    if let Some(k) = config.keys().find(|k| is_member_key(k)) {
        return Err(StorageError::Invalid(format!("Config key \"{k}\" is node-specific")));
    }
    validate_config(driver, config)
}

/// The cluster-wide part of a configuration.
pub fn shared(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    config.iter().filter(|(k, _)| !is_member_key(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The member-specific part of a configuration.
pub fn member_part(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    config.iter().filter(|(k, _)| is_member_key(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}
