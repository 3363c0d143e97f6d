//! The global (cluster-wide) database: its schema and the typed functions over it. Every read
//! and write goes through [`GlobalDb`], so the transport underneath (a local SQLite file on a
//! standalone member, the replicated state machine in a cluster) is invisible to callers.

pub mod certificates;
pub mod cluster_groups;
pub mod config;
pub mod images;
pub mod instances;
pub mod nodes;
pub mod operations;
pub mod profiles;
pub mod projects;
pub mod snapshots;
pub mod storage_pools;

use std::path::Path;
use std::sync::Arc;

use super::Result;
use super::db::{Database, Rows};
use super::migrate::Migration;
use super::value::{Batch, Stmt};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
CREATE TABLE config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    UNIQUE (key)
);
CREATE TABLE nodes_failure_domains (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (name)
);
CREATE TABLE nodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL,
    schema INTEGER NOT NULL,
    api_extensions INTEGER NOT NULL,
    heartbeat DATETIME,
    state INTEGER NOT NULL DEFAULT 0,
    arch INTEGER NOT NULL DEFAULT 0 CHECK (arch > 0),
    failure_domain_id INTEGER DEFAULT NULL REFERENCES nodes_failure_domains (id) ON DELETE SET NULL,
    UNIQUE (name),
    UNIQUE (address)
);
CREATE TABLE certificates (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    fingerprint TEXT NOT NULL,
    type INTEGER NOT NULL,
    name TEXT NOT NULL,
    certificate TEXT NOT NULL,
    restricted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (fingerprint)
);
CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    UNIQUE (name)
);
CREATE TABLE projects_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,
    UNIQUE (project_id, key)
);
CREATE TABLE certificates_projects (
    certificate_id INTEGER NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    UNIQUE (certificate_id, project_id)
);
CREATE TABLE profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    UNIQUE (project_id, name)
);
CREATE TABLE profiles_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    profile_id INTEGER NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,
    UNIQUE (profile_id, key)
);
CREATE TABLE profiles_devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    profile_id INTEGER NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    UNIQUE (profile_id, name)
);
CREATE TABLE profiles_devices_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    profile_device_id INTEGER NOT NULL REFERENCES profiles_devices (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,
    UNIQUE (profile_device_id, key)
);
CREATE TABLE storage_pools (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    driver TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    state INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name)
);
CREATE TABLE storage_pools_nodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    storage_pool_id INTEGER NOT NULL REFERENCES storage_pools (id) ON DELETE CASCADE,
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    state INTEGER NOT NULL DEFAULT 0,
    UNIQUE (storage_pool_id, node_id)
);
CREATE TABLE storage_pools_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    storage_pool_id INTEGER NOT NULL REFERENCES storage_pools (id) ON DELETE CASCADE,
    node_id INTEGER REFERENCES nodes (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,
    UNIQUE (storage_pool_id, node_id, key)
);
CREATE TABLE operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    uuid TEXT NOT NULL,
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    type INTEGER NOT NULL DEFAULT 0,
    project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE,
    UNIQUE (uuid)
);
INSERT INTO projects (id, name, description) VALUES (1, 'default', 'Default LXD project');
INSERT INTO projects_config (project_id, key, value) VALUES
    (1, 'features.images', 'true'),
    (1, 'features.networks', 'true'),
    (1, 'features.profiles', 'true'),
    (1, 'features.storage.volumes', 'true');
