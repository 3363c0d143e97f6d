//! Instance snapshots on this member: the instance's directory copied aside under
//! `<pool>/containers-snapshots/<instance>/<snapshot>`, with its configuration recorded;
//! restoring copies the files (and configuration) back; a copy of an instance can start from a
//! snapshot.

use std::path::PathBuf;
use std::sync::Arc;

use super::instances::{driver_name, instance_task, instance_url};
use super::operations::Op;
use super::{Daemon, Error, Result};
use crate::store::Batch;
use crate::store::global::{instances as store, snapshots};
use crate::util::time;

pub fn snapshot_url(instance: &str, snapshot: &str) -> String {
    format!("/1.0/instances/{instance}/snapshots/{snapshot}")
}

/// Copies the tree `src` to `dst` (which must not exist) as `cp -a` would, off the runtime.
pub async fn copy_tree(src: &std::path::Path, dst: &std::path::Path) -> Result<()> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::Internal(format!("creating {}: {e}", parent.display())))?;
    }
    let (src, dst) = (src.to_path_buf(), dst.to_path_buf());
    tokio::task::spawn_blocking(move || crate::util::tree::copy(&src, &dst))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(format!("copying: {e}")))
}

impl Daemon {
    /// Where an instance's snapshots live on this member.
    pub async fn snapshots_dir(&self, row: &store::Instance) -> Result<PathBuf> {
        let dir = self.instance_dir(row).await?;
        let pool_root = dir.parent().and_then(|p| p.parent()).map(PathBuf::from).unwrap_or_default();
        Ok(pool_root.join("containers-snapshots").join(driver_name(&row.project, &row.name)))
    }

    /// Takes a snapshot (async: "Snapshotting instance"); an empty name becomes `snap<N>`.
    pub async fn create_snapshot(self: &Arc<Self>, project: &str, name: &str, snap: &str, stateful: bool) -> Result<Arc<Op>> {
        if stateful {
            return Err(Error::BadRequest("Stateful snapshots are not supported by this driver".into()));
        }
        let row = self.instance_row(project, name).await?;
        let existing = snapshots::list(&self.global, project, name).await?;
        let snap = if snap.is_empty() {
            (0..).map(|i| format!("snap{i}")).find(|n| !existing.iter().any(|s| &s.name == n)).unwrap_or_default()
        } else {
            snap.to_string()
        };
        super::profiles::validate_name("snapshot", &snap)?;
        if existing.iter().any(|s| s.name == snap) {
            return Err(Error::Conflict(format!("Snapshot \"{snap}\" already exists")));
        }
        let src = self.instance_dir(&row).await?;
        let dst = self.snapshots_dir(&row).await?.join(&snap);
        let d = self.clone();
        let project = project.to_string();
        Ok(self.operations.spawn_task(instance_task(&project, name, "Snapshotting instance"), async move {
            copy_tree(&src, &dst).await.map_err(|e| e.to_string())?;
            let s = snapshots::Snapshot {
                name: snap.clone(),
                created_at: time::rfc3339(time::now_nanos()),
                config: row.config.clone(),
                ..Default::default()
            };
            let mut b = Batch::new();
            snapshots::create(&mut b, &project, &row.name, &s);
            if let Err(e) = d.global.apply(&b).await {
                let _ = std::fs::remove_dir_all(&dst);
                return Err(e.to_string());
            }
            d.events.lifecycle(&project, "instance-snapshot-created", snapshot_url(&row.name, &snap), None);
            Ok(None)
        }))
    }

    pub async fn delete_snapshot(self: &Arc<Self>, project: &str, name: &str, snap: &str) -> Result<Arc<Op>> {
        let row = self.instance_row(project, name).await?;
        snapshots::get(&self.global, project, name, snap).await?;
        let dir = self.snapshots_dir(&row).await?.join(snap);
        let (d, project, snap) = (self.clone(), project.to_string(), snap.to_string());
        Ok(self.operations.spawn_task(instance_task(&project, name, "Deleting snapshot"), async move {
            let mut b = Batch::new();
            snapshots::delete(&mut b, &project, &row.name, &snap);
            d.global.apply(&b).await.map_err(|e| e.to_string())?;
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
            d.events.lifecycle(&project, "instance-snapshot-deleted", snapshot_url(&row.name, &snap), None);
            Ok(None)
        }))
    }

    pub async fn rename_snapshot(self: &Arc<Self>, project: &str, name: &str, snap: &str, new_name: &str) -> Result<Arc<Op>> {
        super::profiles::validate_name("snapshot", new_name)?;
        let row = self.instance_row(project, name).await?;
        snapshots::get(&self.global, project, name, snap).await?;
        let base = self.snapshots_dir(&row).await?;
        let (d, project, snap, new_name) = (self.clone(), project.to_string(), snap.to_string(), new_name.to_string());
        Ok(self.operations.spawn_task(instance_task(&project, name, "Renaming snapshot"), async move {
            let mut b = Batch::new();
            snapshots::rename(&mut b, &project, &row.name, &snap, &new_name);
            d.global.apply(&b).await.map_err(|e| e.to_string())?;
            std::fs::rename(base.join(&snap), base.join(&new_name)).map_err(|e| e.to_string())?;
            d.events.lifecycle(&project, "instance-snapshot-renamed", snapshot_url(&row.name, &new_name), None);
            Ok(None)
        }))
    }

    /// Restores an instance from a snapshot (async: files and configuration; a running
    /// instance is stopped for it and started again).
    pub async fn restore_snapshot(self: &Arc<Self>, project: &str, name: &str, snap: &str) -> Result<Arc<Op>> {
        let row = self.instance_row(project, name).await?;
        let s = snapshots::get(&self.global, project, name, snap).await?;
        let dir = self.instance_dir(&row).await?;
        let from = self.snapshots_dir(&row).await?.join(snap);
        let (d, project) = (self.clone(), project.to_string());
        Ok(self.operations.spawn_task(instance_task(&project, name, "Restoring snapshot"), async move {
            let running = d.driver.init_pid(&driver_name(&project, &row.name)).is_some();
            if running {
                d.stop_instance(&row, true, super::instances::DEFAULT_STOP_TIMEOUT, false).await.map_err(|e| e.to_string())?;
            }
            let aside = dir.with_extension("restoring");
            let _ = std::fs::remove_dir_all(&aside);
            std::fs::rename(&dir, &aside).map_err(|e| e.to_string())?;
            if let Err(e) = copy_tree(&from, &dir).await {
                let _ = std::fs::rename(&aside, &dir);
                return Err(e.to_string());
            }
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(aside)).await;
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
            d.global.apply(&b).await.map_err(|e| e.to_string())?;
            if running {
                d.start_instance(&restored).await.map_err(|e| e.to_string())?;
            }
            d.events.lifecycle(&project, "instance-restored", instance_url(&project, &row.name), None);
            Ok(None)
        }))
    }
}
