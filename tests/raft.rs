//! The raft driver with its real storage (SQLite files in temp dirs) and the production Ready
//! loop, connected by an in-process transport that can cut links: replication, learners and
//! promotion, leader loss, restart from disk, snapshot catch-up and no-quorum behaviour.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::prelude::{Message, MessageType};
use rxd::raft::{Membership, RaftConfig, RaftError, RaftHandle, SnapshotData, Transport, start};
use rxd::store::{Batch, Stmt, Value};

#[derive(Default)]
struct Net {
    nodes: Mutex<HashMap<u64, (RaftHandle, PathBuf)>>,
    cut: Mutex<HashSet<u64>>,
}

struct ChanTransport {
    id: u64,
    net: Arc<Net>,
}

impl Transport for ChanTransport {
    fn send(&self, msgs: Vec<Message>) {
        let cut = self.net.cut.lock().expect("lock").clone();
        let nodes = self.net.nodes.lock().expect("lock");
        for m in msgs {
            if cut.contains(&self.id) || cut.contains(&m.to) {
                continue;
            }
            let Some((to, to_dir)) = nodes.get(&m.to) else {
                continue;
            };
            if m.get_msg_type() == MessageType::MsgSnapshot {
                let data: SnapshotData = serde_json::from_slice(&m.get_snapshot().data).expect("snapshot data");
                let from_dir = &nodes[&self.id].1;
                let dest = to_dir.join(format!("incoming-{}", data.file));
                std::fs::copy(from_dir.join(&data.file), &dest).expect("copy snapshot");
                let from = nodes[&self.id].0.clone();
                to.step_snapshot(m, dest);
                from.report_snapshot(to_dir_id(&nodes, to_dir), true);
            } else {
                to.step(m);
            }
        }
    }
    fn set_peer(&self, _id: u64, _address: &str) {}
}

fn to_dir_id(nodes: &HashMap<u64, (RaftHandle, PathBuf)>, dir: &PathBuf) -> u64 {
    nodes.iter().find(|(_, (_, d))| d == dir).map(|(id, _)| *id).unwrap_or(0)
}

struct Cluster {
    net: Arc<Net>,
    dirs: HashMap<u64, tempfile::TempDir>,
    snapshot_every: u64,
}

impl Cluster {
    fn new(snapshot_every: u64) -> Cluster {
        Cluster { net: Arc::new(Net::default()), dirs: HashMap::new(), snapshot_every }
    }

    async fn start(&mut self, id: u64, bootstrap: bool) -> RaftHandle {
        let dir = self.dirs.entry(id).or_insert_with(|| tempfile::tempdir().expect("tmp")).path().to_path_buf();
        let mut cfg = RaftConfig::new(id, dir.clone());
        cfg.tick = Duration::from_millis(20);
        cfg.snapshot_every = self.snapshot_every;
        let h = start(cfg, Arc::new(ChanTransport { id, net: self.net.clone() }), bootstrap).await.expect("start");
        self.net.nodes.lock().expect("lock").insert(id, (h.clone(), dir));
        h
    }

    async fn stop(&mut self, id: u64) {
        let h = self.net.nodes.lock().expect("lock").remove(&id).map(|(h, _)| h);
        if let Some(h) = h {
            h.stop().await;
            h.state_machine.close().await;
        }
    }

    fn handle(&self, id: u64) -> RaftHandle {
        self.net.nodes.lock().expect("lock")[&id].0.clone()
    }

