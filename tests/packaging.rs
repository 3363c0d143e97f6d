//! packaging/: the install script lays out the binary and both applet symlinks under a
//! prefix, and the systemd unit it installs passes `systemd-analyze verify`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ok, run_timeout};

#[test]
fn install_script_creates_binary_symlinks_and_a_valid_unit() {
    let prefix = tempfile::tempdir().expect("prefix");
    let mut cmd = Command::new("sh");
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/install.sh"))
        .args(["--prefix"])
        .arg(prefix.path())
        .args(["--binary", env!("CARGO_BIN_EXE_rxd")]);
    ok(run_timeout(cmd, None, Duration::from_secs(30)));
    let bin = prefix.path().join("bin");
    assert!(bin.join("rxd").is_file());
    assert_eq!(std::fs::read_link(bin.join("lxd")).expect("lxd link").to_str(), Some("rxd"));
    assert_eq!(std::fs::read_link(bin.join("lxc")).expect("lxc link").to_str(), Some("rxd"));
    let mut version = Command::new(bin.join("lxc"));
    version.arg("version").env("LXD_DIR", prefix.path());
    let out = ok(run_timeout(version, None, Duration::from_secs(10)));
    assert!(out.starts_with("Client version"), "{out}");

    let unit = prefix.path().join("lib/systemd/system/rxd.service");
    let text = std::fs::read_to_string(&unit).expect("unit");
    assert!(text.contains(&format!("ExecStart={}/lxd --group", bin.display())), "{text}");
    assert!(text.contains(&format!("ExecStop={}/lxd shutdown", bin.display())), "{text}");
    let analyze = std::path::Path::new("/usr/bin/systemd-analyze");
    assert!(analyze.exists(), "systemd-analyze is missing (Debian package systemd)");
    let mut cmd = Command::new(analyze);
    cmd.args(["verify", "--man=no"]).arg(&unit);
    let out = run_timeout(cmd, None, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("rxd.service:"), "systemd-analyze verify: {err}");
}
