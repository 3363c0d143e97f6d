//! Files inside a container, never following a symlink out of its root: every path is resolved
//! with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) against the container's root (its
//! `/proc/<init>/root` while it runs, so its own mounts are seen; the rootfs otherwise), and
//! every creation or removal happens relative to a parent directory resolved that way.

use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::AtFlags;
use nix::sys::stat::{FchmodatFlags, Mode};

use super::sys;
use super::{InstanceError, Result};

const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// A container root that paths are resolved in.
pub struct Root {
    fd: OwnedFd,
}

/// What a path is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    File,
    Directory,
    Symlink,
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Directory => "directory",
            Kind::Symlink => "symlink",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub modified: i64,
    pub size: u64,
}

/// The content read at a path.
pub enum Content {
    File(std::fs::File),
    Directory(Vec<String>),
    /// The link's target as an absolute path inside the container.
    Symlink(String),
}

fn io_err(path: &str, e: std::io::Error) -> InstanceError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => InstanceError::NotFound(format!("Path \"{path}\" doesn't exist")),
        Some(libc::EXDEV) | Some(libc::ELOOP) => {
            InstanceError::BadRequest(format!("Path \"{path}\" resolves outside of the instance or through a /proc link"))
        }
        _ => InstanceError::Io(format!("{path}: {e}")),
    }
}

/// Lexically normalised absolute path inside the container ("a/../b" → "/b"; ".." at the top
/// stays at the top).
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn split(path: &str) -> Result<(String, String)> {
    let norm = normalize(path);
    match norm.rsplit_once('/') {
        Some((_, "")) | None => Err(InstanceError::BadRequest("The path refers to the container's root".into())),
        Some((parent, name)) => Ok((if parent.is_empty() { "/".into() } else { parent.to_string() }, name.to_string())),
    }
}

impl Root {
    /// The root of a running container (pid of its init) or of a stopped one (its rootfs).
    pub fn open(init_pid: Option<i32>, rootfs: &Path) -> Result<Root> {
        let path = match init_pid {
            Some(pid) => std::path::PathBuf::from(format!("/proc/{pid}/root")),
            None => rootfs.to_path_buf(),
        };
        let fd = sys::openat2(libc::AT_FDCWD, &path.to_string_lossy(), libc::O_PATH | libc::O_DIRECTORY, 0, 0)
            .map_err(|e| InstanceError::io("opening", &path, e))?;
        Ok(Root { fd })
    }

    fn resolve(&self, path: &str, flags: i32, mode: u32) -> std::io::Result<OwnedFd> {
        sys::openat2(self.fd.as_raw_fd(), &normalize(path), flags, mode, RESOLVE)
    }

    fn parent(&self, path: &str) -> Result<(OwnedFd, String)> {
        let (parent, name) = split(path)?;
        let fd = self.resolve(&parent, libc::O_PATH | libc::O_DIRECTORY, 0).map_err(|e| io_err(&parent, e))?;
        Ok((fd, name))
    }

    /// What is at `path` (a symlink is reported as such, not followed).
    pub fn stat(&self, path: &str) -> Result<Entry> {
        let norm = normalize(path);
        let st = if norm == "/" {
            nix::sys::stat::fstat(&self.fd)
        } else {
            let (dir, name) = self.parent(&norm)?;
            nix::sys::stat::fstatat(&dir, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        }
        .map_err(|e| io_err(&norm, e.into()))?;
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Directory,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::File,
        };
        Ok(Entry {
            kind,
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            modified: st.st_mtime,
            size: st.st_size as u64,
        })
    }

