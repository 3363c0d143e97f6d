//! Containers on one member, driven by both clients: launch, exec (output, exit status, stdin,
//! interactive), files (including symlinks that try to escape), limits, clean and forced stop,
//! delete, and containers that outlive a crashed daemon and restart with a clean one.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn standalone() -> Member {
    let m = Member::start();
    ok(m.lxd(&["init", "--auto"]));
    let image = test_image();
    let out = ok(m.stock(&["image", "import", image.to_str().expect("path"), "--alias", "testimage"]));
    assert!(out.contains("Image imported with fingerprint:"), "{out}");
    m
}

fn client_name(program: &Path) -> &'static str {
    if program.ends_with("lxc") && program.starts_with("/usr") { "stock" } else { "ours" }
}

#[test]
fn containers_run_exec_and_stop_with_both_clients() {
    let m = standalone();
    for program in clients() {
        let who = client_name(&program);
        let c = format!("c-{who}");
        let run = |args: &[&str]| m.client(&program, args, None);
        let out = ok(run(&["launch", "testimage", &c, "-c", "limits.memory=64MB"]));
        assert!(out.contains(&format!("Starting {c}")), "{who}: {out}");
        let list = ok(run(&["list", "--format", "csv", "-c", "ns"]));
        assert!(list.contains(&format!("{c},RUNNING")), "{who}: {list}");
        // The state shows the container's own loopback, counted by its network namespace.
        ok(run(&["exec", &c, "--", "ping", "-c", "2", "-W", "1", "127.0.0.1"]));
        let state: serde_json::Value =
            serde_json::from_str(&ok(run(&["query", &format!("/1.0/instances/{c}/state")]))).expect("state JSON");
        let lo = &state["network"]["lo"];
        assert_eq!((lo["state"].as_str(), lo["type"].as_str()), (Some("up"), Some("loopback")), "{who}: {state}");
        assert!(lo["mtu"].as_u64().is_some_and(|m| m > 0), "{who}: {state}");
        assert!(lo["counters"]["packets_received"].as_u64().is_some_and(|n| n >= 4), "{who}: {state}");

        // Instance configuration through the instance's ETag'd PUT.
        ok(run(&["config", "set", &c, "user.color", "blue"]));
        assert_eq!(ok(run(&["config", "get", &c, "user.color"])).trim(), "blue", "{who}");
        let err = fails(run(&["config", "set", &c, "bogus.key=1"]));
        assert!(err.contains("bogus.key"), "{who}: {err}");
        ok(run(&["config", "unset", &c, "user.color"]));
        assert_eq!(ok(run(&["config", "get", &c, "user.color"])).trim(), "", "{who}");
        // Instance devices: a host directory bound in (at the next start), listed, refused
        // when invalid, removed.
        let shared = tempfile::tempdir().expect("tempdir");
        std::fs::write(shared.path().join("from-host"), "shared\n").expect("write");
        let source = format!("source={}", shared.path().display());
        ok(run(&["config", "device", "add", &c, "data", "disk", "path=/mnt/data", &source, "readonly=true"]));
        assert!(ok(run(&["config", "device", "show", &c])).contains("path: /mnt/data"), "{who}");
        ok(run(&["restart", "--force", &c]));
        assert_eq!(ok(run(&["exec", &c, "--", "cat", "/mnt/data/from-host"])), "shared\n", "{who}");
        fails(run(&["exec", &c, "--", "touch", "/mnt/data/x"]));
        let err = fails(run(&["config", "device", "add", &c, "bad", "nosuchtype"]));
        assert!(err.contains("nosuchtype"), "{who}: {err}");
        ok(run(&["config", "device", "remove", &c, "data"]));
        assert!(!ok(run(&["config", "device", "list", &c])).contains("data"), "{who}");

        // exec: output, hostname, exit status, stdin, environment and cwd.
        let out = run(&["exec", &c, "--", "sh", "-c", "hostname; echo to-err >&2; exit 7"]);
        assert_eq!(out.status.code(), Some(7), "{who}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), c, "{who}");
        assert!(stderr(&out).contains("to-err"), "{who}: {}", stderr(&out));
        let out = m.client(
            &program,
            &["exec", &c, "-T", "--env", "FOO=bar", "--cwd", "/tmp", "--", "sh", "-c", "read x; echo $x:$FOO:$(pwd)"],
            Some("hello\n"),
        );
        assert_eq!(stdout(&out).trim(), "hello:bar:/tmp", "{who}: {}", stderr(&out));
        // --user / --group: the command runs with those ids inside the container.
        let out = ok(run(&["exec", &c, "--user", "1000", "--group", "1001", "--", "sh", "-c", "echo $(id -u):$(id -g)"]));
        assert_eq!(out.trim(), "1000:1001", "{who}");
        // Interactive: the command gets a terminal from the container's own devpts.
        let out = run(&["exec", &c, "-t", "--", "sh", "-c", "tty; exit 3"]);
        assert_eq!(out.status.code(), Some(3), "{who}: {}", stderr(&out));
        assert!(stdout(&out).contains("/dev/pts/0"), "{who}: {}", stdout(&out));
        // A signal to the client reaches the command (SIGTERM: 128 + 15).
        let mut child = std::process::Command::new(&program)
            .args(["exec", &c, "-T", "--", "sleep", "30"])
            .env("LXD_DIR", m.lxd_dir())
            .env("LXD_CONF", m.conf.path())
            .env("HOME", m.conf.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn exec");
        wait_for(Duration::from_secs(10), "sleep running", || {
            ok(run(&["exec", &c, "--", "ps"])).contains("sleep 30").then_some(())
        });
        // SAFETY: kill(2) on the client process this test spawned.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = wait_for(Duration::from_secs(10), "exec to end", || child.try_wait().ok().flatten());
        assert_eq!(status.code(), Some(143), "{who}");

        // The container sees only its own processes, with init as pid 1.
        let ps = ok(run(&["exec", &c, "--", "ps"]));
        assert!(ps.lines().any(|l| l.trim_start().starts_with("1 ") && l.contains("init")), "{who}: {ps}");

        // The memory limit is in the container's cgroup.
        let pid = init_pid(&m, &c).expect("init pid");
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        if let Some(line) = cgroups.lines().find(|l| l.split(':').nth(1) == Some("memory")) {
            let rel = line.splitn(3, ':').nth(2).unwrap_or("");
            let limit = std::fs::read_to_string(format!("/sys/fs/cgroup/memory{rel}/memory.limit_in_bytes")).unwrap_or_default();
            assert_eq!(limit.trim(), "64000000", "{who}: {rel}");
        }

        // Files: push, pull, pull to stdout, create parents, delete.
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("hello.txt");
        std::fs::write(&src, "hello from the host\n").expect("write");
        ok(run(&["file", "push", src.to_str().expect("path"), &format!("{c}/root/hello.txt")]));
        let pulled = dir.path().join("pulled.txt");
        ok(run(&["file", "pull", &format!("{c}/root/hello.txt"), pulled.to_str().expect("path")]));
        assert_eq!(std::fs::read_to_string(&pulled).expect("read"), "hello from the host\n");
        assert_eq!(ok(run(&["exec", &c, "--", "cat", "/root/hello.txt"])), "hello from the host\n");
        ok(run(&["file", "push", "-p", src.to_str().expect("path"), &format!("{c}/root/a/b/c.txt")]));
        assert_eq!(ok(run(&["file", "pull", &format!("{c}/root/a/b/c.txt"), "-"])), "hello from the host\n");
        ok(run(&["file", "delete", &format!("{c}/root/hello.txt")]));
        fails(run(&["exec", &c, "--", "test", "-e", "/root/hello.txt"]));

        // A symlink pointing at the host's files resolves inside the container, never outside.
        let host_shadow = std::fs::read("/etc/shadow").ok();
        ok(run(&["exec", &c, "--", "ln", "-s", "/etc/shadow", "/root/evil"]));
        ok(run(&["exec", &c, "--", "ln", "-s", "../../../../../../etc/shadow", "/root/evil2"]));
        for link in ["evil", "evil2"] {
            let out = run(&["file", "pull", &format!("{c}/root/{link}"), "-"]);
            assert!(!out.status.success(), "{who}: pulling through {link} must fail (no /etc/shadow in the container)");
            if let Some(shadow) = &host_shadow {
                assert!(!out.stdout.windows(shadow.len().min(16)).any(|w| w == &shadow[..shadow.len().min(16)]), "{who}: leaked");
            }
        }
        let marker = dir.path().join("marker");
        std::fs::write(&marker, "written through a symlink\n").expect("write");
        ok(run(&["file", "push", marker.to_str().expect("path"), &format!("{c}/root/evil")]));
        assert_eq!(std::fs::read("/etc/shadow").ok(), host_shadow, "{who}: the host's /etc/shadow changed");
        assert_eq!(ok(run(&["exec", &c, "--", "cat", "/etc/shadow"])), "written through a symlink\n");

        // Clean stop (init halts), start again, forced stop, delete.
        ok(run(&["stop", &c]));
        assert!(init_pid(&m, &c).is_none(), "{who}: still running after stop");
        let console = std::fs::read_to_string(m.lxd_dir().join("logs").join(&c).join("console.log")).expect("console log");
        assert!(console.contains("Requesting system halt"), "{who}: {console}");
        fails(run(&["exec", &c, "--", "true"]));
        ok(run(&["start", &c]));
        let err = fails(run(&["delete", &c]));
        assert!(err.contains("stop it first") || err.contains("running"), "{who}: {err}");
        ok(run(&["stop", "--force", &c]));
        ok(run(&["delete", &c]));
        assert!(!ok(run(&["list", "--format", "csv"])).contains(&c), "{who}");
        assert!(!m.lxd_dir().join("storage-pools/default/containers").join(&c).exists(), "{who}: rootfs left behind");
    }
}

#[test]
fn containers_survive_a_daemon_crash_and_restart_with_a_clean_daemon() {
    let mut m = standalone();
    // An ephemeral container is gone once stopped.
    ok(m.stock(&["launch", "testimage", "eph", "--ephemeral"]));
    ok(m.stock(&["stop", "--force", "eph"]));
    assert!(!ok(m.lxc(&["list", "--format", "csv"])).contains("eph"));
    ok(m.lxc(&["launch", "testimage", "c1"]));
    ok(m.lxc(&["init", "testimage", "c2"]));
    let pid = init_pid(&m, "c1").expect("running");

    // SIGKILL the daemon: the container keeps running and is found again.
    m.daemon.0.as_mut().expect("daemon").kill().expect("kill");
    let _ = m.daemon.0.as_mut().expect("daemon").wait();
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "the container died with its daemon");
    m.spawn();
    let list = ok(m.stock(&["list", "--format", "csv", "-c", "ns"]));
    assert!(list.contains("c1,RUNNING") && list.contains("c2,STOPPED"), "{list}");
    assert_eq!(ok(m.stock(&["exec", "c1", "--", "hostname"])).trim(), "c1");

    // A clean shutdown stops it; the next start of the daemon starts it again (only c1).
    ok(m.lxd(&["shutdown"]));
    assert!(m.wait_exit(Duration::from_secs(30)).is_some(), "daemon did not stop");
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "the container outlived a clean shutdown");
    m.spawn();
    let list = wait_for(Duration::from_secs(10), "c1 running again", || {
        let l = ok(m.lxc(&["list", "--format", "csv", "-c", "ns"]));
        l.contains("c1,RUNNING").then_some(l)
    });
    assert!(list.contains("c2,STOPPED"), "{list}");
    ok(m.lxc(&["stop", "--force", "c1"]));
}

