//! An instance's life on its member: start (the container spec from its expanded
//! configuration), stop, restart, the watch that records a container ending on its own,
//! update, rename and delete, and what the daemon does with its instances when it starts and
//! stops.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::limits::{cpu_quota, parse_bytes, validate_config};
use super::{Instances, driver_name, expand, instance_task, instance_url, root_pool};
use crate::api::{InstancePut, InstanceStatePut};
use crate::instance::spec::{BindMount, Limits, StartSpec};
use crate::operations::Op;
use crate::services::validation::{validate_devices, validate_name};
use crate::services::{Error, Result};
use crate::store::global::{self, instances as store, profiles::Devices};
use crate::store::{Batch, Version};
use crate::util::time;

/// How long a clean stop with no timeout given waits before killing.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A PATCH of an instance: keys and devices laid over the current ones, the other fields when
/// given.
#[derive(Clone, Debug, Default)]
pub struct InstancePatch {
    pub config: BTreeMap<String, String>,
    pub devices: Devices,
    pub profiles: Option<Vec<String>>,
    pub description: Option<String>,
    pub ephemeral: Option<bool>,
}

/// What a PUT or PATCH of an instance asks for.
#[derive(Clone, Debug)]
pub enum InstanceChange {
    Replace(InstancePut),
    Patch(InstancePatch),
}

fn writable(row: &store::Instance) -> InstancePut {
    InstancePut {
        architecture: row.architecture.clone(),
        config: row.config.clone(),
        devices: row.devices.clone(),
        ephemeral: row.ephemeral,
        profiles: row.profiles.clone(),
        stateful: row.stateful,
        description: row.description.clone(),
    }
}

impl Instances {
    /// Runs a state change (start, stop, restart; freeze/unfreeze are refused) as an operation.
    pub async fn change_state(self: &Arc<Self>, project: &str, name: &str, put: InstanceStatePut) -> Result<Arc<Op>> {
        let row = self.row(project, name).await?;
        let description = match put.action.as_str() {
            "start" => "Starting instance",
            "stop" => "Stopping instance",
            "restart" => "Restarting instance",
            "freeze" | "unfreeze" => {
                return Err(Error::BadRequest(format!("Action \"{}\" is not supported by this driver", put.action)));
            }
            other => return Err(Error::BadRequest(format!("Unknown action \"{other}\""))),
        };
        let instances = self.clone();
        Ok(self.operations.spawn_task(instance_task(project, name, description), async move {
            let timeout = if put.timeout < 0 { DEFAULT_STOP_TIMEOUT } else { Duration::from_secs(put.timeout as u64) };
            match put.action.as_str() {
                "start" => instances.start(&row).await,
                "stop" => instances.stop(&row, put.force || put.timeout == 0, timeout, true).await,
                _ => instances.restart(&row, put.force, timeout).await,
            }
            .map(|_| None)
        }))
    }

    pub async fn start(self: &Arc<Self>, row: &store::Instance) -> Result<()> {
        if self.member_evacuated().await? {
            return Err(Error::BadRequest("Cluster member is evacuated".into()));
        }
        let profiles = global::profiles::list(&self.global, Some(&row.project)).await?;
        let (config, devices) = expand(row, &profiles);
        let pool = root_pool(&devices)?;
        let key = driver_name(&row.project, &row.name);
        let rootfs = self.pools.root(&pool).await?.join("containers").join(&key).join("rootfs");
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
            mounts.push(BindMount { source, path: path.clone(), readonly });
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
        self.watch(row.project.clone(), row.name.clone());
        Ok(())
    }

    /// Records an instance as stopped when its init ends on its own (poweroff inside).
    fn watch(self: &Arc<Self>, project: String, name: String) {
        let instances = Arc::downgrade(self);
        let driver = self.driver.clone();
        let key = driver_name(&project, &name);
        tokio::spawn(async move {
            driver.wait_stopped(&key).await;
            let Some(instances) = instances.upgrade() else { return };
            let by_us = instances.stopping.lock().map(|mut s| s.remove(&key)).unwrap_or(false);
            if by_us {
                return;
            }
            let mut b = Batch::new();
            store::set_keys(&mut b, &project, &name, &[("volatile.last_state.power", Some("STOPPED".into()))]);
            if let Err(e) = instances.global.apply(&b).await {
                tracing::warn!(instance = %name, error = %e, "cannot record that the instance stopped");
            }
            instances.events.lifecycle(&project, "instance-stopped", instance_url(&project, &name), None);
            if let Ok(row) = instances.row(&project, &name).await
                && row.ephemeral
                && let Err(e) = instances.delete_now(&row).await
            {
                tracing::warn!(instance = %name, error = %e, "cannot delete the stopped ephemeral instance");
            }
        });
    }

