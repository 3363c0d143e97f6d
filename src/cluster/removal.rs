//! The leader's side of removing a member (`DELETE /1.0/cluster/members/<name>[?force=1]`):
//! the member leaves raft and the database and the roles are rebalanced. Telling the removed
//! member, trust and images are `services::membership`'s part.

use std::sync::Arc;
use std::time::Duration;

use super::rebalance::{change_with_retry, current_members, leader_raft, rebalance_locked};
use super::runtime::Runtime;
use super::{Error, ROLE_SPARE, Result};
use crate::raft::Membership;
use crate::store::Batch;
use crate::store::global::nodes as store_nodes;

/// What the leader did.
pub enum Removed {
    /// The member is gone from raft and the database; it was reachable at `address`.
    Done { address: String },
    /// Asked to remove itself, the leader passed leadership on: the caller forwards the
    /// request to the new leader.
    LeadershipMoved,
}

/// On the leader: takes member `name` out of raft and the database and rebalances. Unless
/// `force`, a member still hosting instances is refused.
pub async fn remove(rt: &Arc<Runtime>, name: &str, force: bool) -> Result<Removed> {
    let guard = rt.membership.lock().await;
    let raft = leader_raft(rt)?;
    let members = current_members(rt).await?;
    let (node, member) = members
        .iter()
        .find(|(n, _)| n.name == name)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("Member '{name}' not found")))?;
    if members.len() == 1 {
        return Err(Error::BadRequest("Member is the only member in the cluster".into()));
    }
    if !force {
        let hosted = crate::store::global::instances::list(&rt.env.global, None, Some(node.id)).await?;
        if !hosted.is_empty() {
            let names: Vec<&str> = hosted.iter().map(|i| i.name.as_str()).collect();
            return Err(Error::BadRequest(format!("Node still has the following instances: {}", names.join(", "))));
        }
    }
    if member.id == rt.id {
        // The leader cannot take itself out: another voter leads first (in a two-member
        // cluster the stand-by is promoted for that).
        let st = raft.status();
        let next = match st.voters.iter().copied().find(|id| *id != rt.id) {
            Some(id) => id,
            None => {
                let (_, standby) =
                    members.iter().find(|(_, m)| m.id != rt.id && m.role != ROLE_SPARE).cloned().ok_or_else(|| {
                        Error::BadRequest("Unable to promote remaining cluster member to leader: none holds a replica".into())
                    })?;
                change_with_retry(&raft, Membership::AddVoter { id: standby.id, address: standby.address.clone() })
                    .await
                    .map_err(|e| Error::Internal(format!("Unable to promote remaining cluster member to leader: {e}")))?;
                standby.id
            }
        };
        drop(guard);
        raft.transfer_leader(next);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while raft.status().is_leader || raft.status().leader == 0 {
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Unavailable("Leadership could not be handed over to remove this member".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        return Ok(Removed::LeadershipMoved);
    }
    if member.role != ROLE_SPARE {
        change_with_retry(&raft, Membership::Remove { id: member.id }).await?;
    }
    let mut b = Batch::new();
    store_nodes::delete(&mut b, node.id, &node.name);
    rt.env.global.apply(&b).await?;
    rt.directory.remove(node.id);
    rt.set_members(current_members(rt).await?.into_iter().map(|(_, m)| m).collect());
    rt.transport.retain(|id| id != member.id);
    if let Err(e) = rebalance_locked(rt).await {
        tracing::warn!(error = %e, "rebalancing after a removal failed");
    }
    Ok(Removed::Done { address: node.address })
}
