//! The daemon's state and its library of actions: it owns the member's directories, both
//! databases, the certificates, the trust cache, operations and events. The API layer calls
//! into it; nothing here knows about HTTP.
//!
//! May call: store, tls, util. Called by: api (the HTTP server) and the daemon applet.

pub mod certificates;
pub mod config;
pub mod error;
pub mod events;
pub mod images;
pub mod instances;
pub mod operations;
pub mod profiles;
pub mod projects;
pub mod server;
pub mod snapshots;
pub mod sql;
pub mod storage;
pub mod trust;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

pub use error::{Error, Result};
use events::EventHub;
use operations::Operations;

use crate::store::Batch;
use crate::store::global::{self, GlobalDb};
use crate::store::local::LocalDb;
use crate::tls::{self, CertKind, KeyPairPem};
use crate::util::time;

/// Where everything of one member lives, under `LXD_DIR`.
#[derive(Clone, Debug)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(dir: impl Into<PathBuf>) -> Paths {
        Paths { dir: dir.into() }
    }
    /// `$LXD_DIR`, else `/var/lib/rxd`.
    pub fn from_env() -> Paths {
        Paths::new(std::env::var_os("LXD_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/rxd")))
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("unix.socket")
    }
    pub fn database(&self) -> PathBuf {
        self.dir.join("database")
    }
    pub fn local_db(&self) -> PathBuf {
        self.database().join("local.db")
    }
    pub fn global_dir(&self) -> PathBuf {
        self.database().join("global")
    }
    pub fn global_db(&self) -> PathBuf {
        self.global_dir().join("state.db")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join(".rxd.lock")
    }
    pub fn cluster_cert(&self) -> PathBuf {
        self.dir.join("cluster.crt")
    }
    pub fn storage_pools(&self) -> PathBuf {
        self.dir.join("storage-pools")
    }
}

/// Opens and closes the HTTPS listener when `core.https_address` changes. Implemented by the
/// API layer; the daemon only asks for the change and learns whether it worked.
pub trait ListenerControl: Send + Sync {
    /// Binds (or rebinds, or with None closes) the network listener. Errors leave the previous
    /// listener in place.
    fn set_https_address(&self, address: Option<&str>) -> std::result::Result<(), String>;
}

/// A trusted certificate as the authentication path needs it.
#[derive(Clone, Debug)]
pub struct Trusted {
    pub kind: i64,
    pub name: String,
}

pub struct Daemon {
    pub paths: Paths,
    pub local: LocalDb,
    pub global: GlobalDb,
    pub events: Arc<EventHub>,
    pub operations: Arc<Operations>,
    /// This member's own certificate (`server.crt`).
    pub server_cert: KeyPairPem,
    /// What the listeners present: the cluster certificate once clustered, else `server_cert`;
    /// with its fingerprint.
    listener_identity: RwLock<(KeyPairPem, String, Arc<rustls::ServerConfig>)>,
    /// The running cluster machinery (raft node, transport, replicated database), if clustered.
    cluster: RwLock<Option<Arc<crate::cluster::runtime::Runtime>>>,
    /// Serialises membership changes on this member.
    pub membership_lock: tokio::sync::Mutex<()>,
    /// Facts about the host probed once at start.
    pub environment: server::StaticEnvironment,
    config_cache: RwLock<Option<server::StoredConfig>>,
    trusted: RwLock<HashMap<String, Trusted>>,
    trust_refreshed: std::sync::Mutex<std::time::Instant>,
    /// Members' certificates trusted while joining, before our replica holds the trust store.
    member_trust: RwLock<HashMap<String, Trusted>>,
    listeners: OnceLock<Arc<dyn ListenerControl>>,
    /// The member-to-member listener, when `cluster.https_address` is not served by the
    /// `core.https_address` one.
    cluster_listener: OnceLock<Arc<dyn ListenerControl>>,
    /// Serialises configuration changes so listener moves and database writes stay in step.
    pub config_lock: tokio::sync::Mutex<()>,
    shutting_down: AtomicBool,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Why the daemon stops on its own, when it does (reported as its exit error).
    fatal: std::sync::Mutex<Option<String>>,
    /// The container driver for this member's instances.
    pub driver: crate::instance::Driver,
    /// Instances this daemon is stopping itself (their end is not a surprise).
    pub stopping: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Why a daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("another rxd daemon is already running on {dir} (pid {pid}); stop it first with `lxd shutdown`")]
    AlreadyRunning { dir: String, pid: String },
    #[error("failed to prepare {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Daemon(#[from] Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io { path: path.display().to_string(), source }
}

fn ensure_dir(path: &Path, mode: u32) -> std::result::Result<(), StartError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).map_err(io_err(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

/// Takes the per-directory lock that keeps a second daemon off the same `LXD_DIR`.
fn take_lock(paths: &Paths) -> std::result::Result<nix::fcntl::Flock<std::fs::File>, StartError> {
    use std::io::{Read, Seek, Write};
    let path = paths.lock_file();
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io_err(&path))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let _ = lock.set_len(0);
            let _ = lock.seek(std::io::SeekFrom::Start(0));
            let _ = write!(lock, "{}", std::process::id());
            Ok(lock)
        }
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Err(StartError::AlreadyRunning { dir: paths.dir.display().to_string(), pid: pid.trim().to_string() })
        }
    }
}

