//! Moving an instance to another member (`lxc move --target`, evacuation and restore): the
//! owner stops it if it runs, streams its directory (rootfs, metadata) and each snapshot's as
//! tar archives to the target's `/internal/instances/<name>/receive`, re-points the record at
//! the target, removes its own copy, and starts it there again if it was running. Copies to
//! another member fetch the source's archive from the member holding it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::lifecycle::{DEFAULT_STOP_TIMEOUT, remove_tree};
use super::{Instances, driver_name, instance_task, instance_url};
use crate::operations::Op;
use crate::services::validation::validate_name;
use crate::services::{Error, Result};
use crate::store::Batch;
use crate::store::global::{instances as store, nodes, snapshots};

impl Instances {
    /// Moves a local instance to member `target`, setting `extra` config keys on the way.
    pub async fn move_to(&self, project: &str, name: &str, target: &str, extra: &[(&str, Option<String>)]) -> Result<()> {
        let rt = self.cluster.clustered()?;
        let row = self.row(project, name).await?;
        let node = rt.peer_named(target).await?.ok_or_else(|| Error::NotFound("Cluster member not found".into()))?;
        if node.id == row.node_id {
            return Err(Error::BadRequest("Target must be different than instance's current location".into()));
        }
        if !rt.is_online(node.id).await? {
            return Err(Error::BadRequest("Target node is offline".into()));
        }
        let snapshots = snapshots::list(&self.global, project, name).await?;
        let key = driver_name(project, name);
        let was_running = self.driver.init_pid(&key).is_some();
        if was_running {
            self.stop(&row, false, DEFAULT_STOP_TIMEOUT, false).await?;
        }
        let dir = self.dir(&row).await?;
        let snapshots_dir = self.snapshots_dir(&row).await?;
        // The instance's files, then each snapshot's (their records follow the instance's).
        let mut parts = vec![(String::new(), dir.clone())];
        parts.extend(snapshots.iter().map(|s| (s.name.clone(), snapshots_dir.join(&s.name))));
        for (snapshot, source) in &parts {
            let archive = pack(source).await?;
            let path = format!("/internal/instances/{name}/receive?project={project}&snapshot={snapshot}");
            let reply = rt.send(&node.address, "POST", &path, Some(archive), &[]).await?;
            if reply.status != 200 {
                return Err(Error::Internal(format!(
                    "member {target} could not receive the instance: {}",
                    String::from_utf8_lossy(&reply.body)
                )));
            }
        }
        let mut b = Batch::new();
        store::move_to(&mut b, project, name, node.id);
        store::set_keys(&mut b, project, name, extra);
        self.global.apply(&b).await?;
        remove_tree(dir).await;
        remove_tree(snapshots_dir).await;
        self.driver.forget(&key);
        if was_running {
            let start = serde_json::json!({"action": "start", "timeout": 0, "force": false, "stateful": false});
            self.remote_op(&node.address, "PUT", &format!("/1.0/instances/{name}/state?project={project}"), start).await?;
        }
        self.events.lifecycle(project, "instance-migrated", instance_url(project, name), None);
        Ok(())
    }

    /// Runs an async API call on the member at `address` and waits for its operation.
    async fn remote_op(&self, address: &str, method: &str, path: &str, body: serde_json::Value) -> Result<()> {
        let rt = self.cluster.clustered()?;
        let reply = rt.send(address, method, path, Some(body.to_string().into_bytes()), &[]).await?;
        let env: crate::api::Envelope =
            serde_json::from_slice(&reply.body).map_err(|e| Error::Internal(format!("bad answer from {address}: {e}")))?;
        if reply.status != 202 {
            return Err(Error::Internal(env.error));
        }
        let id = env.metadata.get("id").and_then(|v| v.as_str()).unwrap_or_default();
        let wait = format!("/1.0/operations/{id}/wait?timeout=60");
        let done = tokio::time::timeout(Duration::from_secs(70), rt.send(address, "GET", &wait, None, &[]))
            .await
            .map_err(|_| Error::Internal(format!("no answer from {address}")))??;
        let op: Option<crate::api::Operation> =
            serde_json::from_slice::<crate::api::Envelope>(&done.body).ok().and_then(|e| serde_json::from_value(e.metadata).ok());
        match op {
            Some(op) if op.status_code == 200 => Ok(()),
            Some(op) => Err(Error::Internal(op.err)),
            None => Err(Error::Internal(format!("no operation result from {address}"))),
        }
    }

