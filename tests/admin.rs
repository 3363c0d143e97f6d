//! The offline admin tools against real stopped members: quorum-loss recovery (the seed's
//! scenario end to end), remove-raft-node, moving every member to new addresses with
//! `lxd cluster show`/`edit`, and `lxd sql local` without a daemon.

mod common;

use std::time::Duration;

use common::*;

fn stop(m: &mut Member) {
    ok(m.lxd(&["shutdown"]));
    assert!(m.wait_exit(Duration::from_secs(60)).is_some(), "daemon did not stop\n{}", m.log());
}

#[test]
fn recovery_from_quorum_loss_keeps_every_row() {
    let mut c = TestCluster::form(3);
    ok(c.members[0].lxc(&["project", "create", "keepme"]));
    ok(c.members[1].stock(&["profile", "create", "keepprof"]));
    // Two of three members are lost for good.
    c.members[1].daemon = Guard(None);
    c.members[2].daemon = Guard(None);
    let err = fails(c.members[0].lxd(&["cluster", "recover-from-quorum-loss", "-q"]));
    assert!(err.contains("The LXD daemon is running, please stop it first"), "{err}");
    stop(&mut c.members[0]);

    let listed = ok(c.members[0].lxd(&["cluster", "list-database"]));
    assert!(listed.contains("node1 (this member)") && listed.contains("its files"), "{listed}");
    for m in &c.members[1..] {
        assert!(listed.contains(&m.address()), "{listed}");
    }
    let dry = ok(c.members[0].lxd(&["cluster", "recover-from-quorum-loss", "--dry-run"]));
    assert!(dry.contains("Dry run: nothing was changed") && dry.contains("node2"), "{dry}");
    assert_eq!(ok(c.members[0].lxd(&["cluster", "show"])).matches("- id:").count(), 3);
    let err = fails(c.members[0].lxd_stdin(&["cluster", "recover-from-quorum-loss"], Some("no\n")));
    assert!(err.contains("Recover operation aborted"), "{err}");

    let out = ok(c.members[0].lxd(&["cluster", "recover-from-quorum-loss", "-q"]));
    let backup = out.lines().find_map(|l| l.strip_prefix("Backup written to ")).expect("backup line").to_string();
    assert!(std::path::Path::new(&backup).join("global/state.db").exists(), "{out}");
    let shown = ok(c.members[0].lxd(&["cluster", "show"]));
    assert_eq!(shown.matches("- id:").count(), 1, "{shown}");

    c.members[0].spawn();
    let list = wait_for(Duration::from_secs(20), "node1 leading alone", || {
        let out = c.members[0].lxc(&["cluster", "list", "--format", "csv"]);
        out.status.success().then(|| stdout(&out)).filter(|l| l.contains("database-leader"))
    });
    assert!(list.contains("node2,") && list.contains("node3,"), "lost members stay listed: {list}");
    assert!(ok(c.members[0].lxc(&["project", "list", "--format", "csv"])).contains("keepme"));
    assert!(ok(c.members[0].stock(&["profile", "list", "--format", "csv"])).contains("keepprof"));
    for name in ["node2", "node3"] {
        ok(c.members[0].stock(&["cluster", "remove", name, "--force", "--yes"]));
    }
    assert_eq!(ok(c.members[0].lxc(&["cluster", "list", "--format", "csv"])).lines().count(), 1);

    // New members join and get roles.
    c.members.truncate(1);
    c.join("node4");
    c.join("node5");
    wait_for(Duration::from_secs(20), "three voters", || {
        let list = c.list(0);
        let voters = ["node1", "node4", "node5"]
            .iter()
            .filter(|n| member_row(&list, n).is_some_and(|r| r.0.split(',').any(|x| x == "database")))
            .count();
        (voters == 3).then_some(())
    });
    ok(c.members[2].lxc(&["profile", "create", "after-recovery"]));

    // The backup brings the old configuration back.
    let mut first = c.members.remove(0);
    stop(&mut first);
    let db = first.lxd_dir().join("database");
    std::fs::remove_dir_all(&db).expect("remove database");
    copy_tree(std::path::Path::new(&backup), &db);
    assert_eq!(ok(first.lxd(&["cluster", "show"])).matches("- id:").count(), 3);
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).expect("copy");
        }
    }
}

