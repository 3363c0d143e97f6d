//! `/1.0/cluster` and `/1.0/cluster/members`, plus the internal join messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterMemberConfigKey {
    #[serde(default)]
    pub entity: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cluster {
    pub server_name: String,
    pub enabled: bool,
    #[serde(default, deserialize_with = "super::nullable")]
    pub member_config: Vec<ClusterMemberConfigKey>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterPut {
    #[serde(default)]
    pub server_name: String,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, deserialize_with = "super::nullable")]
    pub member_config: Vec<ClusterMemberConfigKey>,
    #[serde(default)]
    pub cluster_address: String,
    #[serde(default)]
    pub cluster_certificate: String,
    #[serde(default)]
    pub server_address: String,
    #[serde(default)]
    pub cluster_password: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterMember {
    #[serde(default, deserialize_with = "super::nullable")]
    pub roles: Vec<String>,
    #[serde(default)]
    pub failure_domain: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "super::nullable")]
    pub groups: Vec<String>,
    #[serde(default)]
    pub server_name: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub database: bool,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub architecture: String,
}

/// One raft member as the accept answer and `raft_nodes` carry it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RaftMember {
    pub id: u64,
    pub address: String,
    pub role: i64,
    pub name: String,
}

/// `POST /internal/cluster/accept`: a joiner asks the leader to admit it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AcceptRequest {
    pub name: String,
    pub address: String,
    pub schema: i64,
    pub api: i64,
    #[serde(default)]
    pub architecture: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AcceptResponse {
    pub raft_nodes: Vec<RaftMember>,
    /// The cluster certificate's private key (PEM).
    pub private_key: String,
}
