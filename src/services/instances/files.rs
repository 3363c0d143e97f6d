//! Files inside an instance (resolved in its root so that no symlink can lead outside it, see
//! `instance::files`), its console log and its log files.

use crate::instance::files::{Content, Entry, Root};
use crate::services::{Error, Result};

use super::{Instances, driver_name};

/// What a pushed entry is.
#[derive(Clone, Debug)]
pub enum Push {
    File { data: bytes::Bytes, append: bool },
    Directory,
    Symlink { target: String },
}

/// A `POST …/files` request: the entry and its ownership.
#[derive(Clone, Debug)]
pub struct PushRequest {
    pub path: String,
    pub what: Push,
    pub mode: Option<u32>,
    pub uid: u32,
    pub gid: u32,
}

/// What a `GET …/files` found.
pub enum Pulled {
    Directory(Vec<String>),
    Symlink(String),
    File(Vec<u8>),
}

impl Instances {
    async fn files_root(&self, project: &str, name: &str) -> Result<Root> {
        let row = self.row(project, name).await?;
        let rootfs = self.dir(&row).await?.join("rootfs");
        Ok(self.driver.files(&driver_name(project, name), &rootfs)?)
    }

    pub async fn pull(&self, project: &str, name: &str, path: &str) -> Result<(Entry, Pulled)> {
        let root = self.files_root(project, name).await?;
        let (entry, content) = root.read(path)?;
        let pulled = match content {
            Content::Directory(names) => Pulled::Directory(names),
            Content::Symlink(target) => Pulled::Symlink(target),
            Content::File(f) => Pulled::File(crate::instance::files::read_all(f)?),
        };
        Ok((entry, pulled))
    }

    pub async fn push(&self, project: &str, name: &str, req: PushRequest) -> Result<()> {
        let root = self.files_root(project, name).await?;
        match req.what {
            Push::Directory => root.mkdir(&req.path, req.mode, req.uid, req.gid)?,
            Push::Symlink { target } => root.symlink(&req.path, &target, req.uid, req.gid)?,
            Push::File { data, append } => root.write_file(&req.path, &data, append, req.mode, req.uid, req.gid)?,
        }
        Ok(())
    }

    pub async fn remove_file(&self, project: &str, name: &str, path: &str) -> Result<()> {
        self.files_root(project, name).await?.remove(path)?;
        Ok(())
    }

    /// The console log (what init printed).
    pub async fn console(&self, project: &str, name: &str) -> Result<Vec<u8>> {
        self.row(project, name).await?;
        let log = self.driver.log_dir(&driver_name(project, name)).join("console.log");
        match std::fs::read(&log) {
            Ok(data) => Ok(data),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::Io { what: "reading", path: log.display().to_string(), source: e }),
        }
    }

    pub async fn clear_console(&self, project: &str, name: &str) -> Result<()> {
        self.row(project, name).await?;
        let log = self.driver.log_dir(&driver_name(project, name)).join("console.log");
        match std::fs::write(&log, b"") {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::Io { what: "clearing", path: log.display().to_string(), source: e })
            }
            _ => Ok(()),
        }
    }

    /// The names of the instance's log files.
    pub async fn logs(&self, project: &str, name: &str) -> Result<Vec<String>> {
        self.row(project, name).await?;
        let dir = self.driver.log_dir(&driver_name(project, name));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect())
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }

    fn log_path(&self, project: &str, name: &str, file: &str) -> Result<std::path::PathBuf> {
        if file.contains('/') || file.starts_with('.') {
            return Err(Error::BadRequest("Invalid log file name".into()));
        }
        Ok(self.driver.log_dir(&driver_name(project, name)).join(file))
    }

    pub async fn log(&self, project: &str, name: &str, file: &str) -> Result<Vec<u8>> {
        self.row(project, name).await?;
        let path = self.log_path(project, name, file)?;
        // `lxc info --show-log` asks for lxc.log: the console log is what we keep.
        let path = if file == "lxc.log" && !path.exists() { path.with_file_name("console.log") } else { path };
        std::fs::read(&path).map_err(|_| Error::NotFound("Log file not found".into()))
    }

    pub async fn delete_log(&self, project: &str, name: &str, file: &str) -> Result<()> {
        self.row(project, name).await?;
        let path = self.log_path(project, name, file)?;
        std::fs::remove_file(&path).map_err(|_| Error::NotFound("Log file not found".into()))
    }
}
