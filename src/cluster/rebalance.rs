//! The leader's side of database roles: who holds which role now, applying the planner's next
//! change (raft configuration plus `/internal/cluster/assign` to the member concerned), the
//! rebalance loop, and handing a role over when a member shuts down cleanly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::roles::{self, Change, Seat};
use super::runtime::Runtime;
use super::{Error, ROLE_SPARE, ROLE_STANDBY, ROLE_VOTER, Result};
use crate::api::{AssignRequest, RaftMember};
use crate::config::effective_i64;
use crate::raft::{Membership, RaftError, RaftHandle};
use crate::store::global::{self, nodes::Node};
use crate::util::time;

/// This member's raft handle while it leads, or an error telling the caller to retry elsewhere.
pub fn leader_raft(rt: &Runtime) -> Result<RaftHandle> {
    rt.raft().filter(|r| r.status().is_leader).ok_or_else(|| Error::Unavailable("not the leader".into()))
}

/// After adding a replica, heartbeat it often for a few seconds: it is usually still starting,
/// and raft probes it again only when it answers a heartbeat.
pub fn probe_new_replica(raft: &RaftHandle) {
    let raft = raft.clone();
    tokio::spawn(async move {
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            raft.ping();
        }
    });
}

pub async fn change_with_retry(raft: &RaftHandle, change: Membership) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match raft.change(change.clone()).await {
            Ok(()) => return Ok(()),
            Err(RaftError::ChangeInProgress | RaftError::Dropped) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Every admitted member with its database role in the leader's raft configuration.
pub async fn current_members(rt: &Runtime) -> Result<Vec<(Node, RaftMember)>> {
    let st = rt.raft().map(|r| r.status()).unwrap_or_default();
    let nodes = global::nodes::list(&rt.env.global).await?;
    Ok(nodes
        .into_iter()
        .filter(|n| n.state != global::nodes::STATE_PENDING)
        .map(|n| {
            let id = n.id as u64;
            let role = if st.voters.contains(&id) {
                ROLE_VOTER
            } else if st.learners.contains(&id) {
                ROLE_STANDBY
            } else {
                ROLE_SPARE
            };
            let m = RaftMember { id, address: n.address.clone(), role, name: n.name.clone() };
            (n, m)
        })
        .collect())
}

/// `cluster.offline_threshold` as a duration.
pub fn offline_threshold(cluster_cfg: &BTreeMap<String, String>) -> Duration {
    Duration::from_secs(effective_i64(cluster_cfg, "cluster.offline_threshold").max(1) as u64)
}

/// Whether the member's last recorded heartbeat is within the threshold.
pub fn heartbeat_fresh(node: &Node, threshold: Duration, now_nanos: i64) -> bool {
    time::parse_rfc3339(&node.heartbeat).is_some_and(|hb| now_nanos - hb <= threshold.as_nanos() as i64)
}

async fn seats(rt: &Runtime) -> Result<(Vec<Seat>, Vec<(Node, RaftMember)>, usize, usize)> {
    let cfg = global::config::get_all(&rt.env.global).await?;
    let threshold = offline_threshold(&cfg);
    let members = current_members(rt).await?;
    let now = time::now_nanos();
    let mut domains: Vec<&str> = members.iter().map(|(n, _)| n.failure_domain.as_str()).collect();
    domains.sort();
    domains.dedup();
    // Online: a recent heartbeat and, right now, a listener that accepts connections (a member
    // that just shut down still has a fresh heartbeat).
    let online = futures_util::future::join_all(
        members
            .iter()
            .map(|(n, m)| async move { m.id == rt.id || (heartbeat_fresh(n, threshold, now) && reachable(&n.address).await) }),
    )
    .await;
    let seats = members
        .iter()
        .zip(online)
        .map(|((n, m), online)| Seat {
            id: m.id,
            role: m.role,
            online,
            domain: domains.iter().position(|d| *d == n.failure_domain).unwrap_or(0) as i64,
        })
        .collect();
    let max_voters = effective_i64(&cfg, "cluster.max_voters") as usize;
    let max_standby = effective_i64(&cfg, "cluster.max_standby") as usize;
    Ok((seats, members, max_voters, max_standby))
}

/// Whether something accepts TCP connections at `address` within a second.
async fn reachable(address: &str) -> bool {
    matches!(tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(address)).await, Ok(Ok(_)))
}