    async fn leader(&self, exclude: &[u64]) -> RaftHandle {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let nodes: Vec<RaftHandle> = self.net.nodes.lock().expect("lock").values().map(|(h, _)| h.clone()).collect();
            if let Some(h) = nodes.into_iter().find(|h| h.status().is_leader && !exclude.contains(&h.status().id)) {
                return h;
            }
            assert!(tokio::time::Instant::now() < deadline, "no leader elected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn put(key: &str, value: &str) -> Batch {
    let mut b = Batch::new();
    b.push(
        "INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        vec![key.into(), value.into()],
    );
    b
}

async fn get(h: &RaftHandle, key: &str) -> Option<String> {
    let db = h.state_machine.database();
    let db = db.read().await;
    let rows = db.query(&Stmt::new("SELECT value FROM config WHERE key = ?", vec![key.into()])).await.expect("query");
    rows.rows.first().and_then(|r| r.first()).and_then(Value::as_str).map(str::to_string)
}

async fn wait_value(h: &RaftHandle, key: &str, value: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get(h, key).await.as_deref() != Some(value) {
        assert!(tokio::time::Instant::now() < deadline, "node {} never saw {key}={value}", h.status().id);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn propose_retrying(c: &Cluster, batch: Batch) -> RaftHandle {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let leader = c.leader(&[]).await;
        match leader.propose(batch.clone()).await {
            Ok(r) => {
                r.expect("batch applies");
                return leader;
            }
            Err(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("proposal failed: {e}"),
        }
    }
}

async fn add(c: &mut Cluster, id: u64, voter: bool) {
    c.start(id, false).await;
    let leader = c.leader(&[]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let change = || Membership::AddLearner { id, address: format!("node{id}") };
    loop {
        match leader.change(change()).await {
            Ok(()) => break,
            Err(RaftError::ChangeInProgress | RaftError::Dropped) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("add learner {id}: {e}"),
        }
    }
    if voter {
        loop {
            match leader.change(Membership::AddVoter { id, address: format!("node{id}") }).await {
                Ok(()) => break,
                Err(RaftError::ChangeInProgress | RaftError::Dropped) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("promote {id}: {e}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_bootstraps_and_applies_exactly_once_across_restarts() {
    let mut c = Cluster::new(1024);
    let h = c.start(1, true).await;
    c.leader(&[]).await;
    for i in 0..20 {
        h.propose(put(&format!("k{i}"), "v")).await.expect("propose").expect("apply");
    }
    // A batch whose guard fails is a deterministic failure, reported and applied as a no-op.
    let mut guarded = Batch::new();
    guarded.require_none("SELECT COUNT(*) FROM config WHERE key = 'k1'", vec![], "k1 exists");
    guarded.push("INSERT INTO config (key, value) VALUES ('never', 'x')", vec![]);
    let outcome = h.propose(guarded).await.expect("committed");
    assert!(outcome.is_err());
    assert_eq!(get(&h, "never").await, None);
    let (before, term) = (h.status().applied, h.status().term);
    c.stop(1).await;
    let h = c.start(1, false).await;
    // The restart resumes at the applied index. A single voter may already have elected itself
    // again and applied its new term's empty entry, one past it; nothing is applied twice or
    // skipped either way.
    let after = h.status();
    assert!(
        after.applied == before || (after.applied == before + 1 && after.term > term),
        "restart resumes at the applied index {before}: {after:?}"
    );
    c.leader(&[]).await;
    h.propose(put("after", "restart")).await.expect("propose").expect("apply");
    assert_eq!(get(&h, "k19").await.as_deref(), Some("v"));
    // Bootstrapping an initialised replica is refused.
    c.stop(1).await;
    let mut cfg = RaftConfig::new(1, c.dirs[&1].path().to_path_buf());
    cfg.tick = Duration::from_millis(20);
    let again = start(cfg, Arc::new(ChanTransport { id: 1, net: c.net.clone() }), true).await;
    assert!(matches!(again, Err(RaftError::AlreadyInitialised)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_replicate_and_survive_leader_loss() {
    let mut c = Cluster::new(1024);
    c.start(1, true).await;
    c.leader(&[]).await;
    add(&mut c, 2, true).await;
    add(&mut c, 3, true).await;
    let leader = propose_retrying(&c, put("a", "1")).await;
    for id in [1, 2, 3] {
        wait_value(&c.handle(id), "a", "1").await;
        assert_eq!(c.handle(id).status().voters.len(), 3);
    }
    let old = leader.status().id;
    c.net.cut.lock().expect("lock").insert(old);
    let start = std::time::Instant::now();
    let new = c.leader(&[old]).await;
    assert_ne!(new.status().id, old);
    assert!(start.elapsed() < Duration::from_secs(5), "failover took {:?}", start.elapsed());
    new.propose(put("b", "2")).await.expect("propose").expect("apply");
    // The cut-off old leader cannot commit anything on its own.
    let lonely = c.handle(old);
    let r = tokio::time::timeout(Duration::from_secs(3), lonely.propose(put("c", "3"))).await;
    assert!(!matches!(r, Ok(Ok(Ok(_)))), "isolated leader acknowledged a write");
    c.net.cut.lock().expect("lock").clear();
    wait_value(&lonely, "b", "2").await;
    assert_eq!(get(&lonely, "c").await, None, "the isolated write never became visible");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_holds_data_without_voting_and_lagging_member_catches_up_by_snapshot() {
    let mut c = Cluster::new(16);
    c.start(1, true).await;
    c.leader(&[]).await;
    add(&mut c, 2, true).await;
    add(&mut c, 3, true).await;
    add(&mut c, 4, false).await;
    propose_retrying(&c, put("x", "1")).await;
    wait_value(&c.handle(4), "x", "1").await;
    let st = c.handle(1).status();
    assert_eq!(st.voters.len(), 3);
    assert_eq!(st.learners, vec![4]);
    // Node 3 misses enough entries that the leader has compacted them away.
    c.net.cut.lock().expect("lock").insert(3);
    for i in 0..60 {
        propose_retrying(&c, put(&format!("s{i}"), "v")).await;
    }
    c.net.cut.lock().expect("lock").clear();
    wait_value(&c.handle(3), "s59", "v").await;
    let files: Vec<String> = std::fs::read_dir(c.dirs[&3].path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().all(|f| !f.starts_with("incoming-")), "snapshot file consumed: {files:?}");
    // Restart everything from disk: nothing is lost.
    for id in [1, 2, 3, 4] {
        c.stop(id).await;
    }
    for id in [1, 2, 3, 4] {
        c.start(id, false).await;
    }
    c.leader(&[]).await;
    for id in [1, 2, 3, 4] {
        wait_value(&c.handle(id), "s59", "v").await;
    }
    propose_retrying(&c, put("post", "restart")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_are_demoted_and_removed_one_change_at_a_time() {
    let mut c = Cluster::new(1024);
    c.start(1, true).await;
    c.leader(&[]).await;
    add(&mut c, 2, true).await;
    add(&mut c, 3, true).await;
    let leader = c.leader(&[]).await;
    let victim = [1, 2, 3].into_iter().find(|id| *id != leader.status().id).expect("follower");
    // Demote: a voter becomes a learner.
    leader.change(Membership::AddLearner { id: victim, address: format!("node{victim}") }).await.expect("demote");
    let st = leader.status();
    assert_eq!(st.voters.len(), 2);
    assert_eq!(st.learners, vec![victim]);
    // Remove it altogether; the remaining two keep committing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match leader.change(Membership::Remove { id: victim }).await {
            Ok(()) => break,
            Err(RaftError::ChangeInProgress) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("remove: {e}"),
        }
    }
    let st = leader.status();
    assert!(!st.voters.contains(&victim) && !st.learners.contains(&victim));
    leader.propose(put("after", "removal")).await.expect("propose").expect("apply");
}
