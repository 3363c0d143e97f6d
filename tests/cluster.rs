//! Clusters of real daemons on loopback addresses: formation by preseed, roles, a write on any
//! member visible on all, the leader killed or paused while clients write, full restarts, the
//! stock client's view, `lxd sql`, refused joins and a damaged raft log.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestCluster, fails, ok, rt};

fn roles(c: &TestCluster, via: usize, client: &std::path::Path) -> BTreeMap<String, String> {
    let out = ok(c.members[via].client(client, &["cluster", "list", "--format", "csv"], None));
    out.lines()
        .map(|l| {
            let cols: Vec<&str> = l.splitn(4, ',').collect();
            (cols[0].to_string(), cols.get(2).copied().unwrap_or_default().trim_matches('"').to_string())
        })
        .collect()
}

fn config_of(m: &common::Member) -> serde_json::Value {
    let v: serde_json::Value = rt().block_on(m.conn().get_json("/1.0")).expect("info");
    v["config"].clone()
}

#[test]
fn three_members_form_by_preseed_and_share_every_write() {
    let c = TestCluster::form(3);
    for client in common::clients() {
        let r = roles(&c, 2, &client);
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!(r.values().filter(|v| v.contains("database-leader")).count(), 1, "{r:?}");
        assert!(r.values().all(|v| v.contains("database") && !v.contains("standby")), "{r:?}");
    }
    for (i, m) in c.members.iter().enumerate() {
        ok(m.lxc(&["config", "set", &format!("user.from{i}"), &i.to_string()]));
        for other in &c.members {
            assert_eq!(ok(other.lxc(&["config", "get", &format!("user.from{i}")])).trim(), i.to_string());
        }
    }
    ok(c.members[1].lxc(&["profile", "create", "shared"]));
    assert!(ok(c.members[2].stock(&["profile", "list", "--format", "csv"])).contains("shared"));
    let show = ok(c.members[0].stock(&["cluster", "show", "node2"]));
    assert!(show.contains("server_name: node2") && show.contains("database: true"), "{show}");
}

#[test]
fn five_members_get_three_voters_and_two_standbys() {
    let c = TestCluster::form(5);
    let r = roles(&c, 0, std::path::Path::new(common::STOCK_LXC));
    let voters = r.values().filter(|v| v.contains("database") && !v.contains("standby")).count();
    let standbys = r.values().filter(|v| v.contains("database-standby")).count();
    assert_eq!((voters, standbys), (3, 2), "{r:?}");
    // A stand-by holds the data.
    ok(c.members[0].lxc(&["config", "set", "user.five", "5"]));
    let standby = r.iter().find(|(_, v)| v.contains("standby")).map(|(n, _)| n.clone()).expect("standby");
    let idx: usize = standby.trim_start_matches("node").parse::<usize>().expect("index") - 1;
    let db = c.members[idx].lxd_dir().join("database/global/state.db");
    assert!(db.exists());
    assert_eq!(ok(c.members[idx].lxc(&["config", "get", "user.five"])).trim(), "5");
    let raft_nodes = ok(c.members[0].lxd(&["sql", "local", "SELECT id, role FROM raft_nodes ORDER BY id"]));
    assert_eq!(raft_nodes.matches("| 1    |").count(), 2, "{raft_nodes}");
}

/// Writes `user.w<t>-<i>` through member `t % n`'s socket until stopped; returns the keys whose
/// write was acknowledged.
fn writers(c: &TestCluster, stop: Arc<AtomicBool>, count: usize, skip: usize) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    (0..count)
        .map(|t| {
            let member = (0..c.members.len()).filter(|i| *i != skip).nth(t % (c.members.len() - 1)).unwrap_or(0);
            let conn = c.members[member].conn();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let rt = rt();
                let mut acked = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("user.w{t}-{i}");
                    let body = serde_json::json!({"config": {key.clone(): "x"}});
                    if rt.block_on(conn.request("PATCH", "/1.0", Some(&body), None)).is_ok() {
                        acked.push(key);
                    }
                    i += 1;
                }
                acked
            })
        })
        .collect()
}

