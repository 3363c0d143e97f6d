//! Join tokens: `POST /1.0/cluster/members` issues one as a `token` operation (serverName,
//! secret, fingerprint, addresses, expiresAt) on the member asked; a joiner presents it as the
//! password of `POST /1.0/certificates` on any member, which finds and consumes it wherever it
//! was issued (single use, cluster-wide).

use std::sync::Arc;
use std::time::Duration;

use crate::api::ClusterJoinToken;
use crate::cluster::Cluster;
use crate::cluster::rebalance::{heartbeat_fresh, offline_threshold};
use crate::config;
use crate::events::EventHub;
use crate::operations::{NewOp, Op, OpClass, Operations};
use crate::services::{Error, Result};
use crate::store::global::{self, GlobalDb, nodes as store_nodes};
use crate::util::secret::random_hex;
use crate::util::time;

pub struct JoinTokens {
    global: GlobalDb,
    cluster: Arc<Cluster>,
    events: Arc<EventHub>,
    operations: Arc<Operations>,
}

impl JoinTokens {
    pub fn new(global: GlobalDb, cluster: Arc<Cluster>, events: Arc<EventHub>, operations: Arc<Operations>) -> JoinTokens {
        JoinTokens { global, cluster, events, operations }
    }

    /// Issues a join token for a future member called `name`; an earlier token for the same
    /// name is revoked.
    pub async fn create(&self, name: &str) -> Result<Arc<Op>> {
        let rt = self.cluster.clustered()?;
        if name.is_empty() {
            return Err(Error::BadRequest("No name provided".into()));
        }
        if name.starts_with('@') {
            return Err(Error::BadRequest("ServerName may not start with \"@\"".into()));
        }
        let nodes = global::nodes::list(&self.global).await?;
        if nodes.iter().any(|n| n.name == name) {
            return Err(Error::BadRequest(format!("The cluster already has a member with name: {name}")));
        }
        let cfg = global::config::get_all(&self.global).await?;
        let threshold = offline_threshold(&cfg);
        let now = time::now_nanos();
        let addresses: Vec<String> = nodes
            .iter()
            .filter(|n| n.state == store_nodes::STATE_CREATED && heartbeat_fresh(n, threshold, now))
            .map(|n| n.address.clone())
            .collect();
        if addresses.is_empty() {
            return Err(Error::Internal("There are no online cluster members".into()));
        }
        for op in self.operations.list() {
            let md = op.metadata();
            if op.class == OpClass::Token && md.get("serverName").and_then(|v| v.as_str()) == Some(name) {
                // Superseded by the new one; it may have been used or revoked already.
                let _ = self.operations.cancel(&op.id);
            }
        }
        let expiry = config::parse_expiry(config::effective(&cfg, "cluster.join_token_expiry")).unwrap_or(3 * 3600);
        let expires_at = now + expiry * 1_000_000_000;
        let op = self.operations.start(NewOp {
            class: OpClass::Token,
            description: "Executing operation".into(),
            project: "default".into(),
            resources: serde_json::json!({ "cluster": null }),
            metadata: serde_json::json!({
                "serverName": name,
                "secret": random_hex(32),
                "fingerprint": rt.cluster_fingerprint,
                "addresses": addresses,
                "expiresAt": time::rfc3339(expires_at),
            }),
            may_cancel: true,
        });
        let (ops, id) = (self.operations.clone(), op.id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(expiry.max(0) as u64)).await;
            // Used or revoked before it expired: nothing left to cancel.
            let _ = ops.cancel(&id);
        });
        self.events.lifecycle("default", "cluster-token-created", format!("/1.0/cluster/members/{name}"), None);
        Ok(op)
    }

    /// Consumes a matching, unexpired join token issued by this member.
    pub fn consume_here(&self, server_name: &str, secret: &str) -> bool {
        let now = time::now_nanos();
        self.operations
            .consume_token(secret, |md| {
                md.get("serverName").and_then(|v| v.as_str()) == Some(server_name)
                    && md.get("expiresAt").and_then(|v| v.as_str()).and_then(time::parse_rfc3339).is_none_or(|at| at > now)
            })
            .is_some()
    }

    /// Consumes a join token wherever in the cluster it was issued.
    pub async fn consume(&self, token: &ClusterJoinToken) -> bool {
        if self.consume_here(&token.server_name, &token.secret) {
            return true;
        }
        let Some(rt) = self.cluster.runtime() else { return false };
        let body = serde_json::json!({ "server_name": token.server_name, "secret": token.secret });
        for m in rt.members().into_iter().filter(|m| m.id != rt.id) {
            let Ok(conn) = rt.connect(&m.address) else { continue };
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_secs(3), conn.request("POST", "/internal/cluster/token", Some(&body), None))
                    .await
            {
                return true;
            }
        }
        false
    }
}
