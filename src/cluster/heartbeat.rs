//! Heartbeats. The raft leader contacts every member each `cluster.offline_threshold / 2`,
//! telling it the member list with database roles, the member directory and the highest
//! version in the cluster, and records who answered in `nodes.heartbeat`; a member whose last
//! heartbeat is older than the threshold is OFFLINE. After each round the leader rebalances
//! roles. A member receiving a heartbeat takes the role listed for it and the leader's copy
//! of the directory. A member coming back is announced by an extra round at once, so every
//! member sees it online without waiting a whole interval.

use std::sync::Arc;
use std::time::Duration;

use super::directory::Peer;
use super::rebalance::{self, current_members, offline_threshold};
use super::runtime::{self, Runtime};
use super::{Error, Result};
use crate::api::{Heartbeat, ReplicaPosition};
use crate::store::Batch;
use crate::store::global::{self, nodes as store_nodes};
use crate::util::time;

/// How long one member may take to answer a heartbeat.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

pub fn spawn(rt: Arc<Runtime>) {
    tokio::spawn(async move {
        let mut was_leader = false;
        let mut next = tokio::time::Instant::now();
        loop {
            if rt.is_stopped() {
                return;
            }
            let leader = rt.is_leader() && !rt.patch_pending.load(std::sync::atomic::Ordering::SeqCst);
            if leader && (!was_leader || tokio::time::Instant::now() >= next) {
                let interval = match round(&rt).await {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::debug!(error = %e, "heartbeat round failed");
                        Duration::from_secs(1)
                    }
                };
                next = tokio::time::Instant::now() + interval;
            }
            was_leader = leader;
            // Sleep until the next round is due (a leader) or a while (others), waking early
            // when leadership may have changed or a round is asked for.
            let wake = if leader { next } else { tokio::time::Instant::now() + Duration::from_secs(2) };
            let raw_leader = rt.is_leader();
            let mut status = rt.raft().map(|r| r.watch());
            let leadership = async {
                match status.as_mut() {
                    Some(w) => {
                        let _ = w.wait_for(|s| s.is_leader != raw_leader).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = leadership => {}
                _ = rt.heartbeat_now.notified() => next = tokio::time::Instant::now(),
            }
        }
    });
}

/// Sends one heartbeat; Some(the member's replica position, if it has a replica) when it
/// answered.
async fn send(rt: &Runtime, address: &str, hb: &serde_json::Value) -> Option<Option<ReplicaPosition>> {
    let conn = rt.connect(address).ok()?;
    match tokio::time::timeout(ANSWER_WITHIN, conn.request("POST", "/internal/cluster/heartbeat", Some(hb), None)).await {
        Ok(Ok(reply)) => Some(serde_json::from_value(reply.envelope.metadata).ok()),
        _ => None,
    }
}

/// This member's own replica position, for heartbeats and their answers.
pub fn own_position(rt: &Runtime) -> Option<ReplicaPosition> {
    let st = rt.raft()?.status();
    Some(ReplicaPosition { id: rt.id, last_index: st.last_index, term: st.last_term, seen_at: time::rfc3339(time::now_nanos()) })
}

/// One heartbeat round; returns the time until the next.
async fn round(rt: &Arc<Runtime>) -> Result<Duration> {
    let env = &rt.env;
    let cfg = global::config::get_all(&env.global).await?;
    let threshold = offline_threshold(&cfg);
    let interval = threshold / 2;
    // A membership change in progress sends its own news; try again shortly.
    let Ok(guard) = rt.membership.try_lock() else { return Ok(Duration::from_secs(1)) };
    let members = current_members(rt).await?;
    let all = global::nodes::list(&env.global).await?;
    let (schema, api) = all.iter().map(|n| (n.schema, n.api_extensions)).max().unwrap_or_default();
    let list: Vec<_> = members.iter().map(|(_, m)| m.clone()).collect();
    let positions = env.local.replica_positions().await.unwrap_or_default();
    let positions = positions
        .into_iter()
        .map(|p| ReplicaPosition { id: p.id, last_index: p.last_index, term: p.term, seen_at: p.seen_at })
        .chain(own_position(rt))
        .collect();
    // What this leader knows of every member's liveness (the last round's answers).
    let known: Vec<Peer> = rt.directory.peers().unwrap_or_default();
    let directory: Vec<Peer> = all
        .iter()
        .map(|n| {
            let mut p = Peer::from_node(n);
            if let Some(k) = known.iter().find(|k| k.id == p.id) {
                p.heartbeat = p.heartbeat.max(k.heartbeat);
            }
            p
        })
        .collect();
    let hb = Heartbeat {
        members: list.clone(),
        schema,
        api,
        time: time::rfc3339(time::now_nanos()),
        leader: rt.id,
        positions,
        directory: directory.iter().map(Peer::entry).collect(),
        offline_threshold: threshold.as_secs(),
    };
    let body = serde_json::to_value(&hb).map_err(|e| Error::Internal(e.to_string()))?;
    let others = members.iter().filter(|(_, m)| m.id != rt.id);
    let answers = futures_util::future::join_all(others.map(|(n, m)| {
        let body = &body;
        async move { (m.id, send(rt, &n.address, body).await) }
    }))
    .await;
    drop(guard);
    let heard: Vec<_> =
        answers.iter().filter_map(|(_, a)| a.clone().flatten()).chain(own_position(rt)).map(local_position).collect();
    if let Err(e) = env.local.record_replica_positions(&heard).await {
        tracing::debug!(error = %e, "replica positions not recorded");
    }
    let mut alive: Vec<i64> = answers.iter().filter(|(_, a)| a.is_some()).map(|(id, _)| *id as i64).collect();
    alive.push(rt.id as i64);
    let now = time::now_nanos();
    let mut b = Batch::new();
    store_nodes::heartbeat(&mut b, &alive, &time::rfc3339(now));
    env.global.apply(&b).await?;
    rt.directory.replace(directory, threshold);
    let revived = rt.directory.heard(&alive, now);
    // The leader's own copy of the member list (names and spares included).
    let nodes = runtime::raft_nodes(&list);
    if env.local.raft_nodes().await.ok().as_ref() != Some(&nodes)
        && let Err(e) = env.local.replace_raft_nodes(&nodes).await
    {
        tracing::warn!(error = %e, "cannot record the member list");
    }
    rt.set_members(list);
    if members.len() > 1
        && let Ok(_guard) = rt.membership.try_lock()
        && let Err(e) = rebalance::rebalance_locked(rt).await
    {
        tracing::warn!(error = %e, "rebalancing database roles failed");
    }
    if !revived.is_empty() {
        tracing::debug!(members = ?revived, "members answered again: announcing it now");
        return Ok(Duration::ZERO);
    }
    Ok(interval)
}

fn local_position(p: ReplicaPosition) -> crate::store::local::ReplicaPosition {
    crate::store::local::ReplicaPosition { id: p.id, last_index: p.last_index, term: p.term, seen_at: p.seen_at }
}

/// A member's side of a heartbeat; answers with this member's replica position.
pub async fn receive(rt: &Arc<Runtime>, hb: Heartbeat) -> Result<Option<ReplicaPosition>> {
    if rt.env.shutdown.is_requested() {
        return Err(Error::Unavailable("Shutting down".into()));
    }
    if hb.members.is_empty() {
        return Err(Error::BadRequest("Empty raft member set received".into()));
    }
    if rt.is_leader() {
        return Ok(own_position(rt));
    }
    let positions: Vec<_> = hb.positions.iter().cloned().map(local_position).collect();
    if let Err(e) = rt.env.local.record_replica_positions(&positions).await {
        tracing::debug!(error = %e, "replica positions not recorded");
    }
    if let Some(own) = hb.members.iter().find(|m| m.id == rt.id) {
        rt.env.events.set_location(&own.name);
    }
    if !hb.directory.is_empty() {
        let now = time::now_nanos();
        let threshold =
            if hb.offline_threshold > 0 { Duration::from_secs(hb.offline_threshold) } else { rt.directory.threshold() };
        rt.directory.replace(hb.directory.iter().map(Peer::from_entry).collect(), threshold);
        // The leader and this member are alive: this message is the proof.
        rt.directory.heard(&[hb.leader as i64, rt.id as i64], now);
    }
    rt.set_leader_hint(hb.leader);
    super::upgrade::observe(rt, hb.schema, hb.api);
    // A role change in progress on this member finishes first; the next heartbeat catches up.
    if let Ok(_guard) = rt.membership.try_lock() {
        runtime::reconcile_role(rt, &hb.members).await?;
    } else {
        rt.set_members(hb.members);
    }
    Ok(own_position(rt))
}
