//! Instances across a three-member cluster: the seed's flow with the stock client (launch on
//! node2 from node1, list from node3 with LOCATION, exec and file pull through node1, stop,
//! delete), placement, forwarding from every member with both clients, image copies per
//! `cluster.images_minimal_replica`, an offline member's instances in ERROR, member removal
//! refused while it hosts instances, and evacuate/restore.

mod common;

use std::time::Duration;

use common::*;

fn fingerprint(path: &std::path::Path) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(std::fs::read(path).expect("image")))
}

fn holders(c: &TestCluster, fp: &str) -> Vec<usize> {
    (0..c.members.len()).filter(|i| c.members[*i].lxd_dir().join("images").join(fp).exists()).collect()
}

fn location(c: &TestCluster, via: usize, name: &str) -> Option<(String, String)> {
    let csv = ok(c.members[via].stock(&["list", "--format", "csv", "-c", "nsL"]));
    csv.lines().map(csv_fields).find(|f| f.first().map(String::as_str) == Some(name)).map(|f| (f[1].clone(), f[2].clone()))
}

#[test]
fn seed_flow_placement_forwarding_and_images() {
    let c = TestCluster::form(3);
    let image = test_image();
    let fp = fingerprint(&image);
    // Default images_minimal_replica (3): every member holds the file after the import.
    ok(c.members[0].stock(&["image", "import", image.to_str().expect("path"), "--alias", "testimage"]));
    let got = wait_for(Duration::from_secs(10), "image on 3 members", || {
        let h = holders(&c, &fp);
        (h.len() == 3).then_some(h)
    });
    assert_eq!(got, vec![0, 1, 2]);

    // The seed's flow, stock client: launch on node2 from node1, list from node3.
    let out = ok(c.members[0].stock(&["launch", "--target", "node2", "testimage", "c1"]));
    assert!(out.contains("Starting c1"), "{out}");
    assert_eq!(location(&c, 2, "c1"), Some(("RUNNING".into(), "node2".into())));
    assert!(init_pid(&c.members[1], "c1").is_some(), "c1 does not run on node2");
    let list = ok(c.members[2].stock(&["list"]));
    assert!(list.contains("LOCATION") && list.contains("node2"), "{list}");
    let ls = ok(c.members[0].stock(&["exec", "c1", "--", "ls", "/"]));
    assert!(ls.contains("etc") && ls.contains("proc"), "{ls}");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = c.members[0].client(
        std::path::Path::new(STOCK_LXC),
        &["file", "pull", "c1/etc/hosts", dir.path().to_str().expect("path")],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(dir.path().join("hosts")).expect("pulled").contains("localhost"));
    let info = ok(c.members[2].stock(&["info", "c1"]));
    assert!(info.contains("Location: node2"), "{info}");

    // Every member operates on it, with both clients.
    for via in 0..3 {
        for program in clients() {
            let out = c.members[via].client(&program, &["exec", "c1", "--", "sh", "-c", "hostname; exit 9"], None);
            assert_eq!(out.status.code(), Some(9), "via {via} {program:?}: {}", stderr(&out));
            assert_eq!(stdout(&out).trim(), "c1");
        }
    }
    let ours = ok(c.members[2].lxc(&["list", "--format", "csv", "-c", "nsL"]));
    assert!(ours.contains("c1,RUNNING,node2"), "{ours}");

    // Copy to another member (stock client, as LXD's suite does), rename through node1.
    ok(c.members[0].stock(&["copy", "c1", "cp1", "--target", "node3"]));
    assert!(ok(c.members[1].stock(&["info", "cp1"])).contains("Location: node3"));
    ok(c.members[1].stock(&["start", "cp1"]));
    assert_eq!(ok(c.members[0].lxc(&["exec", "cp1", "--", "hostname"])).trim(), "cp1");
    ok(c.members[0].stock(&["stop", "--force", "cp1"]));
    ok(c.members[0].stock(&["rename", "cp1", "cp2"]));
    assert!(ok(c.members[1].stock(&["list", "--format", "csv"])).contains("cp2"));
    ok(c.members[2].lxc(&["copy", "cp2", "cp3"]));
    ok(c.members[2].lxc(&["delete", "cp2"]));
    ok(c.members[0].stock(&["delete", "cp3"]));

    // A snapshot taken through node1 of an instance on node2, copied to node1 from node2.
    ok(c.members[0].stock(&["snapshot", "c1", "c1-bak"]));
    ok(c.members[1].stock(&["copy", "c1/c1-bak", "bar", "--target", "node1"]));
    assert!(ok(c.members[1].stock(&["info", "bar"])).contains("Location: node1"));
    assert!(c.members[0].lxd_dir().join("storage-pools/default/containers/bar/rootfs/bin/busybox").exists());
    ok(c.members[2].stock(&["delete", "bar"]));

    // Placement without --target: the member with the fewest instances, lowest id first.
    ok(c.members[1].lxc(&["init", "testimage", "p1"]));
    assert_eq!(location(&c, 0, "p1").map(|l| l.1), Some("node1".into()));
    ok(c.members[1].stock(&["init", "testimage", "p2"]));
    assert_eq!(location(&c, 0, "p2").map(|l| l.1), Some("node3".into()));
    ok(c.members[2].lxc(&["init", "testimage", "p3", "--target", "node3"]));
    assert_eq!(location(&c, 1, "p3").map(|l| l.1), Some("node3".into()));

    // `?target=` lists one member's instances.
    let on3 = ok(c.members[0].stock(&["query", "/1.0/instances?target=node3"]));
    assert!(on3.contains("/1.0/instances/p2") && on3.contains("/1.0/instances/p3") && !on3.contains("p1"), "{on3}");

    // Move to another member under a new name (stock client, as LXD's suite does); its
    // snapshots travel with it.
    ok(c.members[0].lxc(&["snapshot", "p2", "before-move"]));
    ok(c.members[1].stock(&["move", "p2", "moved", "--target", "node2"]));
    assert_eq!(location(&c, 2, "moved"), Some(("STOPPED".into(), "node2".into())));
    assert!(location(&c, 2, "p2").is_none());
    assert!(c.members[1].lxd_dir().join("storage-pools/default/containers/moved/rootfs/bin/busybox").exists());
    assert!(!c.members[2].lxd_dir().join("storage-pools/default/containers/p2").exists());
    let snap = "storage-pools/default/containers-snapshots";
    assert!(c.members[1].lxd_dir().join(snap).join("moved/before-move/rootfs/bin/busybox").exists());
    assert!(!c.members[2].lxd_dir().join(snap).join("p2").exists());
    assert!(ok(c.members[2].stock(&["info", "moved"])).contains("before-move"));
    ok(c.members[0].stock(&["restore", "moved", "before-move"]));

    // A member hosting instances is not removed without --force.
    let err = fails(c.members[0].lxc(&["cluster", "remove", "node3", "--yes"]));
    assert!(err.contains("still has the following instances"), "{err}");

    // Stop and delete c1 through node1 with the stock client.
    ok(c.members[0].stock(&["stop", "c1"]));
    assert_eq!(location(&c, 1, "c1").map(|l| l.0), Some("STOPPED".into()));
    ok(c.members[0].stock(&["delete", "c1"]));
    assert!(location(&c, 2, "c1").is_none());
    assert!(!c.members[1].lxd_dir().join("storage-pools/default/containers/c1").exists());
    for n in ["p1", "moved", "p3"] {
        ok(c.members[0].lxc(&["delete", n]));
    }

    // Deleting the image removes it (and the copies unpacked for containers) from every member.
    let unpacked = |i: usize| c.members[i].lxd_dir().join("images").join(format!("{fp}.unpacked"));
    assert!(unpacked(1).join("rootfs/bin/busybox").exists(), "node2 keeps the image unpacked for its containers");
    ok(c.members[2].lxc(&["image", "delete", "testimage"]));
    wait_for(Duration::from_secs(10), "image gone everywhere", || holders(&c, &fp).is_empty().then_some(()));
    wait_for(Duration::from_secs(10), "unpacked copies gone", || (0..3).all(|i| !unpacked(i).exists()).then_some(()));

    // images_minimal_replica=1: only the importing member holds it, until a container made
    // elsewhere fetches it.
    ok(c.members[0].lxc(&["config", "set", "cluster.images_minimal_replica", "1"]));
    ok(c.members[1].lxc(&["image", "import", image.to_str().expect("path"), "--alias", "testimage"]));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(holders(&c, &fp), vec![1]);
    ok(c.members[0].lxc(&["init", "testimage", "f1", "--target", "node3"]));
    assert_eq!(holders(&c, &fp), vec![1, 2]);
    let nodes = ok(c.members[0].lxd(&["sql", "global", "SELECT COUNT(*) FROM images_nodes"]));
    assert!(nodes.contains("| 2 "), "{nodes}");
    ok(c.members[0].lxc(&["delete", "f1"]));
}

