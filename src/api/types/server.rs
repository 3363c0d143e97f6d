//! `GET/PUT/PATCH /1.0`: server information and server configuration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What an untrusted client sees.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerUntrusted {
    pub api_extensions: Vec<String>,
    pub api_status: String,
    pub api_version: String,
    pub auth: String,
    pub public: bool,
    pub auth_methods: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StorageDriverInfo {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Remote")]
    pub remote: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerEnvironment {
    #[serde(default, deserialize_with = "super::nullable")]
    pub addresses: Vec<String>,
    #[serde(default, deserialize_with = "super::nullable")]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub certificate: String,
    #[serde(default)]
    pub certificate_fingerprint: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub driver_version: String,
    #[serde(default)]
    pub firewall: String,
    #[serde(default)]
    pub kernel: String,
    #[serde(default)]
    pub kernel_architecture: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub kernel_features: BTreeMap<String, String>,
    #[serde(default)]
    pub kernel_version: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub lxc_features: BTreeMap<String, String>,
    #[serde(default)]
    pub os_name: String,
    #[serde(default)]
    pub os_version: String,
    #[serde(default)]
    pub project: String,
    #[serde(default)]
    pub server: String,
    #[serde(default)]
    pub server_clustered: bool,
    #[serde(default)]
    pub server_event_mode: String,
    #[serde(default)]
    pub server_name: String,
    #[serde(default)]
    pub server_pid: i64,
    #[serde(default)]
    pub server_version: String,
    #[serde(default)]
    pub storage: String,
    #[serde(default)]
    pub storage_version: String,
    #[serde(default, deserialize_with = "super::nullable")]
    pub storage_supported_drivers: Vec<StorageDriverInfo>,
}

/// What a trusted client sees. `config` maps keys to strings, except hidden keys shown as `true`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Server {
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: serde_json::Map<String, serde_json::Value>,
    pub api_extensions: Vec<String>,
    pub api_status: String,
    pub api_version: String,
    pub auth: String,
    pub public: bool,
    pub auth_methods: Vec<String>,
    #[serde(default)]
    pub environment: ServerEnvironment,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerPut {
    #[serde(default, deserialize_with = "super::nullable")]
    pub config: serde_json::Map<String, serde_json::Value>,
}
