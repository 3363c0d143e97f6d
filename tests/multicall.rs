//! The multi-call binary: dispatch by argv[0] and by first argument, help, unknown applets.

mod common;

use std::process::Command;

use common::{bin_dir, run_timeout, stderr, stdout};

fn rxd(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rxd"));
    cmd.args(args);
    run_timeout(cmd, None, std::time::Duration::from_secs(10))
}

#[test]
fn help_lists_the_applets() {
    let out = rxd(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("lxd") && text.contains("lxc"), "{text}");
}

#[test]
fn unknown_applet_is_exit_status_2() {
    let out = rxd(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown applet \"frobnicate\""), "{}", stderr(&out));
    assert_eq!(rxd(&[]).status.code(), Some(2));
}

#[test]
fn first_argument_and_symlink_pick_the_same_applet() {
    let via_arg = rxd(&["lxc", "version"]);
    let mut cmd = Command::new(bin_dir().join("lxc"));
    cmd.arg("version").env("LXD_DIR", "/nonexistent");
    let via_link = run_timeout(cmd, None, std::time::Duration::from_secs(10));
    assert!(stdout(&via_arg).starts_with("Client version: "), "{}", stdout(&via_arg));
    assert_eq!(stdout(&via_arg).lines().next(), stdout(&via_link).lines().next());
    let lxd = rxd(&["lxd", "version"]);
    assert!(lxd.status.success());
    assert_eq!(stdout(&lxd).trim(), rxd::api::SERVER_VERSION);
}

#[test]
fn applet_help_and_bad_flags() {
    let out = rxd(&["lxd", "--help"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("waitready"));
    let out = rxd(&["lxc", "--no-such-flag"]);
    assert!(!out.status.success());
}
