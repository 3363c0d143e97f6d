//! Instance snapshots on this member: the instance's directory copied aside under
//! `<pool>/containers-snapshots/<instance>/<snapshot>`, with its configuration recorded;
//! restoring copies the files (and configuration) back; a copy of an instance can start from a
//! snapshot.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lifecycle::{DEFAULT_STOP_TIMEOUT, remove_tree};
use super::{Instances, driver_name, instance_task, instance_url};
use crate::api::{Instance, InstancePut};
use crate::operations::Op;
use crate::services::validation::validate_name;
use crate::services::{Error, Result};
use crate::store::Batch;
use crate::store::global::{instances as store, snapshots};
use crate::util::time;

pub fn snapshot_url(instance: &str, snapshot: &str) -> String {
    format!("/1.0/instances/{instance}/snapshots/{snapshot}")
}

/// Copies the tree `src` to `dst` (which must not exist) as `cp -a` would, off the runtime.
pub async fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
    }
    let (src, dst) = (src.to_path_buf(), dst.to_path_buf());
    tokio::task::spawn_blocking(move || crate::util::tree::copy(&src, &dst).map_err(Error::io("copying to", &dst))).await?
}

/// A snapshot as LXD's API shows it: the instance's shape, named after the snapshot, with the
/// configuration it had when taken.
pub fn render(row: &store::Instance, s: &snapshots::Snapshot) -> Instance {
    Instance {
        put: InstancePut {
            architecture: row.architecture.clone(),
            config: s.config.clone(),
            devices: row.devices.clone(),
            ephemeral: false,
            profiles: row.profiles.clone(),
            stateful: s.stateful,
            description: s.description.clone(),
        },
        created_at: s.created_at.clone(),
        expanded_config: s.config.clone(),
        expanded_devices: row.devices.clone(),
        name: s.name.clone(),
        last_used_at: "1970-01-01T00:00:00Z".into(),
        location: row.location.clone(),
        kind: "container".into(),
        project: row.project.clone(),
        ..Default::default()
    }
}

impl Instances {
    /// Where an instance's snapshots live on this member.
    pub async fn snapshots_dir(&self, row: &store::Instance) -> Result<PathBuf> {
        let dir = self.dir(row).await?;
        let pool_root = dir.parent().and_then(|p| p.parent()).map(PathBuf::from).unwrap_or_default();
        Ok(pool_root.join("containers-snapshots").join(driver_name(&row.project, &row.name)))
    }

    /// An instance's snapshots rendered (for `recursion` on the instance itself).
    pub async fn rendered_snapshots(&self, row: &store::Instance) -> Vec<Instance> {
        match snapshots::list(&self.global, &row.project, &row.name).await {
            Ok(all) => all.iter().map(|s| render(row, s)).collect(),
            Err(e) => {
                tracing::warn!(instance = %row.name, error = %e, "cannot list the instance's snapshots");
                Vec::new()
            }
        }
    }

    /// The snapshots of an instance: names, or (`recursion`) objects.
    pub async fn snapshots(&self, project: &str, name: &str) -> Result<Vec<Instance>> {
        let row = self.row(project, name).await?;
        Ok(snapshots::list(&self.global, project, name).await?.iter().map(|s| render(&row, s)).collect())
    }

    pub async fn snapshot(&self, project: &str, name: &str, snap: &str) -> Result<Instance> {
        let row = self.row(project, name).await?;
        let s = snapshots::get(&self.global, project, name, snap).await?;
        Ok(render(&row, &s))
    }

    /// Takes a snapshot (async: "Snapshotting instance"); an empty name becomes `snap<N>`.
    pub async fn create_snapshot(self: &Arc<Self>, project: &str, name: &str, snap: &str, stateful: bool) -> Result<Arc<Op>> {
        if stateful {
            return Err(Error::BadRequest("Stateful snapshots are not supported by this driver".into()));
        }
        let row = self.row(project, name).await?;
        let existing = snapshots::list(&self.global, project, name).await?;
        let snap = if snap.is_empty() {
            (0..).map(|i| format!("snap{i}")).find(|n| !existing.iter().any(|s| &s.name == n)).unwrap_or_default()
        } else {
            snap.to_string()
        };
        validate_name("snapshot", &snap)?;
        if existing.iter().any(|s| s.name == snap) {
            return Err(Error::Conflict(format!("Snapshot \"{snap}\" already exists")));
        }
        let src = self.dir(&row).await?;
        let dst = self.snapshots_dir(&row).await?.join(&snap);
        let instances = self.clone();
        let project = project.to_string();
        Ok(self.operations.spawn_task(instance_task(&project, name, "Snapshotting instance"), async move {
            copy_tree(&src, &dst).await?;
            let s = snapshots::Snapshot {
                name: snap.clone(),
                created_at: time::rfc3339(time::now_nanos()),
                config: row.config.clone(),
                ..Default::default()
            };
            let mut b = Batch::new();
            snapshots::create(&mut b, &project, &row.name, &s);
            if let Err(e) = instances.global.apply(&b).await {
                remove_tree(dst).await;
                return Err(e.into());
            }
            instances.events.lifecycle(&project, "instance-snapshot-created", snapshot_url(&row.name, &snap), None);
            Ok::<_, Error>(None)
        }))
    }