/// The pid of the daemon running on `paths`, if one holds its directory lock.
pub fn running_pid(paths: &Paths) -> Option<String> {
    use std::io::Read;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(paths.lock_file()).ok()?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(_released_on_drop) => None,
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Some(pid.trim().to_string())
        }
    }
}

/// Architecture id as LXD numbers them (x86_64 = 2, aarch64 = 4).
pub fn architecture_id() -> i64 {
    match std::env::consts::ARCH {
        "x86" => 1,
        "x86_64" => 2,
        "arm" => 3,
        "aarch64" => 4,
        "powerpc64" => 6,
        "s390x" => 7,
        _ => 0,
    }
}

impl Daemon {
    /// Prepares the member's directories, identity and databases. Refuses when another daemon
    /// holds the directory or when a database is damaged.
    pub async fn open(paths: Paths) -> std::result::Result<Arc<Daemon>, StartError> {
        ensure_dir(&paths.dir, 0o711)?;
        let lock = take_lock(&paths)?;
        ensure_dir(&paths.database(), 0o700)?;
        ensure_dir(&paths.global_dir(), 0o750)?;
        for sub in ["images", "logs", "storage-pools", "containers", "backups"] {
            ensure_dir(&paths.dir.join(sub), 0o711)?;
        }
        let server_cert = tls::load_or_generate(&paths.dir, "server", CertKind::Server)?;
        let local = LocalDb::open(&paths.local_db()).await?;
        let global = GlobalDb::open_local(&paths.global_db()).await?;

        // A clustered member's global database is the replicated state machine: it is only
        // ever changed through the cluster, never directly here.
        let clustered = !local.raft_nodes().await?.is_empty();
        let mut b = Batch::new();
        let now = time::rfc3339(time::now_nanos());
        global::nodes::ensure_standalone(
            &mut b,
            global::schema_version(),
            crate::api::extensions::count(),
            architecture_id(),
            &now,
        );
        global::operations::delete_for_node(&mut b, 1);
        if !clustered {
            global.apply(&b).await?;
        }

        let events = Arc::new(EventHub::new());
        let operations = Operations::new(events.clone());
        let daemon = Arc::new(Daemon {
            paths: paths.clone(),
            local,
            global,
            events,
            operations,
            listener_identity: RwLock::new(Self::load_listener_identity(&paths, &server_cert)?),
            cluster: RwLock::new(None),
            membership_lock: tokio::sync::Mutex::new(()),
            server_cert,
            environment: server::StaticEnvironment::probe(),
            config_cache: RwLock::new(None),
            trusted: RwLock::new(HashMap::new()),
            trust_refreshed: std::sync::Mutex::new(std::time::Instant::now()),
            member_trust: RwLock::new(HashMap::new()),
            listeners: OnceLock::new(),
            cluster_listener: OnceLock::new(),
            config_lock: tokio::sync::Mutex::new(()),
            shutting_down: AtomicBool::new(false),
            shutdown: tokio::sync::watch::channel(false).0,
            fatal: std::sync::Mutex::new(None),
            driver: crate::instance::Driver::new(&paths.dir),
            stopping: Arc::new(std::sync::Mutex::new(std::collections::HashSet::new())),
            _lock: lock,
        });
        daemon.refresh_trust().await.map_err(|e| StartError::Store(crate::store::StoreError::Guard(e.to_string())))?;
        Ok(daemon)
    }

    pub fn set_listener_control(&self, control: Arc<dyn ListenerControl>) {
        let _ = self.listeners.set(control);
    }

    pub fn listener_control(&self) -> Option<&Arc<dyn ListenerControl>> {
        self.listeners.get()
    }

    pub fn set_cluster_listener_control(&self, control: Arc<dyn ListenerControl>) {
        let _ = self.cluster_listener.set(control);
    }

    /// Opens, moves or closes the separate cluster listener so that `cluster.https_address` is
    /// served whenever the REST API listener does not cover it.
    pub fn sync_cluster_listener(&self, member: &std::collections::BTreeMap<String, String>) -> std::result::Result<(), String> {
        let Some(control) = self.cluster_listener.get() else { return Ok(()) };
        let core = member.get("core.https_address").map(String::as_str).unwrap_or("");
        let wanted = member
            .get("cluster.https_address")
            .map(String::as_str)
            .filter(|c| !c.is_empty() && !config::is_address_covered(core, c));
        control.set_https_address(wanted)
    }