#[test]
fn images_import_alias_export_and_delete() {
    let m = standalone();
    let image = test_image();
    let expected = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(std::fs::read(&image).expect("image")))
    };
    let list = ok(m.lxc(&["image", "list", "--format", "csv"]));
    assert!(list.contains("testimage") && list.contains(&expected[..12]), "{list}");
    let again = fails(m.lxc(&["image", "import", image.to_str().expect("path")]));
    assert!(again.contains("Image with same fingerprint already exists"), "{again}");
    ok(m.stock(&["image", "alias", "create", "second", &expected[..12]]));
    let show = ok(m.lxc(&["image", "show", "second"]));
    assert!(show.contains(&format!("fingerprint: {expected}")) && show.contains("os: Busybox"), "{show}");
    let dir = tempfile::tempdir().expect("tempdir");
    for program in clients() {
        let target = dir.path().join(client_name(&program));
        ok(m.client(&program, &["image", "export", "testimage", target.to_str().expect("path")], None));
        let written = dir.path().join(format!("{}.tar.gz", client_name(&program)));
        assert_eq!(std::fs::read(&written).expect("exported"), std::fs::read(&image).expect("image"));
    }
    ok(m.stock(&["image", "alias", "delete", "second"]));
    ok(m.lxc(&["image", "delete", "testimage"]));
    assert!(!ok(m.stock(&["image", "list", "--format", "csv"])).contains(&expected[..12]));
    assert!(!m.lxd_dir().join("images").join(&expected).exists(), "image file left behind");
    // Not an image: refused, nothing kept.
    let bogus = dir.path().join("bogus.tar.gz");
    std::fs::write(&bogus, b"not a tarball").expect("write");
    let err = fails(m.stock(&["image", "import", bogus.to_str().expect("path")]));
    assert!(err.contains("unified tarball"), "{err}");
}

