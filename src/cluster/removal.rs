//! Removing a member (`DELETE /1.0/cluster/members/<name>[?force=1]`, run on the leader) and
//! the removed member's reset to a standalone server (`PUT /1.0/cluster` with
//! `enabled: false`, sent to it by the leader).

use std::sync::Arc;
use std::time::Duration;

use super::rebalance::{change_with_retry, current_members, leader_raft, rebalance_locked};
use super::runtime::wipe_global;
use super::{NOTIFIER_AGENT, ROLE_SPARE};
use crate::daemon::{Daemon, Error, Result};
use crate::raft::Membership;
use crate::store::Batch;
use crate::store::global::{self, nodes as store_nodes};
use crate::util::time;

/// What the leader did: removed the member, or (when asked to remove itself) passed leadership
/// on so the caller can forward the request to the new leader.
pub enum Removed {
    Done,
    LeadershipMoved,
}

/// On the leader: takes member `name` out of raft and the database, rebalances, and (unless
/// forced) resets the removed member to standalone.
pub async fn remove(d: &Arc<Daemon>, name: &str, force: bool) -> Result<Removed> {
    let guard = d.membership_lock.lock().await;
    let (rt, raft) = leader_raft(d)?;
    let members = current_members(d, &rt).await?;
    let (node, member) = members
        .iter()
        .find(|(n, _)| n.name == name)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("Member '{name}' not found")))?;
    if members.len() == 1 {
        return Err(Error::BadRequest("Member is the only member in the cluster".into()));
    }
    if !force {
        let hosted = crate::store::global::instances::list(&d.global, None, Some(node.id)).await?;
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
    d.global.apply(&b).await?;
    rt.set_members(current_members(d, &rt).await?.into_iter().map(|(_, m)| m).collect());
    rt.transport.retain(|id| id != member.id);
    if let Err(e) = rebalance_locked(d).await {
        tracing::warn!(error = %e, "rebalancing after a removal failed");
    }
    drop(guard);
    d.refresh_trust().await?;
    d.events.lifecycle("default", "cluster-member-removed", format!("/1.0/cluster/members/{name}"), None);
    if !force {
        let mut conn = rt.connect(&node.address)?;
        conn.user_agent = NOTIFIER_AGENT.into();
        let body = serde_json::json!({ "server_name": "", "enabled": false });
        match tokio::time::timeout(Duration::from_secs(10), conn.request("PUT", "/1.0/cluster", Some(&body), None)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(Error::Internal(format!("Failed to cleanup the member: {e}"))),
            Err(_) => return Err(Error::Internal("Failed to cleanup the member: timed out".into())),
        }
    }
    Ok(Removed::Done)
}

/// On the removed member: back to a standalone server with an empty global database; the
/// member's own configuration (addresses) stays.
pub async fn reset_to_standalone(d: &Arc<Daemon>) -> Result<()> {
    let _guard = d.membership_lock.lock().await;
    let Some(rt) = d.cluster_runtime() else { return Ok(()) };
    tracing::info!("this member was removed from its cluster: resetting to a standalone server");
    rt.stop().await;
    d.set_cluster_runtime(None);
    for f in ["cluster.crt", "cluster.key", "cluster.ca"] {
        let _ = std::fs::remove_file(d.paths.dir.join(f));
    }
    wipe_global(d)?;
    d.local.replace_raft_nodes(&[]).await?;
    d.global.reopen_local().await?;
    let mut b = Batch::new();
    let now = time::rfc3339(time::now_nanos());
    store_nodes::ensure_standalone(
        &mut b,
        global::schema_version(),
        super::upgrade::api_count(),
        crate::daemon::architecture_id(),
        &now,
    );
    d.global.apply(&b).await?;
    d.set_identity(d.server_cert.clone()).map_err(|e| Error::Internal(e.to_string()))?;
    d.clear_member_trust();
    d.refresh_trust().await?;
    d.events.set_location("none");
    d.invalidate_config();
    Ok(())
}
