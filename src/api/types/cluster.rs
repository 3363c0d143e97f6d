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
    /// The writable part (roles, failure domain, description, config, groups), inlined.
    #[serde(flatten)]
    pub writable: ClusterMemberPut,
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

impl ClusterMember {
    /// The member's `host:port` (its URL without the scheme).
    pub fn url_address(&self) -> String {
        self.url.trim_start_matches("https://").trim_end_matches('/').to_string()
    }
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
    #[serde(default, deserialize_with = "super::nullable")]
    pub storage_pools: Vec<super::StoragePool>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AcceptResponse {
    pub raft_nodes: Vec<RaftMember>,
    /// The cluster certificate's private key (PEM).
    pub private_key: String,
}

/// `PUT/PATCH /1.0/cluster/members/<name>`: the writable part of a member.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterMemberPut {
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
}

/// `POST /1.0/cluster/members` (a join token) and `POST /1.0/cluster/members/<name>` (rename).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterMemberPost {
    #[serde(default)]
    pub server_name: String,
}

/// The join token as `lxc cluster add` prints it (base64 of this JSON).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterJoinToken {
    pub server_name: String,
    pub fingerprint: String,
    pub addresses: Vec<String>,
    pub secret: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expires_at: String,
}

impl ClusterJoinToken {
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes a token; None when the text is not one.
    pub fn decode(text: &str) -> Option<ClusterJoinToken> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?;
        let t: ClusterJoinToken = serde_json::from_slice(&raw).ok()?;
        (!t.secret.is_empty() && !t.server_name.is_empty()).then_some(t)
    }
}

/// `POST /internal/cluster/heartbeat`: the leader's periodic message to every member.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Every member with its database role (spares included).
    pub members: Vec<RaftMember>,
    /// The highest (schema, API count) any member runs.
    pub schema: i64,
    pub api: i64,
    pub time: String,
    /// The sender's raft id (the leader).
    #[serde(default)]
    pub leader: u64,
    /// How far each replica's log reached when last heard of.
    #[serde(default, deserialize_with = "super::nullable")]
    pub positions: Vec<ReplicaPosition>,
    /// Every admitted member with its address, state and last answered heartbeat, as the
    /// leader recorded them: what each member's directory is refreshed from.
    #[serde(default, deserialize_with = "super::nullable")]
    pub directory: Vec<DirectoryEntry>,
    /// `cluster.offline_threshold` in seconds (0: not sent).
    #[serde(default)]
    pub offline_threshold: u64,
}

/// One member as the member directory knows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub id: u64,
    pub name: String,
    pub address: String,
    /// `nodes.state`: created, pending or evacuated.
    pub state: i64,
    /// When the member last answered a heartbeat (RFC 3339).
    pub heartbeat: String,
}

/// A replica's log end as a heartbeat reports it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplicaPosition {
    pub id: u64,
    pub last_index: u64,
    pub term: u64,
    pub seen_at: String,
}

/// `POST /internal/cluster/assign`: the leader gives the receiver the role listed for it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AssignRequest {
    pub raft_nodes: Vec<RaftMember>,
    /// A new replica answers once it has applied at least this index.
    #[serde(default)]
    pub catch_up_to: u64,
}

/// `POST /internal/cluster/handover`: a member shutting down asks the leader to pass its role on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HandoverRequest {
    pub address: String,
}

/// `/1.0/cluster/groups/<name>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterGroup {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub members: Vec<String>,
}

/// `PUT/PATCH /1.0/cluster/groups/<name>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterGroupPut {
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub members: Vec<String>,
}