INSERT INTO profiles (id, name, description, project_id) VALUES (1, 'default', 'Default LXD profile', 1);
",
    },
    Migration {
        version: 2,
        sql: "
CREATE TABLE nodes_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    UNIQUE (node_id, key)
);
CREATE TABLE nodes_roles (
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    role INTEGER NOT NULL,
    UNIQUE (node_id, role)
);
CREATE TABLE cluster_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    UNIQUE (name)
);
CREATE TABLE nodes_cluster_groups (
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES cluster_groups (id) ON DELETE CASCADE,
    UNIQUE (node_id, group_id)
);
INSERT INTO cluster_groups (id, name, description) VALUES (1, 'default', 'Default cluster group');
INSERT INTO nodes_cluster_groups (node_id, group_id) SELECT id, 1 FROM nodes;
",
    },
    Migration {
        version: 3,
        sql: "
CREATE TABLE images (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    fingerprint TEXT NOT NULL,
    filename TEXT NOT NULL,
    size INTEGER NOT NULL,
    public INTEGER NOT NULL DEFAULT 0,
    architecture TEXT NOT NULL,
    creation_date DATETIME,
    expiry_date DATETIME,
    upload_date DATETIME NOT NULL,
    cached INTEGER NOT NULL DEFAULT 0,
    last_use_date DATETIME,
    auto_update INTEGER NOT NULL DEFAULT 0,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    type INTEGER NOT NULL DEFAULT 0,
    UNIQUE (project_id, fingerprint)
);
CREATE TABLE images_properties (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,
    UNIQUE (image_id, key)
);
CREATE TABLE images_aliases (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    description TEXT NOT NULL DEFAULT '',
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    UNIQUE (project_id, name)
);
CREATE TABLE images_nodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    UNIQUE (image_id, node_id)
);
CREATE TABLE instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    architecture TEXT NOT NULL,
    type INTEGER NOT NULL DEFAULT 0,
    ephemeral INTEGER NOT NULL DEFAULT 0,
    creation_date DATETIME NOT NULL,
    stateful INTEGER NOT NULL DEFAULT 0,
    last_use_date DATETIME,
    description TEXT NOT NULL DEFAULT '',
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    UNIQUE (project_id, name)
);
CREATE TABLE instances_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,
    UNIQUE (instance_id, key)
);
CREATE TABLE instances_devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    UNIQUE (instance_id, name)
);
CREATE TABLE instances_devices_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    instance_device_id INTEGER NOT NULL REFERENCES instances_devices (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,
    UNIQUE (instance_device_id, key)
);
CREATE TABLE instances_profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    profile_id INTEGER NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    apply_order INTEGER NOT NULL DEFAULT 0,
    UNIQUE (instance_id, profile_id)
);
",
    },
    Migration {
        version: 4,
        sql: "
CREATE TABLE instances_snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    creation_date DATETIME NOT NULL,
    stateful INTEGER NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT '',
    expiry_date DATETIME,
    UNIQUE (instance_id, name)
);
CREATE TABLE instances_snapshots_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    instance_snapshot_id INTEGER NOT NULL REFERENCES instances_snapshots (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,
    UNIQUE (instance_snapshot_id, key)
);
",
    },
];

/// The global schema version this binary writes: what members compare at join and upgrade.
pub fn schema_version() -> i64 {
    super::migrate::latest(MIGRATIONS)
}

/// A replicated global database: writes are committed by the cluster, reads are linearizable.
/// Implemented by the cluster layer (the raft leader locally, or forwarding to it).
pub trait Replicated: Send + Sync {
    fn apply<'a>(&'a self, batch: &'a Batch) -> crate::util::BoxFuture<'a, Result<Vec<u64>>>;
    /// Several reads answered from one state of the database (one linearizable read point).
    fn query_many<'a>(&'a self, stmts: &'a [Stmt]) -> crate::util::BoxFuture<'a, Result<Vec<Rows>>>;
    fn query<'a>(&'a self, stmt: &'a Stmt) -> crate::util::BoxFuture<'a, Result<Rows>> {
        Box::pin(async move {
            let mut sets = self.query_many(std::slice::from_ref(stmt)).await?;
            sets.pop().ok_or_else(|| super::StoreError::Internal("no answer to a read".into()))
        })
    }
    /// Reads answered from this member's own copy without asking the leader: possibly a moment
    /// behind it, but available without a quorum (an error on a member holding no copy).
    fn query_local<'a>(&'a self, stmts: &'a [Stmt]) -> crate::util::BoxFuture<'a, Result<Vec<Rows>>>;
}

