//! Control groups for one container: a directory under the caller's own cgroup in every
//! hierarchy (v1 controllers mounted separately, as on this host, or the v2 unified tree),
//! limits written before init runs, usage read back for `lxc info`, removed after init exits.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    /// The container's directory in this hierarchy.
    pub dir: PathBuf,
    /// v1 controllers of the hierarchy (empty for the v2 tree).
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// Mounted cgroup hierarchies: (mount point, controllers or None for cgroup2).
fn mounts() -> Vec<(PathBuf, Option<Vec<String>>)> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let _source = r.next()?;
            let options = r.next().unwrap_or("");
            match fstype {
                "cgroup2" => Some((PathBuf::from(mount_point), None)),
                "cgroup" => {
                    let ctrls = options
                        .split(',')
                        .filter(|o| {
                            !matches!(*o, "rw" | "ro") && !o.contains("release_agent") && !o.starts_with("clone_children")
                        })
                        .filter(|o| !matches!(*o, "nosuid" | "nodev" | "noexec" | "relatime" | "xattr" | "noprefix"))
                        .map(str::to_string)
                        .collect();
                    Some((PathBuf::from(mount_point), Some(ctrls)))
                }
                _ => None,
            }
        })
        .collect()
}

/// This process's cgroup in each hierarchy, with the container directory `leaf` under it.
pub fn plan(leaf: &str) -> Vec<Hierarchy> {
    let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else { return Vec::new() };
    let mounted = mounts();
    let mut out = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let rel = path.trim_start_matches('/');
        if ctrls.is_empty() {
            if let Some((mp, _)) = mounted.iter().find(|(_, c)| c.is_none()) {
                out.push(Hierarchy { dir: mp.join(rel).join(leaf), controllers: Vec::new(), v2: true });
            }
            continue;
        }
        let wanted: Vec<String> = ctrls.split(',').map(str::to_string).collect();
        let found = mounted.iter().find(|(_, c)| c.as_ref().is_some_and(|c| wanted.iter().all(|w| c.contains(w))));
        if let Some((mp, _)) = found {
            out.push(Hierarchy { dir: mp.join(rel).join(leaf), controllers: wanted, v2: false });
        }
    }
    out
}

fn write(dir: &Path, file: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(file), value)
}

impl Hierarchy {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// Whether this hierarchy carries one of the requested limits (then it is required).
    pub fn enforces(&self, limits: &super::spec::Limits) -> bool {
        if self.v2 {
            return limits.memory.is_some() || limits.cpu_quota_us.is_some() || limits.processes.is_some();
        }
        (self.has("memory") && limits.memory.is_some())
            || (self.has("cpu") && limits.cpu_quota_us.is_some())
            || (self.has("pids") && limits.processes.is_some())
    }

    /// Creates the directory and writes the limits this hierarchy enforces.
    pub fn create(&self, limits: &super::spec::Limits) -> std::io::Result<()> {
        match std::fs::create_dir(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        if self.has("cpuset") {
            // A cpuset without cpus and mems refuses tasks (ENOSPC).
            if let Some(parent) = self.dir.parent() {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = std::fs::read_to_string(parent.join(f))?;
                    write(&self.dir, f, v.trim())?;
                }
            }
        }
        if self.v2 {
            if let Some(m) = limits.memory {
                let _ = write(&self.dir, "memory.max", &m.to_string());
            }
            if let Some(q) = limits.cpu_quota_us {
                let _ = write(&self.dir, "cpu.max", &format!("{q} 100000"));
            }
            if let Some(p) = limits.processes {
                let _ = write(&self.dir, "pids.max", &p.to_string());
            }
            return Ok(());
        }
        if self.has("memory")
            && let Some(m) = limits.memory
        {
            write(&self.dir, "memory.limit_in_bytes", &m.to_string())?;
            if self.dir.join("memory.memsw.limit_in_bytes").exists() {
                write(&self.dir, "memory.memsw.limit_in_bytes", &m.to_string())?;
            }
        }
        if self.has("cpu")
            && let Some(q) = limits.cpu_quota_us
        {
            write(&self.dir, "cpu.cfs_period_us", "100000")?;
            write(&self.dir, "cpu.cfs_quota_us", &q.to_string())?;
        }
        if self.has("pids")
            && let Some(p) = limits.processes
        {
            write(&self.dir, "pids.max", &p.to_string())?;
        }
        if self.has("devices") {
            write(&self.dir, "devices.deny", "a")?;
            for rule in ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm"] {
                write(&self.dir, "devices.allow", rule)?;
            }
            for rule in ["c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm"] {
                write(&self.dir, "devices.allow", rule)?;
            }
        }
        Ok(())
    }

    pub fn add(&self, pid: i32) -> std::io::Result<()> {
        write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    /// Removes the directory, waiting briefly for exiting tasks to leave it.
    pub fn remove(&self) {
        for _ in 0..200 {
            match std::fs::remove_dir(&self.dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(10)),
                _ => return,
            }
        }
    }
}

/// Saves the hierarchy directories (one per line: `v1:<ctrls>:<dir>` or `v2::<dir>`).
pub fn save(list: &[Hierarchy], file: &Path) -> std::io::Result<()> {
    let text: String = list
        .iter()
        .map(|h| format!("{}:{}:{}\n", if h.v2 { "v2" } else { "v1" }, h.controllers.join(","), h.dir.display()))
        .collect();
    std::fs::write(file, text)
}

pub fn load(file: &Path) -> Vec<Hierarchy> {
    let Ok(text) = std::fs::read_to_string(file) else { return Vec::new() };
    text.lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let kind = p.next()?;
            let ctrls = p.next()?;
            let dir = p.next()?;
            Some(Hierarchy {
                dir: PathBuf::from(dir),
                controllers: ctrls.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect(),
                v2: kind == "v2",
            })
        })
        .collect()
}

fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
}

/// Usage figures of a running container.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub memory: u64,
    pub memory_peak: u64,
    pub cpu_ns: u64,
    pub processes: u64,
}

pub fn usage(list: &[Hierarchy]) -> Usage {
    let mut u = Usage::default();
    for h in list {
        if h.v2 {
            u.memory = u.memory.max(read_u64(&h.dir, "memory.current").unwrap_or(0));
        }
        if h.has("memory") {
            u.memory = read_u64(&h.dir, "memory.usage_in_bytes").unwrap_or(0);
            u.memory_peak = read_u64(&h.dir, "memory.max_usage_in_bytes").unwrap_or(0);
        }
        if h.has("cpuacct") {
            u.cpu_ns = read_u64(&h.dir, "cpuacct.usage").unwrap_or(0);
        }
        if u.processes == 0 {
            u.processes = std::fs::read_to_string(h.dir.join("cgroup.procs")).map(|s| s.lines().count() as u64).unwrap_or(0);
        }
    }
    u
}
