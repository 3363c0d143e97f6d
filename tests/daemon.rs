//! The daemon's life cycle: directories and identity on first start, readiness, clean stops by
//! `lxd shutdown` and by signal, refusing a second daemon, socket permissions, damaged files.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use common::{Member, fails, ok};

#[test]
fn first_start_creates_directories_certificate_and_databases() {
    let m = Member::start();
    let d = m.lxd_dir();
    for p in ["server.crt", "server.key", "database/local.db", "database/global/state.db", "unix.socket", "storage-pools", "logs"]
    {
        assert!(d.join(p).exists(), "{p} missing");
    }
    assert_eq!(std::fs::metadata(d.join("server.key")).expect("key").permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(d.join("unix.socket")).expect("socket").permissions().mode() & 0o777, 0o660);
    let pem = std::fs::read_to_string(d.join("server.crt")).expect("crt");
    let info: serde_json::Value = common::rt().block_on(m.conn().get_json("/1.0")).expect("info");
    assert_eq!(info["environment"]["certificate_fingerprint"], rxd::tls::fingerprint_pem(&pem).expect("fp"));
}

#[test]
fn shutdown_stops_the_daemon_cleanly_and_restart_keeps_identity() {
    let mut m = Member::start();
    let fp = std::fs::read_to_string(m.lxd_dir().join("server.crt")).expect("crt");
    ok(m.lxd(&["shutdown"]));
    let status = m.wait_exit(Duration::from_secs(10)).expect("daemon exited");
    assert!(status.success(), "{status:?}");
    assert!(!m.lxd_dir().join("unix.socket").exists(), "socket left behind");
    m.spawn();
    assert_eq!(std::fs::read_to_string(m.lxd_dir().join("server.crt")).expect("crt"), fp);
}

#[test]
fn sigterm_and_sigint_stop_it_cleanly() {
    for sig in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGINT] {
        let mut m = Member::start();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(m.pid() as i32), sig).expect("signal");
        let status = m.wait_exit(Duration::from_secs(10)).expect("exited");
        assert!(status.success(), "{sig}: {status:?}");
        assert!(!m.lxd_dir().join("unix.socket").exists());
    }
}

#[test]
fn a_second_daemon_on_the_same_directory_refuses() {
    let m = Member::start();
    let out = std::process::Command::new(common::bin_dir().join("lxd"))
        .env("LXD_DIR", m.lxd_dir())
        .output()
        .expect("run second daemon");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running") && err.contains(&m.pid().to_string()), "{err}");
    ok(m.lxc(&["info"]));
}

#[test]
fn waitready_times_out_without_a_daemon() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cmd = std::process::Command::new(common::bin_dir().join("lxd"));
    cmd.args(["waitready", "--timeout", "1"]).env("LXD_DIR", dir.path());
    let out = common::run_timeout(cmd, None, Duration::from_secs(10));
    assert!(fails(out).contains("Daemon still not running after 1s timeout"));
}

#[test]
fn group_option_sets_the_socket_group() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = common::Guard(Some(
        std::process::Command::new(common::bin_dir().join("lxd"))
            .args(["--group", "daemon"])
            .env("LXD_DIR", dir.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn"),
    ));
    let mut cmd = std::process::Command::new(common::bin_dir().join("lxd"));
    cmd.args(["waitready", "--timeout", "10"]).env("LXD_DIR", dir.path());
    ok(common::run_timeout(cmd, None, Duration::from_secs(20)));
    let gid = nix::unistd::Group::from_name("daemon").expect("lookup").expect("group daemon").gid;
    assert_eq!(std::fs::metadata(dir.path().join("unix.socket")).expect("socket").gid(), gid.as_raw());
    drop(child.0.take().map(|mut c| c.kill()));
}

#[test]
fn a_damaged_database_is_refused_with_a_clear_message() {
    let mut m = Member::start();
    ok(m.lxd(&["shutdown"]));
    m.wait_exit(Duration::from_secs(10)).expect("exited");
    let db = m.lxd_dir().join("database/global/state.db");
    let _ = std::fs::remove_file(m.lxd_dir().join("database/global/state.db-wal"));
    let _ = std::fs::remove_file(m.lxd_dir().join("database/global/state.db-shm"));
    std::fs::write(&db, b"this is not an sqlite database at all, just garbage bytes").expect("corrupt");
    let out = std::process::Command::new(common::bin_dir().join("lxd")).env("LXD_DIR", m.lxd_dir()).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("state.db") && err.contains("damaged"), "{err}");
    assert!(!m.lxd_dir().join("unix.socket").exists(), "must not serve");
}
