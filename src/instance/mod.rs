//! The native container driver: where a container's files live, how it is started (by
//! re-executing the binary as `rxd forkstart`, the single-threaded monitor that becomes the
//! parent of the container's init), stopped, observed, entered (`rxd forkexec`) and how files
//! move in and out of it without following a symlink out of its root.
//!
//! Nothing here forks inside the async runtime: the daemon only spawns helper processes.
//!
//! May call: util.

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

/// A failure inside a helper process (a container's monitor, its init before exec, the exec
/// helper): what it was doing and why. It reaches the daemon as text over a pipe or socket.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// A refusal with its reason (a bad path, a missing program, the helper's own report).
    #[error("{0}")]
    Refused(String),
}

impl HelperError {
    pub fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> HelperError {
        let what = what.into();
        move |source| HelperError::Sys { what, source }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HelperError {
        let what = what.into();
        move |source| HelperError::Io { what, source }
    }
}

impl From<InstanceError> for HelperError {
    fn from(e: InstanceError) -> Self {
        HelperError::Refused(e.to_string())
    }
}

/// Where one container's runtime state (pid files, spec, exit record) lives.
pub fn run_dir(lxd_dir: &std::path::Path, name: &str) -> PathBuf {
    lxd_dir.join("run").join(name)
}

/// Where one container's console output is kept.
pub fn log_dir(lxd_dir: &std::path::Path, name: &str) -> PathBuf {
    lxd_dir.join("logs").join(name)
}
