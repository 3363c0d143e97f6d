//! Running a command inside a container. The daemon spawns `rxd forkexec <run dir> <request>`,
//! a single-threaded helper that joins the container's cgroups and all its namespaces at once
//! (setns on the init's pidfd), allocates the pty from the container's own devpts when the
//! session is interactive, forks the command inside the container's pid namespace and exits
//! with its status. Over fd 3 (a seqpacket socket) it reports the command's pid, and hands the
//! pty master back with SCM_RIGHTS.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::{Deserialize, Serialize};

use super::HelperError;
use super::spec;
use super::sys;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub interactive: bool,
    pub width: u16,
    pub height: u16,
}

/// What the helper reports back to the daemon.
#[derive(Debug)]
pub struct Started {
    /// The command's pid as the host sees it (for forwarding signals).
    pub pid: i32,
    /// The pty master, for interactive sessions.
    pub pty: Option<OwnedFd>,
}

/// The helper's side: runs in the `forkexec` process; returns the exit code.
pub fn helper(run_dir: &Path, request: &ExecRequest) -> i32 {
    // SAFETY: fd 3 is the report socket the daemon passed.
    let report = unsafe { OwnedFd::from_raw_fd(3) };
    match helper_inner(run_dir, request, report.as_raw_fd()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e}");
            let _ = send(report.as_raw_fd(), format!("err {e}").as_bytes(), None);
            // LXD's -1 for a command that could not be started.
            255
        }
    }
}

fn send(sock: RawFd, msg: &[u8], fd: Option<RawFd>) -> nix::Result<usize> {
    let iov = [IoSlice::new(msg)];
    match fd {
        Some(fd) => {
            let fds = [fd];
            sendmsg::<()>(sock, &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        }
        None => sendmsg::<()>(sock, &iov, &[], MsgFlags::empty(), None),
    }
}

fn helper_inner(run_dir: &Path, req: &ExecRequest, report: RawFd) -> Result<i32, HelperError> {
    let not_running = || HelperError::Refused("Instance is not running".into());
    let pid: i32 = std::fs::read_to_string(run_dir.join(spec::INIT_PID_FILE))
        .map_err(|_| not_running())?
        .trim()
        .parse()
        .map_err(|_| not_running())?;
    let pidfd = sys::pidfd_open(pid).map_err(|_| not_running())?;
    let own_pid_ns = std::fs::metadata("/proc/self/ns/pid").map(|m| std::os::unix::fs::MetadataExt::ino(&m)).ok();
    let target_ns = std::fs::metadata(format!("/proc/{pid}/ns/pid")).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).ok();
    if own_pid_ns.is_none() || own_pid_ns == target_ns {
        return Err(HelperError::Refused("refusing to run a command in the host's namespaces".into()));
    }
    for h in super::cgroup::load(&run_dir.join(spec::CGROUPS_FILE)) {
        let _ = h.add(std::process::id() as i32);
    }
    let flags = nix::sched::CloneFlags::from_bits_truncate(
        libc::CLONE_NEWCGROUP
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNS,
    );
    nix::sched::setns(&pidfd, flags).map_err(HelperError::sys("entering the container"))?;
    nix::unistd::chdir("/").map_err(HelperError::sys("chdir /"))?;
    let pty = if req.interactive { Some(open_pty(req.width, req.height)?) } else { None };
    // SAFETY: this helper is single-threaded.
    match unsafe { nix::unistd::fork() }.map_err(HelperError::sys("fork"))? {
        nix::unistd::ForkResult::Child => {
            let err = command_child(req, pty.as_ref().map(|(_, s)| s.as_raw_fd()));
            eprintln!("Error: {err}");
            // SAFETY: leave the forked child at once.
            unsafe { libc::_exit(127) };
        }
        nix::unistd::ForkResult::Parent { child } => {
            let master = pty.as_ref().map(|(m, _)| m.as_raw_fd());
            send(report, format!("pid {}", child.as_raw()).as_bytes(), master).map_err(HelperError::sys("reporting the pid"))?;
            drop(pty);
            loop {
                match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return Ok(code),
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(HelperError::Sys { what: "waiting for the command".into(), source: e }),
                }
            }
        }
    }
}

