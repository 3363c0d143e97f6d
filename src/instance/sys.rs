//! Thin safe wrappers over the Linux system calls the driver needs and that neither std nor nix
//! wraps: clone3 with namespaces, pidfds, openat2 and close_range.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// `pidfd_open(pid)`: a handle on a process that cannot be confused with a later one.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments; the result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: the kernel returned a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `signal` through a pidfd.
pub fn pidfd_send_signal(pidfd: RawFd, signal: i32) -> std::io::Result<()> {
    // SAFETY: plain system call; a null siginfo means "as kill(2) would".
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, signal, std::ptr::null::<libc::siginfo_t>(), 0) };
    if r < 0 { Err(last_error()) } else { Ok(()) }
}

/// Whether the process behind `pid` still exists (and is not a zombie we would mistake for it).
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The result of [`clone3`] in the calling process.
pub enum Cloned {
    Child,
    Parent { pid: i32, pidfd: OwnedFd },
}

/// `clone3` without a new stack (fork semantics) into new namespaces, with a pidfd for the child.
pub fn clone3(flags: u64) -> std::io::Result<Cloned> {
    let mut pidfd: RawFd = -1;
    // SAFETY: zeroed clone_args is the documented "no extras" value; fields are then set.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags | libc::CLONE_PIDFD as u64;
    args.pidfd = &mut pidfd as *mut RawFd as u64;
    args.exit_signal = libc::SIGCHLD as u64;
    // SAFETY: with a zero stack clone3 behaves like fork; the caller is single-threaded.
    let r =
        unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut libc::clone_args, std::mem::size_of::<libc::clone_args>()) };
    match r {
        r if r < 0 => Err(last_error()),
        0 => Ok(Cloned::Child),
        // SAFETY: CLONE_PIDFD stored a fresh descriptor in `pidfd`.
        pid => Ok(Cloned::Parent { pid: pid as i32, pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) } }),
    }
}

/// `openat2(dirfd, path, flags, mode, resolve)`.
pub fn openat2(dirfd: RawFd, path: &str, flags: i32, mode: u32, resolve: u64) -> std::io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: zeroed open_how is valid; fields are then set.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    // openat2 refuses a mode without O_CREAT.
    how.mode = if flags & libc::O_CREAT != 0 { mode as u64 } else { 0 };
    how.resolve = resolve;
    // SAFETY: valid C string and struct pointers for the duration of the call.
    let fd = unsafe {
        libc::syscall(libc::SYS_openat2, dirfd, c.as_ptr(), &how as *const libc::open_how, std::mem::size_of::<libc::open_how>())
    };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: the kernel returned a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Resets every catchable signal to its default and empties the signal mask, so an exec'd
/// program does not inherit Rust's ignored SIGPIPE.
pub fn reset_signals() {
    for sig in 1..32 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: restoring default dispositions.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an empty set, then set as the mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Marks every descriptor from `first` on close-on-exec.
pub fn cloexec_from(first: u32) {
    // SAFETY: plain system call.
    unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// Finds `program` on `path` (a PATH value) inside the current root, as a shell would.
pub fn find_program(program: &str, path: &str) -> Option<CString> {
    if program.contains('/') {
        return CString::new(program).ok();
    }
    path.split(':').filter(|d| !d.is_empty()).map(|d| format!("{d}/{program}")).find_map(|candidate| {
        let c = CString::new(candidate).ok()?;
        // SAFETY: valid C string.
        (unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0).then_some(c)
    })
}

/// `execve` of `argv` with `env`; returns only on failure.
pub fn exec(program: &CString, argv: &[String], env: &[(String, String)]) -> std::io::Error {
    let args: Vec<CString> = argv.iter().filter_map(|a| CString::new(a.as_str()).ok()).collect();
    let envs: Vec<CString> = env.iter().filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok()).collect();
    let mut argp: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = envs.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: null-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(program.as_ptr(), argp.as_ptr(), envp.as_ptr()) };
    last_error()
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> std::io::Result<()> {
    // SAFETY: socket + ioctl on a zeroed ifreq naming "lo".
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(last_error());
        }
        let sock = OwnedFd::from_raw_fd(sock);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        use std::os::fd::AsRawFd;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(last_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(last_error());
        }
    }
    Ok(())
}
