//! The `dir` driver: a pool is a directory (its `source`, or `storage-pools/<name>` under the
//! daemon's directory) with one subdirectory per kind of volume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Result, StorageError};

const KEYS: &[&str] = &["source", "volatile.initial_source", "rsync.bwlimit", "rsync.compression"];
const SUBDIRS: &[&str] = &[
    "containers",
    "containers-snapshots",
    "custom",
    "custom-snapshots",
    "images",
    "virtual-machines",
    "virtual-machines-snapshots",
];

pub fn validate(config: &BTreeMap<String, String>) -> Result<()> {
    for k in config.keys() {
        if !KEYS.contains(&k.as_str()) && !k.starts_with("user.") {
            return Err(StorageError::Invalid(format!("Invalid option for dir storage driver: \"{k}\"")));
        }
    }
    Ok(())
}

/// Creates the pool's directories (at `source`, or at `default_root`, recording `source` in
/// `config`). Returns the root and whether this call made it.
pub fn create(default_root: &Path, config: &mut BTreeMap<String, String>) -> Result<(PathBuf, bool)> {
    let (root, created_root) = match config.get("source").filter(|s| !s.is_empty()) {
        Some(src) => {
            let path = PathBuf::from(src);
            if !path.is_dir() {
                return Err(StorageError::Invalid(format!("Source path '{src}' doesn't exist")));
            }
            (path, false)
        }
        None => {
            config.insert("source".into(), default_root.display().to_string());
            (default_root.to_path_buf(), !default_root.exists())
        }
    };
    let failed = |path: &Path| {
        let path = path.display().to_string();
        move |source| StorageError::Create { path, source }
    };
    std::fs::create_dir_all(&root).map_err(failed(&root))?;
    for sub in SUBDIRS {
        std::fs::create_dir_all(root.join(sub)).map_err(failed(&root))?;
    }
    Ok((root, created_root))
}

/// Removes a pool's directories: the whole tree when rxd made it (the default location), only
/// the empty subdirectories it made inside a user-given source.
pub fn remove(default_root: &Path, source: Option<&Path>) {
    match source {
        Some(src) if src == default_root => {
            if let Err(e) = std::fs::remove_dir_all(src) {
                tracing::warn!(path = %src.display(), error = %e, "cannot remove the pool's directory");
            }
        }
        Some(src) => {
            for sub in SUBDIRS {
                // Only empty ones go: the user's own files stay.
                let _ = std::fs::remove_dir(src.join(sub));
            }
        }
        None => {}
    }
}