    /// `lxc move <name> [<new name>] --target <member>` as an operation.
    pub async fn migrate(self: &Arc<Self>, project: &str, name: &str, new_name: &str, target: &str) -> Result<Arc<Op>> {
        self.row(project, name).await?;
        let (instances, p, n, t) = (self.clone(), project.to_string(), name.to_string(), target.to_string());
        let rename = (!new_name.is_empty() && new_name != name).then(|| new_name.to_string());
        Ok(self.operations.spawn_task(instance_task(project, name, "Migrating instance"), async move {
            instances.move_to(&p, &n, &t, &[]).await?;
            if let Some(new) = rename {
                let rt = instances.cluster.clustered()?;
                let address = rt.peer_named(&t).await?.map(|x| x.address).unwrap_or_default();
                let body = serde_json::json!({"name": new, "migration": false});
                instances.remote_op(&address, "POST", &format!("/1.0/instances/{n}?project={p}"), body).await?;
            }
            Ok::<_, Error>(None)
        }))
    }

    /// The target's side of a move: unpacks the archive into this member's pool directory for
    /// the instance, or for one of its snapshots.
    pub async fn receive(&self, project: &str, name: &str, snapshot: Option<&str>, archive: bytes::Bytes) -> Result<()> {
        let row = self.row(project, name).await?;
        let dir = match snapshot {
            Some(s) => {
                validate_name("snapshot", s)?;
                self.snapshots_dir(&row).await?.join(s)
            }
            None => self.dir(&row).await?,
        };
        unpack(&dir, &archive).await
    }

    /// The directory of an instance, or of one of its snapshots, on this member.
    async fn source_dir(&self, row: &store::Instance, snapshot: Option<&str>) -> Result<PathBuf> {
        match snapshot {
            Some(s) => Ok(self.snapshots_dir(row).await?.join(s)),
            None => self.dir(row).await,
        }
    }

    /// This member's copy of an instance (or a snapshot) as a tar archive.
    pub async fn archive(&self, project: &str, name: &str, snapshot: Option<&str>) -> Result<Vec<u8>> {
        let row = self.row(project, name).await?;
        pack(&self.source_dir(&row, snapshot).await?).await
    }

    /// The archive of an instance's directory (or a snapshot's), from this member or the
    /// member hosting it.
    pub async fn fetch_archive(&self, project: &str, name: &str, snapshot: Option<&str>) -> Result<Vec<u8>> {
        let row = self.row(project, name).await?;
        if self.is_local(&row) {
            return pack(&self.source_dir(&row, snapshot).await?).await;
        }
        let rt = self.cluster.clustered()?;
        let owner = nodes::get_by_id(&self.global, row.node_id).await?;
        let mut path = format!("/internal/instances/{name}/archive?project={project}");
        if let Some(s) = snapshot {
            path.push_str(&format!("&snapshot={s}"));
        }
        let reply = rt.send(&owner.address, "GET", &path, None, &[]).await?;
        match reply.status {
            200 => Ok(reply.body.to_vec()),
            _ => Err(Error::Internal(format!("fetching {name} from {}: {}", owner.name, String::from_utf8_lossy(&reply.body)))),
        }
    }
}

/// An instance's directory (rootfs, metadata) as a tar archive.
pub async fn pack(dir: &Path) -> Result<Vec<u8>> {
    let archive = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["--numeric-owner", "-cf", "-", "."])
        .output()
        .await
        .map_err(|e| Error::Internal(format!("running tar: {e}")))?;
    if !archive.status.success() {
        return Err(Error::Internal(format!("Failed to pack {}: {}", dir.display(), String::from_utf8_lossy(&archive.stderr))));
    }
    Ok(archive.stdout)
}

/// Unpacks an archive made by [`pack`] into `dir` (replacing what was there).
pub async fn unpack(dir: &Path, archive: &[u8]) -> Result<()> {
    if dir.exists() {
        remove_tree(dir.to_path_buf()).await;
    }
    std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    let mut child = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["--numeric-owner", "--same-permissions", "-xf", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Internal(format!("running tar: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        stdin.write_all(archive).await.map_err(|e| Error::Internal(format!("feeding tar: {e}")))?;
    }
    let out = child.wait_with_output().await.map_err(|e| Error::Internal(format!("running tar: {e}")))?;
    if !out.status.success() {
        remove_tree(dir.to_path_buf()).await;
        return Err(Error::Internal(format!("unpacking the instance: {}", String::from_utf8_lossy(&out.stderr))));
    }
    Ok(())
}
