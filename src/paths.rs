//! Where everything of one member lives under `LXD_DIR`, and the lock that keeps a second
//! daemon off the same directory.
//!
//! May call: nothing else in rxd.

use std::path::{Path, PathBuf};

/// The member's directory layout.
#[derive(Clone, Debug)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(dir: impl Into<PathBuf>) -> Paths {
        Paths { dir: dir.into() }
    }

    /// `$LXD_DIR`, else `/var/lib/rxd`.
    pub fn from_env() -> Paths {
        Paths::new(std::env::var_os("LXD_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/rxd")))
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("unix.socket")
    }

    pub fn database(&self) -> PathBuf {
        self.dir.join("database")
    }

    pub fn local_db(&self) -> PathBuf {
        self.database().join("local.db")
    }

    /// The replica of the global database: raft log, snapshots and the state-machine file.
    pub fn global_dir(&self) -> PathBuf {
        self.database().join("global")
    }

    pub fn global_db(&self) -> PathBuf {
        self.global_dir().join("state.db")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.dir.join(".rxd.lock")
    }

    pub fn cluster_cert(&self) -> PathBuf {
        self.dir.join("cluster.crt")
    }

    pub fn storage_pools(&self) -> PathBuf {
        self.dir.join("storage-pools")
    }
}

/// Why the directory lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another rxd daemon is already running on {dir} (pid {pid}); stop it first with `lxd shutdown`")]
    AlreadyRunning { dir: String, pid: String },
    #[error("failed to prepare {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Held by the running daemon: while it lives, no other daemon opens the same directory.
pub type DirLock = nix::fcntl::Flock<std::fs::File>;

/// Takes the per-directory lock and records this process's pid in it.
pub fn lock(paths: &Paths) -> Result<DirLock, LockError> {
    use std::io::{Read, Seek, Write};
    let path = paths.lock_file();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| LockError::Io { path: path.display().to_string(), source })?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            // The pid is informational (for the "already running" message): a failure to
            // record it does not make the lock any less held.
            let _ = lock.set_len(0);
            let _ = lock.seek(std::io::SeekFrom::Start(0));
            let _ = write!(lock, "{}", std::process::id());
            Ok(lock)
        }
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Err(LockError::AlreadyRunning { dir: paths.dir.display().to_string(), pid: pid.trim().to_string() })
        }
    }
}

/// The pid of the daemon running on `paths`, if one holds its directory lock.
pub fn running_pid(paths: &Paths) -> Option<String> {
    use std::io::Read;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(paths.lock_file()).ok()?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(_released_on_drop) => None,
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Some(pid.trim().to_string())
        }
    }
}

/// Creates `path` (and its parents) with `mode`.
pub fn ensure_dir(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}
