//! The member: where every handle and service is made and wired, once, when the daemon
//! opens `LXD_DIR`. It owns the directory lock; it has no behaviour of its own beyond opening,
//! resuming and closing: every request goes to one of its services.

use std::sync::Arc;

use super::certificates::Certificates;
use super::cluster::groups::ClusterGroups;
use super::cluster::members::ClusterMembers;
use super::cluster::membership::Membership;
use super::cluster::tokens::JoinTokens;
use super::identity::Identity;
use super::images::Images;
use super::instances::Instances;
use super::operations::OperationsApi;
use super::profiles::Profiles;
use super::projects::Projects;
use super::server_config::ServerConfig;
use super::sql::Sql;
use super::storage_pools::Pools;
use super::trust::Trust;
use crate::cluster::{Cluster, Env};
use crate::events::EventHub;
use crate::operations::Operations;
use crate::paths::{self, DirLock, Paths};
use crate::store::Batch;
use crate::store::global::{self, GlobalDb};
use crate::store::local::LocalDb;
use crate::util::shutdown::Shutdown;
use crate::util::time;

/// Why a daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Lock(#[from] paths::LockError),
    #[error("failed to prepare {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Service(#[from] super::Error),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::Error),
}

fn ensure_dir(path: &std::path::Path, mode: u32) -> Result<(), StartError> {
    paths::ensure_dir(path, mode).map_err(|source| StartError::Io { path: path.display().to_string(), source })
}

pub struct Member {
    pub paths: Paths,
    pub local: LocalDb,
    pub global: GlobalDb,
    pub events: Arc<EventHub>,
    pub operations: Arc<Operations>,
    pub shutdown: Shutdown,
    pub cluster: Arc<Cluster>,
    pub identity: Arc<Identity>,
    pub trust: Arc<Trust>,
    pub config: Arc<ServerConfig>,
    pub certificates: Certificates,
    pub profiles: Profiles,
    pub projects: Projects,
    pub pools: Arc<Pools>,
    pub images: Arc<Images>,
    pub instances: Arc<Instances>,
    pub tokens: Arc<JoinTokens>,
    pub membership: Arc<Membership>,
    pub members: ClusterMembers,
    pub groups: ClusterGroups,
    pub ops: OperationsApi,
    pub sql: Sql,
    _lock: DirLock,
}

impl Member {
    /// Prepares the member's directories, identity and databases, and makes its services.
    /// Refuses when another daemon holds the directory or when a database is damaged.
    pub async fn open(paths: Paths) -> Result<Arc<Member>, StartError> {
        ensure_dir(&paths.dir, 0o711)?;
        let lock = paths::lock(&paths)?;
        ensure_dir(&paths.database(), 0o700)?;
        ensure_dir(&paths.global_dir(), 0o750)?;
        for sub in ["images", "logs", "storage-pools", "containers", "backups"] {
            ensure_dir(&paths.dir.join(sub), 0o711)?;
        }
        let identity = Arc::new(Identity::load(&paths)?);
        let local = LocalDb::open(&paths.local_db()).await?;
        let global = GlobalDb::open_local(&paths.global_db()).await?;

        // A clustered member's global database is the replicated state machine: it is only
        // ever changed through the cluster, never directly here.
        if local.raft_nodes().await?.is_empty() {
            let mut b = Batch::new();
            global::nodes::ensure_standalone(
                &mut b,
                global::schema_version(),
                crate::api::extensions::count(),
                super::architecture_id(),
                &time::rfc3339(time::now_nanos()),
            );
            global::operations::delete_for_node(&mut b, 1);
            global.apply(&b).await?;
        }

        let events = Arc::new(EventHub::new());
        let operations = Operations::new(events.clone());
        let shutdown = Shutdown::new();
        let cluster = Cluster::new(Env {
            paths: paths.clone(),
            local: local.clone(),
            global: global.clone(),
            events: events.clone(),
            identity: identity.server_cert().clone(),
            shutdown: shutdown.clone(),
        });
        let trust = Arc::new(Trust::new(global.clone()));
        let images = Arc::new(Images::new(paths.clone(), global.clone(), cluster.clone(), events.clone(), operations.clone()));
        let config = Arc::new(ServerConfig::new(
            local.clone(),
            global.clone(),
            cluster.clone(),
            identity.clone(),
            events.clone(),
            images.clone(),
        ));
        let pools = Arc::new(Pools::new(paths.clone(), global.clone(), cluster.clone(), events.clone()));
        let instances = Arc::new(Instances::new(
            paths.clone(),
            global.clone(),
            cluster.clone(),
            events.clone(),
            operations.clone(),
            images.clone(),
            pools.clone(),
            shutdown.clone(),
        ));
        let tokens = Arc::new(JoinTokens::new(global.clone(), cluster.clone(), events.clone(), operations.clone()));
        let membership = Arc::new(Membership {
            paths: paths.clone(),
            local: local.clone(),
            global: global.clone(),
            cluster: cluster.clone(),
            events: events.clone(),
            operations: operations.clone(),
            identity: identity.clone(),
            trust: trust.clone(),
            config: config.clone(),
            pools: pools.clone(),
            images: images.clone(),
            tokens: tokens.clone(),
        });
        let member = Arc::new(Member {
            certificates: Certificates::new(
                global.clone(),
                trust.clone(),
                events.clone(),
                operations.clone(),
                config.clone(),
                identity.clone(),
                tokens.clone(),
            ),
            profiles: Profiles::new(global.clone(), events.clone()),
            projects: Projects::new(global.clone(), events.clone()),
            members: ClusterMembers::new(global.clone(), cluster.clone(), events.clone()),
            groups: ClusterGroups::new(global.clone(), cluster.clone(), events.clone()),
            ops: OperationsApi::new(operations.clone(), cluster.clone()),
            sql: Sql::new(local.clone(), global.clone()),
            paths,
            local,
            global,
            events,
            operations,
            shutdown,
            cluster,
            identity,
            trust,
            config,
            pools,
            images,
            instances,
            tokens,
            membership,
            _lock: lock,
        });
        member.trust.refresh().await?;
        Ok(member)
    }

    /// After the listeners are up: a clustered member brings its cluster machinery back, then
    /// its instances (in the background: in a cluster they wait for a quorum).
    pub async fn resume(self: &Arc<Self>) -> Result<(), StartError> {
        if self.cluster.resume().await?.is_some() {
            self.config.invalidate();
        }
        let instances = self.instances.clone();
        tokio::spawn(async move { instances.resume().await });
        Ok(())
    }

    /// A clean stop: this member's instances stop (keeping their last state) and, in a
    /// cluster, its role is handed over. Skipped when the daemon stops on a fault.
    pub async fn stop(&self) {
        if self.shutdown.fatal_reason().is_none() {
            self.instances.stop_for_shutdown().await;
            self.membership.leave().await;
        }
    }

    pub async fn close(&self) {
        self.cluster.close().await;
        self.global.close().await;
        self.local.database().close().await;
    }
}
