//! The daemon's handle on its containers: start (spawn the monitor and wait for its report),
//! stop (clean through init's signals with a deadline, or forced), state, exec helpers and the
//! file root. Containers are found again after a daemon restart from their run directories.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::io::unix::AsyncFd;

use super::cgroup;
use super::exec::{ExecRequest, Started};
use super::files::Root;
use super::spec::{self, StartSpec};
use super::sys;
use super::{InstanceError, Result};

/// What a container is doing now.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    pub running: bool,
    pub pid: i32,
    pub usage: cgroup::Usage,
    pub interfaces: Vec<super::netdev::Interface>,
}

#[derive(Debug, Clone)]
pub struct Driver {
    lxd_dir: PathBuf,
    exe: PathBuf,
}

/// busybox init halts on SIGPWR; LXC sends the same for a clean stop.
const HALT_SIGNAL: i32 = libc::SIGPWR;

fn read_pid(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok().filter(|p: &i32| *p > 0)
}

impl Driver {
    pub fn new(lxd_dir: &Path) -> Driver {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
        Driver { lxd_dir: lxd_dir.to_path_buf(), exe }
    }

    pub fn run_dir(&self, name: &str) -> PathBuf {
        super::run_dir(&self.lxd_dir, name)
    }

    pub fn log_dir(&self, name: &str) -> PathBuf {
        super::log_dir(&self.lxd_dir, name)
    }

    /// The init pid of a running container.
    pub fn init_pid(&self, name: &str) -> Option<i32> {
        read_pid(&self.run_dir(name).join(spec::INIT_PID_FILE)).filter(|p| sys::alive(*p))
    }

    fn monitor_pid(&self, name: &str) -> Option<i32> {
        read_pid(&self.run_dir(name).join(spec::MONITOR_PID_FILE)).filter(|p| sys::alive(*p))
    }

    pub fn state(&self, name: &str) -> RunState {
        match self.init_pid(name) {
            Some(pid) => {
                let usage = cgroup::usage(&cgroup::load(&self.run_dir(name).join(spec::CGROUPS_FILE)));
                RunState { running: true, pid, usage, interfaces: super::netdev::read(pid) }
            }
            None => RunState::default(),
        }
    }

