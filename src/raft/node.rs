//! The raft driver: one task per replica owns the `RawNode`, ticks it every 100 ms, and runs
//! the Ready loop (send, persist with fsync, apply, advance). Proposals queued while a Ready is
//! being persisted go into the next one (group commit). Callers talk to it through
//! [`RaftHandle`]: propose a batch, wait for a linearizable read point, change membership.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use protobuf::Message as _;
use raft::prelude::*;
use raft::{StateRole, eraftpb::ConfChangeType};
use tokio::sync::{mpsc, oneshot, watch};

use super::log_store::LogStore;
use super::state_machine::{ApplyResult, StateMachine};
use super::{RaftError, Transport};
use crate::store::{Batch, StoreError};

/// Tunables: 100 ms tick, a heartbeat every 3 ticks (idle members stay quiet), 10-tick election.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    pub id: u64,
    pub dir: PathBuf,
    pub tick: Duration,
    pub heartbeat_ticks: usize,
    pub election_ticks: usize,
    /// Entries applied between snapshots (and log compactions).
    pub snapshot_every: u64,
}

impl RaftConfig {
    pub fn new(id: u64, dir: PathBuf) -> RaftConfig {
        RaftConfig { id, dir, tick: Duration::from_millis(100), heartbeat_ticks: 3, election_ticks: 10, snapshot_every: 1024 }
    }
}

/// What a replica reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftStatus {
    pub id: u64,
    pub leader: u64,
    pub term: u64,
    pub is_leader: bool,
    pub applied: u64,
    pub commit: u64,
    /// The end of this replica's log.
    pub last_index: u64,
    pub last_term: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// The leader has committed an entry of its own term, so its commit index is current.
    pub commit_in_term: bool,
}

/// The entry payload: a batch of SQL for the state machine.
#[derive(serde::Serialize, serde::Deserialize)]
struct Command {
    batch: Batch,
}

/// A membership change request.
#[derive(Clone, Debug)]
pub enum Membership {
    AddVoter { id: u64, address: String },
    AddLearner { id: u64, address: String },
    Remove { id: u64 },
}

enum Msg {
    Propose(Batch, oneshot::Sender<Result<ApplyResult, RaftError>>),
    ReadIndex(oneshot::Sender<Result<(), RaftError>>),
    Change(Membership, oneshot::Sender<Result<(), RaftError>>),
    Step(Message),
    Snapshot(Message, PathBuf),
    Campaign,
    Ping,
    Transfer(u64),
    Unreachable(u64),
    SnapshotDone(u64, bool),
    Stop(oneshot::Sender<()>),
}

/// Talks to a running replica.
#[derive(Clone)]
pub struct RaftHandle {
    tx: mpsc::UnboundedSender<Msg>,
    status: watch::Receiver<RaftStatus>,
    pub state_machine: StateMachine,
    /// Why the node stopped on its own, if it did.
    fault: Arc<std::sync::Mutex<Option<String>>>,
}