/// The writers' keys in this member's own replica file, in row order (reads through the API
/// are answered by the leader, so this is how a replica's content is checked).
fn replica_keys(m: &common::Member) -> Vec<String> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys\nfor (k,) in sqlite3.connect(sys.argv[1]).execute(\"SELECT key FROM config WHERE key LIKE 'user.w%' ORDER BY id\"): print(k)",
        ])
        .arg(m.lxd_dir().join("database/global/state.db"))
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Waits (bounded) until every listed member's replica holds the same keys in the same order.
fn replicas_converge(c: &TestCluster, members: &[usize]) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let all: Vec<Vec<String>> = members.iter().map(|&i| replica_keys(&c.members[i])).collect();
        if all.windows(2).all(|w| w[0] == w[1]) {
            return all.into_iter().next().unwrap_or_default();
        }
        assert!(std::time::Instant::now() < deadline, "replicas diverge: {:?}", all.iter().map(Vec::len).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn leader_killed_while_clients_write_loses_nothing_acknowledged() {
    let mut c = TestCluster::form(3);
    let leader = c.leader(0);
    let stop = Arc::new(AtomicBool::new(false));
    let threads = writers(&c, stop.clone(), 4, leader);
    std::thread::sleep(Duration::from_millis(700));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.members[leader].pid() as i32), nix::sys::signal::Signal::SIGKILL)
        .expect("kill");
    c.members[leader].wait_exit(Duration::from_secs(5)).expect("leader died");
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<String> = threads.into_iter().flat_map(|t| t.join().expect("writer")).collect();
    assert!(acked.len() > 20, "too few writes acknowledged: {}", acked.len());
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let new_leader = c.leader(survivors[0]);
    assert_ne!(new_leader, leader);
    for &s in &survivors {
        let cfg = config_of(&c.members[s]);
        for k in &acked {
            assert!(cfg.get(k).is_some(), "acknowledged {k} missing on member {s}");
        }
    }
    let replicated = replicas_converge(&c, &survivors);
    for k in &acked {
        assert!(replicated.contains(k), "acknowledged {k} missing from the survivors' replicas");
    }
    // Writes resume, and the killed member catches up when it comes back.
    ok(c.members[survivors[0]].lxc(&["config", "set", "user.after", "kill"]));
    c.members[leader].spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while ok(c.members[leader].lxc(&["config", "get", "user.after"])).trim() != "kill" {
        assert!(std::time::Instant::now() < deadline, "restarted member never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    replicas_converge(&c, &[0, 1, 2]);
}

#[test]
fn paused_leader_steps_down_and_no_write_is_lost() {
    let c = TestCluster::form(3);
    let leader = c.leader(0);
    let pid = nix::unistd::Pid::from_raw(c.members[leader].pid() as i32);
    let stop = Arc::new(AtomicBool::new(false));
    let threads = writers(&c, stop.clone(), 2, leader);
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("stop");
    std::thread::sleep(Duration::from_secs(3));
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let new_leader = c.leader(others[0]);
    assert_ne!(new_leader, leader, "a new leader takes over while the old one is paused");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("cont");
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<String> = threads.into_iter().flat_map(|t| t.join().expect("writer")).collect();
    let leaders = roles(&c, others[0], &common::bin_dir().join("lxc")).values().filter(|v| v.contains("database-leader")).count();
    assert_eq!(leaders, 1);
    let replicated = replicas_converge(&c, &[0, 1, 2]);
    for k in &acked {
        assert!(replicated.contains(k), "acknowledged {k} missing from the replicas");
    }
    for i in 0..3 {
        let cfg = config_of(&c.members[i]);
        for k in &acked {
            assert!(cfg.get(k).is_some(), "acknowledged {k} missing on member {i}");
        }
    }
}

#[test]
fn restarting_every_member_loses_nothing() {
    let mut c = TestCluster::form(3);
    ok(c.members[1].lxc(&["config", "set", "user.kept", "1"]));
    ok(c.members[2].lxc(&["profile", "create", "kept"]));
    // Clean stop of all, then start again.
    for m in c.members.iter_mut() {
        ok(m.lxd(&["shutdown"]));
        m.wait_exit(Duration::from_secs(10)).expect("stopped");
    }
    for m in c.members.iter_mut() {
        m.spawn();
    }
    c.leader(0);
    assert_eq!(ok(c.members[0].lxc(&["config", "get", "user.kept"])).trim(), "1");
    // SIGKILL all, then start again.
    ok(c.members[0].lxc(&["config", "set", "user.kept2", "2"]));
    for m in c.members.iter_mut() {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(m.pid() as i32), nix::sys::signal::Signal::SIGKILL).expect("kill");
        m.wait_exit(Duration::from_secs(5)).expect("killed");
    }
    for m in c.members.iter_mut() {
        m.spawn();
    }
    c.leader(1);
    for m in &c.members {
        assert_eq!(ok(m.lxc(&["config", "get", "user.kept2"])).trim(), "2");
        assert!(ok(m.lxc(&["profile", "list", "--format", "csv"])).contains("kept"));
    }
}

