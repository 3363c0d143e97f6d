//! Forming and growing a cluster: bootstrap (the first member), join (the joiner's side),
//! accept (the leader admitting a joiner), role assignment and promotion, and resuming the
//! cluster machinery when a member restarts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use super::db::ClusterDb;
use super::transport::HttpTransport;
use super::{ROLE_SPARE, ROLE_STANDBY, ROLE_VOTER};
use crate::api::{AcceptRequest, AcceptResponse, ClusterMember, ClusterPut, RaftMember};
use crate::client::Connection;
use crate::daemon::config::{self, effective_i64};
use crate::daemon::{Daemon, Error, Result};
use crate::raft::{Membership, RaftConfig, RaftError, RaftHandle};
use crate::store::global::{self, certificates as store_certs};
use crate::store::local::RaftNode;
use crate::store::{Batch, Stmt, Value};
use crate::tls::{self, CertKind, KeyPairPem, ServerPin};
use crate::util::time;

/// The running cluster machinery of a member.
pub struct Runtime {
    /// This member's raft id (its `nodes.id`).
    pub id: u64,
    /// The local replica; None on a spare, which holds no copy of the database.
    pub raft: Option<RaftHandle>,
    pub transport: Arc<HttpTransport>,
    pub cluster_fingerprint: String,
}

impl Runtime {
    pub async fn stop(&self) {
        if let Some(r) = &self.raft {
            r.stop().await;
            r.state_machine.close().await;
        }
    }

    pub fn is_leader(&self) -> bool {
        self.raft.as_ref().is_some_and(|r| r.status().is_leader)
    }
}

/// The IP of a `host:port` address, when the host is a literal IP.
pub fn host_ip(address: &str) -> Option<std::net::IpAddr> {
    let (host, _) = address.rsplit_once(':')?;
    host.trim_matches(['[', ']']).parse().ok()
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

fn raft_error(e: RaftError) -> Error {
    match e {
        RaftError::NotLeader { .. } | RaftError::Dropped | RaftError::Stopped => {
            Error::Unavailable(super::db::no_quorum().to_string())
        }
        other => Error::Internal(other.to_string()),
    }
}

/// The member's cluster address: `cluster.https_address`, else a non-wildcard
/// `core.https_address`.
fn cluster_address(member: &BTreeMap<String, String>) -> Result<String> {
    if let Some(a) = member.get("cluster.https_address").filter(|a| !a.is_empty()) {
        return config::parse_address(a, 8443).map_err(Error::BadRequest);
    }
    let core = member.get("core.https_address").cloned().unwrap_or_default();
    if config::is_wildcard(&core) {
        return Err(Error::BadRequest(format!(
            "Cannot use wildcard core.https_address \"{core}\" for cluster.https_address. Please specify a new cluster.https_address or core.https_address"
        )));
    }
    config::parse_address(&core, 8443).map_err(Error::BadRequest)
}

/// Starts the raft node (for replicas), its transport, and points the global database at the
/// cluster.
async fn start_runtime(d: &Arc<Daemon>, id: u64, members: &[RaftNode], bootstrap: bool) -> Result<Arc<Runtime>> {
    let cluster = tls::load_or_generate(&d.paths.dir, "cluster", CertKind::Server).map_err(internal)?;
    let cluster_fingerprint = tls::fingerprint_pem(&cluster.cert).map_err(internal)?;
    let own_address = members.iter().find(|m| m.id == id).map(|m| m.address.clone()).unwrap_or_default();
    let transport =
        HttpTransport::new(cluster_fingerprint.clone(), d.server_cert.clone(), d.paths.global_dir(), host_ip(&own_address));
    for m in members.iter().filter(|m| m.id != id && m.role != ROLE_SPARE) {
        raft::Transport::set_peer(&*transport, m.id, &m.address);
    }
    let own_role = members.iter().find(|m| m.id == id).map(|m| m.role).unwrap_or(ROLE_VOTER);
    d.global.close().await;
    let handle = if own_role == ROLE_SPARE {
        None
    } else {
        let mut cfg = RaftConfig::new(id, d.paths.global_dir());
        if let Some(n) = std::env::var("RXD_RAFT_SNAPSHOT_EVERY").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0) {
            cfg.snapshot_every = n;
        }
        let h = crate::raft::start(cfg, transport.clone(), bootstrap).await.map_err(|e| Error::Internal(e.to_string()))?;
        transport.attach(h.clone());
        Some(h)
    };
    let db = Arc::new(ClusterDb {
        raft: handle.clone(),
        transport: transport.clone(),
        cluster_fingerprint: cluster_fingerprint.clone(),
        identity: d.server_cert.clone(),
    });
    d.global.replicate(db);
    if let Some(h) = &handle {
        spawn_raft_nodes_mirror(d.clone(), h.clone(), transport.clone());
    }
    let rt = Arc::new(Runtime { id, raft: handle, transport, cluster_fingerprint });
    d.set_cluster_runtime(Some(rt.clone()));
    Ok(rt)
}

