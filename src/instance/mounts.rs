//! The container's filesystem view, built by its init process before it execs: a private mount
//! tree, the rootfs bind-mounted onto itself and pivoted into, /proc (with /proc/sys read-only
//! except net), read-only /sys, a minimal /dev with its own devpts, and tmpfs /run and /tmp.
//! Runs in the freshly cloned child only.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::HelperError;

type R = std::result::Result<(), HelperError>;

fn m(source: Option<&str>, target: &str, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> R {
    mount(source, target, fstype, flags, data).map_err(HelperError::sys(format!("mount {target}")))
}

fn utf8<'a>(path: &'a Path, what: &str) -> std::result::Result<&'a str, HelperError> {
    path.to_str().ok_or_else(|| HelperError::Refused(format!("{what} is not UTF-8")))
}

fn ensure_dir(path: &str) {
    let _ = std::fs::create_dir_all(path);
}

/// Binds host paths into the (not yet pivoted) root: `path` is created inside the rootfs,
/// resolved without leaving it (a symlink in the image cannot redirect the mount to the host).
fn bind_mounts(rootfs: &Path, mounts: &[super::spec::BindMount]) -> R {
    for b in mounts {
        let rel = super::files::normalize(&b.path);
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            return Err(HelperError::Refused(format!("disk device path {} is the root", b.path)));
        }
        let is_dir = b.source.is_dir();
        let root = super::files::Root::open(None, rootfs)?;
        if is_dir {
            let mut acc = String::new();
            for part in rel.split('/') {
                acc.push('/');
                acc.push_str(part);
                root.mkdir(&acc, Some(0o755), 0, 0).map_err(|e| HelperError::Refused(format!("creating {acc}: {e}")))?;
            }
        } else {
            root.write_file(&format!("/{rel}"), b"", true, Some(0o644), 0, 0)
                .map_err(|e| HelperError::Refused(format!("creating {rel}: {e}")))?;
        }
        // Mounting goes by host path: no component may be a symlink (it could point anywhere).
        let mut acc = String::new();
        for part in rel.split('/') {
            acc.push('/');
            acc.push_str(part);
            if root.stat(&acc)?.kind == super::files::Kind::Symlink {
                return Err(HelperError::Refused(format!("disk device path {} goes through a symlink ({acc})", b.path)));
            }
        }
        let target = rootfs.join(rel);
        let target = utf8(&target, "mount target")?;
        let source = utf8(&b.source, "mount source")?;
        m(Some(source), target, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        if b.readonly {
            m(None, target, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None)?;
        }
    }
    Ok(())
}

/// Builds the container's root from `rootfs` and pivots into it. Afterwards `/` is the rootfs.
pub fn enter_rootfs(rootfs: &Path, binds: &[super::spec::BindMount]) -> R {
    m(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    let root = utf8(rootfs, "rootfs path")?;
    m(Some(root), root, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    bind_mounts(rootfs, binds)?;
    nix::unistd::chdir(rootfs).map_err(HelperError::sys(format!("chdir {root}")))?;
    nix::sys::stat::umask(Mode::empty());
    for d in ["proc", "sys", "dev", "run", "tmp"] {
        ensure_dir(d);
    }
    let plain = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    m(Some("proc"), "proc", Some("proc"), plain, None)?;
    // /proc/sys read-only, except the network part the container owns.
    if Path::new("proc/sys/net").exists() {
        m(Some("proc/sys/net"), "proc/sys/net", None, MsFlags::MS_BIND, None)?;
    }
    m(Some("proc/sys"), "proc/sys", None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    m(None, "proc/sys", None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | plain, None)?;
    if Path::new("proc/sysrq-trigger").exists() {
        m(Some("proc/sysrq-trigger"), "proc/sysrq-trigger", None, MsFlags::MS_BIND, None)?;
        m(None, "proc/sysrq-trigger", None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None)?;
    }
    if let Err(e) = m(Some("sysfs"), "sys", Some("sysfs"), MsFlags::MS_RDONLY | plain, None) {
        // A container without /sys still runs; say why it is missing.
        eprintln!("rxd: /sys not mounted: {e}");
    }
    dev()?;
    m(Some("tmpfs"), "run", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=755,size=65536k"))?;
    m(Some("tmpfs"), "tmp", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))?;
    nix::unistd::pivot_root(".", ".").map_err(HelperError::sys("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(HelperError::sys("detaching the old root"))?;
    nix::unistd::chdir("/").map_err(HelperError::sys("chdir /"))?;
    Ok(())
}

fn dev() -> R {
    m(Some("tmpfs"), "dev", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME, Some("mode=755,size=65536k"))?;
    let nodes = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];
    for (name, major, minor) in nodes {
        let path = format!("dev/{name}");
        if mknod(path.as_str(), SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), makedev(major, minor)).is_err() {
            // Without CAP_MKNOD: bind the host's node onto an empty file.
            std::fs::write(&path, b"").map_err(HelperError::io(path.clone()))?;
            m(Some(&format!("/dev/{name}")), &path, None, MsFlags::MS_BIND, None)?;
        }
    }
    for (link, target) in
        [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")]
    {
        let _ = std::os::unix::fs::symlink(target, format!("dev/{link}"));
    }
    ensure_dir("dev/pts");
    m(
        Some("devpts"),
        "dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let _ = std::os::unix::fs::symlink("pts/ptmx", "dev/ptmx");
    ensure_dir("dev/shm");
    m(Some("tmpfs"), "dev/shm", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777,size=65536k"))?;
    ensure_dir("dev/mqueue");
    let _ = m(Some("mqueue"), "dev/mqueue", Some("mqueue"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None);
    Ok(())
}
