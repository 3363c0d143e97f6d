//! Server information (`GET /1.0`) and server configuration (`PUT/PATCH /1.0`): member-local
//! and cluster-wide keys merged, every key validated before any changes, the HTTPS listeners
//! moved, the trust password hashed, and an If-Match honoured atomically (this member's part
//! under its configuration lock, the cluster's part guarded inside the write itself).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

use super::identity::Identity;
use super::images::Images;
use super::{Error, Result, trust};
use crate::api::{self, Server, ServerEnvironment, ServerUntrusted, StorageDriverInfo};
use crate::cluster::Cluster;
use crate::config::{self, Scope};
use crate::events::EventHub;
use crate::store::global::{self, GlobalDb};
use crate::store::local::LocalDb;
use crate::store::{Batch, Version};

/// Opens and closes an HTTPS listener. Implemented by the HTTP server; this service only asks
/// for the change and learns whether it worked.
pub trait ListenerControl: Send + Sync {
    /// Binds (or rebinds, or with None closes) the listener. An error leaves the previous
    /// listener in place.
    fn set_address(&self, address: Option<&str>) -> std::result::Result<(), ListenError>;
}

/// Why a listener could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ListenError(pub String);

/// The member-local and cluster-wide configuration as stored.
#[derive(Clone, Debug, Default)]
pub struct StoredConfig {
    pub member: BTreeMap<String, String>,
    pub cluster: BTreeMap<String, String>,
    pub clustered: bool,
}

impl StoredConfig {
    pub fn get(&self, key: &str) -> Option<&String> {
        self.member.get(key).or_else(|| self.cluster.get(key))
    }

    /// The configuration as `GET /1.0` shows it (hidden keys as `true`).
    pub fn view(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut cfg = serde_json::Map::new();
        for (k, v) in self.member.iter().chain(self.cluster.iter()) {
            let value = if config::is_hidden(k) { serde_json::Value::Bool(true) } else { v.clone().into() };
            cfg.insert(k.clone(), value);
        }
        cfg
    }
}

/// A requested change to one key: a new value, or "keep" (hidden keys echoed back as `true`).
enum Requested {
    Set(String),
    Keep,
}

/// What `GET /1.0` shows that never changes while the daemon runs.
#[derive(Clone, Debug)]
pub struct StaticEnvironment {
    pub os_name: String,
    pub os_version: String,
    pub kernel: String,
    pub kernel_architecture: String,
    pub kernel_version: String,
    pub architectures: Vec<String>,
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (field("NAME"), field("VERSION_ID"))
}

impl StaticEnvironment {
    pub fn probe() -> StaticEnvironment {
        let uts = nix::sys::utsname::uname().ok();
        let text = |f: Option<&std::ffi::OsStr>| f.map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let (os_name, os_version) = os_release();
        StaticEnvironment {
            os_name,
            os_version,
            kernel: uts.as_ref().map(|u| text(Some(u.sysname()))).unwrap_or_default(),
            kernel_architecture: uts.as_ref().map(|u| text(Some(u.machine()))).unwrap_or_default(),
            kernel_version: uts.as_ref().map(|u| text(Some(u.release()))).unwrap_or_default(),
            architectures: match std::env::consts::ARCH {
                "x86_64" => vec!["x86_64".into(), "i686".into()],
                other => vec![other.into()],
            },
        }
    }
}

/// Local addresses for a wildcard listen address (LXD lists them all in `addresses`).
fn expand_addresses(address: &str) -> Vec<String> {
    let Ok(canonical) = config::parse_address(address, config::address::DEFAULT_PORT) else {
        return vec![];
    };
    let Some((host, port)) = canonical.rsplit_once(':') else {
        return vec![];
    };
    if !config::is_wildcard(&canonical) {
        return vec![canonical.clone()];
    }
    let want_v6 = host != "0.0.0.0";
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(sa) = a.address else { continue };
            if let Some(v4) = sa.as_sockaddr_in() {
                out.push(format!("{}:{port}", v4.ip()));
            } else if let (true, Some(v6)) = (want_v6, sa.as_sockaddr_in6())
                && !v6.ip().is_unicast_link_local()
            {
                out.push(format!("[{}]:{port}", v6.ip()));
            }
        }
    }
    out
}