use crate::raft;

/// Keeps the local `raft_nodes` table in step with the applied raft configuration.
fn spawn_raft_nodes_mirror(d: Arc<Daemon>, raft: RaftHandle, transport: Arc<HttpTransport>) {
    let mut watch = raft.watch();
    tokio::spawn(async move {
        let mut last: (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
        loop {
            let st = watch.borrow_and_update().clone();
            let conf = (st.voters.clone(), st.learners.clone());
            if conf != last && !st.voters.is_empty() {
                let current = d.local.raft_nodes().await.unwrap_or_default();
                let addresses = transport.addresses();
                let own = d.local.config().await.ok().and_then(|c| cluster_address(&c).ok()).unwrap_or_default();
                let mut nodes = Vec::new();
                for (ids, role) in [(&st.voters, ROLE_VOTER), (&st.learners, ROLE_STANDBY)] {
                    for id in ids {
                        let prev = current.iter().find(|n| n.id == *id);
                        let address = if *id == st.id {
                            own.clone()
                        } else {
                            addresses.get(id).cloned().or_else(|| prev.map(|p| p.address.clone())).unwrap_or_default()
                        };
                        let name = prev.map(|p| p.name.clone()).unwrap_or_default();
                        nodes.push(RaftNode { id: *id, address, role, name });
                    }
                }
                nodes.sort_by_key(|n| n.id);
                if d.local.replace_raft_nodes(&nodes).await.is_ok() {
                    last = conf;
                }
            }
            if watch.changed().await.is_err() {
                return;
            }
        }
    });
}

/// At daemon start: a clustered member brings its raft node back up.
pub async fn resume(d: &Arc<Daemon>) -> Result<()> {
    let nodes = d.local.raft_nodes().await?;
    if nodes.is_empty() {
        return Ok(());
    }
    let member = d.local.config().await?;
    let address = cluster_address(&member)?;
    let own = nodes.iter().find(|n| n.address == address).ok_or_else(|| {
        Error::Internal(format!("this member's address {address} is not in its raft configuration (see `lxd cluster show`)"))
    })?;
    let name = own.name.clone();
    start_runtime(d, own.id, &nodes, false).await?;
    if !name.is_empty() {
        d.events.set_location(&name);
    }
    Ok(())
}

/// Validates `PUT /1.0/cluster` synchronously and decides bootstrap or join.
pub enum Plan {
    Bootstrap { name: String, address: String },
    Join { req: ClusterPut },
}

pub async fn plan(d: &Daemon, req: ClusterPut) -> Result<Plan> {
    if !req.enabled {
        return Err(Error::BadRequest("Disabling clustering is done by removing the member from its cluster".into()));
    }
    if req.server_name.is_empty() {
        return Err(Error::BadRequest("ServerName is required when enabling clustering".into()));
    }
    if req.server_name.starts_with('@') {
        return Err(Error::BadRequest("ServerName may not start with \"@\"".into()));
    }
    if !d.local.raft_nodes().await?.is_empty() {
        return Err(Error::BadRequest("This server is already clustered".into()));
    }
    if req.cluster_address.is_empty() {
        let member = d.local.config().await?;
        let address = cluster_address(&member)?;
        return Ok(Plan::Bootstrap { name: req.server_name, address });
    }
    if req.cluster_certificate.is_empty() {
        return Err(Error::BadRequest("No target cluster member certificate provided".into()));
    }
    if req.server_address.is_empty() {
        return Err(Error::BadRequest("No server address provided for this member".into()));
    }
    tls::cert_der(&req.cluster_certificate).map_err(|e| Error::BadRequest(format!("Invalid cluster certificate: {e}")))?;
    config::parse_address(&req.server_address, 8443).map_err(Error::BadRequest)?;
    Ok(Plan::Join { req })
}

/// Makes sure this member listens on `address` and records it as its cluster address.
async fn listen_on(d: &Daemon, address: &str) -> Result<()> {
    let member = d.local.config().await?;
    let mut changes = serde_json::Map::new();
    if member.get("core.https_address").is_none_or(|a| a.is_empty()) {
        changes.insert("core.https_address".into(), address.into());
    }
    if member.get("cluster.https_address").map(String::as_str) != Some(address) {
        changes.insert("cluster.https_address".into(), address.into());
    }
    if !changes.is_empty() {
        d.update_config(&changes, false).await?;
    }
    Ok(())
}

/// The first member: its standalone data becomes the cluster's.
pub async fn bootstrap(d: Arc<Daemon>, name: String, address: String) -> Result<()> {
    let _guard = d.membership_lock.lock().await;
    if d.paths.cluster_cert().exists() {
        return Err(Error::Internal("Inconsistent state: found leftover cluster certificate".into()));
    }
    listen_on(&d, &address).await?;
    let cluster = tls::generate(CertKind::Server).map_err(internal)?;
    tls::write_pair(&d.paths.dir, "cluster", &cluster).map_err(internal)?;
    let server_fp = tls::fingerprint_pem(&d.server_cert.cert).map_err(internal)?;
    let mut b = Batch::new();
    b.push(
        "UPDATE nodes SET name = ?, address = ?, heartbeat = ? WHERE id = 1",
        vec![(&name).into(), (&address).into(), time::rfc3339(time::now_nanos()).into()],
    );
    b.push("DELETE FROM certificates WHERE fingerprint = ?", vec![(&server_fp).into()]);
    store_certs::insert(
        &mut b,
        &store_certs::Certificate {
            id: 0,
            fingerprint: server_fp,
            kind: store_certs::TYPE_SERVER,
            name: name.clone(),
            certificate: d.server_cert.cert.clone(),
            restricted: false,
            projects: vec![],
        },
    );
    d.global.apply(&b).await?;
    let nodes = vec![RaftNode { id: 1, address: address.clone(), role: ROLE_VOTER, name: name.clone() }];
    d.local.replace_raft_nodes(&nodes).await?;
    let rt = start_runtime(&d, 1, &nodes, true).await?;
    wait_until(Duration::from_secs(20), || rt.is_leader())
        .await
        .map_err(|_| Error::Internal("RAFT node did not self-elect within 20s".into()))?;
    d.set_identity(cluster).map_err(internal)?;
    d.refresh_trust().await?;
    d.events.set_location(&name);
    d.events.lifecycle("default", "cluster-enabled", format!("/1.0/cluster/members/{name}"), None);
    Ok(())
}

async fn wait_until(limit: Duration, cond: impl Fn() -> bool) -> std::result::Result<(), ()> {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        if tokio::time::Instant::now() >= deadline {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The joiner's side: trust, admission by the leader, the cluster certificate, then an empty
/// replica that receives the database as a snapshot.
pub async fn join(d: Arc<Daemon>, req: ClusterPut) -> Result<()> {
    let _guard = d.membership_lock.lock().await;
    let address = config::parse_address(&req.server_address, 8443).map_err(Error::BadRequest)?;
    let target = config::parse_address(&req.cluster_address, 8443).map_err(Error::BadRequest)?;
    let cluster_fp = tls::fingerprint_pem(&req.cluster_certificate).map_err(|e| Error::BadRequest(e.to_string()))?;
    listen_on(&d, &address).await?;

    // Trust: present our server certificate with the trust password (or a join token).
    if !req.cluster_password.is_empty() {
        let conn = Connection::https(&target, ServerPin::Fingerprint(cluster_fp.clone()), None)
            .map_err(|e| Error::BadRequest(format!("Failed to setup cluster trust: {e}")))?
            .bound_to(host_ip(&address));
        let der = tls::cert_der(&d.server_cert.cert).map_err(internal)?;
        let body = serde_json::json!({
            "type": "server", "name": req.server_name,
            "certificate": base64::engine::general_purpose::STANDARD.encode(der.as_ref()),
            "password": req.cluster_password,
        });
        match conn.request("POST", "/1.0/certificates", Some(&body), None).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("already in trust store") => {}
            Err(e) => return Err(Error::Forbidden(format!("Failed to setup cluster trust: {e}"))),
        }
    }

    let conn = Connection::https(&target, ServerPin::Fingerprint(cluster_fp.clone()), Some(&d.server_cert))
        .map_err(internal)?
        .bound_to(host_ip(&address));
    let accept = AcceptRequest {
        name: req.server_name.clone(),
        address: address.clone(),
        schema: global::schema_version(),
        api: crate::api::extensions::API_EXTENSIONS.len() as i64,
        architecture: crate::daemon::architecture_id(),
    };
    let reply = conn
        .request("POST", "/internal/cluster/accept", Some(&serde_json::to_value(&accept).map_err(internal)?), None)
        .await
        .map_err(|e| Error::BadRequest(format!("Failed request to add member: {e}")))?;
    let accepted: AcceptResponse = serde_json::from_value(reply.envelope.metadata).map_err(internal)?;
    let own = accepted
        .raft_nodes
        .iter()
        .find(|n| n.address == address)
        .cloned()
        .ok_or_else(|| Error::Internal("the leader's answer does not include this member".into()))?;

    let cluster = KeyPairPem { cert: req.cluster_certificate.clone(), key: accepted.private_key.clone() };
    tls::write_pair(&d.paths.dir, "cluster", &cluster).map_err(internal)?;
    d.set_identity(cluster).map_err(internal)?;
    // Trust the members' certificates now: our own copy of the trust store arrives only with
    // the database snapshot, which they must be able to send us.
    let certs: Vec<crate::api::Certificate> = conn.get_json("/1.0/certificates?recursion=1").await.map_err(internal)?;
    d.trust_members(certs.iter().filter(|c| c.kind == "server").map(|c| (c.fingerprint.clone(), c.name.clone())));

    // This member's own global data is replaced by the cluster's.
    d.global.close().await;
    wipe_global(&d)?;
    let nodes: Vec<RaftNode> = accepted
        .raft_nodes
        .iter()
        .map(|n| RaftNode { id: n.id, address: n.address.clone(), role: n.role, name: n.name.clone() })
        .collect();
    d.local.replace_raft_nodes(&nodes).await?;
    let rt = start_runtime(&d, own.id, &nodes, false).await?;
    if let Some(r) = &rt.raft {
        let r = r.clone();
        wait_until(Duration::from_secs(60), || r.status().applied > 1)
            .await
            .map_err(|_| Error::Internal("Timed out waiting for the cluster database to replicate to this member".into()))?;
    }
    d.refresh_trust().await?;
    d.events.set_location(&req.server_name);
    // Ask the leader to give this member the role it was chosen for.
    let _ = conn.request("POST", "/internal/cluster/rebalance", None, None).await;
    d.events.lifecycle("default", "cluster-member-added", format!("/1.0/cluster/members/{}", req.server_name), None);
    Ok(())
}

fn wipe_global(d: &Daemon) -> Result<()> {
    let dir = d.paths.global_dir();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    std::fs::create_dir_all(&dir).map_err(internal)
}

/// The leader's raft handle, or an error telling the caller to retry elsewhere.
fn leader_raft(d: &Daemon) -> Result<(Arc<Runtime>, RaftHandle)> {
    let rt = d.cluster_runtime().ok_or_else(|| Error::BadRequest("This server is not clustered".into()))?;
    let raft = rt.raft.clone().filter(|r| r.status().is_leader).ok_or_else(|| Error::Unavailable("not the leader".into()))?;
    Ok((rt, raft))
}

/// The members of the raft configuration, with roles, addresses and names.
async fn raft_members(d: &Daemon, rt: &Runtime, raft: &RaftHandle) -> Result<Vec<RaftMember>> {
    let st = raft.status();
    let addresses = rt.transport.addresses();
    let names: BTreeMap<u64, (String, String)> =
        global::nodes::list(&d.global).await?.into_iter().map(|n| (n.id as u64, (n.name, n.address))).collect();
    let mut out = Vec::new();
    for (ids, role) in [(&st.voters, ROLE_VOTER), (&st.learners, ROLE_STANDBY)] {
        for id in ids {
            let (name, addr) = names.get(id).cloned().unwrap_or_default();
            let address = addresses.get(id).cloned().unwrap_or(addr);
            out.push(RaftMember { id: *id, address, role, name });
        }
    }
    Ok(out)
}

/// The leader admits a joiner: checks, a `nodes` row, a raft learner slot, and the answer the
/// joiner needs (members, roles, the cluster key).
pub async fn accept(d: &Arc<Daemon>, req: AcceptRequest) -> Result<AcceptResponse> {
    let _guard = d.membership_lock.lock().await;
    let (rt, raft) = leader_raft(d)?;
    if req.name.is_empty() {
        return Err(Error::BadRequest("No name provided".into()));
    }
    let nodes = global::nodes::list(&d.global).await?;
    if nodes.iter().any(|n| n.name == req.name) {
        return Err(Error::BadRequest(format!("The cluster already has a member with name: {}", req.name)));
    }
    if nodes.iter().any(|n| n.address == req.address) {
        return Err(Error::BadRequest(format!("The cluster already has a member with address: {}", req.address)));
    }
    let api = crate::api::extensions::API_EXTENSIONS.len() as i64;
    if nodes.iter().any(|n| n.schema != req.schema) {
        return Err(Error::BadRequest(format!(
            "The joining server version doesn't (expected {} with DB schema {})",
            crate::api::SERVER_VERSION,
            req.schema
        )));
    }
    if nodes.iter().any(|n| n.api_extensions != req.api) || req.api != api {
        return Err(Error::BadRequest(format!(
            "The joining server version doesn't (expected {} with API count {})",
            crate::api::SERVER_VERSION,
            req.api
        )));
    }
    let mut b = Batch::new();
    b.push("INSERT INTO nodes (name, description, address, schema, api_extensions, heartbeat, state, arch) VALUES (?, '', ?, ?, ?, ?, 0, ?)", vec![
        (&req.name).into(),
        (&req.address).into(),
        req.schema.into(),
        req.api.into(),
        time::rfc3339(time::now_nanos()).into(),
        req.architecture.max(1).into(),
    ]);
    d.global.apply(&b).await?;
    let id = d
        .global
        .query(&Stmt::new("SELECT id FROM nodes WHERE address = ?", vec![(&req.address).into()]))
        .await?
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::Internal("the new member's row vanished".into()))? as u64;

    let cluster_cfg = global::config::get_all(&d.global).await?;
    let max_voters = effective_i64(&cluster_cfg, "cluster.max_voters") as usize;
    let max_standby = effective_i64(&cluster_cfg, "cluster.max_standby") as usize;
    let st = raft.status();
    let count = st.voters.len() + st.learners.len();
    let role = if count > 1 && st.voters.len() < max_voters {
        ROLE_VOTER
    } else if st.learners.len() < max_standby {
        ROLE_STANDBY
    } else {
        ROLE_SPARE
    };
    let mut members = raft_members(d, &rt, &raft).await?;
    if role != ROLE_SPARE {
        change_with_retry(&raft, Membership::AddLearner { id, address: req.address.clone() }).await?;
    }
    members.push(RaftMember { id, address: req.address.clone(), role, name: req.name.clone() });
    let cluster = tls::load_or_generate(&d.paths.dir, "cluster", CertKind::Server).map_err(internal)?;
    Ok(AcceptResponse { raft_nodes: members, private_key: cluster.key })
}

async fn change_with_retry(raft: &RaftHandle, change: Membership) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match raft.change(change.clone()).await {
            Ok(()) => return Ok(()),
            Err(RaftError::ChangeInProgress | RaftError::Dropped) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(raft_error(e)),
        }
    }
}