/// Tells a member the role it now has (and, for a new replica, waits until it caught up).
async fn assign(rt: &Runtime, address: &str, raft_nodes: Vec<RaftMember>, catch_up_to: u64) -> Result<()> {
    let conn = rt.connect(address)?;
    let body = serde_json::to_value(AssignRequest { raft_nodes, catch_up_to })
        .map_err(|e| Error::Internal(format!("encoding a role assignment: {e}")))?;
    match tokio::time::timeout(Duration::from_secs(30), conn.request("POST", "/internal/cluster/assign", Some(&body), None)).await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::Internal(format!("Failed to assign a role to {address}: {e}"))),
        Err(_) => Err(Error::Internal(format!("Timed out assigning a role to {address}"))),
    }
}

/// Applies one role change.
async fn apply(rt: &Runtime, raft: &RaftHandle, change: Change, members: &[(Node, RaftMember)]) -> Result<()> {
    let Some((node, current)) = members.iter().find(|(_, m)| m.id == change.id) else { return Ok(()) };
    let address = node.address.clone();
    let listed = |role: i64| -> Vec<RaftMember> {
        members.iter().map(|(_, m)| if m.id == change.id { RaftMember { role, ..m.clone() } } else { m.clone() }).collect()
    };
    tracing::info!(member = %node.name, from = current.role, to = change.role, "changing database role");
    match (current.role, change.role) {
        (ROLE_STANDBY, ROLE_VOTER) => change_with_retry(raft, Membership::AddVoter { id: change.id, address }).await?,
        // The replica stays; only its vote goes.
        (ROLE_VOTER, ROLE_STANDBY) => change_with_retry(raft, Membership::AddLearner { id: change.id, address }).await?,
        (ROLE_SPARE, ROLE_VOTER | ROLE_STANDBY) => {
            change_with_retry(raft, Membership::AddLearner { id: change.id, address: address.clone() }).await?;
            probe_new_replica(raft);
            if let Err(e) = assign(rt, &address, listed(ROLE_STANDBY), raft.status().commit).await {
                let _ = change_with_retry(raft, Membership::Remove { id: change.id }).await;
                return Err(e);
            }
            if change.role == ROLE_VOTER {
                change_with_retry(raft, Membership::AddVoter { id: change.id, address }).await?;
            }
        }
        (ROLE_VOTER | ROLE_STANDBY, ROLE_SPARE) => {
            change_with_retry(raft, Membership::Remove { id: change.id }).await?;
            // Best effort: an unreachable member learns it from the next heartbeat it hears.
            let _ = tokio::time::timeout(Duration::from_secs(3), assign(rt, &address, listed(ROLE_SPARE), 0)).await;
        }
        _ => {}
    }
    Ok(())
}

/// Moves roles until the layout matches `cluster.max_voters` and `cluster.max_standby`.
/// Leader only; the caller holds the membership lock.
pub async fn rebalance_locked(rt: &Arc<Runtime>) -> Result<()> {
    let raft = leader_raft(rt)?;
    let mut changed = false;
    for _ in 0..16 {
        let (seats, members, max_voters, max_standby) = seats(rt).await?;
        let Some(change) = roles::adjust(&seats, rt.id, max_voters, max_standby) else { break };
        apply(rt, &raft, change, &members).await?;
        changed = true;
    }
    if changed {
        rt.heartbeat_now.notify_one();
    }
    Ok(())
}

/// An explicit rebalance (after a join, a removal or a limit change); the members hear the
/// new layout at once.
pub async fn rebalance(rt: &Arc<Runtime>) -> Result<()> {
    let _guard = rt.membership.lock().await;
    let result = rebalance_locked(rt).await;
    rt.heartbeat_now.notify_one();
    result
}