    /// Starts the container described by `spec`; returns its init pid once init runs.
    /// `key` names the run and log directories (the instance name, project-prefixed outside
    /// the default project); `spec.name` is the container's host name.
    pub async fn start(&self, key: &str, spec: &StartSpec) -> Result<i32> {
        if self.init_pid(key).is_some() {
            return Err(InstanceError::AlreadyRunning);
        }
        let run_dir = self.run_dir(key);
        let log_dir = self.log_dir(key);
        for d in [&run_dir, &log_dir] {
            std::fs::create_dir_all(d).map_err(|e| InstanceError::io("creating", d, e))?;
        }
        let json = serde_json::to_vec(spec).map_err(|e| InstanceError::Io(e.to_string()))?;
        let spec_path = run_dir.join(spec::SPEC_FILE);
        std::fs::write(&spec_path, json).map_err(|e| InstanceError::io("writing", &spec_path, e))?;
        let (report_r, report_w) = sys::pipe().map_err(|e| InstanceError::Io(e.to_string()))?;
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("forkstart").arg(&run_dir).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
        let stderr_path = log_dir.join("forkstart.log");
        if let Ok(f) = std::fs::OpenOptions::new().create(true).append(true).open(&stderr_path) {
            cmd.stderr(f);
        }
        let fd = report_w.as_raw_fd();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| InstanceError::StartFailed(format!("spawning the monitor: {e}")))?;
        drop(report_w);
        // The monitor outlives this call; reap it whenever it exits.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let pipe = tokio::fs::File::from_std(std::fs::File::from(report_r));
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(pipe);
        let read = reader.read_line(&mut line);
        match tokio::time::timeout(Duration::from_secs(30), read).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(InstanceError::StartFailed(e.to_string())),
            Err(_) => return Err(InstanceError::StartFailed("the monitor did not report within 30s".into())),
        }
        let line = line.trim();
        if let Some(pid) = line.strip_prefix("ok ") {
            return pid.parse().map_err(|_| InstanceError::StartFailed(format!("bad monitor report {line}")));
        }
        let reason = line.strip_prefix("err ").unwrap_or(line);
        let reason = if reason.is_empty() {
            std::fs::read_to_string(&stderr_path).ok().and_then(|s| s.lines().last().map(str::to_string)).unwrap_or_default()
        } else {
            reason.to_string()
        };
        Err(InstanceError::StartFailed(reason))
    }

    /// Stops a running container: cleanly (init's halt signal, then SIGKILL after `timeout`) or
    /// at once when `force`. Returns whether it had to be killed.
    pub async fn stop(&self, name: &str, force: bool, timeout: Duration) -> Result<bool> {
        let Some(pid) = self.init_pid(name) else { return Err(InstanceError::NotRunning) };
        let monitor = self.monitor_pid(name).and_then(|m| sys::pidfd_open(m).ok());
        let pidfd = sys::pidfd_open(pid).map_err(|_| InstanceError::NotRunning)?;
        let _ = std::fs::write(self.run_dir(name).join("stopping"), b"");
        let mut killed = force;
        if !force {
            let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), HALT_SIGNAL);
            if !wait_exit(&pidfd, timeout).await {
                killed = true;
            }
        }
        if killed {
            let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), libc::SIGKILL);
            wait_exit(&pidfd, Duration::from_secs(10)).await;
        }
        if let Some(m) = monitor {
            wait_exit(&m, Duration::from_secs(10)).await;
        }
        Ok(killed)
    }

    /// Waits until a running container's init exits on its own (powered off from inside).
    pub async fn wait_stopped(&self, name: &str) {
        let Some(pid) = self.monitor_pid(name) else { return };
        if let Ok(fd) = sys::pidfd_open(pid) {
            while !wait_exit(&fd, Duration::from_secs(3600)).await {}
        }
    }

    /// Spawns the exec helper with the given stdio; returns it and what it reported.
    pub async fn exec(
        &self,
        name: &str,
        req: &ExecRequest,
        stdio: [std::process::Stdio; 3],
    ) -> Result<(tokio::process::Child, Started)> {
        if self.init_pid(name).is_none() {
            return Err(InstanceError::BadRequest("Instance is not running".into()));
        }
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::SeqPacket,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| InstanceError::Io(e.to_string()))?;
        let json = serde_json::to_string(req).map_err(|e| InstanceError::Io(e.to_string()))?;
        let mut cmd = tokio::process::Command::new(&self.exe);
        let [i, o, e] = stdio;
        cmd.arg("forkexec").arg(self.run_dir(name)).arg(json).stdin(i).stdout(o).stderr(e);
        let fd = theirs.as_raw_fd();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| InstanceError::Io(format!("spawning the exec helper: {e}")))?;
        drop(theirs);
        let started = tokio::task::spawn_blocking(move || super::exec::read_report(ours.as_raw_fd()))
            .await
            .map_err(|e| InstanceError::Io(format!("the exec helper's report: {e}")))?
            .map_err(|e| InstanceError::BadRequest(e.to_string()))?;
        Ok((child, started))
    }

    /// The root files are read and written in.
    pub fn files(&self, name: &str, rootfs: &Path) -> Result<Root> {
        Root::open(self.init_pid(name), rootfs)
    }

    /// Removes what a deleted container left in the run and log directories.
    pub fn forget(&self, name: &str) {
        let _ = std::fs::remove_dir_all(self.run_dir(name));
        let _ = std::fs::remove_dir_all(self.log_dir(name));
    }

    /// Renames the run and log directories of a stopped container.
    pub fn rename(&self, from: &str, to: &str) {
        let _ = std::fs::rename(self.run_dir(from), self.run_dir(to));
        let _ = std::fs::rename(self.log_dir(from), self.log_dir(to));
    }
}

/// Waits until the process behind `pidfd` exits; false on timeout.
async fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let Ok(dup) = pidfd.try_clone() else { return false };
    // SAFETY: `dup` is an OwnedFd moved into the AsyncFd, so it stays open and unchanged for
    // the AsyncFd's whole life.
    let Ok(afd) = (unsafe { AsyncFd::register_with_interest(dup, tokio::io::Interest::READABLE) }) else { return false };
    tokio::time::timeout(timeout, afd.readable()).await.is_ok()
}