    pub async fn delete_snapshot(self: &Arc<Self>, project: &str, name: &str, snap: &str) -> Result<Arc<Op>> {
        let row = self.row(project, name).await?;
        snapshots::get(&self.global, project, name, snap).await?;
        let dir = self.snapshots_dir(&row).await?.join(snap);
        let (instances, project, snap) = (self.clone(), project.to_string(), snap.to_string());
        Ok(self.operations.spawn_task(instance_task(&project, name, "Deleting snapshot"), async move {
            let mut b = Batch::new();
            snapshots::delete(&mut b, &project, &row.name, &snap);
            instances.global.apply(&b).await?;
            remove_tree(dir).await;
            instances.events.lifecycle(&project, "instance-snapshot-deleted", snapshot_url(&row.name, &snap), None);
            Ok::<_, Error>(None)
        }))
    }

    pub async fn rename_snapshot(self: &Arc<Self>, project: &str, name: &str, snap: &str, new_name: &str) -> Result<Arc<Op>> {
        validate_name("snapshot", new_name)?;
        let row = self.row(project, name).await?;
        snapshots::get(&self.global, project, name, snap).await?;
        let base = self.snapshots_dir(&row).await?;
        let (instances, project, snap, new_name) = (self.clone(), project.to_string(), snap.to_string(), new_name.to_string());
        Ok(self.operations.spawn_task(instance_task(&project, name, "Renaming snapshot"), async move {
            let mut b = Batch::new();
            snapshots::rename(&mut b, &project, &row.name, &snap, &new_name);
            instances.global.apply(&b).await?;
            let from = base.join(&snap);
            std::fs::rename(&from, base.join(&new_name)).map_err(Error::io("renaming", &from))?;
            instances.events.lifecycle(&project, "instance-snapshot-renamed", snapshot_url(&row.name, &new_name), None);
            Ok::<_, Error>(None)
        }))
    }

    /// Restores an instance from a snapshot (async: files and configuration; a running
    /// instance is stopped for it and started again). `if_match`: the instance's ETag the
    /// client read, which must still hold.
    pub async fn restore_snapshot(
        self: &Arc<Self>,
        project: &str,
        name: &str,
        snap: &str,
        if_match: Option<&str>,
    ) -> Result<Arc<Op>> {
        let row = self.row(project, name).await?;
        if let Some(given) = if_match {
            let profiles = crate::store::global::profiles::list(&self.global, Some(project)).await?;
            let current = super::etag(&self.render(&row, &profiles, false));
            if current != given {
                return Err(Error::etag_mismatch(&current, given));
            }
        }
        let s = snapshots::get(&self.global, project, name, snap).await?;
        let dir = self.dir(&row).await?;
        let from = self.snapshots_dir(&row).await?.join(snap);
        let (instances, project) = (self.clone(), project.to_string());
        Ok(self.operations.spawn_task(instance_task(&project, name, "Restoring snapshot"), async move {
            let running = instances.is_running(&project, &row.name);
            if running {
                instances.stop(&row, true, DEFAULT_STOP_TIMEOUT, false).await?;
            }
            let aside = dir.with_extension("restoring");
            remove_tree(aside.clone()).await;
            std::fs::rename(&dir, &aside).map_err(Error::io("moving aside", &dir))?;
            if let Err(e) = copy_tree(&from, &dir).await {
                if let Err(back) = std::fs::rename(&aside, &dir) {
                    tracing::error!(path = %dir.display(), error = %back, "cannot put the instance's files back");
                }
                return Err(e);
            }
            remove_tree(aside).await;
            let mut restored = row.clone();
            restored.config =
                s.config.iter().filter(|(k, _)| !k.starts_with("volatile.")).map(|(k, v)| (k.clone(), v.clone())).collect();
            for (k, v) in &row.config {
                if k.starts_with("volatile.") {
                    restored.config.insert(k.clone(), v.clone());
                }
            }
            let mut b = Batch::new();
            store::replace(&mut b, &project, &row.name, &restored);
            instances.global.apply(&b).await?;
            if running {
                instances.start(&restored).await?;
            }
            instances.events.lifecycle(&project, "instance-restored", instance_url(&project, &row.name), None);
            Ok::<_, Error>(None)
        }))
    }
}
