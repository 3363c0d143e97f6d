//! `/1.0/storage-pools`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoragePool {
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub used_by: Vec<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub locations: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoragePoolsPost {
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub driver: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoragePoolPut {
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
}