#[test]
fn sql_through_the_cluster() {
    let c = TestCluster::form(2);
    let out = ok(c.members[1].lxd(&["sql", "global", "SELECT name, state FROM nodes ORDER BY id"]));
    assert_eq!(
        out,
        "+-------+-------+\n| name  | state |\n+-------+-------+\n| node1 | 0     |\n| node2 | 0     |\n+-------+-------+\n"
    );
    let out = ok(c.members[1].lxd(&["sql", "global", "INSERT INTO config (key, value) VALUES ('user.sql', 'yes')"]));
    assert_eq!(out, "Rows affected: 1\n");
    assert_eq!(ok(c.members[0].lxc(&["config", "get", "user.sql"])).trim(), "yes");
    let two = ok(c.members[0]
        .lxd_stdin(&["sql", "global", "-"], Some("SELECT COUNT(*) AS n FROM nodes; DELETE FROM config WHERE key = 'user.sql'")));
    assert!(two.starts_with("=> Query 0:\n\n") && two.contains("=> Query 1:\n\nRows affected: 1\n"), "{two}");
    let dump = ok(c.members[0].lxd(&["sql", "global", ".dump"]));
    assert!(dump.contains("CREATE TABLE nodes") && dump.contains("INSERT INTO nodes VALUES(2,'node2'"), "{dump}");
    assert!(fails(c.members[0].lxd(&["sql", "nowhere", "SELECT 1"])).contains("Invalid database type"));
    // Two members: one voter (the leader) and one stand-by, as LXD 5.0 lays them out.
    let r = roles(&c, 0, &common::bin_dir().join("lxc"));
    assert_eq!(r.values().filter(|v| v.contains("database-standby")).count(), 1, "{r:?}");
}

#[test]
fn a_refused_join_changes_nothing_on_either_side() {
    let c = TestCluster::form(1);
    let joiner = common::Member::start();
    ok(joiner.lxc(&["config", "set", "user.mine", "1"]));
    let bad = c.join_preseed("node2", &joiner.address(), "wrong-password");
    let err = fails(joiner.lxd_stdin(&["init", "--preseed"], Some(&bad)));
    assert!(err.contains("Failed to setup cluster trust"), "{err}");
    assert_eq!(ok(joiner.lxc(&["config", "get", "user.mine"])).trim(), "1", "the joiner keeps its data");
    assert!(!joiner.lxd_dir().join("cluster.crt").exists());
    let nodes = ok(c.members[0].lxd(&["sql", "global", "SELECT COUNT(*) FROM nodes"]));
    assert!(nodes.contains("| 1 "), "{nodes}");
    let wrong_cert =
        c.join_preseed("node2", &joiner.address(), "sekret").replace("cluster_certificate: \"", "cluster_certificate: \"x");
    assert!(fails(joiner.lxd_stdin(&["init", "--preseed"], Some(&wrong_cert))).contains("cluster_certificate"));
}

#[test]
fn a_damaged_raft_log_is_refused() {
    let mut c = TestCluster::form(1);
    ok(c.members[0].lxc(&["config", "set", "user.x", "1"]));
    ok(c.members[0].lxd(&["shutdown"]));
    c.members[0].wait_exit(Duration::from_secs(10)).expect("stopped");
    let log = c.members[0].lxd_dir().join("database/global/raft.db");
    let conn = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM log WHERE idx = (SELECT MIN(idx)+1 FROM log)'); c.commit()"])
        .arg(&log)
        .status()
        .expect("python3");
    assert!(conn.success());
    let out =
        std::process::Command::new(common::bin_dir().join("lxd")).env("LXD_DIR", c.members[0].lxd_dir()).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("raft.db") && (err.contains("out of sequence") || err.contains("damaged")), "{err}");
}

