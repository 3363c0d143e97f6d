//! The running cluster machinery of a member: its raft replica (absent on a spare), the
//! transport to the other members, the database roles the leader last announced, the member
//! directory, the connections kept to other members, and the background tasks (heartbeats,
//! event relay, `raft_nodes` mirror, fault watch). A member's database role can change at run
//! time: [`reconcile_role`] starts or drops the replica to match what the leader assigned.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

use super::db::ClusterDb;
use super::directory::Directory;
use super::transport::HttpTransport;
use super::{Env, Error, ROLE_SPARE, ROLE_STANDBY, ROLE_VOTER, Result};
use crate::api::RaftMember;
use crate::raft::{self, RaftConfig, RaftHandle, Transport as _};
use crate::store::local::RaftNode;
use crate::tls::{self, CertKind};

pub struct Runtime {
    /// This member's raft id (its `nodes.id`).
    pub id: u64,
    pub env: Env,
    /// Serialises membership changes on this member (shared with [`super::Cluster`]).
    pub membership: Arc<tokio::sync::Mutex<()>>,
    raft: RwLock<Option<RaftHandle>>,
    pub transport: Arc<HttpTransport>,
    pub cluster_fingerprint: String,
    /// Every member with its database role, as the leader last announced it.
    members: RwLock<Vec<RaftMember>>,
    /// Every admitted member's address and liveness.
    pub directory: Directory,
    /// Wakes the heartbeat task early (a membership change the others should hear about).
    pub heartbeat_now: Notify,
    /// Signalled when the member list changes (the event relay follows it).
    pub members_changed: Notify,
    /// The leader as the last heartbeat named it (what a spare knows of leadership).
    leader_hint: AtomicU64,
    /// Set while this member runs a newer version than some other member: its API waits.
    pub waiting_for_upgrade: AtomicBool,
    /// Wakes the upgrade gate (another member reported a version change).
    pub upgrade_wake: Notify,
    /// Set while queued address changes (`lxd cluster edit`) wait to be applied: heartbeats
    /// would go to the old addresses.
    pub patch_pending: AtomicBool,
    stopped: AtomicBool,
    /// Connections to the other members, kept between requests.
    pub(super) keep_alive: Arc<crate::client::keepalive::KeepAlive>,
    /// Operations another member started for a request this member forwarded: id → address.
    pub operation_owners: super::forward::OperationOwners,
}

impl Runtime {
    /// The local replica; None on a spare, which holds no copy of the database.
    pub fn raft(&self) -> Option<RaftHandle> {
        self.raft.read().ok()?.clone()
    }

    /// A connection to another member: mutual TLS with this member's certificate, the cluster
    /// certificate pinned, from this member's own address.
    pub fn connect(&self, address: &str) -> Result<crate::client::Connection> {
        let pin = crate::tls::ServerPin::Fingerprint(self.cluster_fingerprint.clone());
        Ok(crate::client::Connection::https(address, pin, Some(&self.env.identity))?
            .bound_to(self.transport.source())
            .kept_in(self.keep_alive.clone()))
    }

    /// The leader's raft id: from the replica, or on a spare from the last heartbeat.
    pub fn leader_id(&self) -> u64 {
        match self.raft() {
            Some(r) => r.status().leader,
            None => self.leader_hint.load(Ordering::SeqCst),
        }
    }

    pub fn set_leader_hint(&self, id: u64) {
        self.leader_hint.store(id, Ordering::SeqCst);
    }

    pub fn is_leader(&self) -> bool {
        self.raft().is_some_and(|r| r.status().is_leader)
    }

    /// The leader's cluster address, when this member knows it.
    pub fn leader_address(&self) -> Option<String> {
        let leader = self.leader_id();
        if leader == 0 {
            return None;
        }
        self.transport.address_of(leader).or_else(|| self.members().into_iter().find(|m| m.id == leader).map(|m| m.address))
    }

    pub fn members(&self) -> Vec<RaftMember> {
        self.members.read().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn set_members(&self, members: Vec<RaftMember>) {
        if let Ok(mut m) = self.members.write() {
            if *m == members {
                return;
            }
            *m = members;
        }
        self.members_changed.notify_waiters();
    }

    /// A member was renamed: the announced list and the directory follow at once.
    pub fn renamed(&self, old: &str, new: &str) {
        let renamed: Vec<RaftMember> = self
            .members()
            .into_iter()
            .map(|mut m| {
                if m.name == old {
                    m.name = new.to_string();
                }
                m
            })
            .collect();
        if renamed.iter().any(|m| m.id == self.id && m.name == new) {
            self.env.events.set_location(new);
        }
        self.set_members(renamed);
        self.directory.rename(old, new);
        self.heartbeat_now.notify_one();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst) || self.env.shutdown.is_requested()
    }