/// A pty from the container's devpts: (master, slave).
fn open_pty(width: u16, height: u16) -> Result<(OwnedFd, OwnedFd), HelperError> {
    use nix::pty::{grantpt, posix_openpt, unlockpt};
    let master = posix_openpt(nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(HelperError::sys("allocating a pty"))?;
    grantpt(&master).map_err(HelperError::sys("grantpt"))?;
    unlockpt(&master).map_err(HelperError::sys("unlockpt"))?;
    // SAFETY: TIOCGPTPEER on a pty master returns a new descriptor for its slave.
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if slave < 0 {
        return Err(HelperError::Io { what: "opening the pty slave".into(), source: std::io::Error::last_os_error() });
    }
    // SAFETY: fresh descriptor from the kernel.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    set_window(master.as_raw_fd(), width, height);
    let raw = master.as_raw_fd();
    std::mem::forget(master);
    // SAFETY: taking ownership of the master's descriptor from the PtyMaster wrapper.
    Ok((unsafe { OwnedFd::from_raw_fd(raw) }, slave))
}

/// Sets a pty's window size (ignored when zero).
pub fn set_window(fd: RawFd, width: u16, height: u16) {
    if width == 0 || height == 0 {
        return;
    }
    let ws = libc::winsize { ws_row: height, ws_col: width, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ with a valid winsize.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// The forked command inside the container; returns only on failure.
fn command_child(req: &ExecRequest, slave: Option<RawFd>) -> String {
    sys::reset_signals();
    let _ = nix::unistd::setsid();
    if let Some(s) = slave {
        // SAFETY: making the pty slave the controlling terminal and the standard descriptors.
        unsafe {
            libc::ioctl(s, libc::TIOCSCTTY, 0);
            libc::dup2(s, 0);
            libc::dup2(s, 1);
            libc::dup2(s, 2);
        }
    }
    let home = req.environment.iter().find(|(k, _)| k == "HOME").map(|(_, v)| v.clone()).unwrap_or_else(|| "/root".into());
    let cwd = if req.cwd.is_empty() { home } else { req.cwd.clone() };
    if let Err(e) = nix::unistd::chdir(cwd.as_str()) {
        if !req.cwd.is_empty() {
            return format!("changing to {cwd}: {e}");
        }
        let _ = nix::unistd::chdir("/");
    }
    if req.gid != 0 || req.uid != 0 {
        let gid = nix::unistd::Gid::from_raw(req.gid);
        if let Err(e) = nix::unistd::setgroups(&[gid]).and_then(|_| nix::unistd::setgid(gid)) {
            return format!("setgid {}: {e}", req.gid);
        }
        if let Err(e) = nix::unistd::setuid(nix::unistd::Uid::from_raw(req.uid)) {
            return format!("setuid {}: {e}", req.uid);
        }
    }
    sys::cloexec_from(3);
    let path = req.environment.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str()).unwrap_or(super::monitor::DEFAULT_PATH);
    let Some(first) = req.command.first() else { return "no command given".into() };
    let Some(program) = sys::find_program(first, path) else {
        return format!("{first}: executable file not found in $PATH");
    };
    let err = sys::exec(&program, &req.command, &req.environment);
    format!("{first}: {err}")
}

/// The daemon's side: reads the helper's report (blocking; call from a blocking thread).
pub fn read_report(sock: RawFd) -> Result<Started, HelperError> {
    let mut buf = [0u8; 512];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(HelperError::sys("reading the exec helper's report"))?;
    let mut pty = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = c
                && let Some(&fd) = fds.first()
            {
                // SAFETY: SCM_RIGHTS delivered a fresh descriptor to this process.
                pty = Some(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    let n = msg.bytes;
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    if let Some(pid) = text.strip_prefix("pid ") {
        let pid = pid.trim().parse().map_err(|_| HelperError::Refused(format!("bad report {text}")))?;
        return Ok(Started { pid, pty });
    }
    if n == 0 {
        return Err(HelperError::Refused("the exec helper exited before starting the command".into()));
    }
    Err(HelperError::Refused(text.strip_prefix("err ").unwrap_or(&text).to_string()))
}
