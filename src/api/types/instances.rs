//! `/1.0/instances`: the instance object, its state, creation, state changes and exec.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DevicesMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Instance {
    /// What PUT replaces: architecture, config, devices, ephemeral, profiles, stateful,
    /// description (first, in LXD's field order).
    #[serde(flatten)]
    pub put: InstancePut,
    #[serde(default)]
    pub created_at: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub expanded_config: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "super::nullable")]
    pub expanded_devices: DevicesMap,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub status_code: i64,
    #[serde(default)]
    pub last_used_at: String,
    #[serde(default)]
    pub location: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub project: String,
    /// Only with recursion=2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<InstanceState>,
    /// Only with recursion (the "full" instance): snapshots have the instance's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<Vec<Instance>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<Vec<serde_json::Value>>,
}

/// The writable part (PUT).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct InstancePut {
    #[serde(default)]
    pub architecture: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "super::nullable")]
    pub devices: DevicesMap,
    #[serde(default)]
    pub ephemeral: bool,
    #[serde(default, deserialize_with = "super::nullable")]
    pub profiles: Vec<String>,
    #[serde(default)]
    pub stateful: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct InstanceSource {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alias: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(default)]
    pub allow_inconsistent: bool,
    /// For `copy`: the source instance's name, and its project when it differs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct InstancesPost {
    #[serde(flatten)]
    pub put: InstancePut,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub source: InstanceSource,
    #[serde(default)]
    pub instance_type: String,
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// `POST /1.0/instances/<name>`: rename (or, with migration, move).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct InstancePost {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub migration: bool,
    #[serde(default)]
    pub live: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct InstanceStatePut {
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub timeout: i64,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub stateful: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MemoryState {
    pub usage: u64,
    pub usage_peak: u64,
    pub swap_usage: u64,
    pub swap_usage_peak: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuState {
    pub usage: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct InstanceState {
    pub status: String,
    pub status_code: i64,
    #[serde(default)]
    pub disk: serde_json::Value,
    #[serde(default)]
    pub memory: MemoryState,
    #[serde(default)]
    pub network: serde_json::Value,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub processes: i64,
    #[serde(default)]
    pub cpu: CpuState,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ExecPost {
    #[serde(default, deserialize_with = "super::nullable")]
    pub command: Vec<String>,
    #[serde(rename = "wait-for-websocket", default)]
    pub wait_for_websocket: bool,
    #[serde(default)]
    pub interactive: bool,
    #[serde(default, deserialize_with = "super::nullable")]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub width: i64,
    #[serde(default)]
    pub height: i64,
    #[serde(rename = "record-output", default)]
    pub record_output: bool,
    #[serde(default)]
    pub user: u32,
    #[serde(default)]
    pub group: u32,
    #[serde(default)]
    pub cwd: String,
}

/// Instance status as LXD names and numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceStatus {
    Running,
    Stopped,
    Error,
}

impl InstanceStatus {
    pub fn name(self) -> &'static str {
        match self {
            InstanceStatus::Running => "Running",
            InstanceStatus::Stopped => "Stopped",
            InstanceStatus::Error => "Error",
        }
    }
    pub fn code(self) -> i64 {
        match self {
            InstanceStatus::Running => 103,
            InstanceStatus::Stopped => 102,
            InstanceStatus::Error => 112,
        }
    }
}
