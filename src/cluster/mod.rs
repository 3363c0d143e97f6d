//! The cluster machinery of one member: the running raft replica and its transport, the
//! replicated global database as seen from any member, heartbeats and the member directory
//! they keep fresh, database roles and their rebalancing, the upgrade gate, the event relay,
//! the one forwarder for requests to other members, the leader's side of admitting and
//! removing members, instance placement, and the offline admin tools.
//!
//! Services reach other members only through this module (the forwarder, the directory,
//! placement); nothing here calls back up into them: what a membership change means for pools,
//! images or trust is the services' business, run around the primitives here.
//!
//! May call: client, events, raft, store, api, config, paths, tls, util.

pub mod admin;
pub mod db;
pub mod directory;
pub mod forward;
pub mod heartbeat;
pub mod membership;
pub mod placement;
pub mod rebalance;
pub mod relay;
pub mod removal;
pub mod roles;
pub mod runtime;
pub mod transport;
pub mod upgrade;

use std::sync::{Arc, RwLock};

use crate::events::EventHub;
use crate::paths::Paths;
use crate::store::global::GlobalDb;
use crate::store::local::LocalDb;
use crate::tls::KeyPairPem;
use crate::util::shutdown::Shutdown;

pub use directory::Peer;
pub use forward::Forwarded;
pub use runtime::Runtime;

/// Raft role numbers as LXD stores them in `raft_nodes.role`.
pub const ROLE_VOTER: i64 = 0;
pub const ROLE_STANDBY: i64 = 1;
pub const ROLE_SPARE: i64 = 2;

/// The user agent marking member-to-member requests.
pub const NOTIFIER_AGENT: &str = "lxd-cluster-notifier";

/// The member's handles the cluster machinery works with.
#[derive(Clone)]
pub struct Env {
    pub paths: Paths,
    pub local: LocalDb,
    pub global: GlobalDb,
    pub events: Arc<EventHub>,
    /// This member's own certificate (`server.crt`), presented to the other members.
    pub identity: KeyPairPem,
    pub shutdown: Shutdown,
}

/// A cluster failure, with the API status it answers with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Raft(#[from] crate::raft::RaftError),
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Address(#[from] crate::config::AddressError),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: String, source: std::io::Error },
}

impl Error {
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) | Error::Address(_) => 400,
            Error::NotFound(_) => 404,
            Error::Unavailable(_) => 503,
            Error::Internal(_) | Error::Tls(_) | Error::Io { .. } => 500,
            Error::Store(e) => e.status(),
            Error::Raft(e) => e.status(),
            Error::Client(e) => e.status(),
        }
    }

    pub fn io<'a>(what: &'static str, path: &'a std::path::Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |source| Error::Io { what, path: path.display().to_string(), source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The error for anything asked of a member that is not clustered.
pub fn not_clustered() -> Error {
    Error::BadRequest("This server is not clustered".into())
}

/// This member's place in a cluster: the running machinery while it is clustered, nothing
/// while it is standalone. Every service that may need another member holds it.
pub struct Cluster {
    env: Env,
    runtime: RwLock<Option<Arc<Runtime>>>,
    /// Serialises membership changes (bootstrap, join, role changes, removal) on this member.
    membership: Arc<tokio::sync::Mutex<()>>,
}

impl Cluster {
    pub fn new(env: Env) -> Arc<Cluster> {
        Arc::new(Cluster { env, runtime: RwLock::new(None), membership: Arc::new(tokio::sync::Mutex::new(())) })
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The running machinery, when this member is clustered.
    pub fn runtime(&self) -> Option<Arc<Runtime>> {
        match self.runtime.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The running machinery, or the error for a member that is not clustered.
    pub fn clustered(&self) -> Result<Arc<Runtime>> {
        self.runtime().ok_or_else(not_clustered)
    }

    pub fn is_clustered(&self) -> bool {
        self.runtime().is_some()
    }

    /// This member's id in the `nodes` table (1 when standalone).
    pub fn node_id(&self) -> i64 {
        self.runtime().map(|rt| rt.id as i64).unwrap_or(1)
    }

    /// Whether this member runs a newer version than another member and keeps its API closed.
    pub fn waits_for_upgrade(&self) -> bool {
        self.runtime().is_some_and(|rt| rt.waiting_for_upgrade.load(std::sync::atomic::Ordering::SeqCst))
    }

    pub fn membership_lock(&self) -> &Arc<tokio::sync::Mutex<()>> {
        &self.membership
    }

    /// Starts the machinery as member `id` of `members` (`bootstrap`: the first member).
    pub async fn start(&self, id: u64, members: &[crate::store::local::RaftNode], bootstrap: bool) -> Result<Arc<Runtime>> {
        let rt = runtime::start(&self.env, self.membership.clone(), id, members, bootstrap).await?;
        if let Ok(mut slot) = self.runtime.write() {
            *slot = Some(rt.clone());
        }
        Ok(rt)
    }

    /// At daemon start: a clustered member brings its machinery back up.
    pub async fn resume(&self) -> Result<Option<Arc<Runtime>>> {
        let nodes = self.env.local.raft_nodes().await?;
        if nodes.is_empty() {
            return Ok(None);
        }
        let member = self.env.local.config().await?;
        let address = crate::config::cluster_address(&member)?;
        let own = nodes.iter().find(|n| n.address == address).ok_or_else(|| {
            Error::Internal(format!("this member's address {address} is not in its raft configuration (see `lxd cluster show`)"))
        })?;
        let name = own.name.clone();
        let rt = self.start(own.id, &nodes, false).await?;
        if !name.is_empty() {
            self.env.events.set_location(&name);
        }
        admin::spawn_global_patch(rt.clone());
        upgrade::spawn_gate(rt.clone());
        Ok(Some(rt))
    }

    /// Stops the machinery and forgets it (this member left its cluster, or the daemon stops).
    pub async fn stop(&self) {
        let rt = self.runtime.write().ok().and_then(|mut slot| slot.take());
        if let Some(rt) = rt {
            rt.stop().await;
        }
    }

    /// Stops the machinery but keeps it visible until the daemon closes (shutdown).
    pub async fn close(&self) {
        if let Some(rt) = self.runtime() {
            rt.stop().await;
        }
    }
}