/// What untrusted clients see of any member.
pub fn untrusted_info() -> ServerUntrusted {
    ServerUntrusted {
        api_extensions: api::extensions::API_EXTENSIONS.iter().map(|s| s.to_string()).collect(),
        api_status: "stable".into(),
        api_version: "1.0".into(),
        auth: "untrusted".into(),
        public: false,
        auth_methods: vec!["tls".into()],
    }
}

pub struct ServerConfig {
    local: LocalDb,
    global: GlobalDb,
    cluster: Arc<Cluster>,
    identity: Arc<Identity>,
    events: Arc<EventHub>,
    images: Arc<Images>,
    environment: StaticEnvironment,
    /// The member-local part: it changes only through this member's own writes, so it is
    /// kept in memory.
    cache: RwLock<Option<BTreeMap<String, String>>>,
    /// The cluster-wide part while standalone (then too only this member writes it).
    standalone_cluster: RwLock<Option<BTreeMap<String, String>>>,
    listener: OnceLock<Arc<dyn ListenerControl>>,
    /// The member-to-member listener, when `cluster.https_address` is not served by the
    /// `core.https_address` one.
    cluster_listener: OnceLock<Arc<dyn ListenerControl>>,
    /// Serialises configuration changes so listener moves and database writes stay in step.
    lock: tokio::sync::Mutex<()>,
}

