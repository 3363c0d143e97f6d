//! Instances on this member: creation from an image, start, stop, restart, rename, update,
//! delete, state, and resuming after a daemon restart. The records are global (any member sees
//! every instance); the container itself, its files and its processes live here. Requests for
//! instances on other members never reach this code: the API forwards them first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::operations::{NewOp, Op, OpClass};
use super::{Daemon, Error, Result};
use crate::api::{Instance, InstancePut, InstanceState, InstanceStatus, InstancesPost, MemoryState};
use crate::instance::spec::{Limits, StartSpec};
use crate::instance::{InstanceError, RunState};
use crate::store::Batch;
use crate::store::global::{self, images as store_images, instances as store};
use crate::util::time;

/// What a new instance's root filesystem comes from.
enum Origin {
    Image(store_images::Image),
    /// A copy of another instance (stopped or running; its files as they are) or of one of its
    /// snapshots.
    Copy(store::Instance, Option<String>),
    Empty,
}

/// How long a clean stop with no timeout given waits before killing.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

impl From<InstanceError> for Error {
    fn from(e: InstanceError) -> Self {
        match e {
            InstanceError::NotFound(m) => Error::NotFound(m),
            InstanceError::BadRequest(m) => Error::BadRequest(m),
            InstanceError::AlreadyRunning | InstanceError::NotRunning => Error::BadRequest(e.to_string()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<crate::image::ImageError> for Error {
    fn from(e: crate::image::ImageError) -> Self {
        match e {
            crate::image::ImageError::Invalid(m) => Error::BadRequest(m),
            crate::image::ImageError::Io(m) => Error::Internal(m),
        }
    }
}

/// The driver's name for an instance: LXD's `<project>_<name>` outside the default project.
pub fn driver_name(project: &str, name: &str) -> String {
    if project == "default" { name.to_string() } else { format!("{project}_{name}") }
}

pub fn instance_url(project: &str, name: &str) -> String {
    if project == "default" { format!("/1.0/instances/{name}") } else { format!("/1.0/instances/{name}?project={project}") }
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

pub fn instance_resources(project: &str, name: &str) -> serde_json::Value {
    let _ = project;
    serde_json::json!({"containers": [format!("/1.0/containers/{name}")], "instances": [format!("/1.0/instances/{name}")]})
}

/// Parses LXD byte sizes ("64MB", "1GiB", "512") and percentages of host memory ("50%").
pub fn parse_bytes(value: &str) -> Option<u64> {
    let v = value.trim();
    if let Some(pct) = v.strip_suffix('%') {
        let pct: f64 = pct.trim().parse().ok()?;
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()?
            * 1024;
        return Some((total as f64 * pct / 100.0) as u64);
    }
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1000u64.pow(2),
        "GB" => 1000u64.pow(3),
        "TB" => 1000u64.pow(4),
        "KiB" => 1024,
        "MiB" => 1024u64.pow(2),
        "GiB" => 1024u64.pow(3),
        "TiB" => 1024u64.pow(4),
        _ => return None,
    };
    Some((num * mult as f64) as u64)
}

/// limits.cpu (a CPU count) or limits.cpu.allowance ("50%", "25ms/100ms") as a CFS quota per
/// 100 ms period.
pub fn cpu_quota(config: &BTreeMap<String, String>) -> Option<u64> {
    if let Some(a) = config.get("limits.cpu.allowance").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if let Some(pct) = a.strip_suffix('%') {
            return pct.parse::<f64>().ok().map(|p| (p * 1000.0) as u64);
        }
        if let Some((q, p)) = a.split_once('/') {
            let ms = |s: &str| s.trim().trim_end_matches("ms").parse::<f64>().ok();
            return Some((ms(q)? / ms(p)? * 100_000.0) as u64);
        }
    }
    let cpus: u64 = config.get("limits.cpu")?.trim().parse().ok()?;
    Some(cpus * 100_000)
}

/// Checks an instance's own config: server-managed keys (volatile.*, image.*) pass through,
/// the rest must be valid instance keys with valid values.
pub fn validate_config(config: &BTreeMap<String, String>) -> Result<()> {
    let user: BTreeMap<String, String> = config
        .iter()
        .filter(|(k, _)| !k.starts_with("volatile.") && !k.starts_with("image."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    super::profiles::validate_instance_config(&user)?;
    if let Some(m) = user.get("limits.memory").filter(|m| !m.is_empty())
        && parse_bytes(m).is_none()
    {
        return Err(Error::BadRequest(format!("Invalid value for limits.memory: \"{m}\"")));
    }
    if let Some(c) = user.get("limits.cpu").filter(|c| !c.is_empty())
        && c.parse::<u64>().is_err()
    {
        return Err(Error::BadRequest(format!("Invalid value for limits.cpu: \"{c}\" (a number of CPUs)")));
    }
    Ok(())
}

fn merge_profiles(
    row: &store::Instance,
    profiles: &[global::profiles::Profile],
) -> (BTreeMap<String, String>, BTreeMap<String, BTreeMap<String, String>>) {
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

impl Daemon {
    /// Whether this member hosts the instance.
    pub fn is_local(&self, row: &store::Instance) -> bool {
        row.node_id == self.node_id()
    }

    /// An instance as the API shows it; `state` adds the running state (recursion=2).
    pub async fn render_instance(&self, row: &store::Instance, with_state: bool) -> Result<Instance> {
        let profiles = global::profiles::list(&self.global, Some(&row.project)).await?;
        Ok(self.render_with(row, &profiles, with_state))
    }

    pub fn render_with(&self, row: &store::Instance, profiles: &[global::profiles::Profile], with_state: bool) -> Instance {
        let (expanded_config, expanded_devices) = merge_profiles(row, profiles);
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

    /// This member's instances (of `project`, or all projects).
    pub async fn local_instances(&self, project: Option<&str>) -> Result<Vec<store::Instance>> {
        Ok(store::list(&self.global, project, Some(self.node_id())).await?)
    }

    pub async fn instance_row(&self, project: &str, name: &str) -> Result<store::Instance> {
        Ok(store::get(&self.global, project, name).await?)
    }

    pub fn instance_state(&self, row: &store::Instance) -> InstanceState {
        state_of(&self.driver.state(&driver_name(&row.project, &row.name)))
    }

    /// Where an instance's files are: `<pool>/containers/<driver name>`.
    pub async fn instance_dir(&self, row: &store::Instance) -> Result<PathBuf> {
        let profiles = global::profiles::list(&self.global, Some(&row.project)).await?;
        let (_, devices) = merge_profiles(row, &profiles);
        let pool = root_pool(&devices)?;
        Ok(self.pool_root(&pool).await?.join("containers").join(driver_name(&row.project, &row.name)))
    }

    /// The directory a storage pool keeps its contents in on this member.
    pub async fn pool_root(&self, pool: &str) -> Result<PathBuf> {
        let p = global::storage_pools::get(&self.global, self.node_id(), pool).await?;
        Ok(p.config
            .get("source")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| self.paths.storage_pools().join(pool)))
    }

    /// Creates an instance on this member from an image (async: "Creating instance").
    pub async fn create_instance(self: &Arc<Self>, project: &str, req: InstancesPost) -> Result<Arc<Op>> {
        super::profiles::validate_name("instance", &req.name)?;
        if !req.kind.is_empty() && req.kind != "container" {
            return Err(Error::BadRequest(format!("Instance type \"{}\" is not supported: rxd runs containers", req.kind)));
        }
        validate_config(&req.put.config)?;
        self.validate_devices(&req.put.devices).await?;
        let origin = match req.source.kind.as_str() {
            "image" => Origin::Image(self.resolve_image_source(project, &req.source).await?),
            "copy" => {
                let source_project = if req.source.project.is_empty() { project } else { req.source.project.as_str() };
                let (instance, snapshot) = match req.source.source.split_once('/') {
                    Some((i, s)) => (i, Some(s.to_string())),
                    None => (req.source.source.as_str(), None),
                };
                let mut src = self.instance_row(source_project, instance).await?;
                if let Some(s) = &snapshot {
                    src.config = crate::store::global::snapshots::get(&self.global, source_project, instance, s).await?.config;
                }
                Origin::Copy(src, snapshot)
            }
            "none" => Origin::Empty,
            "" => return Err(Error::BadRequest("No source type provided: use an image (source.type \"image\")".into())),
            other => return Err(Error::BadRequest(format!("Unsupported instance source type \"{other}\""))),
        };
        let mut profiles = if req.put.profiles.is_empty() && !req.put.devices.contains_key("root") {
            vec!["default".to_string()]
        } else {
            req.put.profiles.clone()
        };
        let mut config = req.put.config.clone();
        let mut devices = req.put.devices.clone();
        match &origin {
            Origin::Image(img) => {
                for (k, v) in &img.properties {
                    config.insert(format!("image.{k}"), v.clone());
                }
                config.insert("volatile.base_image".into(), img.fingerprint.clone());
            }
            Origin::Copy(src, _) => {
                // The stock client sends the source's writable part; a bare API call gets it here.
                if req.put.config.is_empty() && req.put.profiles.is_empty() {
                    config = src.config.clone();
                    devices = src.devices.clone();
                    profiles = src.profiles.clone();
                }
                config.retain(|k, _| !k.starts_with("volatile."));
                if let Some(base) = src.config.get("volatile.base_image") {
                    config.insert("volatile.base_image".into(), base.clone());
                }
            }
            Origin::Empty => {}
        }
        config.insert("volatile.uuid".into(), uuid::Uuid::new_v4().to_string());
        config.insert("volatile.last_state.power".into(), "STOPPED".into());
        let row = store::Instance {
            project: project.to_string(),
            name: req.name.clone(),
            node_id: self.node_id(),
            architecture: match &origin {
                Origin::Image(i) => i.architecture.clone(),
                Origin::Copy(src, _) => src.architecture.clone(),
                Origin::Empty => std::env::consts::ARCH.into(),
            },
            ephemeral: req.put.ephemeral,
            stateful: req.put.stateful,
            description: req.put.description.clone(),
            created_at: time::rfc3339(time::now_nanos()),
            config,
            devices,
            profiles,
            ..Default::default()
        };
        let all_profiles = global::profiles::list(&self.global, Some(project)).await?;
        for p in &row.profiles {
            if !all_profiles.iter().any(|x| &x.name == p) {
                return Err(Error::BadRequest(format!("Requested profile '{p}' doesn't exist")));
            }
        }
        let (_, devices) = merge_profiles(&row, &all_profiles);
        let pool = root_pool(&devices)?;
        let d = self.clone();
        let project_s = project.to_string();
        let op = self.operations.spawn_task(instance_task(project, &req.name, "Creating instance"), async move {
            d.create_task(&project_s, row, origin, &pool).await.map(|_| None).map_err(|e| e.to_string())
        });
        Ok(op)
    }

    async fn create_task(self: &Arc<Self>, project: &str, row: store::Instance, origin: Origin, pool: &str) -> Result<()> {
        let mut b = Batch::new();
        store::create(&mut b, &row);
        if let Origin::Image(img) = &origin {
            store_images::touch(&mut b, project, &img.fingerprint, &time::rfc3339(time::now_nanos()));
        }
        self.global.apply(&b).await?;
        let dir = self.pool_root(pool).await?.join("containers").join(driver_name(project, &row.name));
        let made = async {
            if dir.exists() {
                return Err(Error::Conflict(format!("Instance directory {} already exists", dir.display())));
            }
            match &origin {
                Origin::Copy(src, snapshot) => {
                    let archive =
                        crate::cluster::moving::fetch_archive(self, &src.project, &src.name, snapshot.as_deref()).await?;
                    crate::cluster::moving::unpack(&dir, &archive).await?;
                }
                Origin::Image(img) => {
                    self.ensure_image_file(project, &img.fingerprint).await?;
                    let lxd_dir = self.paths.dir.clone();
                    let fp = img.fingerprint.clone();
                    let dest = dir.clone();
                    tokio::task::spawn_blocking(move || crate::image::unpack(&lxd_dir, &fp, &dest))
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))??;
                }
                Origin::Empty => std::fs::create_dir_all(dir.join("rootfs")).map_err(|e| Error::Internal(e.to_string()))?,
            }
            Ok(())
        }
        .await;
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            let mut b = Batch::new();
            store::delete(&mut b, project, &row.name);
            let _ = self.global.apply(&b).await;
            return Err(e);
        }
        self.events.lifecycle(project, "instance-created", instance_url(project, &row.name), None);
        Ok(())
    }

    /// Runs a state change (start, stop, restart, freeze/unfreeze are refused) as an operation.
    pub async fn change_state(self: &Arc<Self>, project: &str, name: &str, put: crate::api::InstanceStatePut) -> Result<Arc<Op>> {
        let row = self.instance_row(project, name).await?;
        let description = match put.action.as_str() {
            "start" => "Starting instance",
            "stop" => "Stopping instance",
            "restart" => "Restarting instance",
            "freeze" | "unfreeze" => {
                return Err(Error::BadRequest(format!("Action \"{}\" is not supported by this driver", put.action)));
            }
            other => return Err(Error::BadRequest(format!("Unknown action \"{other}\""))),
        };
        let d = self.clone();
        Ok(self.operations.spawn_task(instance_task(project, name, description), async move {
            let timeout = if put.timeout < 0 { DEFAULT_STOP_TIMEOUT } else { Duration::from_secs(put.timeout as u64) };
            let r = match put.action.as_str() {
                "start" => d.start_instance(&row).await,
                "stop" => d.stop_instance(&row, put.force || put.timeout == 0, timeout, true).await,
                _ => d.restart_instance(&row, put.force, timeout).await,
            };
            r.map(|_| None).map_err(|e| e.to_string())
        }))
    }

    pub async fn start_instance(self: &Arc<Self>, row: &store::Instance) -> Result<()> {
        if self.member_evacuated().await? {
            return Err(Error::BadRequest("Cluster member is evacuated".into()));
        }
        let profiles = global::profiles::list(&self.global, Some(&row.project)).await?;
        let (config, devices) = merge_profiles(row, &profiles);
        let pool = root_pool(&devices)?;
        let key = driver_name(&row.project, &row.name);
        let rootfs = self.pool_root(&pool).await?.join("containers").join(&key).join("rootfs");
        let mut environment: Vec<(String, String)> = vec![
            ("PATH".into(), crate::instance::monitor::DEFAULT_PATH.into()),
            ("HOME".into(), "/root".into()),
            ("container".into(), "lxc".into()),
        ];
        for (k, v) in &config {
            if let Some(var) = k.strip_prefix("environment.") {
                environment.retain(|(e, _)| e != var);
                environment.push((var.to_string(), v.clone()));
            }
        }
        let mut mounts = Vec::new();
        for (dev, cfg) in &devices {
            let (Some("disk"), Some(path), Some(source)) =
                (cfg.get("type").map(String::as_str), cfg.get("path"), cfg.get("source").filter(|s| !s.is_empty()))
            else {
                continue;
            };
            if path == "/" {
                continue;
            }
            let source = PathBuf::from(source);
            if !source.exists() {
                return Err(Error::BadRequest(format!("Device \"{dev}\": source \"{}\" doesn't exist", source.display())));
            }
            let readonly = cfg.get("readonly").is_some_and(|v| matches!(v.as_str(), "true" | "1" | "yes" | "on"));
            mounts.push(crate::instance::spec::BindMount { source, path: path.clone(), readonly });
        }
        let spec = StartSpec {
            name: row.name.clone(),
            rootfs,
            console_log: self.driver.log_dir(&key).join("console.log"),
            command: vec!["/sbin/init".into()],
            environment,
            limits: Limits {
                memory: config.get("limits.memory").and_then(|m| parse_bytes(m)),
                cpu_quota_us: cpu_quota(&config),
                processes: config.get("limits.processes").and_then(|p| p.parse().ok()),
            },
            mounts,
        };
        self.driver.start(&key, &spec).await?;
        let now = time::rfc3339(time::now_nanos());
        let mut b = Batch::new();
        store::set_keys(&mut b, &row.project, &row.name, &[("volatile.last_state.power", Some("RUNNING".into()))]);
        store::touch(&mut b, &row.project, &row.name, &now);
        self.global.apply(&b).await?;
        self.events.lifecycle(&row.project, "instance-started", instance_url(&row.project, &row.name), None);
        self.watch_instance(row.project.clone(), row.name.clone());
        Ok(())
    }

    /// Records an instance as stopped when its init ends on its own (poweroff inside).
    fn watch_instance(self: &Arc<Self>, project: String, name: String) {
        let daemon = Arc::downgrade(self);
        let driver = self.driver.clone();
        let global = self.global.clone();
        let events = self.events.clone();
        let key = driver_name(&project, &name);
        let stopping = self.stopping.clone();
        tokio::spawn(async move {
            driver.wait_stopped(&key).await;
            let by_us = stopping.lock().map(|mut s| s.remove(&key)).unwrap_or(false);
            if !by_us {
                let mut b = Batch::new();
                store::set_keys(&mut b, &project, &name, &[("volatile.last_state.power", Some("STOPPED".into()))]);
                let _ = global.apply(&b).await;
                events.lifecycle(&project, "instance-stopped", instance_url(&project, &name), None);
                if let Some(d) = daemon.upgrade()
                    && let Ok(row) = d.instance_row(&project, &name).await
                    && row.ephemeral
                {
                    let _ = d.delete_task(&row).await;
                }
            }
        });
    }

    /// Stops an instance; `record` keeps `volatile.last_state.power` current (false while the
    /// daemon shuts down, so the instance starts again with it).
    pub async fn stop_instance(&self, row: &store::Instance, force: bool, timeout: Duration, record: bool) -> Result<()> {
        let key = driver_name(&row.project, &row.name);
        if self.driver.init_pid(&key).is_none() {
            return Err(Error::BadRequest("The instance is already stopped".into()));
        }
        if let Ok(mut s) = self.stopping.lock() {
            s.insert(key.clone());
        }
        let killed = self.driver.stop(&key, force, timeout).await?;
        if record {
            let mut b = Batch::new();
            store::set_keys(&mut b, &row.project, &row.name, &[("volatile.last_state.power", Some("STOPPED".into()))]);
            self.global.apply(&b).await?;
        }
        let action = if killed { "instance-stopped" } else { "instance-shutdown" };
        self.events.lifecycle(&row.project, action, instance_url(&row.project, &row.name), None);
        if record && row.ephemeral {
            // An ephemeral instance ends with its stop.
            self.delete_task(row).await?;
        }
        Ok(())
    }

    pub async fn restart_instance(self: &Arc<Self>, row: &store::Instance, force: bool, timeout: Duration) -> Result<()> {
        let key = driver_name(&row.project, &row.name);
        if self.driver.init_pid(&key).is_none() {
            return Err(Error::BadRequest("The instance isn't running".into()));
        }
        self.stop_instance(row, force, timeout, false).await?;
        self.start_instance(row).await?;
        self.events.lifecycle(&row.project, "instance-restarted", instance_url(&row.project, &row.name), None);
        Ok(())
    }

    /// Deletes a stopped instance (async: "Deleting instance").
    pub async fn delete_instance(self: &Arc<Self>, project: &str, name: &str) -> Result<Arc<Op>> {
        let row = self.instance_row(project, name).await?;
        if self.driver.init_pid(&driver_name(project, name)).is_some() {
            return Err(Error::BadRequest("Instance is running".into()));
        }
        let d = self.clone();
        Ok(self.operations.spawn_task(instance_task(project, name, "Deleting instance"), async move {
            d.delete_task(&row).await.map(|_| None).map_err(|e| e.to_string())
        }))
    }

    pub async fn delete_task(&self, row: &store::Instance) -> Result<()> {
        let dir = self.instance_dir(row).await.ok();
        if let Ok(snaps) = self.snapshots_dir(row).await {
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(snaps)).await;
        }
        let mut b = Batch::new();
        store::delete(&mut b, &row.project, &row.name);
        self.global.apply(&b).await?;
        if let Some(dir) = dir {
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        }
        self.driver.forget(&driver_name(&row.project, &row.name));
        self.events.lifecycle(&row.project, "instance-deleted", instance_url(&row.project, &row.name), None);
        Ok(())
    }

    /// Renames a stopped instance (async).
    pub async fn rename_instance(self: &Arc<Self>, project: &str, name: &str, new_name: &str) -> Result<Arc<Op>> {
        super::profiles::validate_name("instance", new_name)?;
        let row = self.instance_row(project, name).await?;
        if self.driver.init_pid(&driver_name(project, name)).is_some() {
            return Err(Error::BadRequest("Renaming of running instance not allowed".into()));
        }
        let dir = self.instance_dir(&row).await?;
        let snaps = self.snapshots_dir(&row).await?;
        let d = self.clone();
        let (project_s, new_s) = (project.to_string(), new_name.to_string());
        Ok(self.operations.spawn_task(instance_task(project, name, "Renaming instance"), async move {
            let mut b = Batch::new();
            store::rename(&mut b, &project_s, &row.name, &new_s);
            d.global.apply(&b).await.map_err(|e| e.to_string())?;
            for path in [&dir, &snaps] {
                if let Some(parent) = path.parent()
                    && path.exists()
                {
                    let _ = std::fs::rename(path, parent.join(driver_name(&project_s, &new_s)));
                }
            }
            d.driver.rename(&driver_name(&project_s, &row.name), &driver_name(&project_s, &new_s));
            d.events.lifecycle(&project_s, "instance-renamed", instance_url(&project_s, &new_s), None);
            Ok(None)
        }))
    }

    /// Replaces an instance's writable part (async: "Updating instance").
    pub async fn update_instance(self: &Arc<Self>, project: &str, name: &str, put: InstancePut) -> Result<Arc<Op>> {
        validate_config(&put.config)?;
        self.validate_devices(&put.devices).await?;
        let mut row = self.instance_row(project, name).await?;
        let all_profiles = global::profiles::list(&self.global, Some(project)).await?;
        for p in &put.profiles {
            if !all_profiles.iter().any(|x| &x.name == p) {
                return Err(Error::BadRequest(format!("Requested profile '{p}' doesn't exist")));
            }
        }
        // Server-managed keys the client did not send back are kept.
        let mut config = put.config.clone();
        for (k, v) in &row.config {
            if k.starts_with("volatile.") && !config.contains_key(k) {
                config.insert(k.clone(), v.clone());
            }
        }
        row.config = config;
        row.devices = put.devices;
        row.profiles = put.profiles;
        row.description = put.description;
        row.ephemeral = put.ephemeral;
        let (_, devices) = merge_profiles(&row, &all_profiles);
        root_pool(&devices)?;
        let d = self.clone();
        let project_s = project.to_string();
        Ok(self.operations.spawn_task(instance_task(project, name, "Updating instance"), async move {
            let mut b = Batch::new();
            store::replace(&mut b, &project_s, &row.name, &row);
            d.global.apply(&b).await.map_err(|e| e.to_string())?;
            d.events.lifecycle(&project_s, "instance-updated", instance_url(&project_s, &row.name), None);
            Ok(None)
        }))
    }

    /// At daemon start: instances that were running when it stopped are started again, and the
    /// ones still running (the daemon crashed, the containers did not) are watched again.
    pub async fn resume_instances(self: &Arc<Self>) {
        // In a cluster the database answers once a quorum of members is back: keep asking.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        let rows = loop {
            match self.local_instances(None).await {
                Ok(rows) => break rows,
                Err(e) if tokio::time::Instant::now() < deadline && !self.is_shutting_down() => {
                    tracing::debug!(error = %e, "Waiting for the database to resume instances");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Instances were not resumed");
                    return;
                }
            }
        };
        for row in rows {
            let key = driver_name(&row.project, &row.name);
            if self.driver.init_pid(&key).is_some() {
                self.watch_instance(row.project.clone(), row.name.clone());
                continue;
            }
            if row.config.get("volatile.last_state.power").map(String::as_str) == Some("RUNNING")
                && let Err(e) = self.start_instance(&row).await
            {
                tracing::warn!(instance = %row.name, error = %e, "Failed to start instance");
            }
        }
    }

    /// At daemon shutdown: stops this member's running instances cleanly, in parallel, keeping
    /// their last state so they start again with the daemon.
    pub async fn stop_instances_for_shutdown(&self) {
        let Ok(rows) = self.local_instances(None).await else { return };
        let rows: Vec<store::Instance> =
            rows.into_iter().filter(|r| self.driver.init_pid(&driver_name(&r.project, &r.name)).is_some()).collect();
        let stops = rows.iter().map(|r| self.stop_instance(r, false, DEFAULT_STOP_TIMEOUT, false));
        for r in futures_util::future::join_all(stops).await {
            if let Err(e) = r {
                tracing::warn!(error = %e, "Failed to stop instance at shutdown");
            }
        }
        for r in rows.iter().filter(|r| r.ephemeral) {
            let _ = self.delete_task(r).await;
        }
    }

    /// Whether this member is evacuated (no instance may start or be placed here).
    pub async fn member_evacuated(&self) -> Result<bool> {
        if self.cluster_runtime().is_none() {
            return Ok(false);
        }
        let node = global::nodes::get_by_id(&self.global, self.node_id()).await?;
        Ok(node.state == global::nodes::STATE_EVACUATED)
    }
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

/// The storage pool of the root disk ("path: /") among expanded devices.
fn root_pool(devices: &BTreeMap<String, BTreeMap<String, String>>) -> Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_lxd_does() {
        assert_eq!(parse_bytes("64MB"), Some(64_000_000));
        assert_eq!(parse_bytes("64MiB"), Some(64 * 1024 * 1024));
        assert_eq!(parse_bytes("512"), Some(512));
        assert_eq!(parse_bytes("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn cpu_limits_become_quotas() {
        let mut c = BTreeMap::new();
        c.insert("limits.cpu".to_string(), "2".to_string());
        assert_eq!(cpu_quota(&c), Some(200_000));
        c.insert("limits.cpu.allowance".to_string(), "20%".to_string());
        assert_eq!(cpu_quota(&c), Some(20_000));
        c.insert("limits.cpu.allowance".to_string(), "25ms/100ms".to_string());
        assert_eq!(cpu_quota(&c), Some(25_000));
    }
}
