//! Instances: the records are global (any member sees every instance); the container itself,
//! its files and its processes live on one member, whose service does the work: creation
//! ([`create`]), start, stop, rename, update and delete ([`lifecycle`]), snapshots, files and
//! logs, exec sessions, moving to another member and evacuation. Requests about an instance
//! reach the member hosting it (the HTTP server forwards them there first); listing asks every
//! member for its own.

pub mod create;
pub mod evacuation;
pub mod exec;
pub mod files;
pub mod lifecycle;
pub mod limits;
pub mod moving;
pub mod snapshots;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;

use super::images::Images;
use super::storage_pools::Pools;
use super::{Error, Result};
use crate::api::{Instance, InstancePut, InstanceState, InstanceStatus, MemoryState, etag_of};
use crate::cluster::Cluster;
use crate::events::EventHub;
use crate::instance::{Driver, RunState};
use crate::operations::{NewOp, OpClass, Operations};
use crate::paths::Paths;
use crate::store::global::{self, GlobalDb, instances as store, profiles::Devices};
use crate::util::shutdown::Shutdown;

/// The driver's name for an instance: LXD's `<project>_<name>` outside the default project.
pub fn driver_name(project: &str, name: &str) -> String {
    if project == "default" { name.to_string() } else { format!("{project}_{name}") }
}

pub fn instance_url(project: &str, name: &str) -> String {
    if project == "default" { format!("/1.0/instances/{name}") } else { format!("/1.0/instances/{name}?project={project}") }
}

pub fn instance_resources(project: &str, name: &str) -> serde_json::Value {
    let _ = project;
    serde_json::json!({"containers": [format!("/1.0/containers/{name}")], "instances": [format!("/1.0/instances/{name}")]})
}

/// A task operation about one instance (not cancelable, no metadata yet).
pub fn instance_task(project: &str, name: &str, description: &str) -> NewOp {
    NewOp {
        class: OpClass::Task,
        description: description.into(),
        project: project.to_string(),
        resources: instance_resources(project, name),
        metadata: serde_json::Value::Null,
        may_cancel: false,
    }
}

/// The ETag of an instance: its writable part.
pub fn etag(i: &Instance) -> String {
    etag_of(&i.put)
}

/// An instance's configuration and devices with its profiles' folded in (profiles first, in
/// order, then its own).
pub fn expand(row: &store::Instance, profiles: &[global::profiles::Profile]) -> (BTreeMap<String, String>, Devices) {
    let mut config = BTreeMap::new();
    let mut devices = BTreeMap::new();
    for name in &row.profiles {
        if let Some(p) = profiles.iter().find(|p| &p.name == name && p.project == row.project) {
            config.extend(p.config.clone());
            devices.extend(p.devices.clone());
        }
    }
    config.extend(row.config.clone());
    devices.extend(row.devices.clone());
    (config, devices)
}

/// The storage pool of the root disk ("path: /") among expanded devices.
pub fn root_pool(devices: &Devices) -> Result<String> {
    devices
        .values()
        .find(|d| d.get("type").map(String::as_str) == Some("disk") && d.get("path").map(String::as_str) == Some("/"))
        .and_then(|d| d.get("pool").cloned())
        .ok_or_else(|| {
            Error::BadRequest(
                "Failed initialising instance: No root device could be found (add a root disk to the default profile: \
                 lxc profile device add default root disk path=/ pool=<pool>)"
                    .into(),
            )
        })
}

