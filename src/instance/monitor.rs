//! `rxd forkstart <run dir>`: the single-threaded monitor of one container. It creates the
//! cgroups, clones the container's init into new pid, mount, uts, ipc and net namespaces,
//! reports `ok <pid>` (or `err <reason>`) on fd 3 to the daemon that spawned it, then waits for
//! init to exit, restarts it when it asked for a reboot, and cleans up. It is its own session,
//! so the daemon may stop or crash while the container keeps running.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::HelperError;
use super::cgroup::{self, Hierarchy};
use super::mounts;
use super::spec::{self, StartSpec};
use super::sys::{self, Cloned};

const NAMESPACES: i32 = libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET;

/// Runs the monitor; returns the process exit code.
pub fn run(run_dir: &Path) -> i32 {
    // SAFETY: fd 3 is the report pipe the daemon passed; nobody else owns it.
    let mut report = unsafe { std::fs::File::from_raw_fd(3) };
    let spec: StartSpec = match std::fs::read(run_dir.join(spec::SPEC_FILE))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(report, "err reading the container spec: {e}");
            return 1;
        }
    };
    let _ = std::fs::write(run_dir.join(spec::MONITOR_PID_FILE), std::process::id().to_string());
    let _ = std::fs::remove_file(run_dir.join(spec::EXIT_FILE));
    let cgroups = cgroup::plan(&format!("rxd-{}-{}", spec.name, std::process::id()));
    let mut report = Some(report);
    let outcome = loop {
        match start_once(&spec, run_dir, &cgroups) {
            Ok((pid, _pidfd)) => {
                if let Some(mut r) = report.take() {
                    let _ = writeln!(r, "ok {pid}");
                }
                let status = wait_init(pid);
                let _ = std::fs::remove_file(run_dir.join(spec::INIT_PID_FILE));
                // busybox reboot inside a pid namespace: the kernel kills init with SIGHUP.
                if matches!(status, WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGHUP, _))
                    && !run_dir.join("stopping").exists()
                {
                    continue;
                }
                break describe(status);
            }
            Err(e) => {
                match report.take() {
                    Some(mut r) => {
                        let _ = writeln!(r, "err {e}");
                    }
                    None => eprintln!("rxd forkstart: restarting {} failed: {e}", spec.name),
                }
                break format!("error {e}");
            }
        }
    };
    for h in &cgroups {
        h.remove();
    }
    let _ = std::fs::write(run_dir.join(spec::EXIT_FILE), format!("{outcome}\n"));
    let _ = std::fs::remove_file(run_dir.join("stopping"));
    let _ = std::fs::remove_file(run_dir.join(spec::MONITOR_PID_FILE));
    0
}

fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exited {code}"),
        WaitStatus::Signaled(_, sig, _) => format!("signaled {}", sig as i32),
        other => format!("ended {other:?}"),
    }
}

fn wait_init(pid: i32) -> WaitStatus {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return s,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return WaitStatus::Exited(Pid::from_raw(pid), -1),
        }
    }
}

/// Creates cgroups, clones init, moves it into the cgroups and lets it exec.
fn start_once(spec: &StartSpec, run_dir: &Path, cgroups: &[Hierarchy]) -> Result<(i32, OwnedFd), HelperError> {
    // A hierarchy the host does not let us use is skipped unless it carries a requested limit.
    let mut joined: Vec<Hierarchy> = Vec::new();
    for h in cgroups {
        match h.create(&spec.limits) {
            Ok(()) => joined.push(h.clone()),
            Err(e) if !h.enforces(&spec.limits) => eprintln!("rxd forkstart: skipping cgroup {}: {e}", h.dir.display()),
            Err(e) => return Err(HelperError::Io { what: format!("creating cgroup {}", h.dir.display()), source: e }),
        }
    }
    let cgroups = joined.as_slice();
    let cgroups_file = run_dir.join(spec::CGROUPS_FILE);
    cgroup::save(cgroups, &cgroups_file).map_err(HelperError::io(format!("writing {}", cgroups_file.display())))?;
    let console = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.console_log)
        .map_err(HelperError::io(format!("opening {}", spec.console_log.display())))?;
    let (go_r, go_w) = sys::pipe().map_err(HelperError::io("pipe"))?;
    let (err_r, err_w) = sys::pipe().map_err(HelperError::io("pipe"))?;
    match sys::clone3(NAMESPACES as u64).map_err(HelperError::io("clone3"))? {
        Cloned::Child => {
            drop(go_w);
            drop(err_r);
            let reason = child(spec, go_r, &console);
            let mut err = std::fs::File::from(err_w);
            let _ = err.write_all(reason.as_bytes());
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(127) };
        }
        Cloned::Parent { pid, pidfd } => {
            drop(go_r);
            drop(err_w);
            let moved: Result<(), HelperError> = cgroups.iter().try_for_each(|h| match h.add(pid) {
                Err(e) if h.enforces(&spec.limits) => {
                    Err(HelperError::Io { what: format!("joining cgroup {}", h.dir.display()), source: e })
                }
                Err(e) => {
                    eprintln!("rxd forkstart: not joining cgroup {}: {e}", h.dir.display());
                    Ok(())
                }
                Ok(()) => Ok(()),
            });
            if let Err(e) = moved {
                let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), libc::SIGKILL);
                let _ = wait_init(pid);
                return Err(e);
            }
            let pid_file = run_dir.join(spec::INIT_PID_FILE);
            std::fs::write(&pid_file, pid.to_string()).map_err(HelperError::io(format!("writing {}", pid_file.display())))?;
            let mut go = std::fs::File::from(go_w);
            let _ = go.write_all(b"g");
            drop(go);
            let mut reason = String::new();
            let _ = std::fs::File::from(err_r).read_to_string(&mut reason);
            if !reason.is_empty() {
                let _ = wait_init(pid);
                let _ = std::fs::remove_file(run_dir.join(spec::INIT_PID_FILE));
                return Err(HelperError::Refused(reason));
            }
            Ok((pid, pidfd))
        }
    }
}

/// The container's init before exec: returns the reason when it cannot exec.
fn child(spec: &StartSpec, go: OwnedFd, console: &std::fs::File) -> String {
    let mut byte = [0u8; 1];
    if std::fs::File::from(go).read(&mut byte).unwrap_or(0) != 1 {
        return "the monitor went away before the start".into();
    }
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP) {
        return format!("unshare cgroup namespace: {e}");
    }
    if let Err(e) = mounts::enter_rootfs(&spec.rootfs, &spec.mounts) {
        return e.to_string();
    }
    if let Err(e) = nix::unistd::sethostname(&spec.name) {
        return format!("sethostname: {e}");
    }
    let _ = sys::loopback_up();
    let null = match std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        Ok(f) => f,
        Err(e) => return format!("opening /dev/null: {e}"),
    };
    // SAFETY: dup2 onto the standard descriptors of this single-threaded child.
    unsafe {
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(console.as_raw_fd(), 1);
        libc::dup2(console.as_raw_fd(), 2);
    }
    let _ = nix::unistd::setsid();
    sys::reset_signals();
    sys::cloexec_from(3);
    let path = spec.environment.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str()).unwrap_or(DEFAULT_PATH);
    let Some(first) = spec.command.first() else { return "no command to run".into() };
    let Some(program) = sys::find_program(first, path) else {
        return format!("{first}: not found in the container");
    };
    let err = sys::exec(&program, &spec.command, &spec.environment);
    format!("exec {first}: {err}")
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
