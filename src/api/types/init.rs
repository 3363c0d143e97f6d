//! The `lxd init --preseed` document. Unknown keys are refused so that a typo is reported, not
//! silently ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::profiles::DevicesMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitPreseed {
    #[serde(default)]
    pub config: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    pub networks: Vec<serde_yaml::Value>,
    #[serde(default)]
    pub storage_pools: Vec<InitStoragePool>,
    #[serde(default)]
    pub profiles: Vec<InitProfile>,
    #[serde(default)]
    pub projects: Vec<InitProject>,
    #[serde(default)]
    pub cluster: Option<InitCluster>,
}

/// The `cluster:` section: bootstrap (no `cluster_address`) or join.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitCluster {
    #[serde(default)]
    pub server_name: String,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub member_config: Vec<super::cluster::ClusterMemberConfigKey>,
    #[serde(default)]
    pub cluster_address: String,
    #[serde(default)]
    pub cluster_certificate: String,
    #[serde(default)]
    pub cluster_certificate_path: String,
    #[serde(default)]
    pub server_address: String,
    #[serde(default)]
    pub cluster_password: String,
    #[serde(default)]
    pub cluster_token: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitStoragePool {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub config: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitProfile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub config: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    pub devices: DevicesMap,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitProject {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub config: BTreeMap<String, serde_yaml::Value>,
}