#[test]
fn offline_member_evacuation_and_restore() {
    let mut c = TestCluster::form(3);
    ok(c.members[0].lxc(&["config", "set", "cluster.offline_threshold", "11"]));
    let image = test_image();
    ok(c.members[0].lxc(&["image", "import", image.to_str().expect("path"), "--alias", "testimage"]));
    ok(c.members[0].lxc(&["launch", "testimage", "e1", "--target", "node1"]));
    ok(c.members[0].lxc(&["snapshot", "e1", "keep"]));
    ok(c.members[0].lxc(&["launch", "testimage", "s1", "--target", "node1", "-c", "cluster.evacuate=stop"]));
    ok(c.members[0].lxc(&["init", "testimage", "x3", "--target", "node3"]));

    // Evacuate node1 from node2: e1 moves and runs elsewhere, s1 stops in place.
    ok(c.members[1].stock(&["cluster", "evacuate", "node1", "--force"]));
    let list = ok(c.members[1].lxc(&["cluster", "list", "--format", "csv"]));
    assert_eq!(member_row(&list, "node1").map(|r| r.1), Some("EVACUATED".into()), "{list}");
    let (state, at) = location(&c, 2, "e1").expect("e1");
    assert_eq!(state, "RUNNING");
    assert_ne!(at, "node1");
    assert_eq!(location(&c, 2, "s1"), Some(("STOPPED".into(), "node1".into())));
    let err = fails(c.members[2].stock(&["launch", "testimage", "nope", "--target", "node1"]));
    assert!(err.contains("evacuated"), "{err}");
    let err = fails(c.members[2].lxc(&["start", "s1"]));
    assert!(err.contains("evacuated"), "{err}");

    // Restore: e1 comes back to node1 and runs; s1 starts again.
    ok(c.members[1].lxc(&["cluster", "restore", "node1", "--force"]));
    assert_eq!(location(&c, 2, "e1"), Some(("RUNNING".into(), "node1".into())));
    assert!(ok(c.members[2].stock(&["info", "e1"])).contains("keep"), "e1's snapshot came back with it");
    assert!(c.members[0].lxd_dir().join("storage-pools/default/containers-snapshots/e1/keep/rootfs").exists());
    assert_eq!(location(&c, 2, "s1"), Some(("RUNNING".into(), "node1".into())));
    let list = ok(c.members[1].lxc(&["cluster", "list", "--format", "csv"]));
    assert_eq!(member_row(&list, "node1").map(|r| r.1), Some("ONLINE".into()), "{list}");

    // node3 goes away: its instance shows ERROR and operations on it fail clearly.
    let m3 = &mut c.members[2];
    m3.daemon.0.as_mut().expect("daemon").kill().expect("kill");
    let _ = m3.daemon.0.as_mut().expect("daemon").wait();
    let state =
        wait_for(Duration::from_secs(30), "x3 in ERROR", || location(&c, 0, "x3").filter(|(s, _)| s == "ERROR").map(|l| l.0));
    assert_eq!(state, "ERROR");
    for program in clients() {
        let err = fails(c.members[0].client(&program, &["start", "x3"], None));
        assert!(err.contains("offline"), "{program:?}: {err}");
    }
    // Its configuration is readable; its state is not.
    assert!(ok(c.members[0].stock(&["config", "show", "x3"])).contains("image.os: Busybox"));
    fails(c.members[0].stock(&["query", "/1.0/instances/x3?recursion=1"]));
    fails(c.members[0].stock(&["query", "/1.0/instances/x3/state"]));
    let ours = ok(c.members[1].lxc(&["list", "--format", "csv", "-c", "nsL"]));
    assert!(ours.contains("x3,ERROR,node3") && ours.contains("e1,RUNNING,node1"), "{ours}");
    for n in ["e1", "s1"] {
        ok(c.members[0].lxc(&["stop", "--force", n]));
    }
}