/// `DELETE /internal/cluster/raft-node/<address>` on the leader: takes a leftover member out of
/// the raft configuration (one removed uncleanly), then rebalances.
pub async fn remove_raft_node(rt: &Arc<Runtime>, address: &str) -> Result<()> {
    let address = crate::config::parse_address(address, crate::config::address::DEFAULT_PORT)?;
    let _guard = rt.membership.lock().await;
    let raft = leader_raft(rt).map_err(|_| Error::Internal("Failed to get current raft nodes: Not leader".into()))?;
    let st = raft.status();
    let known = rt.env.local.raft_nodes().await?;
    let id = st
        .voters
        .iter()
        .chain(&st.learners)
        .copied()
        .find(|id| {
            rt.transport.address_of(*id).as_deref() == Some(address.as_str())
                || known.iter().any(|n| n.id == *id && n.address == address)
        })
        .ok_or_else(|| Error::NotFound(format!("No raft node with address \"{address}\"")))?;
    if id == rt.id {
        return Err(Error::BadRequest("The leader cannot remove itself from the raft configuration".into()));
    }
    change_with_retry(&raft, Membership::Remove { id }).await?;
    rt.transport.retain(|peer| peer != id);
    if let Err(e) = rebalance_locked(rt).await {
        tracing::warn!(error = %e, "rebalancing after removing a raft member failed");
    }
    rt.heartbeat_now.notify_one();
    Ok(())
}

/// Asks for a rebalance soon: on the leader directly, elsewhere through the leader.
pub fn nudge(rt: &Arc<Runtime>) {
    let rt = rt.clone();
    tokio::spawn(async move {
        if rt.is_leader() {
            if let Err(e) = rebalance(&rt).await {
                tracing::warn!(error = %e, "rebalancing database roles failed");
            }
            return;
        }
        if let Some(leader) = rt.leader_address()
            && let Err(e) = rt.send(&leader, "POST", "/internal/cluster/rebalance", None, &[]).await
        {
            tracing::warn!(error = %e, "cannot ask the leader to rebalance");
        }
    });
}

/// The leader passes the role of the member at `address` (shutting down) to another member,
/// then makes the leaving member a spare. Returns the member list afterwards.
pub async fn handover(rt: &Arc<Runtime>, address: &str) -> Result<Vec<RaftMember>> {
    if address.is_empty() {
        return Err(Error::BadRequest("No id provided".into()));
    }
    let _guard = rt.membership.lock().await;
    let raft = leader_raft(rt)?;
    let (seats, members, _, _) = seats(rt).await?;
    let leaving = members
        .iter()
        .find(|(n, _)| n.address == address)
        .map(|(_, m)| m.id)
        .ok_or_else(|| Error::NotFound(format!("No cluster member with address \"{address}\"")))?;
    if leaving != rt.id
        && let Some(change) = roles::handover(&seats, leaving)
    {
        apply(rt, &raft, change, &members).await?;
        let members = current_members(rt).await?;
        apply(rt, &raft, Change { id: leaving, role: ROLE_SPARE }, &members).await?;
        rt.heartbeat_now.notify_one();
    }
    Ok(current_members(rt).await?.into_iter().map(|(_, m)| m).collect())
}

/// On a member shutting down cleanly: a leader first passes leadership to another online voter,
/// then the (new) leader is asked to hand this member's role over.
pub async fn leave_gracefully(rt: &Arc<Runtime>) {
    let Some(raft) = rt.raft() else { return };
    let own_address = rt.members().into_iter().find(|m| m.id == rt.id).map(|m| m.address).unwrap_or_default();
    if raft.status().is_leader {
        let st = raft.status();
        let Some(next) = st.voters.iter().copied().find(|id| *id != rt.id) else {
            tracing::warn!("No online voter found: leaving without handing leadership over");
            return;
        };
        raft.transfer_leader(next);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while raft.status().is_leader || raft.status().leader == 0 {
            if tokio::time::Instant::now() > deadline {
                tracing::warn!("leadership transfer did not complete; leaving anyway");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let Some(leader) = rt.leader_address() else { return };
    let Ok(conn) = rt.connect(&leader) else { return };
    let body = serde_json::json!({ "address": own_address });
    match tokio::time::timeout(Duration::from_secs(20), conn.request("POST", "/internal/cluster/handover", Some(&body), None))
        .await
    {
        Ok(Ok(reply)) => {
            if let Ok(list) = serde_json::from_value::<Vec<RaftMember>>(reply.envelope.metadata)
                && let Err(e) = rt.env.local.replace_raft_nodes(&super::runtime::raft_nodes(&list)).await
            {
                tracing::warn!(error = %e, "cannot record the member list after the handover");
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "role handover failed"),
        Err(_) => tracing::warn!("role handover timed out"),
    }
}
