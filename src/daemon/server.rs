//! Server information (`GET /1.0`) and server configuration changes (`PUT/PATCH /1.0`):
//! merging member-local and cluster-wide keys, validating all before changing any, moving the
//! HTTPS listener, and hashing the trust password.

use std::collections::BTreeMap;

use super::config::{self, Scope};
use super::{Daemon, Error, Result, trust};
use crate::api::{self, Server, ServerEnvironment, ServerUntrusted, StorageDriverInfo};
use crate::store::Batch;
use crate::store::global;

/// The member-local and cluster-wide configuration as stored, with the membership facts
/// `GET /1.0` reports (both change only through this daemon's own writes).
#[derive(Clone, Debug, Default)]
pub struct StoredConfig {
    pub member: BTreeMap<String, String>,
    pub cluster: BTreeMap<String, String>,
    pub clustered: bool,
    pub server_name: String,
}

impl StoredConfig {
    pub fn get(&self, key: &str) -> Option<&String> {
        self.member.get(key).or_else(|| self.cluster.get(key))
    }
}

/// A requested change to one key: a new value, "keep" (hidden keys echoed back as `true`), or unset.
enum Requested {
    Set(String),
    Keep,
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

/// Local addresses for a wildcard listen address (LXD lists them all in `addresses`).
fn expand_addresses(address: &str) -> Vec<String> {
    let Ok(canonical) = config::parse_address(address, 8443) else {
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

/// What `GET /1.0` shows that never changes while the daemon runs.
#[derive(Clone, Debug)]
pub struct StaticEnvironment {
    pub os_name: String,
    pub os_version: String,
    pub kernel: String,
    pub kernel_architecture: String,
    pub kernel_version: String,
    pub architectures: Vec<String>,
    pub api_extensions: Vec<String>,
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
            api_extensions: api::extensions::API_EXTENSIONS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Daemon {
    /// The stored configuration. A standalone member serves it from memory (only its own
    /// writes change it); in a cluster the cluster-wide part is read from the replicated
    /// database every time, so a change made on any member is seen at once.
    pub async fn stored_config(&self) -> Result<StoredConfig> {
        if let Some(mut c) = self.config_cache.read().ok().and_then(|c| c.clone()) {
            if self.global.is_replicated() {
                c.cluster = global::config::get_all(&self.global).await?;
            }
            return Ok(c);
        }
        let fresh = StoredConfig {
            member: self.local.config().await?,
            cluster: global::config::get_all(&self.global).await?,
            clustered: !self.local.raft_nodes().await?.is_empty(),
            server_name: self.server_name().await?,
        };
        if let Ok(mut c) = self.config_cache.write() {
            *c = Some(fresh.clone());
        }
        Ok(fresh)
    }

    /// Forgets the cached configuration (after any write to it).
    pub fn invalidate_config(&self) {
        if let Ok(mut c) = self.config_cache.write() {
            *c = None;
        }
    }

    /// The server name: the member's name once clustered, else the host name.
    pub async fn server_name(&self) -> Result<String> {
        let nodes = global::nodes::list(&self.global).await?;
        let own = config::cluster_address(&self.local.config().await?).ok();
        let name = nodes
            .iter()
            .find(|n| n.address != global::nodes::STANDALONE_ADDRESS && Some(&n.address) == own.as_ref())
            .map(|n| n.name.clone());
        Ok(name.unwrap_or_else(|| {
            nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
        }))
    }

    pub fn untrusted_info(&self) -> ServerUntrusted {
        ServerUntrusted {
            api_extensions: api::extensions::API_EXTENSIONS.iter().map(|s| s.to_string()).collect(),
            api_status: "stable".into(),
            api_version: "1.0".into(),
            auth: "untrusted".into(),
            public: false,
            auth_methods: vec!["tls".into()],
        }
    }

    pub async fn server_info(&self) -> Result<Server> {
        let stored = self.stored_config().await?;
        let mut cfg = serde_json::Map::new();
        for (k, v) in stored.member.iter().chain(stored.cluster.iter()) {
            let value = if config::is_hidden(k) { serde_json::Value::Bool(true) } else { v.clone().into() };
            cfg.insert(k.clone(), value);
        }
        let uts = nix::sys::utsname::uname().ok();
        let text = |f: Option<&std::ffi::OsStr>| f.map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let (os_name, os_version) = os_release();
        let identity = self.identity();
        let addresses = stored.member.get("core.https_address").map(|a| expand_addresses(a)).unwrap_or_default();
        let environment = ServerEnvironment {
            addresses,
            architectures: match std::env::consts::ARCH {
                "x86_64" => vec!["x86_64".into(), "i686".into()],
                other => vec![other.into()],
            },
            certificate_fingerprint: crate::tls::fingerprint_pem(&identity.cert).unwrap_or_default(),
            certificate: identity.cert,
            driver: "rxd".into(),
            driver_version: env!("CARGO_PKG_VERSION").into(),
            firewall: "nftables".into(),
            kernel: uts.as_ref().map(|u| text(Some(u.sysname()))).unwrap_or_default(),
            kernel_architecture: uts.as_ref().map(|u| text(Some(u.machine()))).unwrap_or_default(),
            kernel_features: BTreeMap::new(),
            kernel_version: uts.as_ref().map(|u| text(Some(u.release()))).unwrap_or_default(),
            lxc_features: BTreeMap::new(),
            os_name,
            os_version,
            project: "default".into(),
            server: "lxd".into(),
            server_clustered: stored.clustered,
            server_event_mode: "full-mesh".into(),
            server_name: stored.server_name.clone(),
            server_pid: i64::from(std::process::id()),
            server_version: api::SERVER_VERSION.into(),
            storage: "dir".into(),
            storage_version: "1".into(),
            storage_supported_drivers: vec![StorageDriverInfo { name: "dir".into(), version: "1".into(), remote: false }],
        };
        let u = self.untrusted_info();
        Ok(Server {
            config: cfg,
            api_extensions: u.api_extensions,
            api_status: u.api_status,
            api_version: u.api_version,
            auth: "trusted".into(),
            public: false,
            auth_methods: u.auth_methods,
            environment,
        })
    }

    /// Applies a `PUT` (replace: keys left out are unset) or `PATCH` (merge) of the server
    /// configuration. Every key is validated before anything changes; a listener that cannot be
    /// bound refuses the change.
    pub async fn update_config(&self, body: &serde_json::Map<String, serde_json::Value>, replace: bool) -> Result<()> {
        let _guard = self.config_lock.lock().await;
        let stored = self.stored_config().await?;

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
            config::validate(k, value).map_err(Error::BadRequest)?;
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
            for k in stored.member.keys() {
                if !requested.contains_key(k) {
                    member.insert(k.clone(), None);
                }
            }
            for k in stored.cluster.keys() {
                if !requested.contains_key(k) {
                    cluster.insert(k.clone(), None);
                }
            }
        }
        if member.is_empty() && cluster.is_empty() {
            return Ok(());
        }
        if let Some(Some(pw)) = cluster.get_mut("core.trust_password") {
            *pw = trust::hash_password(pw);
        }
        if member.contains_key("cluster.https_address") && !self.local.raft_nodes().await?.is_empty() {
            return Err(Error::BadRequest("Changing cluster.https_address is currently not supported".into()));
        }

        let old_address = stored.member.get("core.https_address").cloned();
        let new_address = member.get("core.https_address").cloned();
        if let (Some(new), Some(control)) = (&new_address, self.listener_control()) {
            control
                .set_https_address(new.as_deref())
                .map_err(|e| Error::BadRequest(format!("Cannot listen on https socket: {e}")))?;
        }
        let written = async {
            self.local.update_config(&member).await?;
            let mut b = Batch::new();
            global::config::update(&mut b, &cluster);
            if !b.is_empty() {
                self.global.apply(&b).await?;
            }
            Ok::<(), crate::store::StoreError>(())
        }
        .await;
        self.invalidate_config();
        if written.is_ok()
            && (member.contains_key("core.https_address") || member.contains_key("cluster.https_address"))
            && let Ok(current) = self.local.config().await
            && let Err(e) = self.sync_cluster_listener(&current)
        {
            tracing::error!(error = %e, "cannot listen on the cluster address");
        }
        if let Err(e) = written {
            if let (Some(_), Some(control)) = (&new_address, self.listener_control()) {
                let _ = control.set_https_address(old_address.as_deref());
            }
            return Err(e.into());
        }
        self.events.lifecycle("default", "config-updated", "/1.0".into(), None);
        Ok(())
    }
}