#[test]
fn snapshots_restore_and_copy_with_both_clients() {
    let m = standalone();
    for program in clients() {
        let who = client_name(&program);
        let c = format!("s-{who}");
        let run = |args: &[&str]| m.client(&program, args, None);
        ok(run(&["launch", "testimage", &c]));
        ok(run(&["exec", &c, "--", "sh", "-c", "echo before > /root/state"]));
        ok(run(&["snapshot", &c, "snap0"]));
        ok(run(&["exec", &c, "--", "sh", "-c", "echo after > /root/state"]));
        let list = ok(run(&["list", "--format", "csv", "-c", "nS"]));
        assert!(list.contains(&format!("{c},1")), "{who}: {list}");
        let info = ok(run(&["info", &c]));
        assert!(info.contains("snap0"), "{who}: {info}");
        // Restoring a running instance stops it, puts the files back and starts it again.
        ok(run(&["restore", &c, "snap0"]));
        assert_eq!(ok(run(&["exec", &c, "--", "cat", "/root/state"])), "before\n", "{who}");
        let copy = format!("{c}-copy");
        ok(run(&["copy", &format!("{c}/snap0"), &copy]));
        ok(run(&["start", &copy]));
        assert_eq!(ok(run(&["exec", &copy, "--", "cat", "/root/state"])), "before\n", "{who}");
        ok(run(&["delete", &format!("{c}/snap0")]));
        assert!(ok(run(&["list", "--format", "csv", "-c", "nS"])).contains(&format!("{c},0")), "{who}");
        for n in [&c, &copy] {
            ok(run(&["delete", "--force", n]));
        }
        assert!(!m.lxd_dir().join("storage-pools/default/containers-snapshots").join(&c).exists(), "{who}");
    }
}