    /// Stops an instance; `record` keeps `volatile.last_state.power` current (false while the
    /// daemon shuts down, so the instance starts again with it).
    pub async fn stop(&self, row: &store::Instance, force: bool, timeout: Duration, record: bool) -> Result<()> {
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
            self.delete_now(row).await?;
        }
        Ok(())
    }

    pub async fn restart(self: &Arc<Self>, row: &store::Instance, force: bool, timeout: Duration) -> Result<()> {
        let key = driver_name(&row.project, &row.name);
        if self.driver.init_pid(&key).is_none() {
            return Err(Error::BadRequest("The instance isn't running".into()));
        }
        self.stop(row, force, timeout, false).await?;
        self.start(row).await?;
        self.events.lifecycle(&row.project, "instance-restarted", instance_url(&row.project, &row.name), None);
        Ok(())
    }

    /// Deletes a stopped instance (async: "Deleting instance").
    pub async fn delete(self: &Arc<Self>, project: &str, name: &str) -> Result<Arc<Op>> {
        let row = self.row(project, name).await?;
        if self.driver.init_pid(&driver_name(project, name)).is_some() {
            return Err(Error::BadRequest("Instance is running".into()));
        }
        let instances = self.clone();
        Ok(self.operations.spawn_task(instance_task(project, name, "Deleting instance"), async move {
            instances.delete_now(&row).await.map(|_| None)
        }))
    }

    /// Removes an instance's record, files and snapshots.
    pub async fn delete_now(&self, row: &store::Instance) -> Result<()> {
        let dir = self.dir(row).await.ok();
        if let Ok(snaps) = self.snapshots_dir(row).await {
            remove_tree(snaps).await;
        }
        let mut b = Batch::new();
        store::delete(&mut b, &row.project, &row.name);
        self.global.apply(&b).await?;
        if let Some(dir) = dir {
            remove_tree(dir).await;
        }
        self.driver.forget(&driver_name(&row.project, &row.name));
        self.events.lifecycle(&row.project, "instance-deleted", instance_url(&row.project, &row.name), None);
        Ok(())
    }

    /// Renames a stopped instance (async).
    pub async fn rename(self: &Arc<Self>, project: &str, name: &str, new_name: &str) -> Result<Arc<Op>> {
        validate_name("instance", new_name)?;
        let row = self.row(project, name).await?;
        if self.driver.init_pid(&driver_name(project, name)).is_some() {
            return Err(Error::BadRequest("Renaming of running instance not allowed".into()));
        }
        let dir = self.dir(&row).await?;
        let snaps = self.snapshots_dir(&row).await?;
        let instances = self.clone();
        let (project_s, new_s) = (project.to_string(), new_name.to_string());
        Ok(self.operations.spawn_task(instance_task(project, name, "Renaming instance"), async move {
            let mut b = Batch::new();
            store::rename(&mut b, &project_s, &row.name, &new_s);
            instances.global.apply(&b).await?;
            for path in [&dir, &snaps] {
                if let Some(parent) = path.parent()
                    && path.exists()
                {
                    let to = parent.join(driver_name(&project_s, &new_s));
                    std::fs::rename(path, &to).map_err(Error::io("renaming", path))?;
                }
            }
            instances.driver.rename(&driver_name(&project_s, &row.name), &driver_name(&project_s, &new_s));
            instances.events.lifecycle(&project_s, "instance-renamed", instance_url(&project_s, &new_s), None);
            Ok::<_, Error>(None)
        }))
    }

    /// PUT or PATCH of an instance's writable part. The change is written before the answer
    /// (so an If-Match that no longer holds is a 412, as for every other resource); the
    /// operation returned reports it done.
    pub async fn update(
        self: &Arc<Self>,
        project: &str,
        name: &str,
        change: InstanceChange,
        if_match: Option<&str>,
    ) -> Result<Arc<Op>> {
        match (&change, if_match) {
            (InstanceChange::Patch(_), None) => {
                crate::services::merge_until_unchanged(|| self.update_once(project, name, &change, None)).await?
            }
            _ => self.update_once(project, name, &change, if_match).await?,
        }
        self.events.lifecycle(project, "instance-updated", instance_url(project, name), None);
        Ok(self.operations.spawn_task(instance_task(project, name, "Updating instance"), async { Ok::<_, Error>(None) }))
    }

    async fn update_once(&self, project: &str, name: &str, change: &InstanceChange, if_match: Option<&str>) -> Result<()> {
        let (mut row, version): (store::Instance, Version) = store::get_versioned(&self.global, project, name).await?;
        let base = writable(&row);
        if let Some(given) = if_match {
            let current = crate::api::etag_of(&base);
            if current != given {
                return Err(Error::etag_mismatch(&current, given));
            }
        }
        let (put, guarded) = match change {
            InstanceChange::Replace(put) => (put.clone(), if_match.is_some()),
            InstanceChange::Patch(p) => {
                let mut config = base.config.clone();
                config.extend(p.config.clone());
                let mut devices = base.devices.clone();
                devices.extend(p.devices.clone());
                let put = InstancePut {
                    config,
                    devices,
                    profiles: p.profiles.clone().unwrap_or_else(|| base.profiles.clone()),
                    description: p.description.clone().unwrap_or_else(|| base.description.clone()),
                    ephemeral: p.ephemeral.unwrap_or(base.ephemeral),
                    ..base.clone()
                };
                (put, true)
            }
        };
        validate_config(&put.config)?;
        validate_devices(&self.global, &put.devices).await?;
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
        let (_, devices) = expand(&row, &all_profiles);
        root_pool(&devices)?;
        let mut b = Batch::new();
        if guarded {
            b.require_unchanged(&version, "ETag doesn't match: the instance changed meanwhile");
        }
        store::replace(&mut b, project, &row.name, &row);
        self.global.apply(&b).await?;
        Ok(())
    }

    /// At daemon start: instances that were running when it stopped are started again, and the
    /// ones still running (the daemon crashed, the containers did not) are watched again.
    pub async fn resume(self: &Arc<Self>) {
        // In a cluster the database answers once a quorum of members is back: keep asking.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        let rows = loop {
            match self.local_rows(None).await {
                Ok(rows) => break rows,
                Err(e) if tokio::time::Instant::now() < deadline && !self.shutdown.is_requested() => {
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
                self.watch(row.project.clone(), row.name.clone());
                continue;
            }
            if row.config.get("volatile.last_state.power").map(String::as_str) == Some("RUNNING")
                && let Err(e) = self.start(&row).await
            {
                tracing::warn!(instance = %row.name, error = %e, "Failed to start instance");
            }
        }
    }

    /// At daemon shutdown: stops this member's running instances cleanly, in parallel, keeping
    /// their last state so they start again with the daemon.
    pub async fn stop_for_shutdown(&self) {
        let Ok(rows) = self.local_rows(None).await else { return };
        let rows: Vec<store::Instance> =
            rows.into_iter().filter(|r| self.driver.init_pid(&driver_name(&r.project, &r.name)).is_some()).collect();
        let stops = rows.iter().map(|r| self.stop(r, false, DEFAULT_STOP_TIMEOUT, false));
        for r in futures_util::future::join_all(stops).await {
            if let Err(e) = r {
                tracing::warn!(error = %e, "Failed to stop instance at shutdown");
            }
        }
        for r in rows.iter().filter(|r| r.ephemeral) {
            if let Err(e) = self.delete_now(r).await {
                tracing::warn!(instance = %r.name, error = %e, "Failed to delete an ephemeral instance at shutdown");
            }
        }
    }

    /// Whether the instance is running on this member.
    pub fn is_running(&self, project: &str, name: &str) -> bool {
        self.driver.init_pid(&driver_name(project, name)).is_some()
    }
}

/// Removes a directory tree off the async runtime (gone already is fine).
pub async fn remove_tree(dir: PathBuf) {
    let result = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err((dir, e)),
        _ => Ok(()),
    })
    .await;
    if let Ok(Err((dir, e))) = result {
        tracing::warn!(path = %dir.display(), error = %e, "cannot remove a directory");
    }
}