impl ServerConfig {
    pub fn new(
        local: LocalDb,
        global: GlobalDb,
        cluster: Arc<Cluster>,
        identity: Arc<Identity>,
        events: Arc<EventHub>,
        images: Arc<Images>,
    ) -> ServerConfig {
        ServerConfig {
            local,
            global,
            cluster,
            identity,
            events,
            images,
            environment: StaticEnvironment::probe(),
            cache: RwLock::new(None),
            standalone_cluster: RwLock::new(None),
            listener: OnceLock::new(),
            cluster_listener: OnceLock::new(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Connects the listeners (the HTTP server's) this service moves.
    pub fn set_listeners(&self, rest: Arc<dyn ListenerControl>, cluster: Arc<dyn ListenerControl>) {
        // Set once at start: a second call is a programming error the first one survives.
        let _ = self.listener.set(rest);
        let _ = self.cluster_listener.set(cluster);
    }

    /// This member's own configuration (`database/local.db`).
    pub async fn member_config(&self) -> Result<BTreeMap<String, String>> {
        Ok(self.member_part().await?.0)
    }

    async fn member_part(&self) -> Result<(BTreeMap<String, String>, bool)> {
        // Clustered or not is whether the cluster machinery runs, as every other endpoint
        // sees it (a member being reset answers "not clustered" everywhere at once).
        let clustered = self.cluster.is_clustered();
        if let Some(c) = self.cache.read().ok().and_then(|c| c.clone()) {
            return Ok((c, clustered));
        }
        let fresh = self.local.config().await?;
        if let Ok(mut c) = self.cache.write() {
            *c = Some(fresh.clone());
        }
        Ok((fresh, clustered))
    }

    /// Forgets what is kept in memory (after this member's configuration or clustering changed).
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.cache.write() {
            *c = None;
        }
        if let Ok(mut c) = self.standalone_cluster.write() {
            *c = None;
        }
    }

    /// The stored configuration. A standalone member serves it from memory (only its own
    /// writes change it); in a cluster the cluster-wide part is read from the replicated
    /// database every time, so a change made on any member is seen at once.
    pub async fn stored(&self) -> Result<StoredConfig> {
        let (member, clustered) = self.member_part().await?;
        if !clustered && let Some(cluster) = self.standalone_cluster.read().ok().and_then(|c| c.clone()) {
            return Ok(StoredConfig { member, cluster, clustered });
        }
        let cluster = global::config::get_all(&self.global).await?;
        if !clustered && let Ok(mut c) = self.standalone_cluster.write() {
            *c = Some(cluster.clone());
        }
        Ok(StoredConfig { member, cluster, clustered })
    }

    /// The stored configuration and the version a guarded write of its cluster-wide part needs.
    async fn stored_versioned(&self) -> Result<(StoredConfig, Version)> {
        let (member, clustered) = self.member_part().await?;
        let (cluster, version) = global::config::get_versioned(&self.global).await?;
        Ok((StoredConfig { member, cluster, clustered }, version))
    }

    /// The server name: the member's name once clustered, else the host name.
    pub fn server_name(&self) -> String {
        let hostname =
            || nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into());
        match self.cluster.runtime() {
            Some(rt) => rt.members().into_iter().find(|m| m.id == rt.id).map(|m| m.name).unwrap_or_else(hostname),
            None => hostname(),
        }
    }

    /// `GET /1.0` for a trusted client, with the ETag of its configuration.
    pub async fn info(&self) -> Result<(Server, String)> {
        let stored = self.stored().await?;
        let cfg = stored.view();
        let etag = crate::api::etag_of(&cfg);
        let identity = self.identity.presented_cert();
        let env = &self.environment;
        let addresses = stored.member.get("core.https_address").map(|a| expand_addresses(a)).unwrap_or_default();
        let environment = ServerEnvironment {
            addresses,
            architectures: env.architectures.clone(),
            certificate_fingerprint: self.identity.fingerprint(),
            certificate: identity.cert,
            driver: "rxd".into(),
            driver_version: env!("CARGO_PKG_VERSION").into(),
            firewall: "nftables".into(),
            kernel: env.kernel.clone(),
            kernel_architecture: env.kernel_architecture.clone(),
            kernel_features: BTreeMap::new(),
            kernel_version: env.kernel_version.clone(),
            lxc_features: BTreeMap::new(),
            os_name: env.os_name.clone(),
            os_version: env.os_version.clone(),
            project: "default".into(),
            server: "lxd".into(),
            server_clustered: stored.clustered,
            server_event_mode: "full-mesh".into(),
            server_name: self.server_name(),
            server_pid: i64::from(std::process::id()),
            server_version: api::SERVER_VERSION.into(),
            storage: "dir".into(),
            storage_version: "1".into(),
            storage_supported_drivers: vec![StorageDriverInfo { name: "dir".into(), version: "1".into(), remote: false }],
        };
        let u = untrusted_info();
        let server = Server {
            config: cfg,
            api_extensions: u.api_extensions,
            api_status: u.api_status,
            api_version: u.api_version,
            auth: "trusted".into(),
            public: false,
            auth_methods: u.auth_methods,
            environment,
        };
        Ok((server, etag))
    }

    /// Opens, moves or closes the separate cluster listener so that `cluster.https_address` is
    /// served whenever the REST API listener does not cover it.
    pub fn sync_cluster_listener(&self, member: &BTreeMap<String, String>) -> std::result::Result<(), ListenError> {
        let Some(control) = self.cluster_listener.get() else { return Ok(()) };
        let core = member.get("core.https_address").map(String::as_str).unwrap_or("");
        let wanted = member
            .get("cluster.https_address")
            .map(String::as_str)
            .filter(|c| !c.is_empty() && !config::is_address_covered(core, c));
        control.set_address(wanted)
    }

    /// At start: binds the listeners the stored configuration asks for.
    pub async fn listen(&self) -> Result<()> {
        let member = self.member_config().await?;
        if let (Some(addr), Some(control)) = (member.get("core.https_address"), self.listener.get())
            && let Err(e) = control.set_address(Some(addr))
        {
            tracing::error!(address = %addr, error = %e, "cannot bind the HTTPS listener");
        }
        if let Err(e) = self.sync_cluster_listener(&member) {
            tracing::error!(error = %e, "cannot bind the cluster listener");
        }
        Ok(())
    }

    /// At shutdown: closes both listeners.
    pub fn close_listeners(&self) {
        for control in [self.listener.get(), self.cluster_listener.get()].into_iter().flatten() {
            if let Err(e) = control.set_address(None) {
                tracing::debug!(error = %e, "closing a listener");
            }
        }
    }

    /// Applies a `PUT` (`replace`: keys left out are unset) or `PATCH` (merge) of the server
    /// configuration. `if_match` is the ETag the client read; it must still hold when the change
    /// is written. Every key is validated before anything changes; a listener that cannot be
    /// bound refuses the change.
    pub async fn update(
        &self,
        body: &serde_json::Map<String, serde_json::Value>,
        replace: bool,
        if_match: Option<&str>,
    ) -> Result<()> {
        let _guard = self.lock.lock().await;
        let (stored, version) = self.stored_versioned().await?;
        if let Some(given) = if_match {
            let current = crate::api::etag_of(&stored.view());
            if given != current {
                return Err(Error::etag_mismatch(&current, given));
            }
        }

        let mut requested: BTreeMap<String, Requested> = BTreeMap::new();
        for (k, v) in body {
            let r = match v {
                serde_json::Value::Bool(true) if config::is_hidden(k) => Requested::Keep,
                other => Requested::Set(api::config_value_to_string(other)),
            };
            requested.insert(k.clone(), r);
        }

        let mut member: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut cluster: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (k, r) in &requested {
            let Requested::Set(value) = r else { continue };
            config::validate(k, value)?;
            let target = match config::scope(k) {
                Some(Scope::Member) => &mut member,
                _ => &mut cluster,
            };
            if stored.get(k) == Some(value) {
                continue;
            }
            target.insert(k.clone(), if value.is_empty() { None } else { Some(value.clone()) });
        }
        if replace {
            for k in stored.member.keys().filter(|k| !requested.contains_key(*k)) {
                member.insert(k.clone(), None);
            }
            for k in stored.cluster.keys().filter(|k| !requested.contains_key(*k)) {
                cluster.insert(k.clone(), None);
            }
        }
        if member.is_empty() && cluster.is_empty() {
            return Ok(());
        }
        if let Some(Some(pw)) = cluster.get_mut("core.trust_password") {
            *pw = trust::hash_password(pw);
        }
        if member.contains_key("cluster.https_address") && stored.clustered {
            return Err(Error::BadRequest("Changing cluster.https_address is currently not supported".into()));
        }

        let old_address = stored.member.get("core.https_address").cloned();
        let new_address = member.get("core.https_address").cloned();
        if let (Some(new), Some(control)) = (&new_address, self.listener.get()) {
            control.set_address(new.as_deref()).map_err(|e| Error::BadRequest(format!("Cannot listen on https socket: {e}")))?;
        }
        let written = async {
            if !cluster.is_empty() {
                let mut b = Batch::new();
                if if_match.is_some() {
                    b.require_unchanged(&version, "ETag doesn't match: the configuration changed meanwhile");
                }
                global::config::update(&mut b, &cluster);
                self.global.apply(&b).await?;
            }
            self.local.update_config(&member).await?;
            Ok::<(), crate::store::StoreError>(())
        }
        .await;
        self.invalidate();
        if let Err(e) = written {
            if let (Some(_), Some(control)) = (&new_address, self.listener.get())
                && let Err(back) = control.set_address(old_address.as_deref())
            {
                tracing::error!(error = %back, "cannot move the HTTPS listener back");
            }
            return Err(e.into());
        }
        if member.contains_key("core.https_address") || member.contains_key("cluster.https_address") {
            let current = self.member_config().await?;
            if let Err(e) = self.sync_cluster_listener(&current) {
                tracing::error!(error = %e, "cannot listen on the cluster address");
            }
        }
        self.events.lifecycle("default", "config-updated", "/1.0".into(), None);
        self.react(body, replace, &stored);
        Ok(())
    }

    /// What setting some cluster-wide keys sets in motion: new role limits take effect now,
    /// not at the next heartbeat round; a new image replica count copies images at once.
    fn react(&self, body: &serde_json::Map<String, serde_json::Value>, replace: bool, before: &StoredConfig) {
        let Some(rt) = self.cluster.runtime() else { return };
        let touched = |k: &str| body.contains_key(k) || (replace && before.cluster.contains_key(k));
        if touched("cluster.max_voters") || touched("cluster.max_standby") {
            crate::cluster::rebalance::nudge(&rt);
        }
        if body.contains_key("cluster.images_minimal_replica") {
            let images = self.images.clone();
            tokio::spawn(async move { images.rebalance().await });
        }
    }
}
