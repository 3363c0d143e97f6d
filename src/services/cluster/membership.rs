//! Forming, growing and shrinking a cluster as one member takes part in it: bootstrap (the
//! first member), join (the joiner's side: trust, its pools, admission by the leader, the
//! cluster certificate, an empty replica that receives the database as a snapshot), admitting a
//! joiner (the leader's side, pools checked first), removal (the leader's side, then telling
//! the removed member) and a removed member's reset to standalone, plus the internal
//! membership endpoints the other members call.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use super::tokens::JoinTokens;
use crate::api::{AcceptRequest, AcceptResponse, AssignRequest, Cluster as ClusterInfo, ClusterPut, Heartbeat, RaftMember};
use crate::client::Connection;
use crate::cluster::removal::Removed;
use crate::cluster::runtime::wipe_global;
use crate::cluster::upgrade::{api_count, schema_version};
use crate::cluster::{Cluster, NOTIFIER_AGENT, ROLE_VOTER};
use crate::config::{self, address::DEFAULT_PORT};
use crate::events::EventHub;
use crate::operations::{NewOp, Op, OpClass, Operations};
use crate::paths::Paths;
use crate::services::identity::Identity;
use crate::services::images::Images;
use crate::services::server_config::ServerConfig;
use crate::services::storage_pools::Pools;
use crate::services::trust::Trust;
use crate::services::{Error, Result, architecture_id};
use crate::store::Batch;
use crate::store::global::{self, GlobalDb, certificates as store_certs, nodes as store_nodes};
use crate::store::local::{LocalDb, RaftNode};
use crate::tls::{self, CertKind, KeyPairPem, ServerPin};
use crate::util::time;

/// What `PUT /1.0/cluster` with `enabled: true` will do.
enum Plan {
    Bootstrap { name: String, address: String },
    Join { req: ClusterPut },
}

pub struct Membership {
    pub paths: Paths,
    pub local: LocalDb,
    pub global: GlobalDb,
    pub cluster: Arc<Cluster>,
    pub events: Arc<EventHub>,
    pub operations: Arc<Operations>,
    pub identity: Arc<Identity>,
    pub trust: Arc<Trust>,
    pub config: Arc<ServerConfig>,
    pub pools: Arc<Pools>,
    pub images: Arc<Images>,
    pub tokens: Arc<JoinTokens>,
}

impl Membership {
    /// `GET /1.0/cluster`, with its ETag.
    pub async fn info(&self) -> Result<(ClusterInfo, String)> {
        let clustered = self.cluster.is_clustered();
        let (server_name, member_config) =
            if clustered { (self.config.server_name(), self.pools.member_config_keys().await?) } else { (String::new(), vec![]) };
        let c = ClusterInfo { server_name, enabled: clustered, member_config };
        let etag = crate::api::etag_of(&c);
        Ok((c, etag))
    }

