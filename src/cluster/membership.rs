//! The leader's side of growing a cluster: admitting a joiner (its row, a raft learner slot,
//! the role it is chosen for, and what it needs to start its replica). The joiner's side and
//! everything a join means for pools, trust and images is `services::membership`.

use super::rebalance::{change_with_retry, current_members, leader_raft, probe_new_replica};
use super::runtime::Runtime;
use super::upgrade::{api_count, schema_version};
use super::{Error, ROLE_SPARE, ROLE_STANDBY, ROLE_VOTER, Result};
use crate::api::{AcceptRequest, AcceptResponse, RaftMember};
use crate::config::effective_i64;
use crate::raft::Membership;
use crate::store::Batch;
use crate::store::global::{self, nodes as store_nodes};
use crate::tls::{self, CertKind};
use crate::util::time;

/// On the leader, holding the membership lock: checks the joiner's name, address and versions,
/// records it (pending), gives it a raft learner slot unless it will be a spare, and answers
/// with the member list and the cluster key.
pub async fn admit(rt: &Runtime, req: &AcceptRequest) -> Result<AcceptResponse> {
    let raft = leader_raft(rt)?;
    if req.name.is_empty() {
        return Err(Error::BadRequest("No name provided".into()));
    }
    let nodes = global::nodes::list(&rt.env.global).await?;
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
    rt.env.global.apply(&b).await?;
    let joiner = store_nodes::get_by_address(&rt.env.global, &req.address).await?;
    rt.directory.upsert(super::Peer::from_node(&joiner));
    let id = joiner.id as u64;

    let cluster_cfg = global::config::get_all(&rt.env.global).await?;
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
    let mut members: Vec<RaftMember> = current_members(rt).await?.into_iter().map(|(_, m)| m).collect();
    if role != ROLE_SPARE {
        change_with_retry(&raft, Membership::AddLearner { id, address: req.address.clone() }).await?;
        probe_new_replica(&raft);
    }
    members.push(RaftMember { id, address: req.address.clone(), role, name: req.name.clone() });
    let cluster = tls::load_or_generate(&rt.env.paths.dir, "cluster", CertKind::Server)?;
    Ok(AcceptResponse { raft_nodes: members, private_key: cluster.key })
}