fn state_of(run: &RunState) -> InstanceState {
    let status = if run.running { InstanceStatus::Running } else { InstanceStatus::Stopped };
    let mut network = serde_json::Map::new();
    for i in &run.interfaces {
        let loopback = i.loopback;
        let mut addresses = Vec::new();
        if loopback && i.up {
            // The container's loopback is brought up with its standard address.
            addresses.push(serde_json::json!({"family": "inet", "address": "127.0.0.1", "netmask": "8", "scope": "local"}));
        }
        for (address, prefix) in &i.inet6 {
            let scope = if loopback {
                "local"
            } else if address.starts_with("fe80") {
                "link"
            } else {
                "global"
            };
            addresses
                .push(serde_json::json!({"family": "inet6", "address": address, "netmask": prefix.to_string(), "scope": scope}));
        }
        network.insert(
            i.name.clone(),
            serde_json::json!({"addresses": addresses,
                "counters": {"bytes_received": i.rx_bytes, "bytes_sent": i.tx_bytes,
                             "packets_received": i.rx_packets, "packets_sent": i.tx_packets},
                "hwaddr": i.hwaddr, "host_name": "", "mtu": i.mtu, "state": if i.up { "up" } else { "down" },
                "type": if loopback { "loopback" } else { "broadcast" }}),
        );
    }
    InstanceState {
        status: status.name().into(),
        status_code: status.code(),
        disk: serde_json::json!({}),
        memory: MemoryState { usage: run.usage.memory, usage_peak: run.usage.memory_peak, ..Default::default() },
        network: serde_json::Value::Object(network),
        pid: if run.running { run.pid as i64 } else { -1 },
        processes: if run.running { run.usage.processes as i64 } else { -1 },
        cpu: crate::api::CpuState { usage: run.usage.cpu_ns },
    }
}

/// Which instances a listing shows.
#[derive(Clone, Debug)]
pub struct ListScope {
    /// One project, or every project (`all-projects`).
    pub project: Option<String>,
    /// Only this member's instances (`?target=`, or another member asking for its part).
    pub only_local: bool,
    /// 0: URLs, 1: objects, 2: objects with their state.
    pub recursion: i64,
    /// The query as received, passed on when the other members are asked for theirs.
    pub query: String,
}

/// What a listing produced: URLs, or the objects as JSON (other members' passed on as they
/// sent them).
pub enum Listing {
    Urls(Vec<String>),
    Objects(Box<RawValue>),
}

pub struct Instances {
    paths: Paths,
    global: GlobalDb,
    cluster: Arc<Cluster>,
    events: Arc<EventHub>,
    operations: Arc<Operations>,
    driver: Driver,
    images: Arc<Images>,
    pools: Arc<Pools>,
    shutdown: Shutdown,
    /// Instances this member is stopping itself (their end is not a surprise).
    stopping: Arc<Mutex<HashSet<String>>>,
    /// Exec sessions waiting for their streams.
    sessions: exec::Sessions,
}

