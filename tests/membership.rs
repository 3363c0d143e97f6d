//! Cluster membership as users drive it: join tokens, member edits, heartbeats and OFFLINE,
//! role replacement and handover, failure domains, removal, upgrades, separate addresses,
//! event relay and `?target` forwarding, `lxc cluster enable`, interactive `lxd init`. Real
//! daemons on loopback addresses, driven by our `lxc` and the stock LXD 5.0 one.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn join_tokens_work_on_any_member_once() {
    let mut c = TestCluster::form(3);
    // Issued by node2 with our client, listed on node1 by the stock client.
    let out = ok(c.members[1].lxc(&["cluster", "add", "node4"]));
    assert!(out.starts_with("Member node4 join token:\n"), "{out}");
    let token = token_of(&out);
    let listed = ok(c.members[0].stock(&["cluster", "list-tokens", "--format", "csv"]));
    assert!(listed.contains(&format!("node4,{token},")), "{listed}");

    let m4 = Member::start();
    ok(m4.lxd_stdin(&["init", "--preseed"], Some(&token_preseed(&m4.address(), &token))));
    c.members.push(m4);
    let listed = ok(c.members[0].lxc(&["cluster", "list-tokens", "--format", "csv"]));
    assert!(!listed.contains("node4"), "a used token is gone: {listed}");

    // Used once: a second joiner with the same token is refused and stays standalone.
    let m5 = Member::start();
    let err = fails(m5.lxd_stdin(&["init", "--preseed"], Some(&token_preseed(&m5.address(), &token))));
    assert!(err.contains("No matching cluster join operation found"), "{err}");
    let err = fails(m5.lxc(&["cluster", "list"]));
    assert!(err.contains("isn't part of a cluster"), "{err}");

    // Revoked (from another member than the issuer) by the stock client.
    let token5 = token_of(&ok(c.members[2].stock(&["cluster", "add", "node5"])));
    let out = ok(c.members[0].stock(&["cluster", "revoke-token", "node5"]));
    assert!(out.contains("Cluster join token for local:node5 deleted"), "{out}");
    let err = fails(m5.lxd_stdin(&["init", "--preseed"], Some(&token_preseed(&m5.address(), &token5))));
    assert!(err.contains("No matching cluster join operation found"), "{err}");

    // A wrong fingerprint in a token is refused before anything is sent.
    let token6 = token_of(&ok(c.members[0].lxc(&["cluster", "add", "node6"])));
    let mut forged: serde_json::Value = serde_json::from_slice(&base64_decode(&token6)).expect("token json");
    forged["fingerprint"] = "00".repeat(32).into();
    let forged = base64_encode(&serde_json::to_vec(&forged).expect("json"));
    let err = fails(m5.lxd_stdin(&["init", "--preseed"], Some(&token_preseed(&m5.address(), &forged))));
    assert!(err.contains("Certificate fingerprint mismatch"), "{err}");

    // Tokens expire (cluster.join_token_expiry).
    ok(c.members[0].stock(&["config", "set", "cluster.join_token_expiry", "2S"]));
    let short = token_of(&ok(c.members[1].lxc(&["cluster", "add", "node7"])));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!ok(c.members[0].lxc(&["cluster", "list-tokens", "--format", "csv"])).contains("node7"));
    let err = fails(m5.lxd_stdin(&["init", "--preseed"], Some(&token_preseed(&m5.address(), &short))));
    assert!(err.contains("No matching cluster join operation found"), "{err}");

    // Four members: three voters and one stand-by, on every member.
    wait_for(Duration::from_secs(15), "node4 as stand-by", || (c.roles(3, "node4") == "database-standby").then_some(()));
    let list = c.list(0);
    assert_eq!(list.lines().count(), 4, "{list}");
    assert_eq!(list.matches("database-standby").count(), 1, "{list}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).expect("base64")
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn members_are_edited_with_both_clients() {
    let c = TestCluster::form(2);
    let m = &c.members[0];
    for client in clients() {
        ok(m.client(&client, &["cluster", "set", "node2", "user.rack", "r1"], None));
        assert_eq!(ok(m.client(&client, &["cluster", "get", "node2", "user.rack"], None)), "r1\n");
        ok(m.client(&client, &["cluster", "unset", "node2", "user.rack"], None));
        let err = fails(m.client(&client, &["cluster", "get", "node2", "user.rack"], None));
        assert!(err.contains("The key \"user.rack\" does not exist on cluster member \"node2\""), "{err}");
        let err = fails(m.client(&client, &["cluster", "set", "node2", "scheduler.instance", "bogus"], None));
        assert!(err.contains("Invalid cluster configuration key \"scheduler.instance\" value"), "{err}");
        let err = fails(m.client(&client, &["cluster", "set", "node2", "bogus.key", "1"], None));
        assert!(err.contains("Invalid cluster configuration key \"bogus.key\""), "{err}");
    }
    // `cluster edit` from standard input, as the stock client sends it (no ETag).
    let yaml =
        "roles:\n- database\nfailure_domain: rack2\ndescription: edited via stdin\nconfig:\n  user.a: b\ngroups:\n- default\n";
    ok(m.client(std::path::Path::new(STOCK_LXC), &["cluster", "edit", "node1"], Some(yaml)));
    let shown = ok(m.lxc(&["cluster", "show", "node1"]));
    assert!(shown.contains("failure_domain: rack2"), "{shown}");
    assert!(shown.contains("description: edited via stdin"), "{shown}");
    assert!(shown.contains("user.a: b"), "{shown}");
    let list = ok(m.stock(&["cluster", "list", "--format", "csv"]));
    assert!(list.contains("rack2,edited via stdin"), "{list}");
    let err = fails(m.client(
        &bin_dir().join("lxc"),
        &["cluster", "edit", "node1"],
        Some("roles: []\nfailure_domain: default\ndescription: \"\"\nconfig: {}\ngroups:\n- default\n"),
    ));
    assert!(err.contains("The 'database' role cannot be dropped at this time"), "{err}");
    let err = fails(m.client(
        &bin_dir().join("lxc"),
        &["cluster", "edit", "node1"],
        Some("roles:\n- database\nfailure_domain: \"\"\ndescription: \"\"\nconfig: {}\ngroups:\n- default\n"),
    ));
    assert!(err.contains("Failure domain name can't be empty"), "{err}");

    // Rename with the stock client; every member and the server info follow.
    let out = ok(m.stock(&["cluster", "rename", "node2", "nodeB"]));
    assert!(out.contains("Member node2 renamed to nodeB"), "{out}");
    let list = c.list(1);
    assert!(list.contains("nodeB,") && !list.contains("node2,"), "{list}");
    let info = ok(c.members[1].lxc(&["query", "/1.0"]));
    assert!(info.contains("\"server_name\": \"nodeB\""), "{info}");
    let err = fails(m.lxc(&["cluster", "rename", "nodeB", "node1"]));
    assert!(err.contains("Conflict"), "{err}");
}

#[test]
fn a_silent_voter_goes_offline_is_replaced_and_comes_back() {
    let mut c = TestCluster::form(4);
    ok(c.members[0].lxc(&["config", "set", "cluster.offline_threshold", "11"]));
    let err = fails(c.members[0].stock(&["config", "set", "cluster.offline_threshold", "10"]));
    assert!(err.contains("Value must be greater than '10'"), "{err}");
    wait_for(Duration::from_secs(15), "node4 as stand-by", || (c.roles(0, "node4") == "database-standby").then_some(()));
    let leader = c.leader(0);
    let victim = (0..3).find(|i| *i != leader).expect("a non-leader voter");
    let victim_name = format!("node{}", victim + 1);
    let watcher = (0..3).find(|i| *i != leader && *i != victim).expect("a third member");
    c.members[victim].daemon = Guard(None); // SIGKILL

    let row = wait_for(Duration::from_secs(40), "the killed voter OFFLINE and replaced", || {
        let list = c.list(watcher);
        let (roles, state, message) = member_row(&list, &victim_name)?;
        let replaced = member_row(&list, "node4")?.0.contains("database");
        (state == "OFFLINE" && replaced && !roles.contains("database")).then_some(message)
    });
    assert!(row.starts_with("No heartbeat for "), "{row}");
    let stock = ok(c.members[watcher].stock(&["cluster", "list", "--format", "csv"]));
    assert!(stock.contains(&format!("{victim_name},")) && stock.contains("OFFLINE"), "{stock}");
    let show = ok(c.members[watcher].stock(&["cluster", "show", &victim_name]));
    assert!(show.contains("status: Offline"), "{show}");

    // Operations that need every member refuse while one is down, and change nothing.
    for i in 0..4 {
        ok(c.members[watcher].stock(&["storage", "create", "everywhere", "dir", "--target", &format!("node{}", i + 1)]));
    }
    let err = fails(c.members[watcher].stock(&["storage", "create", "everywhere", "dir"]));
    assert!(err.contains(&format!("peer node {} is down", c.members[victim].address())), "{err}");
    let shown = ok(c.members[watcher].lxc(&["storage", "show", "everywhere"]));
    assert!(shown.contains("status: Pending"), "{shown}");

    c.members[victim].spawn();
    wait_for(Duration::from_secs(40), "the returning member ONLINE with a free role", || {
        let (roles, state, _) = member_row(&c.list(watcher), &victim_name)?;
        (state == "ONLINE" && roles == "database-standby").then_some(())
    });
    // Writes made anywhere reach the returning member's replica.
    ok(c.members[leader].lxc(&["profile", "create", "after-return"]));
    wait_for(Duration::from_secs(10), "the new profile on the returning member", || {
        ok(c.members[victim].lxc(&["profile", "list", "--format", "csv"])).contains("after-return").then_some(())
    });
    ok(c.members[watcher].stock(&["storage", "create", "everywhere", "dir"]));
    assert!(c.members[victim].lxd_dir().join("storage-pools/everywhere/containers").is_dir());
}

#[test]
fn storage_pools_are_defined_per_member_then_created_everywhere() {
    let c = TestCluster::form(3);
    let custom = tempfile::tempdir().expect("tempdir");
    let source = format!("source={}", custom.path().display());
    ok(c.members[0].stock(&["storage", "create", "data", "dir", "--target", "node1"]));
    ok(c.members[0].stock(&["storage", "create", "data", "dir", &source, "--target", "node2"]));
    let err = fails(c.members[0].stock(&["storage", "create", "data", "dir", "--target", "node2"]));
    assert!(err.contains("The storage pool already defined on node \"node2\""), "{err}");
    let err = fails(c.members[0].lxc(&["storage", "create", "data", "dir", "rsync.bwlimit=1", "--target", "node3"]));
    assert!(err.contains("may not be used as node-specific key"), "{err}");
    ok(c.members[1].lxc(&["storage", "create", "data", "dir", "--target", "node3"]));
    let err = fails(c.members[0].stock(&["storage", "create", "other", "dir"]));
    assert!(err.contains("Pool not pending on any node (use --target <node> first)"), "{err}");
    let err = fails(c.members[0].stock(&["storage", "create", "data", "dir", "source=/tmp"]));
    assert!(err.contains("Config key \"source\" is node-specific"), "{err}");

    ok(c.members[2].stock(&["storage", "create", "data", "dir"]));
    let list = ok(c.members[0].stock(&["storage", "list", "--format", "csv"]));
    assert!(list.lines().any(|l| l.starts_with("data,dir,") && l.ends_with("CREATED")), "{list}");
    assert!(c.members[0].lxd_dir().join("storage-pools/data/containers").is_dir());
    assert!(custom.path().join("containers").is_dir());
    assert!(c.members[2].lxd_dir().join("storage-pools/data/custom").is_dir());
    let shown = ok(c.members[0].stock(&["storage", "show", "data", "--target", "node2"]));
    assert!(shown.contains(&format!("source: {}", custom.path().display())), "{shown}");
    let shown = ok(c.members[0].stock(&["storage", "show", "data"]));
    assert!(!shown.contains("source:") && shown.contains("status: Created"), "{shown}");
    assert!(shown.contains("- node1") && shown.contains("- node2") && shown.contains("- node3"), "{shown}");
    let err = fails(c.members[0].stock(&["storage", "create", "data", "dir"]));
    assert!(err.contains("The storage pool is already created"), "{err}");

    ok(c.members[1].stock(&["storage", "delete", "data"]));
    assert!(!c.members[0].lxd_dir().join("storage-pools/data").exists());
    assert!(!custom.path().join("containers").exists());
    assert!(!ok(c.members[2].lxc(&["storage", "list", "--format", "csv"])).contains("data,"));
}

#[test]
fn clean_shutdown_hands_the_role_over_and_a_new_leader_serves() {
    let mut c = TestCluster::form(4);
    wait_for(Duration::from_secs(15), "node4 as stand-by", || (c.roles(0, "node4") == "database-standby").then_some(()));
    let leader = c.leader(0);
    let voter = (0..3).find(|i| *i != leader).expect("a non-leader voter");
    let voter_name = format!("node{}", voter + 1);
    ok(c.members[voter].lxd(&["shutdown"]));
    assert!(c.members[voter].wait_exit(Duration::from_secs(30)).is_some(), "member did not stop");
    // The hand-over happened during shutdown: no waiting for the offline threshold.
    let list = c.list(leader);
    let (roles, _, _) = member_row(&list, &voter_name).expect("row");
    assert_eq!(roles, "", "{list}");
    assert!(member_row(&list, "node4").expect("row").0.contains("database"), "{list}");

    // The leader shuts down: leadership moves first, the cluster keeps answering.
    ok(c.members[leader].lxd(&["shutdown"]));
    assert!(c.members[leader].wait_exit(Duration::from_secs(30)).is_some(), "leader did not stop");
    let rest = (0..4).find(|i| *i != leader && *i != voter).expect("a survivor");
    let new_leader = c.leader(rest);
    assert_ne!(new_leader, leader);
    ok(c.members[rest].stock(&["profile", "create", "after-handover"]));
}

#[test]
fn failure_domains_decide_who_takes_a_role() {
    let mut c = TestCluster::form(5);
    wait_for(Duration::from_secs(15), "two stand-bys", || (c.list(0).matches("database-standby").count() == 2).then_some(()));
    let leader = c.leader(0);
    let mut voters: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let leaving = voters.remove(0);
    let other = voters.remove(0);
    let domain = |i: usize, d: &str| {
        let yaml = format!(
            "roles:\n{}failure_domain: {d}\ndescription: \"\"\nconfig: {{}}\ngroups:\n- default\n",
            if i < 3 { "- database\n" } else { "" }
        );
        ok(c.members[0].client(std::path::Path::new(STOCK_LXC), &["cluster", "edit", &format!("node{}", i + 1)], Some(&yaml)));
    };
    domain(leader, "az1");
    domain(other, "az2");
    domain(leaving, "az3");
    // node4 shares a domain with a remaining voter; node5 has the leaving voter's domain.
    domain(3, "az1");
    domain(4, "az3");
    ok(c.members[leaving].lxd(&["shutdown"]));
    assert!(c.members[leaving].wait_exit(Duration::from_secs(30)).is_some(), "member did not stop");
    let list = c.list(leader);
    assert_eq!(member_row(&list, "node5").expect("node5").0, "database", "{list}");
    assert_eq!(member_row(&list, "node4").expect("node4").0, "database-standby", "{list}");

    // Role limits: validated, and applied at once when changed.
    let err = fails(c.members[leader].stock(&["config", "set", "cluster.max_voters", "4"]));
    assert!(err.contains("Value must be an odd number equal to or higher than 3"), "{err}");
    let err = fails(c.members[leader].lxc(&["config", "set", "cluster.max_standby", "6"]));
    assert!(err.contains("Value must be between 0 and 5"), "{err}");
    ok(c.members[3].lxc(&["config", "set", "cluster.max_standby", "0"]));
    wait_for(Duration::from_secs(5), "no stand-by left", || (c.roles(leader, "node4").is_empty()).then_some(()));
    ok(c.members[3].stock(&["config", "set", "cluster.max_standby", "1"]));
    wait_for(Duration::from_secs(5), "a stand-by again", || (c.roles(leader, "node4") == "database-standby").then_some(()));
}

#[test]
fn removing_members_resets_them_and_keeps_the_cluster_serving() {
    let c = TestCluster::form(3);
    // A member removes itself (stock client, through a non-leader).
    let leader = c.leader(0);
    let other = (0..3).find(|i| *i != leader).expect("non-leader");
    let other_name = format!("node{}", other + 1);
    let out = ok(c.members[other].stock(&["cluster", "remove", &other_name]));
    assert!(out.contains(&format!("Member {other_name} removed")), "{out}");
    wait_for(Duration::from_secs(10), "the removed member standalone", || {
        let out = c.members[other].lxc(&["cluster", "list"]);
        (!out.status.success() && stderr(&out).contains("isn't part of a cluster")).then_some(())
    });
    let info = ok(c.members[other].lxc(&["query", "/1.0"]));
    assert!(info.contains("\"server_clustered\": false"), "{info}");
    // Two members left: the leader votes, the other is its stand-by.
    let third = (0..3).find(|i| *i != leader && *i != other).expect("third");
    let third_name = format!("node{}", third + 1);
    wait_for(Duration::from_secs(15), "two-member layout", || (c.roles(leader, &third_name) == "database-standby").then_some(()));
    // The leader is removed, asked through the other member with our client.
    let leader_name = format!("node{}", leader + 1);
    ok(c.members[third].lxc(&["cluster", "remove", &leader_name]));
    wait_for(Duration::from_secs(15), "the last member leading alone", || {
        let list = c.list(third);
        (list.lines().count() == 1 && list.contains("database-leader")).then_some(())
    });
    wait_for(Duration::from_secs(10), "the removed leader standalone", || {
        (!c.members[leader].lxc(&["cluster", "list"]).status.success()).then_some(())
    });
    ok(c.members[third].lxc(&["profile", "create", "still-writable"]));
    let err = fails(c.members[third].lxc(&["cluster", "remove", &third_name]));
    assert!(err.contains("only member"), "{err}");
}

#[test]
fn forced_removal_of_a_dead_member() {
    let mut c = TestCluster::form(3);
    let leader = c.leader(0);
    let dead = (0..3).find(|i| *i != leader).expect("non-leader");
    let dead_name = format!("node{}", dead + 1);
    c.members[dead].daemon = Guard(None);
    let err = fails(c.members[leader].client(
        std::path::Path::new(STOCK_LXC),
        &["cluster", "remove", &dead_name, "--force"],
        Some("no\n"),
    ));
    assert!(err.contains("User aborted delete operation"), "{err}");
    let out = ok(c.members[leader].stock(&["cluster", "remove", &dead_name, "--force", "--yes"]));
    assert!(out.contains(&format!("Member {dead_name} removed")), "{out}");
    let list = c.list(leader);
    assert!(!list.contains(&dead_name), "{list}");
    // Its certificate is no longer trusted.
    let certs = ok(c.members[leader].lxc(&["query", "/1.0/certificates?recursion=1"]));
    assert!(!certs.contains(&format!("\"name\": \"{dead_name}\"")), "{certs}");
    // A new member can join and gets the free role.
    let token = token_of(&ok(c.members[leader].lxc(&["cluster", "add", "node9"])));
    let m = Member::start();
    ok(m.lxd_stdin(&["init", "--preseed"], Some(&token_preseed(&m.address(), &token))));
    c.members.push(m);
    wait_for(Duration::from_secs(20), "three voters again", || {
        let list = c.list(leader);
        let voters = ["node1", "node2", "node3", "node9"]
            .iter()
            .filter(|n| member_row(&list, n).is_some_and(|r| r.0.split(',').any(|role| role == "database")))
            .count();
        (voters == 3).then_some(())
    });
}

#[test]
fn a_newer_member_waits_until_every_member_is_upgraded() {
    let mut c = TestCluster::form(3);
    let bump = ("RXD_TEST_EXTRA_API_EXTENSIONS".to_string(), "1".to_string());
    let restart_newer = |m: &mut Member| {
        ok(m.lxd(&["shutdown"]));
        assert!(m.wait_exit(Duration::from_secs(30)).is_some());
        m.env.push(bump.clone());
        m.spawn();
    };
    restart_newer(&mut c.members[0]);
    let err = wait_for(Duration::from_secs(15), "node1 to wait for the others", || {
        let out = c.members[0].lxc(&["cluster", "list"]);
        (!out.status.success()).then(|| stderr(&out))
    });
    assert!(err.contains("waits for them to be upgraded"), "{err}");
    let list = wait_for(Duration::from_secs(15), "the older members BLOCKED", || {
        let list = c.list(1);
        (list.matches("BLOCKED").count() == 2).then_some(list)
    });
    assert!(list.contains("Needs updating to newer version"), "{list}");
    assert!(member_row(&list, "node1").expect("node1").1 == "ONLINE", "{list}");
    let stock = ok(c.members[2].stock(&["cluster", "list"]));
    assert!(stock.contains("BLOCKED"), "{stock}");

    // An older member does not start next to a newer one.
    ok(c.members[2].lxd(&["shutdown"]));
    assert!(c.members[2].wait_exit(Duration::from_secs(30)).is_some());
    c.members[2].spawn_no_wait();
    let status = c.members[2].wait_exit(Duration::from_secs(30)).expect("the older member exits");
    assert!(!status.success());
    assert!(c.members[2].log().contains("this node's version is behind, please upgrade"), "{}", c.members[2].log());

    restart_newer(&mut c.members[1]);
    c.members[2].env.push(bump.clone());
    c.members[2].spawn();
    // Every member runs the new version: node1 serves again without a restart.
    wait_for(Duration::from_secs(20), "node1 serving again", || {
        c.members[0].lxc(&["cluster", "list"]).status.success().then_some(())
    });
    let list = c.list(0);
    assert_eq!(list.matches("ONLINE").count(), 3, "{list}");
}

#[test]
fn rest_api_and_cluster_traffic_on_separate_addresses() {
    let first = Member::start();
    let preseed = format!(
        "config:\n  core.https_address: {ip}:9443\n  cluster.https_address: {ip}:8443\n  core.trust_password: sekret\n\
         storage_pools:\n- name: default\n  driver: dir\n\
         cluster:\n  server_name: node1\n  enabled: true\n",
        ip = first.ip
    );
    ok(first.lxd_stdin(&["init", "--preseed"], Some(&preseed)));
    let second = Member::start();
    ok(second.lxc(&["config", "set", "core.https_address", &format!("{}:9443", second.ip)]));
    let c = TestCluster { members: vec![first], env: vec![] };
    ok(second.lxd_stdin(&["init", "--preseed"], Some(&c.join_preseed("node2", &second.address(), "sekret"))));
    let list = ok(second.lxc(&["cluster", "list", "--format", "csv"]));
    assert!(list.contains(&format!("https://{}:8443", c.members[0].ip)), "{list}");
    assert!(list.contains(&format!("https://{}:8443", second.ip)), "{list}");
    let cfg = ok(second.lxc(&["config", "get", "core.https_address"]));
    assert_eq!(cfg.trim(), format!("{}:9443", second.ip));
    // Clients use the REST address.
    let remote = format!("{}:9443", second.ip);
    ok(c.members[0].stock(&["remote", "add", "viarest", &remote, "--accept-certificate", "--password", "sekret"]));
    let list = ok(c.members[0].stock(&["cluster", "list", "viarest:", "--format", "csv"]));
    assert_eq!(list.lines().count(), 2, "{list}");
    let err = fails(c.members[0].lxc(&["config", "set", "cluster.https_address", &format!("{}:7443", c.members[0].ip)]));
    assert!(err.contains("Changing cluster.https_address is currently not supported"), "{err}");

    // Bootstrap refuses a wildcard (or absent) REST address without a cluster address.
    let lone = Member::start();
    for client in clients() {
        let err = fails(lone.client(&client, &["cluster", "enable", "lone"], None));
        assert!(err.contains("Cannot use wildcard core.https_address \"\" for cluster.https_address"), "{err}");
    }
}

#[test]
fn events_from_every_member_and_target_forwarding() {
    let c = TestCluster::form(3);
    let mut monitor = std::process::Command::new(bin_dir().join("lxc"));
    monitor.args(["monitor", "--type", "lifecycle", "--format", "json"]);
    monitor
        .env("LXD_DIR", c.members[0].lxd_dir())
        .env("LXD_CONF", c.members[0].conf.path())
        .env("HOME", c.members[0].conf.path());
    let pty = Pty::spawn(monitor);
    // Members connect to each other's event streams within moments of hearing of each other.
    let mut n = 0;
    wait_for(Duration::from_secs(15), "events from node2 and node3 on node1", || {
        n += 1;
        ok(c.members[1].lxc(&["profile", "create", &format!("made-on-node2-{n}")]));
        ok(c.members[2].stock(&["profile", "create", &format!("made-on-node3-{n}")]));
        std::thread::sleep(Duration::from_millis(300));
        let out = pty.output();
        (out.contains("made-on-node2-") && out.contains("made-on-node3-")).then_some(())
    });
    let out = pty.output();
    assert!(out.contains("\"location\":\"node2\"") && out.contains("\"location\":\"node3\""), "{out}");

    for client in clients() {
        let out = ok(c.members[0].client(&client, &["query", "/1.0?target=node2"], None));
        assert!(out.contains("\"server_name\": \"node2\""), "{out}");
        assert!(out.contains(&format!("\"core.https_address\": \"{}\"", c.members[1].address())), "{out}");
        let err = fails(c.members[0].client(&client, &["query", "/1.0?target=nope"], None));
        assert!(err.contains("No cluster member called 'nope'"), "{err}");
    }
    let out = ok(c.members[0].stock(&["config", "get", "core.https_address", "--target", "node3"]));
    assert_eq!(out.trim(), c.members[2].address());
}

#[test]
fn cluster_enable_turns_a_standalone_server_into_a_cluster() {
    for (i, client) in clients().into_iter().enumerate() {
        let m = Member::start();
        ok(m.lxc(&["config", "set", "core.https_address", &m.address()]));
        ok(m.lxc(&["profile", "create", "kept"]));
        let out = ok(m.client(&client, &["cluster", "enable", &format!("solo{i}")], None));
        assert!(out.contains("Clustering enabled"), "{out}");
        let list = ok(m.client(&client, &["cluster", "list", "--format", "csv"], None));
        assert!(list.contains(&format!("solo{i},https://{},\"database-leader,database\"", m.address())), "{list}");
        assert!(ok(m.lxc(&["profile", "list", "--format", "csv"])).contains("kept"));
        let err = fails(m.client(&client, &["cluster", "enable", "again"], None));
        assert!(err.contains("already clustered"), "{err}");
    }
}

#[test]
fn interactive_init_bootstraps_and_joins_with_a_password_or_a_token() {
    let first = Member::start();
    let mut p = first.init_on_pty();
    p.answer("Would you like to use LXD clustering? (yes/no) [default=no]: ", "yes");
    p.answer("What IP address or DNS name should be used to reach this node?", &first.ip);
    p.answer("Are you joining an existing cluster? (yes/no) [default=no]: ", "no");
    p.answer("What name should be used to identify this node in the cluster?", "node1");
    p.answer("Setup password authentication on the cluster? (yes/no) [default=no]: ", "yes");
    p.answer("Trust password for new clients: ", "sekret");
    p.answer("Again: ", "sekret");
    p.answer("Do you want to configure a new local storage pool? (yes/no) [default=yes]: ", "");
    p.answer("Name of the new storage pool [default=default]: ", "");
    p.answer("Name of the storage backend to use (dir) [default=dir]: ", "");
    p.answer("Do you want to configure a new remote storage pool? (yes/no) [default=no]: ", "");
    p.answer("Would you like to configure LXD to use an existing bridge or host interface? (yes/no) [default=no]: ", "");
    p.answer("Would you like stale cached images to be updated automatically? (yes/no) [default=yes]: ", "");
    p.answer("Would you like a YAML \"lxd init\" preseed to be printed? (yes/no) [default=no]: ", "yes");
    p.expect("server_name: \"node1\"");
    assert!(p.wait().success(), "{}", p.output());
    assert!(!p.output().contains("sekret\r\n"), "passwords are not echoed: {}", p.output());
    let list = ok(first.lxc(&["cluster", "list", "--format", "csv"]));
    assert!(list.contains("node1,") && list.contains("database-leader"), "{list}");

    // Joining with the trust password: the fingerprint is shown and confirmed.
    let fingerprint = {
        let info = ok(first.lxc(&["query", "/1.0"]));
        let key = "\"certificate_fingerprint\": \"";
        let at = info.find(key).expect("fingerprint") + key.len();
        info[at..at + 64].to_string()
    };
    let second = Member::start();
    let mut p = second.init_on_pty();
    p.answer("Would you like to use LXD clustering? (yes/no) [default=no]: ", "yes");
    p.answer("What IP address or DNS name should be used to reach this node?", &second.ip);
    p.answer("Are you joining an existing cluster? (yes/no) [default=no]: ", "yes");
    p.answer("Do you have a join token? (yes/no/[token]) [default=no]: ", "no");
    p.answer("What name should be used to identify this node in the cluster?", "node2");
    p.answer("IP address or FQDN of an existing cluster member: ", &first.ip);
    p.expect(&format!("Cluster fingerprint: {fingerprint}"));
    p.answer("Is this the correct fingerprint? (yes/no/[fingerprint]) [default=no]: ", "yes");
    p.answer("Cluster trust password: ", "sekret");
    p.answer("All existing data is lost when joining a cluster, continue? (yes/no) [default=no]: ", "yes");
    p.answer("Choose \"source\" property for storage pool \"default\": ", "");
    p.answer("Would you like a YAML \"lxd init\" preseed to be printed? (yes/no) [default=no]: ", "no");
    assert!(p.wait().success(), "{}", p.output());

    // Joining with a token pasted at the first question.
    let token = token_of(&ok(first.stock(&["cluster", "add", "node3"])));
    let third = Member::start();
    let mut p = third.init_on_pty();
    p.answer("Would you like to use LXD clustering? (yes/no) [default=no]: ", "yes");
    p.answer("What IP address or DNS name should be used to reach this node?", &third.ip);
    p.answer("Are you joining an existing cluster? (yes/no) [default=no]: ", "yes");
    p.answer("Do you have a join token? (yes/no/[token]) [default=no]: ", &token);
    p.answer("All existing data is lost when joining a cluster, continue? (yes/no) [default=no]: ", "yes");
    p.answer("Choose \"source\" property for storage pool \"default\": ", "");
    p.answer("Would you like a YAML \"lxd init\" preseed to be printed? (yes/no) [default=no]: ", "");
    assert!(p.wait().success(), "{}", p.output());

    let list = wait_for(Duration::from_secs(15), "three voters", || {
        let list = ok(first.stock(&["cluster", "list", "--format", "csv"]));
        let voters = ["node1", "node2", "node3"]
            .iter()
            .filter(|n| member_row(&list, n).is_some_and(|r| r.0.split(',').any(|role| role == "database")))
            .count();
        (list.lines().count() == 3 && voters == 3).then_some(list)
    });
    assert!(list.contains("node2,") && list.contains("node3,"), "{list}");

    // A wrong fingerprint answer aborts and changes nothing.
    let fourth = Member::start();
    let mut p = fourth.init_on_pty();
    p.answer("Would you like to use LXD clustering? (yes/no) [default=no]: ", "yes");
    p.answer("What IP address or DNS name should be used to reach this node?", &fourth.ip);
    p.answer("Are you joining an existing cluster? (yes/no) [default=no]: ", "yes");
    p.answer("Do you have a join token? (yes/no/[token]) [default=no]: ", "");
    p.answer("What name should be used to identify this node in the cluster?", "node4");
    p.answer("IP address or FQDN of an existing cluster member: ", &first.ip);
    p.answer("Is this the correct fingerprint? (yes/no/[fingerprint]) [default=no]: ", "no");
    p.expect("User aborted configuration");
    assert!(!p.wait().success());
    assert!(!fourth.lxc(&["cluster", "list"]).status.success());
    assert_eq!(ok(first.lxc(&["cluster", "list", "--format", "csv"])).lines().count(), 3);
}

#[test]
fn cluster_groups_with_both_clients() {
    let lone = Member::start();
    let err = fails(lone.stock(&["cluster", "group", "list"]));
    assert!(err.contains("isn't part of a cluster"), "{err}");
    let err = fails(lone.lxc(&["query", "/1.0/cluster/groups"]));
    assert!(err.contains("This server is not clustered"), "{err}");
    let c = TestCluster::form(2);
    let m = &c.members[0];
    ok(m.stock(&["cluster", "group", "create", "gpu"]));
    ok(m.lxc(&["cluster", "group", "assign", "node2", "default,gpu"]));
    let list = ok(m.stock(&["cluster", "group", "list", "--format", "csv"]));
    assert!(list.contains("default,Default cluster group,2") && list.contains("gpu,,1"), "{list}");
    assert!(ok(m.lxc(&["cluster", "show", "node2"])).contains("- gpu"));
    let err = fails(m.stock(&["cluster", "group", "delete", "gpu"]));
    assert!(err.contains("Only empty cluster groups can be removed"), "{err}");
    ok(m.stock(&["cluster", "group", "remove", "node2", "gpu"]));
    let err = fails(m.lxc(&["cluster", "group", "rename", "default", "other"]));
    assert!(err.contains("The \"default\" group cannot be renamed"), "{err}");
    ok(m.lxc(&["cluster", "group", "rename", "gpu", "accel"]));
    let shown = ok(m.stock(&["cluster", "group", "show", "accel"]));
    assert!(shown.contains("members: []"), "{shown}");
    ok(m.stock(&["cluster", "group", "delete", "accel"]));
    let err = fails(m.stock(&["cluster", "group", "delete", "default"]));
    assert!(err.contains("The 'default' cluster group cannot be deleted"), "{err}");
    let err = fails(m.stock(&["cluster", "group", "remove", "node2", "default"]));
    assert!(err.contains("at least one group"), "{err}");
}