    /// Reads `path`: a file's content, a directory's entry names, or a symlink's target.
    pub fn read(&self, path: &str) -> Result<(Entry, Content)> {
        let norm = normalize(path);
        let entry = self.stat(&norm)?;
        let content = match entry.kind {
            Kind::Symlink => {
                let (dir, name) = self.parent(&norm)?;
                let target = nix::fcntl::readlinkat(&dir, name.as_str()).map_err(|e| io_err(&norm, e.into()))?;
                let target = target.to_string_lossy().to_string();
                let base = split(&norm).map(|(p, _)| p).unwrap_or_else(|_| "/".into());
                Content::Symlink(if target.starts_with('/') {
                    normalize(&target)
                } else {
                    normalize(&format!("{base}/{target}"))
                })
            }
            Kind::Directory => {
                let fd = self.resolve(&norm, libc::O_RDONLY | libc::O_DIRECTORY, 0).map_err(|e| io_err(&norm, e))?;
                let dir = nix::dir::Dir::from_fd(fd).map_err(|e| io_err(&norm, e.into()))?;
                let names = dir
                    .into_iter()
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n != "." && n != "..")
                    .collect();
                Content::Directory(names)
            }
            Kind::File => {
                let fd = self.resolve(&norm, libc::O_RDONLY, 0).map_err(|e| io_err(&norm, e))?;
                Content::File(std::fs::File::from(fd))
            }
        };
        Ok((entry, content))
    }

    /// Writes a file. Mode and owner apply only to a file that did not exist, as LXD does.
    pub fn write_file(&self, path: &str, data: &[u8], append: bool, mode: Option<u32>, uid: u32, gid: u32) -> Result<()> {
        let norm = normalize(path);
        let existed = self.stat(&norm).is_ok();
        let flags = libc::O_WRONLY | libc::O_CREAT | if append { 0 } else { libc::O_TRUNC };
        let fd = self.resolve(&norm, flags, mode.unwrap_or(0o644)).map_err(|e| io_err(&norm, e))?;
        let mut file = std::fs::File::from(fd);
        if append {
            file.seek(std::io::SeekFrom::End(0)).map_err(|e| io_err(&norm, e))?;
        }
        file.write_all(data).map_err(|e| io_err(&norm, e))?;
        if !existed {
            nix::unistd::fchown(&file, Some(uid.into()), Some(gid.into())).map_err(|e| io_err(&norm, e.into()))?;
            let m = Mode::from_bits_truncate(mode.unwrap_or(0o644));
            nix::sys::stat::fchmod(&file, m).map_err(|e| io_err(&norm, e.into()))?;
        }
        Ok(())
    }

    /// Creates a directory; an existing one is left as it is.
    pub fn mkdir(&self, path: &str, mode: Option<u32>, uid: u32, gid: u32) -> Result<()> {
        let norm = normalize(path);
        if let Ok(e) = self.stat(&norm) {
            return if e.kind == Kind::Directory {
                Ok(())
            } else {
                Err(InstanceError::BadRequest(format!("Path \"{norm}\" exists and is not a directory")))
            };
        }
        let (dir, name) = self.parent(&norm)?;
        let mode = Mode::from_bits_truncate(mode.unwrap_or(0o750));
        nix::sys::stat::mkdirat(&dir, name.as_str(), mode).map_err(|e| io_err(&norm, e.into()))?;
        nix::unistd::fchownat(&dir, name.as_str(), Some(uid.into()), Some(gid.into()), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| io_err(&norm, e.into()))?;
        nix::sys::stat::fchmodat(&dir, name.as_str(), mode, FchmodatFlags::FollowSymlink).map_err(|e| io_err(&norm, e.into()))?;
        Ok(())
    }

    /// Creates a symlink `path` → `target` (the target is stored as given; it is resolved in
    /// the container's root whenever it is followed).
    pub fn symlink(&self, path: &str, target: &str, uid: u32, gid: u32) -> Result<()> {
        let norm = normalize(path);
        let (dir, name) = self.parent(&norm)?;
        if self.stat(&norm).is_ok() {
            let _ = nix::unistd::unlinkat(&dir, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        nix::unistd::symlinkat(target, &dir, name.as_str()).map_err(|e| io_err(&norm, e.into()))?;
        let _ = nix::unistd::fchownat(&dir, name.as_str(), Some(uid.into()), Some(gid.into()), AtFlags::AT_SYMLINK_NOFOLLOW);
        Ok(())
    }

    /// Removes a file, symlink or empty directory.
    pub fn remove(&self, path: &str) -> Result<()> {
        let norm = normalize(path);
        let entry = self.stat(&norm)?;
        let (dir, name) = self.parent(&norm)?;
        let flag = if entry.kind == Kind::Directory {
            nix::unistd::UnlinkatFlags::RemoveDir
        } else {
            nix::unistd::UnlinkatFlags::NoRemoveDir
        };
        nix::unistd::unlinkat(&dir, name.as_str(), flag).map_err(|e| io_err(&norm, e.into()))
    }
}

/// Reads a whole file opened by [`Root::read`].
pub fn read_all(mut f: std::fs::File) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(f.metadata().map(|m| m.size() as usize).unwrap_or(0));
    f.read_to_end(&mut v).map_err(|e| InstanceError::Io(e.to_string()))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalize_clamps_at_the_root() {
        assert_eq!(normalize("root/hello.txt"), "/root/hello.txt");
        assert_eq!(normalize("/a/./b/../c"), "/a/c");
        assert_eq!(normalize("../../../etc/shadow"), "/etc/shadow");
        assert_eq!(normalize(""), "/");
    }
}