impl Instances {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        paths: Paths,
        global: GlobalDb,
        cluster: Arc<Cluster>,
        events: Arc<EventHub>,
        operations: Arc<Operations>,
        images: Arc<Images>,
        pools: Arc<Pools>,
        shutdown: Shutdown,
    ) -> Instances {
        let driver = Driver::new(&paths.dir);
        Instances {
            paths,
            global,
            cluster,
            events,
            operations,
            driver,
            images,
            pools,
            shutdown,
            stopping: Arc::new(Mutex::new(HashSet::new())),
            sessions: exec::Sessions::default(),
        }
    }

    /// Whether this member hosts the instance.
    pub fn is_local(&self, row: &store::Instance) -> bool {
        row.node_id == self.cluster.node_id()
    }

    pub async fn row(&self, project: &str, name: &str) -> Result<store::Instance> {
        Ok(store::get(&self.global, project, name).await?)
    }

    /// This member's instances (of `project`, or all projects).
    pub async fn local_rows(&self, project: Option<&str>) -> Result<Vec<store::Instance>> {
        Ok(store::list(&self.global, project, Some(self.cluster.node_id())).await?)
    }

    /// An instance as the API shows it; `with_state` adds the running state (recursion=2).
    pub fn render(&self, row: &store::Instance, profiles: &[global::profiles::Profile], with_state: bool) -> Instance {
        let (expanded_config, expanded_devices) = expand(row, profiles);
        // Usage and interfaces are read only when the state is shown; the status needs the pid alone.
        let key = driver_name(&row.project, &row.name);
        let run = match (self.is_local(row), with_state) {
            (true, true) => self.driver.state(&key),
            (true, false) => RunState { running: self.driver.init_pid(&key).is_some(), ..Default::default() },
            (false, _) => RunState::default(),
        };
        let status = if run.running { InstanceStatus::Running } else { InstanceStatus::Stopped };
        Instance {
            put: InstancePut {
                architecture: row.architecture.clone(),
                config: row.config.clone(),
                devices: row.devices.clone(),
                ephemeral: row.ephemeral,
                profiles: row.profiles.clone(),
                stateful: row.stateful,
                description: row.description.clone(),
            },
            created_at: row.created_at.clone(),
            expanded_config,
            expanded_devices,
            name: row.name.clone(),
            status: status.name().into(),
            status_code: status.code(),
            last_used_at: if row.last_used_at.is_empty() { "1970-01-01T00:00:00Z".into() } else { row.last_used_at.clone() },
            location: row.location.clone(),
            kind: "container".into(),
            project: row.project.clone(),
            state: with_state.then(|| state_of(&run)),
            snapshots: with_state.then(Vec::new),
            backups: with_state.then(Vec::new),
        }
    }

    /// One instance with its ETag; `full` adds its state and snapshots.
    pub async fn get(&self, project: &str, name: &str, full: bool) -> Result<(Instance, String)> {
        let row = self.row(project, name).await?;
        let profiles = global::profiles::list(&self.global, Some(&row.project)).await?;
        let mut i = self.render(&row, &profiles, full);
        if full {
            i.snapshots = Some(self.rendered_snapshots(&row).await);
        }
        let etag = etag(&i);
        Ok((i, etag))
    }

    /// The running state of a local instance.
    pub async fn state(&self, project: &str, name: &str) -> Result<InstanceState> {
        let row = self.row(project, name).await?;
        Ok(state_of(&self.driver.state(&driver_name(&row.project, &row.name))))
    }

    /// An instance shown in error: its member is offline or did not answer.
    fn render_unreachable(&self, row: &store::Instance, profiles: &[global::profiles::Profile], with_state: bool) -> Instance {
        let mut i = self.render(row, profiles, false);
        i.status = InstanceStatus::Error.name().into();
        i.status_code = InstanceStatus::Error.code();
        if with_state {
            i.state = Some(InstanceState {
                status: i.status.clone(),
                status_code: i.status_code,
                pid: -1,
                processes: -1,
                ..Default::default()
            });
        }
        i
    }

    /// Every instance of the scope: this member's rendered here, the others' as their members
    /// sent them, those of unreachable members in error.
    pub async fn list(&self, scope: &ListScope) -> Result<Listing> {
        let project = scope.project.as_deref();
        let only_local = scope.only_local || !self.cluster.is_clustered();
        let rows = store::list(&self.global, project, scope.only_local.then(|| self.cluster.node_id())).await?;
        if scope.recursion == 0 {
            return Ok(Listing::Urls(rows.iter().map(|r| instance_url(&r.project, &r.name)).collect()));
        }
        let with_state = scope.recursion >= 2;
        let profiles = global::profiles::list(&self.global, project).await?;
        let mut remote = if only_local { HashMap::new() } else { self.remote_listing(&scope.query, &rows).await };
        let snapshot_counts = if with_state { global::snapshots::counts(&self.global).await? } else { Default::default() };
        let json = |i: &Instance| {
            serde_json::value::to_raw_value(i).map_err(|e| Error::Internal(format!("rendering instance {}: {e}", i.name)))
        };
        let mut out: Vec<Box<RawValue>> = Vec::with_capacity(rows.len());
        for r in &rows {
            if self.is_local(r) {
                let mut i = self.render(r, &profiles, with_state);
                if with_state {
                    let has_snapshots = snapshot_counts.get(&r.id).is_some_and(|n| *n > 0);
                    i.snapshots = Some(if has_snapshots { self.rendered_snapshots(r).await } else { Vec::new() });
                }
                out.push(json(&i)?);
            } else if let Some(i) = remote.remove(&(r.project.clone(), r.name.clone())) {
                out.push(i);
            } else {
                out.push(json(&self.render_unreachable(r, &profiles, with_state))?);
            }
        }
        let list = serde_json::value::to_raw_value(&out).map_err(|e| Error::Internal(format!("rendering the list: {e}")))?;
        Ok(Listing::Objects(list))
    }

    /// The instances of every other member that hosts some, asked in parallel, by
    /// (project, name).
    async fn remote_listing(&self, query: &str, rows: &[store::Instance]) -> HashMap<(String, String), Box<RawValue>> {
        #[derive(serde::Deserialize)]
        struct Listing {
            metadata: Vec<Box<RawValue>>,
        }
        #[derive(serde::Deserialize)]
        struct Key {
            name: String,
            project: String,
        }
        let Some(rt) = self.cluster.runtime() else { return HashMap::new() };
        let Ok(online) = rt.online_others().await else { return HashMap::new() };
        let hosting: Vec<String> =
            online.into_iter().filter(|p| rows.iter().any(|r| r.node_id == p.id)).map(|p| p.address).collect();
        let path = format!("/1.0/instances?{query}");
        let asks = hosting.iter().map(|address| {
            let (rt, path) = (rt.clone(), path.clone());
            async move {
                match rt.send(address, "GET", &path, None, &[]).await {
                    Ok(reply) if reply.status == 200 => {
                        serde_json::from_slice::<Listing>(&reply.body).map(|l| l.metadata).unwrap_or_default()
                    }
                    _ => Vec::new(),
                }
            }
        });
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .filter_map(|raw| serde_json::from_str::<Key>(raw.get()).ok().map(|k| ((k.project, k.name), raw)))
            .collect()
    }

    /// Where an instance's files are: `<pool>/containers/<driver name>`.
    pub async fn dir(&self, row: &store::Instance) -> Result<PathBuf> {
        let profiles = global::profiles::list(&self.global, Some(&row.project)).await?;
        let (_, devices) = expand(row, &profiles);
        let pool = root_pool(&devices)?;
        Ok(self.pools.root(&pool).await?.join("containers").join(driver_name(&row.project, &row.name)))
    }

    /// Whether this member is evacuated (no instance may start or be placed here).
    pub async fn member_evacuated(&self) -> Result<bool> {
        if !self.cluster.is_clustered() {
            return Ok(false);
        }
        let node = global::nodes::get_by_id(&self.global, self.cluster.node_id()).await?;
        Ok(node.state == global::nodes::STATE_EVACUATED)
    }

    /// Where a new instance goes in a cluster: None for this member, else the chosen member's
    /// (name, address).
    pub async fn place(&self, target: Option<&str>) -> Result<Option<(String, String)>> {
        match self.cluster.runtime() {
            Some(rt) => Ok(crate::cluster::placement::choose(&rt, target).await?),
            None => Ok(None),
        }
    }

    /// Whether the member hosting an instance is this one: None when it is, else the member
    /// (and whether it is online), by one read of where the instance lives. An instance
    /// running here lives here: no read at all.
    pub async fn host(&self, project: &str, name: &str) -> Result<Option<(crate::cluster::Peer, bool)>> {
        let Some(rt) = self.cluster.runtime() else { return Ok(None) };
        if self.driver.init_pid(&driver_name(project, name)).is_some() {
            return Ok(None);
        }
        let node_id = store::node_of(&self.global, project, name).await?;
        if node_id as u64 == rt.id {
            return Ok(None);
        }
        let peer = rt.peer(node_id).await?.ok_or_else(|| Error::NotFound("Cluster member not found".into()))?;
        let online = rt.is_online(node_id).await?;
        Ok(Some((peer, online)))
    }
}