/// The leader promotes stand-bys until the cluster has its voters: one below three replicas,
/// otherwise up to `cluster.max_voters`.
pub async fn rebalance(d: &Arc<Daemon>) -> Result<()> {
    let _guard = d.membership_lock.lock().await;
    let (rt, raft) = leader_raft(d)?;
    let cluster_cfg = global::config::get_all(&d.global).await?;
    let max_voters = effective_i64(&cluster_cfg, "cluster.max_voters") as usize;
    loop {
        let st = raft.status();
        let replicas = st.voters.len() + st.learners.len();
        let wanted = if replicas >= 3 { max_voters.min(replicas) } else { 1 };
        if st.voters.len() >= wanted {
            break;
        }
        let Some(candidate) = st.learners.iter().min().copied() else { break };
        let address = rt.transport.address_of(candidate).unwrap_or_default();
        change_with_retry(&raft, Membership::AddVoter { id: candidate, address }).await?;
    }
    Ok(())
}

/// `GET /1.0/cluster/members` as this member sees them.
pub async fn members(d: &Daemon) -> Result<Vec<ClusterMember>> {
    let rt = d.cluster_runtime().ok_or_else(|| Error::Internal("LXD server isn't part of a cluster".into()))?;
    let nodes = global::nodes::list(&d.global).await?;
    let (voters, learners, leader) = match &rt.raft {
        Some(r) => {
            let st = r.status();
            (st.voters, st.learners, st.leader)
        }
        None => {
            let raft_nodes = d.local.raft_nodes().await?;
            let pick = |role| raft_nodes.iter().filter(|n| n.role == role).map(|n| n.id).collect::<Vec<_>>();
            (pick(ROLE_VOTER), pick(ROLE_STANDBY), 0)
        }
    };
    let mut out = Vec::new();
    for n in nodes.into_iter().filter(|n| n.state != 1) {
        let id = n.id as u64;
        let mut roles = Vec::new();
        if id == leader {
            roles.push("database-leader".to_string());
        }
        if voters.contains(&id) {
            roles.push("database".to_string());
        } else if learners.contains(&id) {
            roles.push("database-standby".to_string());
        }
        out.push(ClusterMember {
            database: !roles.is_empty(),
            roles,
            failure_domain: "default".into(),
            description: n.description,
            config: BTreeMap::new(),
            groups: vec!["default".into()],
            server_name: n.name,
            url: format!("https://{}", n.address),
            status: "Online".into(),
            message: "Fully operational".into(),
            architecture: std::env::consts::ARCH.into(),
        });
    }
    Ok(out)
}