    /// Reloads the in-memory trust cache from the trust store.
    pub async fn refresh_trust(&self) -> Result<()> {
        // Linearizable (a certificate just added through another member is seen); without a
        // quorum, this member's own replica still lets trusted clients in.
        let replica = self.cluster_runtime().and_then(|rt| rt.raft());
        let fresh = tokio::time::timeout(std::time::Duration::from_secs(3), global::certificates::list(&self.global)).await;
        let certs = match (fresh, replica) {
            (Ok(Ok(certs)), _) => certs,
            (_, Some(raft)) => {
                let db = raft.state_machine.database();
                let db = db.read().await;
                global::certificates::list_from_replica(&db).await?
            }
            (Ok(Err(e)), None) => return Err(e.into()),
            (Err(_), None) => return Err(Error::Unavailable("cluster database unavailable".into())),
        };
        if let Ok(mut at) = self.trust_refreshed.lock() {
            *at = std::time::Instant::now();
        }
        let map = certs.into_iter().map(|c| (c.fingerprint, Trusted { kind: c.kind, name: c.name })).collect();
        if let Ok(mut t) = self.trusted.write() {
            *t = map;
        }
        Ok(())
    }

    /// Looks a fingerprint up, reloading the trust store first (at most every 250 ms) when it
    /// is unknown: another member may just have added it.
    pub async fn trusted_fresh(&self, fingerprint: &str) -> Option<Trusted> {
        if let Some(t) = self.trusted(fingerprint) {
            return Some(t);
        }
        let stale = self.trust_refreshed.lock().map(|at| at.elapsed() > std::time::Duration::from_millis(250)).unwrap_or(true);
        if stale {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(4), self.refresh_trust()).await;
        }
        self.trusted(fingerprint)
    }

    /// Trusts other members' server certificates (fingerprint, name) ahead of the trust store.
    pub fn trust_members(&self, certs: impl Iterator<Item = (String, String)>) {
        if let Ok(mut t) = self.member_trust.write() {
            for (fp, name) in certs {
                t.insert(fp, Trusted { kind: global::certificates::TYPE_SERVER, name });
            }
        }
    }

    /// Forgets the member certificates trusted while joining (after leaving the cluster).
    pub fn clear_member_trust(&self) {
        if let Ok(mut t) = self.member_trust.write() {
            t.clear();
        }
    }

    pub fn trusted(&self, fingerprint: &str) -> Option<Trusted> {
        if let Some(t) = self.member_trust.read().ok().and_then(|m| m.get(fingerprint).cloned()) {
            return Some(t);
        }
        self.trusted.read().ok()?.get(fingerprint).cloned()
    }

    fn load_listener_identity(
        paths: &Paths,
        server: &KeyPairPem,
    ) -> std::result::Result<(KeyPairPem, String, Arc<rustls::ServerConfig>), StartError> {
        let pair = if paths.dir.join("cluster.crt").exists() {
            tls::load_or_generate(&paths.dir, "cluster", CertKind::Server)?
        } else {
            server.clone()
        };
        let fp = tls::fingerprint_pem(&pair.cert)?;
        let config = tls::server_config(&pair)?;
        Ok((pair, fp, config))
    }

    /// The TLS configuration listeners accept new connections with.
    pub fn tls_server_config(&self) -> Arc<rustls::ServerConfig> {
        match self.listener_identity.read() {
            Ok(i) => i.2.clone(),
            Err(p) => p.into_inner().2.clone(),
        }
    }

    /// The certificate the HTTPS listeners present.
    pub fn identity(&self) -> KeyPairPem {
        self.listener_identity.read().map(|i| i.0.clone()).unwrap_or_else(|_| self.server_cert.clone())
    }

    pub fn identity_fingerprint(&self) -> String {
        self.listener_identity.read().map(|i| i.1.clone()).unwrap_or_default()
    }

    /// Switches the listeners to `pair` (the cluster certificate after bootstrap or join).
    pub fn set_identity(&self, pair: KeyPairPem) -> std::result::Result<(), tls::TlsError> {
        let fp = tls::fingerprint_pem(&pair.cert)?;
        let config = tls::server_config(&pair)?;
        if let Ok(mut i) = self.listener_identity.write() {
            *i = (pair, fp, config);
        }
        Ok(())
    }

    /// This member's id in the `nodes` table (1 when standalone).
    pub fn node_id(&self) -> i64 {
        self.cluster_runtime().map(|rt| rt.id as i64).unwrap_or(1)
    }

    pub fn cluster_runtime(&self) -> Option<Arc<crate::cluster::runtime::Runtime>> {
        self.cluster.read().ok()?.clone()
    }

    pub fn set_cluster_runtime(&self, rt: Option<Arc<crate::cluster::runtime::Runtime>>) {
        if let Ok(mut c) = self.cluster.write() {
            *c = rt;
        }
        self.invalidate_config();
    }

    pub fn begin_shutdown(&self) {
        if !self.shutting_down.swap(true, Ordering::SeqCst) {
            let _ = self.shutdown.send(true);
        }
    }

    /// Stops the daemon because it cannot go on; `serve` reports `reason` as its error.
    pub fn fail(&self, reason: &str) {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert_with(|| reason.to_string());
        }
        self.begin_shutdown();
    }

    pub fn fatal_error(&self) -> Option<String> {
        self.fatal.lock().ok()?.clone()
    }

    /// Resolves once shutdown has begun (immediately if it already has).
    pub async fn shutdown_requested(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub async fn close(&self) {
        if let Some(rt) = self.cluster_runtime() {
            rt.stop().await;
        }
        self.global.close().await;
        self.local.database().close().await;
    }
}