#[test]
fn without_quorum_reads_and_writes_fail_quickly_and_clearly() {
    let mut c = TestCluster::form(3);
    ok(c.members[0].lxc(&["config", "set", "user.before", "1"]));
    for i in [1, 2] {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.members[i].pid() as i32), nix::sys::signal::Signal::SIGKILL)
            .expect("kill");
        c.members[i].wait_exit(Duration::from_secs(5)).expect("killed");
    }
    let start = std::time::Instant::now();
    let err = fails(c.members[0].lxc(&["config", "set", "user.after", "1"]));
    assert!(err.contains("no quorum"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
    let err = fails(c.members[0].lxc(&["profile", "list"]));
    assert!(err.contains("no quorum"), "{err}");
    // Quorum back: everything works again and nothing half-applied appears.
    c.members[1].spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !c.members[0].lxc(&["config", "set", "user.after", "2"]).status.success() {
        assert!(std::time::Instant::now() < deadline, "cluster did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ok(c.members[1].lxc(&["config", "get", "user.after"])).trim(), "2");
}

#[test]
fn raft_endpoints_refuse_anything_without_a_member_certificate() {
    let c = TestCluster::form(1);
    let addr = c.members[0].address();
    rt().block_on(async {
        for identity in [None, Some(rxd::tls::generate(rxd::tls::CertKind::Client).expect("cert"))] {
            let conn = rxd::client::Connection::https(&addr, rxd::tls::ServerPin::AcceptAny, identity.as_ref()).expect("conn");
            for path in ["/internal/raft", "/internal/db", "/internal/cluster/accept"] {
                let (status, _, _) = conn.raw("POST", path, Some(b"{}".to_vec()), &[]).await.expect("request");
                assert_eq!(status, 403, "{path}");
            }
        }
    });
}

#[test]
fn a_member_that_missed_compacted_entries_catches_up_by_snapshot() {
    let mut c = TestCluster::form_with(3, &[("RXD_RAFT_SNAPSHOT_EVERY", "16")]);
    let leader = c.leader(0);
    let behind = (0..3).find(|i| *i != leader).expect("follower");
    let writer = (0..3).find(|i| *i != leader && *i != behind).expect("third");
    ok(c.members[behind].lxd(&["shutdown"]));
    c.members[behind].wait_exit(Duration::from_secs(10)).expect("stopped");
    let conn = c.members[writer].conn();
    rt().block_on(async {
        for i in 0..80 {
            let body = serde_json::json!({"config": {format!("user.s{i}"): "v"}});
            conn.request("PATCH", "/1.0", Some(&body), None).await.expect("write");
        }
    });
    c.members[behind].spawn();
    // Reads are served by the leader, so look at the member's own replica file.
    let replica = c.members[behind].lxd_dir().join("database/global/state.db");
    let count_local = || {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT COUNT(*) FROM config WHERE key LIKE 'user.s%'\").fetchone()[0])"])
            .arg(&replica)
            .output()
            .expect("python3");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while count_local() != "80" {
        assert!(std::time::Instant::now() < deadline, "never caught up (has {})", count_local());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(c.members[behind].log().contains("installed a snapshot"), "caught up without a snapshot?");
}

/// An nftables table dropping traffic between the given loopback addresses; removed on drop.
struct Partition {
    table: String,
}

impl Partition {
    fn isolate(victim: &str, others: &[&str]) -> Partition {
        let table = format!("rxdtest{}", std::process::id());
        let set = others.join(", ");
        let script = format!(
            "table inet {table} {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    ip saddr {victim} ip daddr {{ {set} }} drop\n    ip saddr {{ {set} }} ip daddr {victim} drop\n  }}\n}}\n"
        );
        let mut cmd = std::process::Command::new("nft");
        cmd.args(["-f", "-"]);
        ok(common::run_timeout(cmd, Some(script.as_bytes()), Duration::from_secs(10)));
        Partition { table }
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nft").args(["delete", "table", "inet", &self.table]).status();
    }
}

#[test]
fn a_cut_off_minority_cannot_write_and_catches_up_after_healing() {
    let c = TestCluster::form(3);
    let leader = c.leader(0);
    // Cut off a follower (the minority of one).
    let victim = (0..3).find(|i| *i != leader).expect("follower");
    let others: Vec<String> = (0..3).filter(|i| *i != victim).map(|i| c.members[i].ip.clone()).collect();
    let refs: Vec<&str> = others.iter().map(String::as_str).collect();
    let cut = Partition::isolate(&c.members[victim].ip, &refs);
    let err = fails(c.members[victim].lxc(&["config", "set", "user.minority", "1"]));
    assert!(err.contains("no quorum"), "{err}");
    let majority = (0..3).find(|i| *i != victim).expect("majority member");
    ok(c.members[majority].lxc(&["config", "set", "user.majority", "1"]));
    drop(cut);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ok(c.members[victim].lxc(&["config", "get", "user.majority"])).trim() != "1" {
        assert!(std::time::Instant::now() < deadline, "minority never caught up");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ok(c.members[majority].lxc(&["config", "get", "user.minority"])).trim(), "", "a refused write appeared");
}

#[test]
fn a_sixth_member_is_a_spare_that_still_reads_and_writes() {
    let c = TestCluster::form(6);
    let r = roles(&c, 0, std::path::Path::new(common::STOCK_LXC));
    let voters = r.values().filter(|v| v.contains("database") && !v.contains("standby")).count();
    let standbys = r.values().filter(|v| v.contains("database-standby")).count();
    assert_eq!((voters, standbys), (3, 2), "{r:?}");
    assert_eq!(r.get("node6").map(String::as_str), Some(""), "node6 holds no database role: {r:?}");
    // The spare has no replica, yet it serves the global database through the others.
    ok(c.members[5].lxc(&["config", "set", "user.spare", "6"]));
    assert_eq!(ok(c.members[0].lxc(&["config", "get", "user.spare"])).trim(), "6");
    assert_eq!(ok(c.members[5].lxc(&["config", "get", "user.spare"])).trim(), "6");
    assert!(!c.members[5].lxd_dir().join("database/global/raft.db").exists());
}