impl RaftHandle {
    /// The local fault that stopped this node, if any.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().ok()?.clone()
    }

    fn send(&self, m: Msg) -> Result<(), RaftError> {
        self.tx.send(m).map_err(|_| RaftError::Stopped)
    }

    /// Proposes a batch; resolves once it is committed and applied on this node.
    pub async fn propose(&self, batch: Batch) -> Result<ApplyResult, RaftError> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Propose(batch, tx))?;
        rx.await.map_err(|_| RaftError::Stopped)?
    }

    /// Resolves once this leader has confirmed its leadership and applied everything committed
    /// before the call: reads after it are linearizable.
    pub async fn read_barrier(&self) -> Result<(), RaftError> {
        // Lease read without entering the raft task: a leader that has committed in its term
        // knows the commit index (check_quorum deposes it within an election timeout when it
        // loses its quorum, exactly raft-rs's LeaseBased guarantee); wait until it is applied.
        let st = self.status();
        if st.is_leader && st.commit_in_term {
            let target = st.commit;
            let mut watch = self.status.clone();
            let caught_up = watch.wait_for(|s| s.applied >= target || !s.is_leader);
            return match tokio::time::timeout(Duration::from_secs(5), caught_up).await {
                Ok(Ok(s)) if s.is_leader => Ok(()),
                Ok(Ok(s)) => Err(RaftError::NotLeader { leader: s.leader }),
                _ => Err(RaftError::Dropped),
            };
        }
        let (tx, rx) = oneshot::channel();
        self.send(Msg::ReadIndex(tx))?;
        // A follower's request can be lost with a leadership change: give up and let the
        // caller go to the leader instead.
        match tokio::time::timeout(Duration::from_secs(2), rx).await {
            Ok(r) => r.map_err(|_| RaftError::Stopped)?,
            Err(_) => Err(RaftError::Dropped),
        }
    }

    pub async fn change(&self, change: Membership) -> Result<(), RaftError> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Change(change, tx))?;
        rx.await.map_err(|_| RaftError::Stopped)?
    }

    pub fn step(&self, msg: Message) {
        let _ = self.send(Msg::Step(msg));
    }

    pub fn step_snapshot(&self, msg: Message, file: PathBuf) {
        let _ = self.send(Msg::Snapshot(msg, file));
    }

    pub fn campaign(&self) {
        let _ = self.send(Msg::Campaign);
    }

    /// A leader sends heartbeats now (a new replica is probed without waiting for the next
    /// heartbeat tick).
    pub fn ping(&self) {
        let _ = self.send(Msg::Ping);
    }

    pub fn transfer_leader(&self, to: u64) {
        let _ = self.send(Msg::Transfer(to));
    }

    pub fn report_unreachable(&self, id: u64) {
        let _ = self.send(Msg::Unreachable(id));
    }

    pub fn report_snapshot(&self, id: u64, ok: bool) {
        let _ = self.send(Msg::SnapshotDone(id, ok));
    }

    pub fn status(&self) -> RaftStatus {
        self.status.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<RaftStatus> {
        self.status.clone()
    }

    /// Waits, at most `limit`, until the published status satisfies `cond` (woken by each new
    /// status, not by polling); false when the time ran out or the node stopped.
    pub async fn wait_for(&self, limit: Duration, cond: impl FnMut(&RaftStatus) -> bool) -> bool {
        let mut status = self.status.clone();
        matches!(tokio::time::timeout(limit, status.wait_for(cond)).await, Ok(Ok(_)))
    }

    /// Stops the task (after its current step) and waits for it.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Msg::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

struct Pending<T> {
    term: u64,
    reply: oneshot::Sender<Result<T, RaftError>>,
}

struct Driver {
    node: RawNode<LogStore>,
    store: LogStore,
    sm: StateMachine,
    transport: Arc<dyn Transport>,
    cfg: RaftConfig,
    status: watch::Sender<RaftStatus>,
    proposals: BTreeMap<u64, Pending<ApplyResult>>,
    changes: BTreeMap<u64, Pending<()>>,
    reads: HashMap<u64, oneshot::Sender<Result<(), RaftError>>>,
    ready_reads: Vec<(u64, oneshot::Sender<Result<(), RaftError>>)>,
    next_read: u64,
    incoming_snapshot: Option<PathBuf>,
    applied: u64,
    applied_term: u64,
    conf: ConfState,
    last_snapshot: u64,
}

/// Opens the replica's files and starts its task. `bootstrap` founds a new cluster with this
/// node as the only voter (only on a replica that was never initialised).
pub async fn start(cfg: RaftConfig, transport: Arc<dyn Transport>, bootstrap: bool) -> Result<RaftHandle, RaftError> {
    std::fs::create_dir_all(&cfg.dir)
        .map_err(|e| RaftError::Store(StoreError::Io { path: cfg.dir.display().to_string(), source: e }))?;
    let sm = StateMachine::open(&cfg.dir.join("state.db")).await?;
    let mut applied = sm.applied().await?;
    let store = LogStore::open(&cfg.dir.join("raft.db"), (applied.index > 0).then(|| applied.conf.clone())).await?;
    if bootstrap {
        if store.initialised() {
            return Err(RaftError::AlreadyInitialised);
        }
        store.bootstrap(vec![cfg.id]).await?;
        let conf = ConfState::from((vec![cfg.id], vec![]));
        sm.apply(1, 1, None, &conf).await?.map_err(RaftError::Store)?;
        applied = sm.applied().await?;
    }
    // Startup repair: an applied index ahead of the stored commit was committed.
    let hs = store.hard_state();
    let last = raft::Storage::last_index(&store).unwrap_or(0);
    if applied.index > hs.commit {
        if applied.index > last {
            return Err(RaftError::Store(StoreError::Corrupt {
                path: cfg.dir.join("raft.db").display().to_string(),
                reason: format!("state machine applied {} but the log ends at {last}", applied.index),
            }));
        }
        store.persist_commit(applied.index).await?;
    }
    let first = raft::Storage::first_index(&store).unwrap_or(1);
    if applied.index > 0 && applied.index + 1 < first {
        return Err(RaftError::Store(StoreError::Corrupt {
            path: cfg.dir.join("raft.db").display().to_string(),
            reason: format!("the log starts at {first} but the state machine only applied {}", applied.index),
        }));
    }
    let raft_cfg = Config {
        id: cfg.id,
        election_tick: cfg.election_ticks,
        heartbeat_tick: cfg.heartbeat_ticks,
        applied: applied.index,
        pre_vote: true,
        check_quorum: true,
        // Leader reads without a round trip: safe with check_quorum (the leader steps down
        // within an election timeout when it loses its quorum) and the members' clocks on one
        // host or NTP-synchronised hosts.
        read_only_option: raft::ReadOnlyOption::LeaseBased,
        batch_append: true,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        max_uncommitted_size: 16 * 1024 * 1024,
        ..Default::default()
    };
    raft_cfg.validate()?;
    let node = RawNode::new(&raft_cfg, store.clone(), &super::logger())?;
    let (status_tx, status_rx) = watch::channel(RaftStatus { id: cfg.id, ..Default::default() });
    let (tx, rx) = mpsc::unbounded_channel();
    let fault = Arc::new(std::sync::Mutex::new(None));
    let handle = RaftHandle { tx, status: status_rx, state_machine: sm.clone(), fault: fault.clone() };
    let conf = applied.conf.clone();
    let mut driver = Driver {
        node,
        store,
        sm,
        transport,
        cfg,
        status: status_tx,
        proposals: BTreeMap::new(),
        changes: BTreeMap::new(),
        reads: HashMap::new(),
        ready_reads: Vec::new(),
        next_read: 1,
        incoming_snapshot: None,
        applied: applied.index,
        applied_term: applied.term,
        conf,
        last_snapshot: applied.index,
    };
    if bootstrap {
        let _ = driver.node.campaign();
    }
    driver.publish_status();
    tokio::spawn(async move {
        if let Err(e) = driver.run(rx).await {
            tracing::error!(error = %e, "raft node stopped on a local fault");
            if let Ok(mut f) = fault.lock() {
                *f = Some(e.to_string());
            }
        }
    });
    Ok(handle)
}

impl Driver {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Msg>) -> Result<(), RaftError> {
        let mut tick = tokio::time::interval(self.cfg.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.node.tick();
                }
                msg = rx.recv() => {
                    let Some(msg) = msg else { return Ok(()) };
                    if let Some(done) = self.handle(msg) {
                        let _ = done.send(());
                        return Ok(());
                    }
                    // Everything already queued joins the same Ready: one append, one fsync.
                    for _ in 0..4096 {
                        let Ok(msg) = rx.try_recv() else { break };
                        if let Some(done) = self.handle(msg) {
                            let _ = done.send(());
                            return Ok(());
                        }
                    }
                }
            }
            self.on_ready().await?;
            self.maybe_snapshot().await?;
        }
    }

    fn leader_error(&self) -> RaftError {
        RaftError::NotLeader { leader: self.node.raft.leader_id }
    }

    fn handle(&mut self, msg: Msg) -> Option<oneshot::Sender<()>> {
        match msg {
            Msg::Propose(batch, reply) => {
                if self.node.raft.state != StateRole::Leader || self.node.raft.lead_transferee.is_some() {
                    let _ = reply.send(Err(self.leader_error()));
                    return None;
                }
                let data = match serde_json::to_vec(&Command { batch }) {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = reply.send(Err(RaftError::Encode(e.to_string())));
                        return None;
                    }
                };
                let index = self.node.raft.raft_log.last_index() + 1;
                let term = self.node.raft.term;
                if self.node.propose(vec![], data).is_err() || self.node.raft.raft_log.last_index() < index {
                    let _ = reply.send(Err(RaftError::Dropped));
                    return None;
                }
                self.proposals.insert(index, Pending { term, reply });
            }
            Msg::ReadIndex(reply) => {
                if self.node.raft.state != StateRole::Leader {
                    // A follower asks the leader for its commit index (raft's ReadIndex); the
                    // answer arrives as a read state in a later Ready.
                    if self.node.raft.leader_id == 0 {
                        let _ = reply.send(Err(self.leader_error()));
                        return None;
                    }
                    let ctx = self.next_read;
                    self.next_read += 1;
                    self.node.read_index(ctx.to_be_bytes().to_vec());
                    self.reads.insert(ctx, reply);
                    return None;
                }
                let ctx = self.next_read;
                self.next_read += 1;
                let before = self.node.raft.pending_read_count() + self.node.raft.ready_read_count();
                self.node.read_index(ctx.to_be_bytes().to_vec());
                let after = self.node.raft.pending_read_count() + self.node.raft.ready_read_count();
                if after == before {
                    let _ = reply.send(Err(RaftError::Dropped));
                    return None;
                }
                // A lease read is answered at once: take it instead of waiting for the next Ready
                // (which may first have to persist other writers' entries).
                let key = ctx.to_be_bytes();
                if let Some(pos) = self.node.raft.read_states.iter().position(|rs| rs.request_ctx.as_slice() == key) {
                    let rs = self.node.raft.read_states.remove(pos);
                    self.ready_reads.push((rs.index, reply));
                    self.serve_reads();
                    return None;
                }
                self.reads.insert(ctx, reply);
            }
            Msg::Change(change, reply) => {
                if self.node.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(self.leader_error()));
                    return None;
                }
                if self.node.raft.has_pending_conf() {
                    let _ = reply.send(Err(RaftError::ChangeInProgress));
                    return None;
                }
                let (kind, id, address) = match change {
                    Membership::AddVoter { id, address } => (ConfChangeType::AddNode, id, address),
                    Membership::AddLearner { id, address } => (ConfChangeType::AddLearnerNode, id, address),
                    Membership::Remove { id } => (ConfChangeType::RemoveNode, id, String::new()),
                };
                if !address.is_empty() {
                    self.transport.set_peer(id, &address);
                }
                let mut cc = ConfChange::default();
                cc.set_change_type(kind);
                cc.node_id = id;
                cc.context = address.into_bytes().into();
                let index = self.node.raft.raft_log.last_index() + 1;
                let term = self.node.raft.term;
                if self.node.propose_conf_change(vec![], cc).is_err() || self.node.raft.raft_log.last_index() < index {
                    let _ = reply.send(Err(RaftError::Dropped));
                    return None;
                }
                self.changes.insert(index, Pending { term, reply });
            }
            Msg::Step(m) => {
                if let Err(e) = self.node.step(m) {
                    tracing::debug!(error = %e, "raft message ignored");
                }
            }
            Msg::Snapshot(m, file) => {
                self.incoming_snapshot = Some(file);
                if let Err(e) = self.node.step(m) {
                    tracing::debug!(error = %e, "raft snapshot ignored");
                }
            }
            Msg::Ping => {
                if self.node.raft.state == StateRole::Leader {
                    self.node.ping();
                }
            }
            Msg::Campaign => {
                if self.node.raft.promotable() {
                    let _ = self.node.campaign();
                }
            }
            Msg::Transfer(to) => self.node.transfer_leader(to),
            Msg::Unreachable(id) => self.node.report_unreachable(id),
            Msg::SnapshotDone(id, ok) => {
                let status = if ok { SnapshotStatus::Finish } else { SnapshotStatus::Failure };
                self.node.report_snapshot(id, status);
            }
            Msg::Stop(done) => return Some(done),
        }
        None
    }

    fn send(&self, msgs: Vec<Message>) {
        if !msgs.is_empty() {
            self.transport.send(msgs);
        }
    }

    async fn on_ready(&mut self) -> Result<(), RaftError> {
        if !self.node.has_ready() {
            self.serve_reads();
            return Ok(());
        }
        let mut rd = self.node.ready();
        if let Some(ss) = rd.ss() {
            // A role change drops pending read requests inside raft: fail them now.
            for (_, reply) in self.reads.drain() {
                let _ = reply.send(Err(RaftError::NotLeader { leader: 0 }));
            }
            // A leader that steps down cannot know the fate of what it proposed.
            if ss.raft_state != StateRole::Leader {
                for (_, p) in std::mem::take(&mut self.proposals) {
                    let _ = p.reply.send(Err(RaftError::Uncertain));
                }
                for (_, p) in std::mem::take(&mut self.changes) {
                    let _ = p.reply.send(Err(RaftError::Uncertain));
                }
            }
        }
        self.send(rd.take_messages());
        if !rd.snapshot().is_empty() {
            self.install_snapshot(rd.snapshot().clone(), rd.hs().cloned()).await?;
        }
        self.store.persist(rd.entries(), rd.hs()).await?;
        for rs in rd.take_read_states() {
            let ctx = rs.request_ctx.as_slice().try_into().map(u64::from_be_bytes).unwrap_or(0);
            if let Some(reply) = self.reads.remove(&ctx) {
                self.ready_reads.push((rs.index, reply));
            }
        }
        self.apply(rd.take_committed_entries()).await?;
        self.send(rd.take_persisted_messages());
        let mut light = self.node.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.store.persist_commit(commit).await?;
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries()).await?;
        self.node.advance_apply();
        self.serve_reads();
        self.publish_status();
        Ok(())
    }

    fn serve_reads(&mut self) {
        let applied = self.applied;
        let (done, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.ready_reads).into_iter().partition(|(i, _)| *i <= applied);
        self.ready_reads = waiting;
        for (_, reply) in done {
            let _ = reply.send(Ok(()));
        }
    }

    async fn install_snapshot(&mut self, snap: Snapshot, hs: Option<HardState>) -> Result<(), RaftError> {
        let md = snap.get_metadata().clone();
        let file = self.incoming_snapshot.take().ok_or_else(|| RaftError::Snapshot("snapshot data missing".into()))?;
        let applied = self.sm.install(&file).await?;
        if applied.index != md.index {
            return Err(RaftError::Snapshot(format!("snapshot file is at {} but raft expects {}", applied.index, md.index)));
        }
        self.store.install_snapshot(&snap, hs.as_ref()).await?;
        self.store.set_conf_state(md.get_conf_state().clone());
        self.applied = md.index;
        self.applied_term = md.term;
        self.conf = md.get_conf_state().clone();
        self.last_snapshot = md.index;
        tracing::info!(index = md.index, "installed a snapshot from the leader");
        Ok(())
    }

    /// Applies committed entries, then publishes the new status, then answers their proposers:
    /// whoever learns that its entry was applied also sees an applied index that includes it.
    async fn apply(&mut self, entries: Vec<Entry>) -> Result<(), RaftError> {
        let mut outcomes = Vec::with_capacity(entries.len());
        for e in entries {
            if e.index <= self.applied {
                continue;
            }
            let result = match e.get_entry_type() {
                EntryType::EntryNormal => {
                    let cmd = if e.data.is_empty() {
                        None
                    } else {
                        Some(serde_json::from_slice::<Command>(&e.data).map_err(|err| RaftError::Encode(err.to_string()))?)
                    };
                    #[allow(clippy::manual_map)]
                    // a closure here trips the compiler's Send inference
                    let batch = match &cmd {
                        Some(c) => Some(&c.batch),
                        None => None,
                    };
                    self.sm.apply(e.index, e.term, batch, &self.conf).await?
                }
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(&e.data).map_err(|err| RaftError::Encode(err.to_string()))?;
                    let outcome = self.node.apply_conf_change(&cc);
                    let peer = (cc.node_id, String::from_utf8_lossy(&cc.context).into_owned());
                    self.conf_changed(e.index, e.term, outcome, Some(peer)).await?
                }
                EntryType::EntryConfChangeV2 => {
                    let cc = ConfChangeV2::parse_from_bytes(&e.data).map_err(|err| RaftError::Encode(err.to_string()))?;
                    let outcome = self.node.apply_conf_change(&cc);
                    self.conf_changed(e.index, e.term, outcome, None).await?
                }
            };
            self.applied = e.index;
            self.applied_term = e.term;
            outcomes.push((e.index, e.term, result));
        }
        if !outcomes.is_empty() {
            self.publish_status();
        }
        for (index, term, result) in outcomes {
            self.resolve(index, term, result);
        }
        Ok(())
    }

    /// Records the outcome of an applied configuration change (a refused change is
    /// deterministic: every replica refuses it and keeps its configuration).
    async fn conf_changed(
        &mut self,
        index: u64,
        term: u64,
        outcome: raft::Result<ConfState>,
        peer: Option<(u64, String)>,
    ) -> Result<ApplyResult, RaftError> {
        match outcome {
            Ok(cs) => {
                if let Some((id, addr)) = peer.filter(|(id, addr)| !addr.is_empty() && *id != self.cfg.id) {
                    self.transport.set_peer(id, &addr);
                }
                self.store.set_conf_state(cs.clone());
                self.conf = cs;
                self.publish_status();
            }
            Err(e) => tracing::warn!(error = %e, "configuration change refused"),
        }
        Ok(self.sm.apply(index, term, None, &self.conf).await?)
    }

    /// Answers the proposer of entry (index, term); proposals overwritten by another term lost.
    fn resolve(&mut self, index: u64, term: u64, result: ApplyResult) {
        let stale: Vec<u64> = self.proposals.range(..index).map(|(i, _)| *i).collect();
        for i in stale {
            if let Some(p) = self.proposals.remove(&i) {
                let _ = p.reply.send(Err(RaftError::Dropped));
            }
        }
        if let Some(p) = self.proposals.remove(&index) {
            let _ = p.reply.send(if p.term == term { Ok(result) } else { Err(RaftError::Dropped) });
            return;
        }
        if let Some(p) = self.changes.remove(&index) {
            let _ = p.reply.send(if p.term == term { Ok(()) } else { Err(RaftError::Dropped) });
        }
        let stale: Vec<u64> = self.changes.range(..index).map(|(i, _)| *i).collect();
        for i in stale {
            if let Some(p) = self.changes.remove(&i) {
                let _ = p.reply.send(Err(RaftError::Dropped));
            }
        }
    }

    /// Takes a snapshot (and compacts the log) every `snapshot_every` applied entries, or when
    /// raft needs one for a lagging follower.
    async fn maybe_snapshot(&mut self) -> Result<(), RaftError> {
        let slot = self.store.snapshot_slot();
        let wanted = slot.lock().map(|s| s.wanted).unwrap_or(false);
        let due = self.applied >= self.last_snapshot + self.cfg.snapshot_every;
        if !(wanted || due) || self.applied == 0 {
            return Ok(());
        }
        let name = format!("snapshot-{}.db", self.applied);
        let path = self.cfg.dir.join(&name);
        self.sm.snapshot_to(&path).await?;
        let bytes =
            std::fs::read(&path).map_err(|e| RaftError::Store(StoreError::Io { path: path.display().to_string(), source: e }))?;
        let sum = {
            use sha2::Digest;
            format!("{:x}", sha2::Sha256::digest(&bytes))
        };
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = self.applied;
        snap.mut_metadata().term = self.applied_term;
        snap.mut_metadata().set_conf_state(self.conf.clone());
        snap.data = serde_json::to_vec(&SnapshotData { file: name.clone(), size: bytes.len() as u64, sha256: sum })
            .map_err(|e| RaftError::Encode(e.to_string()))?
            .into();
        if let Ok(mut s) = slot.lock() {
            s.ready = Some(snap);
            s.wanted = false;
        }
        if due {
            self.store.compact(self.applied, &self.conf).await?;
            self.last_snapshot = self.applied;
        }
        // Keep only the newest snapshot file.
        if let Ok(dir) = std::fs::read_dir(&self.cfg.dir) {
            for f in dir.flatten() {
                let n = f.file_name().to_string_lossy().into_owned();
                if n.starts_with("snapshot-") && n != name {
                    let _ = std::fs::remove_file(f.path());
                }
            }
        }
        Ok(())
    }

    fn publish_status(&self) {
        let r = &self.node.raft;
        let cs = &self.conf;
        let st = RaftStatus {
            id: self.cfg.id,
            leader: r.leader_id,
            term: r.term,
            is_leader: r.state == StateRole::Leader,
            applied: self.applied,
            commit: r.raft_log.committed,
            last_index: r.raft_log.last_index(),
            last_term: r.raft_log.last_term(),
            voters: cs.voters.clone(),
            learners: cs.learners.clone(),
            commit_in_term: r.state == StateRole::Leader && r.commit_to_current_term(),
        };
        self.status.send_if_modified(|old| {
            if *old != st {
                *old = st;
                true
            } else {
                false
            }
        });
    }
}

/// What a snapshot's raft data carries: the file to fetch and how to check it.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct SnapshotData {
    pub file: String,
    pub size: u64,
    pub sha256: String,
}
