//! Forwarding API requests between members: `?target=<member>` and operations that live on
//! another member. The request goes to the member's cluster address with this member's server
//! certificate, pinning the cluster certificate; the answer comes back unchanged.

use std::time::Duration;

use bytes::Bytes;

use super::rebalance::{heartbeat_fresh, offline_threshold};
use crate::daemon::{Daemon, Error, Result};
use crate::store::global::{self, nodes as store_nodes};
use crate::util::time;

/// How long a learned operation owner is remembered (an operation's record lives as long).
const OWNER_MEMORY: Duration = Duration::from_secs(3600);

/// The members running operations this member learned of by forwarding the request that
/// started them: later requests about the operation (its websockets, waits, state) go straight
/// there instead of asking every member in turn.
#[derive(Default)]
pub struct OperationOwners(std::sync::Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>);

impl OperationOwners {
    fn remember(&self, id: &str, address: &str) {
        if let Ok(mut owners) = self.0.lock() {
            if owners.len() >= 1024 {
                owners.retain(|_, (_, at)| at.elapsed() < OWNER_MEMORY);
            }
            owners.insert(id.to_string(), (address.to_string(), std::time::Instant::now()));
        }
    }

    pub fn owner(&self, id: &str) -> Option<String> {
        self.0.lock().ok()?.get(id).filter(|(_, at)| at.elapsed() < OWNER_MEMORY).map(|(a, _)| a.clone())
    }
}

/// The id in an async reply's `operation` URL.
fn started_operation(body: &[u8]) -> Option<String> {
    let env: crate::api::Envelope = serde_json::from_slice(body).ok()?;
    env.operation.rsplit('/').next().filter(|id| !id.is_empty()).map(str::to_string)
}

/// Where `?target=<name>` points: None for this member itself, else the member's address.
pub async fn resolve_target(d: &Daemon, name: &str) -> Result<Option<String>> {
    let rt = d.cluster_runtime().ok_or_else(|| Error::BadRequest("The target parameter is only valid in a cluster".into()))?;
    let node = global::nodes::list(&d.global)
        .await?
        .into_iter()
        .find(|n| n.name == name && n.state != store_nodes::STATE_PENDING)
        .ok_or_else(|| Error::NotFound(format!("No cluster member called '{name}'")))?;
    Ok((node.id as u64 != rt.id).then_some(node.address))
}

/// The addresses of the other members that are online.
pub async fn online_others(d: &Daemon) -> Result<Vec<String>> {
    Ok(online_other_members(d).await?.into_iter().map(|n| n.address).collect())
}

/// The other members that are online.
pub async fn online_other_members(d: &Daemon) -> Result<Vec<store_nodes::Node>> {
    let Some(rt) = d.cluster_runtime() else { return Ok(Vec::new()) };
    let cfg = global::config::get_all(&d.global).await?;
    let threshold = offline_threshold(&cfg);
    let now = time::now_nanos();
    Ok(global::nodes::list(&d.global)
        .await?
        .into_iter()
        .filter(|n| n.id as u64 != rt.id && n.state != store_nodes::STATE_PENDING && heartbeat_fresh(n, threshold, now))
        .collect())
}

/// Sends one request to the member at `address`; returns its status, headers and body.
pub async fn send(
    d: &Daemon,
    address: &str,
    method: &str,
    path_and_query: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, String)],
) -> Result<(u16, http::HeaderMap, Bytes)> {
    let rt = d.cluster_runtime().ok_or_else(|| Error::BadRequest("This server is not clustered".into()))?;
    let mut conn = rt.connect(address)?;
    conn.user_agent = super::NOTIFIER_AGENT.into();
    match tokio::time::timeout(Duration::from_secs(30), conn.raw(method, path_and_query, body, headers)).await {
        Ok(Ok(r)) => {
            if r.0 == 202
                && let Some(id) = started_operation(&r.2)
            {
                rt.operation_owners.remember(&id, address);
            }
            Ok(r)
        }
        Ok(Err(e)) => Err(Error::Unavailable(format!("Missing event connection with target cluster member: {e}"))),
        Err(_) => Err(Error::Unavailable("Missing event connection with target cluster member".into())),
    }
}
