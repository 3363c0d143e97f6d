//! What the daemon tells the monitor (`rxd forkstart`) about the container to start: written as
//! `spec.json` in the container's run directory, read once by the monitor.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Limits {
    /// limits.memory in bytes.
    pub memory: Option<u64>,
    /// limits.cpu as a CFS quota: microseconds per 100 ms period.
    pub cpu_quota_us: Option<u64>,
    /// limits.processes.
    pub processes: Option<u64>,
}

/// A host directory or file bound into the container (a `disk` device with a `source`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BindMount {
    pub source: std::path::PathBuf,
    /// Absolute path inside the container.
    pub path: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartSpec {
    pub name: String,
    pub rootfs: PathBuf,
    pub console_log: PathBuf,
    /// The init to run: the image's `/sbin/init` unless `raw.init`/`boot.command` says otherwise.
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub limits: Limits,
    #[serde(default)]
    pub mounts: Vec<BindMount>,
}

pub const SPEC_FILE: &str = "spec.json";
pub const INIT_PID_FILE: &str = "init.pid";
pub const MONITOR_PID_FILE: &str = "monitor.pid";
pub const CGROUPS_FILE: &str = "cgroups";
pub const EXIT_FILE: &str = "exit";