    /// `PUT /1.0/cluster`: bootstrap or join (an operation), or (`enabled: false`, sent by the
    /// leader to a member it removed) back to standalone.
    pub async fn update(self: &Arc<Self>, req: ClusterPut) -> Result<Option<Arc<Op>>> {
        if !req.enabled {
            if !req.server_name.is_empty() {
                return Err(Error::BadRequest("ServerName must be empty when disabling clustering".into()));
            }
            if !self.cluster.is_clustered() {
                return Err(Error::BadRequest("This server is not clustered".into()));
            }
            // Answer first: the member asking is waiting for this reply.
            let me = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Err(e) = me.reset_to_standalone().await {
                    tracing::error!(error = %e, "resetting to a standalone server failed");
                }
            });
            return Ok(None);
        }
        let plan = self.plan(req).await?;
        let me = self.clone();
        let (description, work): (&str, crate::util::BoxFuture<'static, Result<()>>) = match plan {
            Plan::Bootstrap { name, address } => {
                ("Creating bootstrap node", Box::pin(async move { me.bootstrap(name, address).await }))
            }
            Plan::Join { req } => ("Joining cluster", Box::pin(async move { me.join(req).await })),
        };
        let op = self.operations.spawn_task(
            NewOp {
                class: OpClass::Task,
                description: description.into(),
                project: String::new(),
                resources: serde_json::json!({"cluster": null}),
                metadata: serde_json::Value::Null,
                may_cancel: false,
            },
            async move { work.await.map(|()| None) },
        );
        Ok(Some(op))
    }

    /// Validates `PUT /1.0/cluster` synchronously and decides bootstrap or join.
    async fn plan(&self, req: ClusterPut) -> Result<Plan> {
        if req.server_name.is_empty() {
            return Err(Error::BadRequest("ServerName is required when enabling clustering".into()));
        }
        if req.server_name.starts_with('@') {
            return Err(Error::BadRequest("ServerName may not start with \"@\"".into()));
        }
        if !self.local.raft_nodes().await?.is_empty() {
            return Err(Error::BadRequest("This server is already clustered".into()));
        }
        if req.cluster_address.is_empty() {
            let member = self.local.config().await?;
            let address = config::cluster_address(&member)?;
            return Ok(Plan::Bootstrap { name: req.server_name, address });
        }
        if req.cluster_certificate.is_empty() {
            return Err(Error::BadRequest("No target cluster member certificate provided".into()));
        }
        if req.server_address.is_empty() {
            return Err(Error::BadRequest("No server address provided for this member".into()));
        }
        tls::cert_der(&req.cluster_certificate).map_err(|e| Error::BadRequest(format!("Invalid cluster certificate: {e}")))?;
        config::parse_address(&req.server_address, DEFAULT_PORT)?;
        Ok(Plan::Join { req })
    }

    /// Makes sure this member listens on `address` and records it as its cluster address.
    async fn listen_on(&self, address: &str) -> Result<()> {
        let member = self.local.config().await?;
        let mut changes = serde_json::Map::new();
        if member.get("core.https_address").is_none_or(|a| a.is_empty()) {
            changes.insert("core.https_address".into(), address.into());
        }
        if member.get("cluster.https_address").map(String::as_str) != Some(address) {
            changes.insert("cluster.https_address".into(), address.into());
        }
        if !changes.is_empty() {
            self.config.update(&changes, false, None).await?;
        }
        Ok(())
    }

    /// The first member: its standalone data becomes the cluster's.
    async fn bootstrap(&self, name: String, address: String) -> Result<()> {
        let _guard = self.cluster.membership_lock().lock().await;
        if self.paths.cluster_cert().exists() {
            return Err(Error::Internal("Inconsistent state: found leftover cluster certificate".into()));
        }
        self.listen_on(&address).await?;
        let cluster = tls::generate(CertKind::Server)?;
        tls::write_pair(&self.paths.dir, "cluster", &cluster)?;
        let server_cert = self.identity.server_cert().clone();
        let server_fp = tls::fingerprint_pem(&server_cert.cert)?;
        let mut b = Batch::new();
        store_nodes::name_standalone(&mut b, &name, &address, &time::rfc3339(time::now_nanos()));
        store_certs::replace(
            &mut b,
            &store_certs::Certificate {
                id: 0,
                fingerprint: server_fp,
                kind: store_certs::TYPE_SERVER,
                name: name.clone(),
                certificate: server_cert.cert.clone(),
                restricted: false,
                projects: vec![],
            },
        );
        self.global.apply(&b).await?;
        let nodes = vec![RaftNode { id: 1, address: address.clone(), role: ROLE_VOTER, name: name.clone() }];
        self.local.replace_raft_nodes(&nodes).await?;
        let rt = self.cluster.start(1, &nodes, true).await?;
        self.config.invalidate();
        let elected = match rt.raft() {
            Some(r) => r.wait_for(Duration::from_secs(20), |s| s.is_leader).await,
            None => false,
        };
        if !elected {
            return Err(Error::Internal("RAFT node did not self-elect within 20s".into()));
        }
        self.identity.present(cluster)?;
        self.trust.refresh().await?;
        self.events.set_location(&name);
        self.events.lifecycle("default", "cluster-enabled", format!("/1.0/cluster/members/{name}"), None);
        Ok(())
    }

    /// The joiner's side.
    async fn join(&self, req: ClusterPut) -> Result<()> {
        let _guard = self.cluster.membership_lock().lock().await;
        let address = config::parse_address(&req.server_address, DEFAULT_PORT)?;
        let target = config::parse_address(&req.cluster_address, DEFAULT_PORT)?;
        let cluster_fp = tls::fingerprint_pem(&req.cluster_certificate).map_err(|e| Error::BadRequest(e.to_string()))?;
        self.listen_on(&address).await?;

        // Trust: present our server certificate with the trust password (or a join token).
        if !req.cluster_password.is_empty() {
            let conn = Connection::https(&target, ServerPin::Fingerprint(cluster_fp.clone()), None)
                .map_err(|e| Error::BadRequest(format!("Failed to setup cluster trust: {e}")))?
                .bound_to(config::host_ip(&address));
            let der = tls::cert_der(&self.identity.server_cert().cert)?;
            let body = serde_json::json!({
                "type": "server", "name": req.server_name,
                "certificate": base64::engine::general_purpose::STANDARD.encode(der.as_ref()),
                "password": req.cluster_password,
            });
            match conn.request("POST", "/1.0/certificates", Some(&body), None).await {
                Ok(_) => {}
                // Trusted already (a join retried after the trust step).
                Err(crate::client::ClientError::Api { status: 409, .. }) => {}
                Err(e) => return Err(Error::Forbidden(format!("Failed to setup cluster trust: {e}"))),
            }
        }

        let conn = Connection::https(&target, ServerPin::Fingerprint(cluster_fp.clone()), Some(self.identity.server_cert()))?
            .bound_to(config::host_ip(&address));
        let created_pools = self.pools.create_missing(&conn, &req.member_config).await?;
        let own_pools = self.pools.list(true).await?;
        let accept = AcceptRequest {
            name: req.server_name.clone(),
            address: address.clone(),
            schema: schema_version(),
            api: api_count(),
            storage_pools: own_pools.clone(),
            architecture: architecture_id(),
        };
        let body = serde_json::to_value(&accept).map_err(|e| Error::Internal(format!("encoding the join request: {e}")))?;
        let reply = match conn.request("POST", "/internal/cluster/accept", Some(&body), None).await {
            Ok(r) => r,
            Err(e) => {
                self.pools.undo_created(&created_pools).await;
                return Err(Error::BadRequest(format!("Failed request to add member: {e}")));
            }
        };
        let accepted: AcceptResponse = serde_json::from_value(reply.envelope.metadata)
            .map_err(|e| Error::Internal(format!("decoding the leader's answer: {e}")))?;
        let own = accepted
            .raft_nodes
            .iter()
            .find(|n| n.address == address)
            .cloned()
            .ok_or_else(|| Error::Internal("the leader's answer does not include this member".into()))?;

        let cluster = KeyPairPem { cert: req.cluster_certificate.clone(), key: accepted.private_key.clone() };
        tls::write_pair(&self.paths.dir, "cluster", &cluster)?;
        self.identity.present(cluster)?;
        // Trust the members' certificates now: our own copy of the trust store arrives only with
        // the database snapshot, which they must be able to send us.
        let certs: Vec<crate::api::Certificate> = conn.get_json("/1.0/certificates?recursion=1").await?;
        self.trust.trust_members(certs.iter().filter(|c| c.kind == "server").map(|c| (c.fingerprint.clone(), c.name.clone())));

        // This member's own global data is replaced by the cluster's.
        self.global.close().await;
        wipe_global(self.cluster.env())?;
        let nodes = crate::cluster::runtime::raft_nodes(&accepted.raft_nodes);
        self.local.replace_raft_nodes(&nodes).await?;
        let rt = self.cluster.start(own.id, &nodes, false).await?;
        self.config.invalidate();
        if let Some(r) = rt.raft()
            && !r.wait_for(Duration::from_secs(60), |s| s.applied > 1).await
        {
            return Err(Error::Internal("Timed out waiting for the cluster database to replicate to this member".into()));
        }
        let mut b = Batch::new();
        store_nodes::mark_created(&mut b, own.id as i64, &time::rfc3339(time::now_nanos()));
        self.global.apply(&b).await?;
        self.pools.adopt(own.id as i64, &own_pools).await?;
        self.trust.refresh().await?;
        self.events.set_location(&req.server_name);
        // Ask the leader to give this member the role it was chosen for.
        if let Err(e) = conn.request("POST", "/internal/cluster/rebalance", None, None).await {
            tracing::warn!(error = %e, "the leader did not rebalance after the join; the next heartbeat will");
        }
        self.events.lifecycle("default", "cluster-member-added", format!("/1.0/cluster/members/{}", req.server_name), None);
        // Heartbeats must first mark this member online for the others; then take image copies.
        let images = self.images.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            images.sync_after_join().await;
        });
        Ok(())
    }

    /// The leader admits a joiner: its pools must match the cluster's, then the cluster layer
    /// records it and gives it its place.
    pub async fn accept(&self, req: AcceptRequest) -> Result<AcceptResponse> {
        let rt = self.cluster.clustered()?;
        let _guard = rt.membership.lock().await;
        self.pools.check_joiner(&req.storage_pools).await?;
        Ok(crate::cluster::membership::admit(&rt, &req).await?)
    }

    /// Removes member `name` (on the leader; a leader asked to remove itself passes leadership
    /// on and lets the new leader do it), then tells the removed member unless `force`.
    pub async fn remove(&self, name: &str, force: bool) -> Result<()> {
        let rt = self.cluster.clustered()?;
        for _ in 0..3 {
            if !rt.is_leader() {
                let leader = rt.leader_address().ok_or_else(|| Error::Unavailable("Unable to find leader address".into()))?;
                let path = format!("/1.0/cluster/members/{name}{}", if force { "?force=1" } else { "" });
                let reply = rt.send(&leader, "DELETE", &path, None, &[]).await?;
                return super::super::answer_of(&reply);
            }
            match crate::cluster::removal::remove(&rt, name, force).await? {
                Removed::LeadershipMoved => continue,
                Removed::Done { address } => {
                    self.trust.refresh().await?;
                    self.events.lifecycle("default", "cluster-member-removed", format!("/1.0/cluster/members/{name}"), None);
                    if !force {
                        self.tell_removed(&address).await?;
                    }
                    let images = self.images.clone();
                    tokio::spawn(async move { images.replicate_all().await });
                    return Ok(());
                }
            }
        }
        Err(Error::Unavailable("The cluster leader kept changing; try again".into()))
    }

    /// Tells a removed member to go back to standalone.
    async fn tell_removed(&self, address: &str) -> Result<()> {
        let rt = self.cluster.clustered()?;
        let mut conn = rt.connect(address)?;
        conn.user_agent = NOTIFIER_AGENT.into();
        let body = serde_json::json!({ "server_name": "", "enabled": false });
        match tokio::time::timeout(Duration::from_secs(10), conn.request("PUT", "/1.0/cluster", Some(&body), None)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::Internal(format!("Failed to cleanup the member: {e}"))),
            Err(_) => Err(Error::Internal("Failed to cleanup the member: timed out".into())),
        }
    }

    /// On the removed member: back to a standalone server with an empty global database; the
    /// member's own configuration (addresses) stays.
    async fn reset_to_standalone(&self) -> Result<()> {
        let _guard = self.cluster.membership_lock().lock().await;
        if !self.cluster.is_clustered() {
            return Ok(());
        }
        tracing::info!("this member was removed from its cluster: resetting to a standalone server");
        self.cluster.stop().await;
        for f in ["cluster.crt", "cluster.key", "cluster.ca"] {
            let path = self.paths.dir.join(f);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove the cluster certificate");
            }
        }
        wipe_global(self.cluster.env())?;
        self.local.replace_raft_nodes(&[]).await?;
        self.global.reopen_local().await?;
        let mut b = Batch::new();
        store_nodes::ensure_standalone(
            &mut b,
            global::schema_version(),
            api_count(),
            architecture_id(),
            &time::rfc3339(time::now_nanos()),
        );
        self.global.apply(&b).await?;
        self.identity.present_server_cert()?;
        self.trust.forget_members();
        self.trust.refresh().await?;
        self.events.set_location("none");
        self.config.invalidate();
        Ok(())
    }

    /// `POST /internal/cluster/assign`: the leader gives this member a new database role.
    pub async fn assign(&self, req: AssignRequest) -> Result<()> {
        if req.raft_nodes.is_empty() {
            return Err(Error::BadRequest("No raft members provided".into()));
        }
        let rt = self.cluster.clustered()?;
        {
            let _guard = rt.membership.lock().await;
            crate::cluster::runtime::reconcile_role(&rt, &req.raft_nodes).await?;
        }
        if let Some(raft) = rt.raft()
            && !raft.wait_for(Duration::from_secs(20), |s| s.applied >= req.catch_up_to).await
        {
            return Err(Error::Unavailable("Timeout waiting for the database to replicate to this member".into()));
        }
        Ok(())
    }

    /// `POST /internal/cluster/heartbeat`.
    pub async fn heartbeat(&self, hb: Heartbeat) -> Result<Option<crate::api::ReplicaPosition>> {
        let rt = self.cluster.clustered()?;
        Ok(crate::cluster::heartbeat::receive(&rt, hb).await?)
    }

    /// `POST /internal/cluster/rebalance` (on the leader).
    pub async fn rebalance(&self) -> Result<()> {
        Ok(crate::cluster::rebalance::rebalance(&self.cluster.clustered()?).await?)
    }

    /// `POST /internal/cluster/handover` (on the leader): a member shutting down asks to pass
    /// its role on.
    pub async fn handover(&self, address: &str) -> Result<Vec<RaftMember>> {
        Ok(crate::cluster::rebalance::handover(&self.cluster.clustered()?, address).await?)
    }

    /// `DELETE /internal/cluster/raft-node/<address>` (on the leader).
    pub async fn remove_raft_node(&self, address: &str) -> Result<()> {
        Ok(crate::cluster::rebalance::remove_raft_node(&self.cluster.clustered()?, address).await?)
    }

    /// `POST /internal/cluster/upgraded`: another member's version changed.
    pub fn upgraded(&self) {
        if let Some(rt) = self.cluster.runtime() {
            rt.upgrade_wake.notify_one();
        }
    }

    /// `POST /internal/cluster/token`: whether this member issued (and now consumed) a token.
    pub fn consume_token_here(&self, server_name: &str, secret: &str) -> Result<()> {
        if self.tokens.consume_here(server_name, secret) {
            Ok(())
        } else {
            Err(Error::NotFound("No matching cluster join operation found".into()))
        }
    }

    /// At shutdown: a leader passes leadership on, then the role is handed over.
    pub async fn leave(&self) {
        if let Some(rt) = self.cluster.runtime() {
            crate::cluster::rebalance::leave_gracefully(&rt).await;
        }
    }
}
