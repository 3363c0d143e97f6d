//! Forming and growing a cluster: bootstrap (the first member), join (the joiner's side) and
//! accept (the leader admitting a joiner).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use super::rebalance::{change_with_retry, current_members, leader_raft};
use super::runtime::{self, cluster_address, host_ip, wipe_global};
use super::upgrade::{api_count, schema_version};
use super::{ROLE_SPARE, ROLE_STANDBY, ROLE_VOTER};
use crate::api::{AcceptRequest, AcceptResponse, ClusterPut, RaftMember};
use crate::client::Connection;
use crate::daemon::config::{self, effective_i64};
use crate::daemon::{Daemon, Error, Result};
use crate::raft::{Membership, RaftError};
use crate::store::global::{self, certificates as store_certs, nodes as store_nodes};
use crate::store::local::RaftNode;
use crate::store::{Batch, Stmt, Value};
use crate::tls::{self, CertKind, KeyPairPem, ServerPin};
use crate::util::time;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

pub(crate) fn raft_error(e: RaftError) -> Error {
    match e {
        RaftError::NotLeader { .. } | RaftError::Dropped | RaftError::Stopped => {
            Error::Unavailable(super::db::no_quorum().to_string())
        }
        other => Error::Internal(other.to_string()),
    }
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
    let rt = runtime::start(&d, 1, &nodes, true).await?;
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
    let created_pools = super::pools::create_missing(&d, &conn, &req.member_config).await?;
    let own_pools = super::pools::local_pools(&d).await?;
    let accept = AcceptRequest {
        name: req.server_name.clone(),
        address: address.clone(),
        schema: schema_version(),
        api: api_count(),
        storage_pools: own_pools.clone(),
        architecture: crate::daemon::architecture_id(),
    };
    let reply = match conn
        .request("POST", "/internal/cluster/accept", Some(&serde_json::to_value(&accept).map_err(internal)?), None)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            super::pools::undo_created(&d, &created_pools).await;
            return Err(Error::BadRequest(format!("Failed request to add member: {e}")));
        }
    };
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
    let rt = runtime::start(&d, own.id, &nodes, false).await?;
    if let Some(r) = rt.raft() {
        wait_until(Duration::from_secs(60), || r.status().applied > 1)
            .await
            .map_err(|_| Error::Internal("Timed out waiting for the cluster database to replicate to this member".into()))?;
    }
    let mut b = Batch::new();
    store_nodes::mark_created(&mut b, own.id as i64, &time::rfc3339(time::now_nanos()));
    d.global.apply(&b).await?;
    super::pools::adopt(&d, own.id as i64, &own_pools).await?;
    d.refresh_trust().await?;
    d.events.set_location(&req.server_name);
    // Ask the leader to give this member the role it was chosen for.
    let _ = conn.request("POST", "/internal/cluster/rebalance", None, None).await;
    d.events.lifecycle("default", "cluster-member-added", format!("/1.0/cluster/members/{}", req.server_name), None);
    // Heartbeats must first mark this member online for the others; then take image copies.
    let dd = d.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        super::images::sync_after_join(&dd).await;
    });
    Ok(())
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
    if nodes.iter().any(|n| n.schema != req.schema) || req.schema != schema_version() {
        return Err(Error::BadRequest(format!(
            "The joining server version doesn't (expected {} with DB schema {})",
            crate::api::SERVER_VERSION,
            req.schema
        )));
    }
    if nodes.iter().any(|n| n.api_extensions != req.api) || req.api != api_count() {
        return Err(Error::BadRequest(format!(
            "The joining server version doesn't (expected {} with API count {})",
            crate::api::SERVER_VERSION,
            req.api
        )));
    }
    super::pools::check_match(d, &req.storage_pools).await?;
    let mut b = Batch::new();
    store_nodes::insert_pending(
        &mut b,
        &req.name,
        &req.address,
        req.schema,
        req.api,
        req.architecture,
        &time::rfc3339(time::now_nanos()),
    );
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
    let mut members: Vec<RaftMember> = current_members(d, &rt).await?.into_iter().map(|(_, m)| m).collect();
    if role != ROLE_SPARE {
        change_with_retry(&raft, Membership::AddLearner { id, address: req.address.clone() }).await?;
        super::rebalance::probe_new_replica(&raft);
    }
    members.push(RaftMember { id, address: req.address.clone(), role, name: req.name.clone() });
    let cluster = tls::load_or_generate(&d.paths.dir, "cluster", CertKind::Server).map_err(internal)?;
    Ok(AcceptResponse { raft_nodes: members, private_key: cluster.key })
}