#[test]
fn remove_raft_node_cleans_a_leftover() {
    let c = TestCluster::form(3);
    let leftover = c.members[2].address();
    // node3 vanishes from the members table but stays in the raft configuration.
    ok(c.members[0].lxd(&["sql", "global", "DELETE FROM nodes WHERE name = 'node3'"]));
    let raft = ok(c.members[0].lxd(&["sql", "local", "SELECT address FROM raft_nodes"]));
    assert!(raft.contains(&leftover), "{raft}");
    let err = fails(c.members[1].lxd_stdin(&["cluster", "remove-raft-node", &leftover], Some("no\n")));
    assert!(err.contains("Remove raft node operation aborted"), "{err}");
    let err = fails(c.members[1].lxd(&["cluster", "remove-raft-node", "-q", "127.1.2.3"]));
    assert!(err.contains("No raft node with address \"127.1.2.3:8443\""), "{err}");
    ok(c.members[1].lxd(&["cluster", "remove-raft-node", "-q", &leftover]));
    wait_for(Duration::from_secs(10), "the leftover gone from raft_nodes", || {
        (!ok(c.members[0].lxd(&["sql", "local", "SELECT address FROM raft_nodes"])).contains(&leftover)).then_some(())
    });
    ok(c.members[1].lxc(&["profile", "create", "still-writable"]));
}

#[test]
fn every_member_moves_to_new_addresses_with_show_and_edit() {
    let mut c = TestCluster::form(3);
    let err = fails(c.members[0].lxd_stdin(&["cluster", "edit"], Some("members: []\n")));
    assert!(err.contains("The LXD daemon is running"), "{err}");
    for i in [2, 1, 0] {
        stop(&mut c.members[i]);
    }
    let shown = ok(c.members[0].lxd(&["cluster", "show"]));
    assert!(shown.starts_with("# Latest raft log index: "), "{shown}");
    // Refused edits change nothing.
    let err = fails(c.members[0].lxd_stdin(&["cluster", "edit"], Some("members: [")));
    assert!(err.contains("Invalid YAML"), "{err}");
    let fewer: String = shown.lines().take_while(|l| !l.contains("id: 3")).collect::<Vec<_>>().join("\n") + "\n";
    let err = fails(c.members[0].lxd_stdin(&["cluster", "edit"], Some(&fewer)));
    assert!(err.contains("Removing cluster members is not supported"), "{err}");
    let renamed = shown.replace("name: node2", "name: other");
    let err = fails(c.members[0].lxd_stdin(&["cluster", "edit"], Some(&renamed)));
    assert!(err.contains("Changing cluster member name is not supported"), "{err}");
    assert_eq!(ok(c.members[0].lxd(&["cluster", "show"])), shown);

    for m in &c.members {
        let text = ok(m.lxd(&["cluster", "show"])).replace(":8443", ":9443");
        ok(m.lxd_stdin(&["cluster", "edit"], Some(&text)));
        assert!(ok(m.lxd(&["cluster", "show"])).contains(":9443"));
        let cfg = ok(m.lxd(&["sql", "local", "SELECT value FROM config WHERE key = 'cluster.https_address'"]));
        assert!(cfg.contains(":9443"), "{cfg}");
    }
    let err = fails(c.members[0].lxd(&["sql", "global", "SELECT 1"]));
    assert!(err.contains("needs the daemon running"), "{err}");
    for m in &mut c.members {
        m.spawn();
    }
    wait_for(Duration::from_secs(30), "every member ONLINE on its new address", || {
        let list = c.list(0);
        let moved = (0..3).all(|i| list.contains(&format!("https://{}:9443", c.members[i].ip)));
        (moved && list.matches("ONLINE").count() == 3).then_some(())
    });
    ok(c.members[2].stock(&["profile", "create", "after-move"]));
    assert!(ok(c.members[0].lxc(&["profile", "list", "--format", "csv"])).contains("after-move"));
}