    /// Stops the replica and tells the background tasks to end.
    pub async fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.keep_alive.clear();
        self.heartbeat_now.notify_waiters();
        self.directory.clear();
        let raft = self.raft.write().ok().and_then(|mut r| r.take());
        if let Some(r) = raft {
            r.stop().await;
            r.state_machine.close().await;
        }
    }

    /// Drops this member's replica (it became a spare).
    async fn drop_replica(&self) -> Result<()> {
        let taken = self.raft.write().ok().and_then(|mut slot| slot.take());
        if let Some(r) = taken {
            r.stop().await;
            r.state_machine.close().await;
        }
        wipe_global(&self.env)
    }
}

/// Empties `database/global` (the replica files) so a new replica starts from the leader's
/// snapshot.
pub fn wipe_global(env: &Env) -> Result<()> {
    let dir = env.paths.global_dir();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            // A file that cannot be removed is overwritten by the snapshot install.
            let _ = std::fs::remove_file(e.path());
        }
    }
    std::fs::create_dir_all(&dir).map_err(Error::io("creating", &dir))
}

async fn start_replica(rt: &Arc<Runtime>, bootstrap: bool) -> Result<RaftHandle> {
    let mut cfg = RaftConfig::new(rt.id, rt.env.paths.global_dir());
    if let Some(n) = std::env::var("RXD_RAFT_SNAPSHOT_EVERY").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0) {
        cfg.snapshot_every = n;
    }
    let h = raft::start(cfg, rt.transport.clone(), bootstrap).await?;
    rt.transport.attach(h.clone());
    if let Ok(mut slot) = rt.raft.write() {
        *slot = Some(h.clone());
    }
    spawn_raft_nodes_mirror(rt.clone(), h.clone());
    spawn_fault_watch(rt.env.clone(), h.clone());
    Ok(h)
}

/// Starts the cluster machinery: the replica (unless this member is a spare), the transport,
/// the replicated global database and the background tasks.
pub async fn start(
    env: &Env,
    membership: Arc<tokio::sync::Mutex<()>>,
    id: u64,
    members: &[RaftNode],
    bootstrap: bool,
) -> Result<Arc<Runtime>> {
    let cluster = tls::load_or_generate(&env.paths.dir, "cluster", CertKind::Server)?;
    let cluster_fingerprint = tls::fingerprint_pem(&cluster.cert)?;
    let own_address = members.iter().find(|m| m.id == id).map(|m| m.address.clone()).unwrap_or_default();
    let transport = HttpTransport::new(
        cluster_fingerprint.clone(),
        env.identity.clone(),
        env.paths.global_dir(),
        crate::config::host_ip(&own_address),
    );
    for m in members.iter().filter(|m| m.id != id && m.role != ROLE_SPARE) {
        transport.set_peer(m.id, &m.address);
    }
    let own_role = members.iter().find(|m| m.id == id).map(|m| m.role).unwrap_or(ROLE_VOTER);
    env.global.close().await;
    let rt = Arc::new(Runtime {
        id,
        env: env.clone(),
        membership,
        raft: RwLock::new(None),
        transport,
        cluster_fingerprint,
        members: RwLock::new(
            members
                .iter()
                .map(|m| RaftMember { id: m.id, address: m.address.clone(), role: m.role, name: m.name.clone() })
                .collect(),
        ),
        directory: Directory::default(),
        heartbeat_now: Notify::new(),
        members_changed: Notify::new(),
        leader_hint: AtomicU64::new(0),
        waiting_for_upgrade: AtomicBool::new(false),
        upgrade_wake: Notify::new(),
        patch_pending: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        keep_alive: Arc::new(crate::client::keepalive::KeepAlive::new()),
        operation_owners: Default::default(),
    });
    if own_role != ROLE_SPARE {
        start_replica(&rt, bootstrap).await?;
    }
    env.global.replicate(Arc::new(ClusterDb { rt: rt.clone() }));
    super::heartbeat::spawn(rt.clone());
    super::relay::spawn(rt.clone());
    Ok(rt)
}

