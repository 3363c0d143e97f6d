//! The native container driver: where a container's files live, how it is started (by
//! re-executing the binary as `rxd forkstart`, the single-threaded monitor that becomes the
//! parent of the container's init), stopped, observed, entered (`rxd forkexec`) and how files
//! move in and out of it without following a symlink out of its root.
//!
//! Nothing here forks inside the async runtime: the daemon only spawns helper processes.

pub mod cgroup;
pub mod driver;
pub mod exec;
pub mod files;
pub mod monitor;
pub mod mounts;
pub mod netdev;
pub mod spec;
pub mod sys;

use std::path::PathBuf;

pub use driver::{Driver, RunState};

/// A failure of the container driver, with what the user can do about it in the message.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("{0}")]
    Io(String),
    #[error("The instance is already running")]
    AlreadyRunning,
    #[error("The instance is already stopped")]
    NotRunning,
    #[error("Failed to start the container: {0}")]
    StartFailed(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
}

impl InstanceError {
    /// The HTTP status the API answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            InstanceError::NotFound(_) => 404,
            InstanceError::BadRequest(_) | InstanceError::AlreadyRunning | InstanceError::NotRunning => 400,
            InstanceError::Io(_) | InstanceError::StartFailed(_) => 500,
        }
    }

    pub fn io(what: &str, path: &std::path::Path, e: impl std::fmt::Display) -> InstanceError {
        InstanceError::Io(format!("{what} {}: {e}", path.display()))
    }
}

pub type Result<T> = std::result::Result<T, InstanceError>;

/// Where one container's runtime state (pid files, spec, exit record) lives.
pub fn run_dir(lxd_dir: &std::path::Path, name: &str) -> PathBuf {
    lxd_dir.join("run").join(name)
}

/// Where one container's console output is kept.
pub fn log_dir(lxd_dir: &std::path::Path, name: &str) -> PathBuf {
    lxd_dir.join("logs").join(name)
}
