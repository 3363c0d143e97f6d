//! `lxd init --preseed` and `--auto`: a good preseed is applied; a bad one is refused with the
//! line and key at fault and leaves nothing behind.

mod common;

use common::{Member, fails, ok};

fn server_config(m: &Member) -> serde_json::Value {
    let v: serde_json::Value = common::rt().block_on(m.conn().get_json("/1.0")).expect("info");
    v["config"].clone()
}

#[test]
fn preseed_configures_server_pool_and_profile() {
    let m = Member::start();
    let preseed = format!(
        "config:\n  core.https_address: {}\n  core.trust_password: sekret\n  images.auto_update_interval: 15\n\
         storage_pools:\n- name: default\n  driver: dir\n\
         profiles:\n- name: default\n  devices:\n    root:\n      path: /\n      pool: default\n      type: disk\n",
        m.address()
    );
    ok(m.lxd_stdin(&["init", "--preseed"], Some(&preseed)));
    let cfg = server_config(&m);
    assert_eq!(cfg["core.https_address"], m.address().as_str());
    assert_eq!(cfg["core.trust_password"], true);
    assert_eq!(cfg["images.auto_update_interval"], "15");
    let show = ok(m.lxc(&["profile", "show", "default"]));
    assert!(show.contains("pool: default"), "{show}");
    assert!(ok(m.lxc(&["storage", "list", "--format", "csv"])).contains("default,dir"));
}

#[test]
fn bad_preseed_names_line_and_key_and_applies_nothing() {
    let m = Member::start();
    let bad_key = "config:\n  user.fine: x\n  core.bogus: 1\n";
    let err = fails(m.lxd_stdin(&["init", "--preseed"], Some(bad_key)));
    assert!(err.contains("line 3") && err.contains("core.bogus"), "{err}");
    assert_eq!(server_config(&m), serde_json::json!({}));

    let bad_yaml = "config:\n  user.a: [unclosed\n";
    let err = fails(m.lxd_stdin(&["init", "--preseed"], Some(bad_yaml)));
    assert!(err.contains("line"), "{err}");

    // Valid syntax, but the second pool fails on the server: everything is rolled back.
    let rollback = "config:\n  user.applied: yes\nstorage_pools:\n- name: good\n  driver: dir\n- name: broken\n  driver: dir\n  config:\n    source: /nonexistent/rxd-test\n";
    let err = fails(m.lxd_stdin(&["init", "--preseed"], Some(rollback)));
    assert!(err.contains("broken") && err.contains("doesn't exist"), "{err}");
    assert_eq!(server_config(&m), serde_json::json!({}));
    let pools = ok(m.lxc(&["storage", "list", "--format", "csv"]));
    assert!(pools.trim().is_empty(), "pool left behind: {pools}");
    assert!(!m.lxd_dir().join("storage-pools/good").exists());
}

#[test]
fn auto_init_creates_the_default_pool() {
    let m = Member::start();
    ok(m.lxd(&["init", "--auto", "--network-address", &m.ip, "--network-port", "8443", "--trust-password", "pw"]));
    let cfg = server_config(&m);
    assert_eq!(cfg["core.https_address"], m.address().as_str());
    let show = ok(m.lxc(&["profile", "show", "default"]));
    assert!(show.contains("pool: default"), "{show}");
}