/// Brings this member's database role in line with `members` (from the leader): a member
/// listed as voter or stand-by runs a replica, a spare drops its own. Also records the list in
/// `raft_nodes` and points the transport at the replicas.
pub async fn reconcile_role(rt: &Arc<Runtime>, members: &[RaftMember]) -> Result<()> {
    let Some(own) = members.iter().find(|m| m.id == rt.id) else {
        return Err(Error::BadRequest("This member is not included in the given list of database nodes".into()));
    };
    for m in members.iter().filter(|m| m.id != rt.id && m.role != ROLE_SPARE) {
        rt.transport.set_peer(m.id, &m.address);
    }
    rt.transport.retain(|id| members.iter().any(|m| m.id == id && m.role != ROLE_SPARE));
    let wants_replica = own.role != ROLE_SPARE;
    match (wants_replica, rt.raft()) {
        (true, None) => {
            tracing::info!(role = own.role, "this member becomes a database replica");
            wipe_global(&rt.env)?;
            start_replica(rt, false).await?;
        }
        (false, Some(r)) if !r.status().is_leader => {
            tracing::info!("this member becomes a spare: dropping its database replica");
            rt.drop_replica().await?;
        }
        _ => {}
    }
    rt.set_members(members.to_vec());
    rt.env.local.replace_raft_nodes(&raft_nodes(members)).await?;
    Ok(())
}

/// The `raft_nodes` rows for a member list.
pub fn raft_nodes(members: &[RaftMember]) -> Vec<RaftNode> {
    members.iter().map(|m| RaftNode { id: m.id, address: m.address.clone(), role: m.role, name: m.name.clone() }).collect()
}

/// A replica that stops on a local fault (a disk error, a damaged file) takes the daemon down
/// with a clear error rather than leaving a member that looks alive but cannot serve.
fn spawn_fault_watch(env: Env, raft: RaftHandle) {
    let mut watch = raft.watch();
    tokio::spawn(async move {
        while watch.changed().await.is_ok() {}
        if let Some(fault) = raft.fault() {
            env.shutdown.fail(&format!("the database replica stopped: {fault}"));
        }
    });
}

/// Keeps the local `raft_nodes` table in step with the applied raft configuration (replicas
/// from raft, spares from the last member list).
fn spawn_raft_nodes_mirror(rt: Arc<Runtime>, raft: RaftHandle) {
    let mut watch = raft.watch();
    tokio::spawn(async move {
        let mut last: (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
        loop {
            let st = watch.borrow_and_update().clone();
            let conf = (st.voters.clone(), st.learners.clone());
            if conf != last && !st.voters.is_empty() {
                let current = rt.env.local.raft_nodes().await.unwrap_or_default();
                let known = rt.members();
                let addresses = rt.transport.addresses();
                let own =
                    rt.env.local.config().await.ok().and_then(|c| crate::config::cluster_address(&c).ok()).unwrap_or_default();
                let mut nodes = Vec::new();
                for (ids, role) in [(&st.voters, ROLE_VOTER), (&st.learners, ROLE_STANDBY)] {
                    for id in ids {
                        let prev_name = current
                            .iter()
                            .find(|n| n.id == *id)
                            .map(|p| p.name.clone())
                            .or_else(|| known.iter().find(|m| m.id == *id).map(|m| m.name.clone()));
                        let address = if *id == st.id {
                            own.clone()
                        } else {
                            addresses
                                .get(id)
                                .cloned()
                                .or_else(|| current.iter().find(|n| n.id == *id).map(|p| p.address.clone()))
                                .unwrap_or_default()
                        };
                        nodes.push(RaftNode { id: *id, address, role, name: prev_name.unwrap_or_default() });
                    }
                }
                for m in known.iter().filter(|m| !st.voters.contains(&m.id) && !st.learners.contains(&m.id)) {
                    nodes.push(RaftNode { id: m.id, address: m.address.clone(), role: ROLE_SPARE, name: m.name.clone() });
                }
                nodes.sort_by_key(|n| n.id);
                if rt.env.local.replace_raft_nodes(&nodes).await.is_ok() {
                    last = conf;
                }
            }
            if watch.changed().await.is_err() {
                return;
            }
        }
    });
}
