//! The one forwarder: requests, websockets and operation lookups sent to another member. A
//! request goes to the member's cluster address with this member's server certificate, the
//! cluster certificate pinned, over a kept connection; the answer comes back unchanged. Which
//! members exist and which are alive comes from the member directory, not the database.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::directory::Peer;
use super::runtime::Runtime;
use super::{Error, NOTIFIER_AGENT, Result};
use crate::store::global::{self, nodes as store_nodes};
use crate::util::time;

/// How long a learned operation owner is remembered (an operation's record lives as long).
const OWNER_MEMORY: Duration = Duration::from_secs(3600);

/// How long one forwarded request may take.
const REQUEST_WITHIN: Duration = Duration::from_secs(30);

/// Another member's answer, as it sent it.
#[derive(Debug)]
pub struct Forwarded {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Forwarded {
    /// The error text of an error envelope (empty for anything else).
    pub fn error_text(&self) -> String {
        serde_json::from_slice::<crate::api::Envelope>(&self.body).map(|e| e.error).unwrap_or_default()
    }
}

/// The members running operations this member learned of by forwarding the request that
/// started them: later requests about the operation (its websockets, waits, state) go straight
/// there instead of asking every member in turn.
#[derive(Default)]
pub struct OperationOwners(Mutex<HashMap<String, (String, Instant)>>);

impl OperationOwners {
    fn remember(&self, id: &str, address: &str) {
        if let Ok(mut owners) = self.0.lock() {
            if owners.len() >= 1024 {
                owners.retain(|_, (_, at)| at.elapsed() < OWNER_MEMORY);
            }
            owners.insert(id.to_string(), (address.to_string(), Instant::now()));
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

impl Runtime {
    /// Every member the directory knows; read once from the database while it knows none.
    pub async fn peers(&self) -> Result<Vec<Peer>> {
        if let Some(peers) = self.directory.peers() {
            return Ok(peers);
        }
        let cfg = global::config::get_all(&self.env.global).await?;
        let nodes = store_nodes::list(&self.env.global).await?;
        let peers: Vec<Peer> = nodes.iter().map(Peer::from_node).collect();
        self.directory.replace(peers.clone(), super::rebalance::offline_threshold(&cfg));
        Ok(peers)
    }

    /// The other admitted members that are online.
    pub async fn online_others(&self) -> Result<Vec<Peer>> {
        let peers = self.peers().await?;
        let threshold = self.directory.threshold();
        let now = time::now_nanos();
        Ok(peers.into_iter().filter(|p| p.id as u64 != self.id && p.admitted() && p.fresh(threshold, now)).collect())
    }

    /// Whether the member `id` is online (this member always is).
    pub async fn is_online(&self, id: i64) -> Result<bool> {
        if id as u64 == self.id {
            return Ok(true);
        }
        Ok(self.online_others().await?.iter().any(|p| p.id == id))
    }

    /// The member with id `id`.
    pub async fn peer(&self, id: i64) -> Result<Option<Peer>> {
        if let Some(p) = self.peers().await?.into_iter().find(|p| p.id == id) {
            return Ok(Some(p));
        }
        // A member admitted a moment ago may not be in the directory yet.
        Ok(store_nodes::list(&self.env.global).await?.iter().find(|n| n.id == id).map(Peer::from_node))
    }

    /// The admitted member called `name`.
    pub async fn peer_named(&self, name: &str) -> Result<Option<Peer>> {
        if let Some(p) = self.peers().await?.into_iter().find(|p| p.name == name && p.admitted()) {
            return Ok(Some(p));
        }
        Ok(store_nodes::list(&self.env.global)
            .await?
            .iter()
            .find(|n| n.name == name && n.state != store_nodes::STATE_PENDING)
            .map(Peer::from_node))
    }

    /// Where `?target=<name>` points: None for this member itself, else the member.
    pub async fn resolve_target(&self, name: &str) -> Result<Option<Peer>> {
        let peer = self.peer_named(name).await?.ok_or_else(|| Error::NotFound(format!("No cluster member called '{name}'")))?;
        Ok((peer.id as u64 != self.id).then_some(peer))
    }

    /// Sends one request to the member at `address`; returns its answer as it came.
    pub async fn send(
        &self,
        address: &str,
        method: &str,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, String)],
    ) -> Result<Forwarded> {
        let mut conn = self.connect(address)?;
        conn.user_agent = NOTIFIER_AGENT.into();
        match tokio::time::timeout(REQUEST_WITHIN, conn.raw(method, path_and_query, body, headers)).await {
            Ok(Ok((status, headers, body))) => {
                if status == 202
                    && let Some(id) = started_operation(&body)
                {
                    self.operation_owners.remember(&id, address);
                }
                Ok(Forwarded { status, headers, body })
            }
            Ok(Err(e)) => Err(Error::Unavailable(format!("Missing event connection with target cluster member: {e}"))),
            Err(_) => Err(Error::Unavailable("Missing event connection with target cluster member".into())),
        }
    }

    /// Opens a websocket on another member.
    pub async fn websocket(
        &self,
        address: &str,
        path: &str,
    ) -> Result<tokio_tungstenite::WebSocketStream<Box<dyn crate::client::connection::Io>>> {
        Ok(self.connect(address)?.websocket(path).await?)
    }

    /// The member holding operation `id`: the one remembered from forwarding the request that
    /// started it, else the first online member that knows it.
    pub async fn operation_owner(&self, id: &str) -> Option<String> {
        if let Some(known) = self.operation_owners.owner(id) {
            return Some(known);
        }
        let path = format!("/1.0/operations/{id}");
        for peer in self.online_others().await.ok()? {
            if let Ok(Forwarded { status: 200, .. }) = self.send(&peer.address, "GET", &path, None, &[]).await {
                self.operation_owners.remember(id, &peer.address);
                return Some(peer.address);
            }
        }
        None
    }
}
