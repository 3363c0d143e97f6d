//! The same user flows through our `lxc` and the stock LXD 5.0 `lxc` (Debian lxd-client),
//! over the unix socket and as an HTTPS remote.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Guard, Member, clients, fails, ok};

fn name(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn server_config_over_the_unix_socket() {
    for client in clients() {
        let m = Member::start();
        let run = |args: &[&str]| m.client(&client, args, None);
        assert!(ok(run(&["info"])).contains("auth: trusted"), "{}", name(&client));
        ok(run(&["config", "set", "user.k", "v1"]));
        ok(run(&["config", "set", "images.auto_update_interval=12"]));
        assert_eq!(ok(run(&["config", "get", "user.k"])).trim(), "v1");
        assert_eq!(ok(run(&["config", "get", "images.auto_update_interval"])).trim(), "12");
        let err = fails(run(&["config", "set", "bogus.key", "1"]));
        assert!(err.contains("cannot set 'bogus.key' to '1': unknown key"), "{}: {err}", name(&client));
        ok(run(&["config", "unset", "user.k"]));
        assert_eq!(ok(run(&["config", "get", "user.k"])).trim(), "");
        let show = ok(run(&["config", "show"]));
        assert!(
            show.contains("images.auto_update_interval: \"12\"") || show.contains("images.auto_update_interval: '12'"),
            "{show}"
        );
        let v = ok(run(&["version"]));
        assert!(v.contains("Server version: 5.0.2"), "{v}");
    }
}

#[test]
fn profiles_through_each_client() {
    for client in clients() {
        let m = Member::start();
        let run = |args: &[&str]| m.client(&client, args, None);
        ok(run(&["storage", "create", "default", "dir"]));
        ok(run(&["profile", "create", "web"]));
        ok(run(&["profile", "set", "web", "limits.cpu", "2"]));
        ok(run(&["profile", "set", "web", "user.a=1"]));
        assert_eq!(ok(run(&["profile", "get", "web", "limits.cpu"])).trim(), "2");
        ok(run(&["profile", "device", "add", "web", "root", "disk", "path=/", "pool=default"]));
        let show = ok(run(&["profile", "show", "web"]));
        assert!(show.contains("limits.cpu: \"2\"") && show.contains("pool: default"), "{}: {show}", name(&client));
        let yaml = "config:\n  user.edited: \"yes\"\ndescription: edited\ndevices: {}\n";
        ok(m.client(&client, &["profile", "edit", "web"], Some(yaml)));
        let show = ok(run(&["profile", "show", "web"]));
        assert!(show.contains("description: edited") && !show.contains("limits.cpu"), "{show}");
        ok(run(&["profile", "unset", "web", "user.edited"]));
        let list = ok(run(&["profile", "list", "--format", "csv"]));
        assert!(list.contains("web,edited,0"), "{}: {list}", name(&client));
        ok(run(&["profile", "rename", "web", "www"]));
        ok(run(&["profile", "delete", "www"]));
        assert!(fails(run(&["profile", "delete", "default"])).contains("cannot be deleted"));
    }
}

#[test]
fn query_and_operations() {
    for client in clients() {
        let m = Member::start();
        let run = |args: &[&str]| m.client(&client, args, None);
        let out = ok(run(&["query", "/1.0/profiles"]));
        assert_eq!(out, "[\n\t\"/1.0/profiles/default\"\n]\n\n", "{}", name(&client));
        ok(run(&["query", "-X", "PATCH", "-d", "{\"config\":{\"user.q\":\"1\"}}", "/1.0/profiles/default"]));
        assert_eq!(ok(run(&["profile", "get", "default", "user.q"])).trim(), "1");
        let raw = ok(run(&["query", "--raw", "/1.0"]));
        assert!(raw.contains("\"type\": \"sync\""), "{raw}");
        let err = fails(run(&["query", "/1.0/nope"]));
        assert!(err.contains("Error: not found"), "{err}");
        assert!(ok(run(&["operation", "list"])).contains("CANCELABLE"));
    }
}

/// Waits (bounded) until `file` contains `needle`, calling `poke` between checks.
fn wait_for_output(file: &Path, needle: &str, mut poke: impl FnMut()) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no '{needle}' in monitor output:\n{text}");
        poke();
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn monitor_shows_lifecycle_events() {
    for client in clients() {
        let m = Member::start();
        let out_file = m.conf.path().join("monitor.out");
        let child = Command::new(&client)
            .args(["monitor", "--type", "lifecycle", "--format", "json"])
            .env("LXD_DIR", m.lxd_dir())
            .env("LXD_CONF", m.conf.path())
            .env("HOME", m.conf.path())
            .stdout(std::fs::File::create(&out_file).expect("out"))
            .stderr(Stdio::null())
            .spawn()
            .expect("monitor");
        let _guard = Guard(Some(child));
        let mut i = 0;
        let text = wait_for_output(&out_file, "profile-updated", || {
            i += 1;
            let _ = m.lxc(&["profile", "set", "default", "user.mon", &i.to_string()]);
        });
        let line = text.lines().find(|l| l.contains("profile-updated")).unwrap_or_default();
        let ev: serde_json::Value = serde_json::from_str(line).expect("json event");
        assert_eq!(ev["type"], "lifecycle");
        assert_eq!(ev["metadata"]["source"], "/1.0/profiles/default");
        assert_eq!(ev["location"], "none");
    }
}

#[test]
fn https_remote_with_trust_password() {
    for client in clients() {
        let server = Member::start();
        ok(server.lxc(&["config", "set", "core.https_address", &server.address()]));
        ok(server.lxc(&["config", "set", "core.trust_password", "sekret"]));
        let user = Member::start();
        let run = |args: &[&str]| user.client(&client, args, None);
        let url = format!("https://{}", server.address());
        let err = fails(run(&["remote", "add", "bad", &url, "--password", "wrong", "--accept-certificate"]));
        assert!(err.contains("not authorized") || err.contains("403"), "{}: {err}", name(&client));
        let out = ok(run(&["remote", "add", "srv", &url, "--password", "sekret", "--accept-certificate"]));
        assert!(out.contains("Client certificate now trusted by server: srv"), "{out}");
        assert!(ok(run(&["info", "srv:"])).contains("auth: trusted"));
        assert!(ok(run(&["remote", "list", "--format", "csv"])).contains(&url));
        ok(run(&["profile", "set", "srv:default", "user.remote", "yes"]));
        assert_eq!(ok(server.lxc(&["profile", "get", "default", "user.remote"])).trim(), "yes");
        assert_eq!(ok(run(&["config", "get", "srv:", "core.https_address"])).trim(), server.address());
        let pem = std::fs::read_to_string(user.conf.path().join("servercerts/srv.crt")).expect("pinned certificate");
        let served = std::fs::read_to_string(server.lxd_dir().join("server.crt")).expect("server.crt");
        assert_eq!(rxd::tls::fingerprint_pem(&pem).ok(), rxd::tls::fingerprint_pem(&served).ok());
    }
}

#[test]
fn token_made_by_one_client_is_used_by_the_other_once() {
    let lxc = clients();
    for (issuer, user_client) in [(&lxc[0], &lxc[1]), (&lxc[1], &lxc[0])] {
        let server = Member::start();
        ok(server.lxc(&["config", "set", "core.https_address", &server.address()]));
        let out = ok(server.client(issuer, &["config", "trust", "add", "--name", "tokclient"], None));
        let token = out.lines().last().unwrap_or_default().trim().to_string();
        assert!(out.contains("certificate add token"), "{out}");
        let user = Member::start();
        ok(user.client(user_client, &["remote", "add", "tok", &token], None));
        assert!(ok(user.client(user_client, &["info", "tok:"], None)).contains("auth: trusted"));
        let other = Member::start();
        assert!(!other.client(user_client, &["remote", "add", "tok", &token], None).status.success(), "token reused");
        let list = ok(server.lxc(&["config", "trust", "list", "--format", "csv"]));
        assert!(list.contains("tokclient"), "{list}");
    }
}

#[test]
fn our_remote_management_and_config_edit() {
    let server = Member::start();
    ok(server.lxc(&["config", "set", "core.https_address", &server.address()]));
    ok(server.lxc(&["config", "set", "core.trust_password", "sekret"]));
    let user = Member::start();
    let url = format!("https://{}", server.address());
    // Without --accept-certificate the fingerprint is shown and must be confirmed.
    let out = user.client(&common::bin_dir().join("lxc"), &["remote", "add", "srv", &url, "--password", "sekret"], Some("n\n"));
    let text = common::stdout(&out);
    let fp = rxd::tls::fingerprint_pem(&std::fs::read_to_string(server.lxd_dir().join("server.crt")).expect("crt")).expect("fp");
    assert!(text.contains(&format!("Certificate fingerprint: {fp}")), "{text}");
    assert!(!out.status.success());
    let out = user.client(&common::bin_dir().join("lxc"), &["remote", "add", "srv", &url, "--password", "sekret"], Some("y\n"));
    ok(out);
    assert_eq!(ok(user.lxc(&["remote", "get-default"])).trim(), "local");
    ok(user.lxc(&["remote", "switch", "srv"]));
    assert_eq!(ok(user.lxc(&["remote", "get-default"])).trim(), "srv");
    assert!(ok(user.lxc(&["info"])).contains("auth: trusted"), "default remote is used");
    assert!(fails(user.lxc(&["remote", "remove", "srv"])).contains("default remote"));
    ok(user.lxc(&["remote", "rename", "srv", "main"]));
    assert_eq!(ok(user.lxc(&["remote", "get-default"])).trim(), "main");
    ok(user.lxc(&["remote", "switch", "local"]));
    ok(user.lxc(&["remote", "remove", "main"]));
    assert!(!ok(user.lxc(&["remote", "list", "--format", "csv"])).contains("main"));
    assert!(fails(user.lxc(&["remote", "remove", "local"])).contains("static"));
    let yaml = ok(user.lxc(&["remote", "list", "--format", "yaml"]));
    assert!(yaml.contains("addr: unix://"), "{yaml}");

    // config edit from standard input replaces the configuration.
    ok(user.client(&common::bin_dir().join("lxc"), &["config", "edit"], Some("config:\n  user.edited: \"1\"\n")));
    assert_eq!(ok(user.lxc(&["config", "get", "user.edited"])).trim(), "1");
    let err = fails(user.client(&common::bin_dir().join("lxc"), &["config", "edit"], Some("config:\n  nope.key: \"1\"\n")));
    assert!(err.contains("nope.key"), "{err}");
    assert_eq!(ok(user.lxc(&["config", "get", "user.edited"])).trim(), "1");
}