#[derive(Clone)]
enum Backend {
    /// A standalone member: the file on this member, used directly.
    Local(Database),
    Replicated(Arc<dyn Replicated>),
}

/// Access to the global database, whichever backend currently serves it.
#[derive(Clone)]
pub struct GlobalDb {
    backend: Arc<std::sync::RwLock<Backend>>,
    path: std::path::PathBuf,
}

impl std::fmt::Debug for GlobalDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalDb").field("path", &self.path).finish()
    }
}

impl GlobalDb {
    /// The standalone backend: the state-machine file on this member, used directly.
    pub async fn open_local(path: &Path) -> Result<GlobalDb> {
        let db = Database::open(path, MIGRATIONS).await?;
        Ok(GlobalDb { backend: Arc::new(std::sync::RwLock::new(Backend::Local(db))), path: path.to_path_buf() })
    }

    fn backend(&self) -> Backend {
        match self.backend.read() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Switches every later read and write to the replicated backend (clustering enabled).
    pub fn replicate(&self, r: Arc<dyn Replicated>) {
        if let Ok(mut b) = self.backend.write() {
            *b = Backend::Replicated(r);
        }
    }

    /// Whether reads and writes go through the cluster.
    pub fn is_replicated(&self) -> bool {
        matches!(self.backend(), Backend::Replicated(_))
    }

    pub async fn apply(&self, batch: &Batch) -> Result<Vec<u64>> {
        tracing::trace!(statements = batch.stmts.len(), "global write");
        match self.backend() {
            Backend::Local(db) => db.apply(batch).await,
            Backend::Replicated(r) => r.apply(batch).await,
        }
    }

    pub async fn query(&self, stmt: &Stmt) -> Result<Rows> {
        tracing::trace!(statements = 1, "global read");
        match self.backend() {
            Backend::Local(db) => db.query(stmt).await,
            Backend::Replicated(r) => r.query(stmt).await,
        }
    }

    /// Several reads that see one state of the database; in a cluster, one read point for all.
    pub async fn query_many<const N: usize>(&self, stmts: [Stmt; N]) -> Result<[Rows; N]> {
        let sets = self.query_all(&stmts).await?;
        sets.try_into().map_err(|_| super::StoreError::Internal("unexpected answer to a read".into()))
    }

    /// [`Self::query_many`] for a number of statements known at run time.
    pub async fn query_all(&self, stmts: &[Stmt]) -> Result<Vec<Rows>> {
        tracing::trace!(statements = stmts.len(), "global read");
        let sets = match self.backend() {
            Backend::Local(db) => db.query_many(stmts).await?,
            Backend::Replicated(r) => r.query_many(stmts).await?,
        };
        if sets.len() != stmts.len() {
            return Err(super::StoreError::Internal("unexpected answer to a read".into()));
        }
        Ok(sets)
    }

    /// Reads from this member's own copy, which may be a moment behind (see
    /// [`Replicated::query_local`]); on a standalone member, the file itself.
    pub async fn query_local(&self, stmts: &[Stmt]) -> Result<Vec<Rows>> {
        match self.backend() {
            Backend::Local(db) => db.query_many(stmts).await,
            Backend::Replicated(r) => r.query_local(stmts).await,
        }
    }

    /// The standalone file, while there is one.
    pub fn local_database(&self) -> Option<Database> {
        match self.backend() {
            Backend::Local(db) => Some(db),
            Backend::Replicated(_) => None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Goes back to the standalone backend on this member's file (after leaving a cluster).
    pub async fn reopen_local(&self) -> Result<()> {
        let db = Database::open(&self.path, MIGRATIONS).await?;
        if let Ok(mut b) = self.backend.write() {
            *b = Backend::Local(db);
        }
        Ok(())
    }

    /// Closes the standalone file (before the replicated state machine takes it over).
    pub async fn close(&self) {
        if let Backend::Local(db) = self.backend() {
            db.close().await;
        }
    }
}
