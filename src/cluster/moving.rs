//! Moving an instance to another member (`lxc move --target`, evacuation and restore): the
//! owner stops it if it runs, streams its directory (rootfs, metadata) as a tar archive to the
//! target's `/internal/instances/<name>/receive`, re-points the record at the target, removes
//! its own copy, and starts it there again if it was running.

use std::sync::Arc;
use std::time::Duration;

use super::forward;
use crate::daemon::instances::{DEFAULT_STOP_TIMEOUT, driver_name};
use crate::daemon::operations::Op;
use crate::daemon::{Daemon, Error, Result};
use crate::store::Batch;
use crate::store::global::{instances as store, nodes};

/// Moves a local instance to member `target`; `start_after` starts it there when it was running.
pub async fn move_instance(
    d: &Arc<Daemon>,
    project: &str,
    name: &str,
    target: &str,
    extra: &[(&str, Option<String>)],
) -> Result<()> {
    let row = d.instance_row(project, name).await?;
    let node = nodes::list(&d.global)
        .await?
        .into_iter()
        .find(|n| n.name == target)
        .ok_or_else(|| Error::NotFound("Cluster member not found".into()))?;
    if node.id == row.node_id {
        return Err(Error::BadRequest("Target must be different than instance's current location".into()));
    }
    if !forward::online_others(d).await?.contains(&node.address) {
        return Err(Error::BadRequest("Target node is offline".into()));
    }
    let snapshots = crate::store::global::snapshots::list(&d.global, project, name).await?;
    let key = driver_name(project, name);
    let was_running = d.driver.init_pid(&key).is_some();
    if was_running {
        d.stop_instance(&row, false, DEFAULT_STOP_TIMEOUT, false).await?;
    }
    let dir = d.instance_dir(&row).await?;
    let snapshots_dir = d.snapshots_dir(&row).await?;
    // The instance's files, then each snapshot's (their records follow the instance's).
    let mut parts = vec![(String::new(), dir.clone())];
    parts.extend(snapshots.iter().map(|s| (s.name.clone(), snapshots_dir.join(&s.name))));
    for (snapshot, source) in &parts {
        let archive = pack(source).await?;
        let path = format!("/internal/instances/{name}/receive?project={project}&snapshot={snapshot}");
        let (status, _, body) = forward::send(d, &node.address, "POST", &path, Some(archive), &[]).await?;
        if status != 200 {
            return Err(Error::Internal(format!(
                "member {target} could not receive the instance: {}",
                String::from_utf8_lossy(&body)
            )));
        }
    }
    let mut b = Batch::new();
    store::move_to(&mut b, project, name, node.id);
    store::set_keys(&mut b, project, name, extra);
    d.global.apply(&b).await?;
    let _ = tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(snapshots_dir);
    })
    .await;
    d.driver.forget(&key);
    if was_running {
        let start = serde_json::json!({"action": "start", "timeout": 0, "force": false, "stateful": false});
        remote_op(d, &node.address, "PUT", &format!("/1.0/instances/{name}/state?project={project}"), start).await?;
    }
    d.events.lifecycle(project, "instance-migrated", crate::daemon::instances::instance_url(project, name), None);
    Ok(())
}

/// Runs an async API call on the member at `address` and waits for its operation.
async fn remote_op(d: &Daemon, address: &str, method: &str, path: &str, body: serde_json::Value) -> Result<()> {
    let (status, _, reply) = forward::send(d, address, method, path, Some(body.to_string().into_bytes()), &[]).await?;
    let env: crate::api::Envelope =
        serde_json::from_slice(&reply).map_err(|e| Error::Internal(format!("bad answer from {address}: {e}")))?;
    if status != 202 {
        return Err(Error::Internal(env.error));
    }
    let id = env.metadata.get("id").and_then(|v| v.as_str()).unwrap_or_default();
    let wait = format!("/1.0/operations/{id}/wait?timeout=60");
    let (_, _, done) = tokio::time::timeout(Duration::from_secs(70), forward::send(d, address, "GET", &wait, None, &[]))
        .await
        .map_err(|_| Error::Internal(format!("no answer from {address}")))??;
    let op: Option<crate::api::Operation> =
        serde_json::from_slice::<crate::api::Envelope>(&done).ok().and_then(|e| serde_json::from_value(e.metadata).ok());
    match op {
        Some(op) if op.status_code == 200 => Ok(()),
        Some(op) => Err(Error::Internal(op.err)),
        None => Err(Error::Internal(format!("no operation result from {address}"))),
    }
}

/// `lxc move <name> [<new name>] --target <member>` as an operation.
pub async fn move_instance_op(d: &Arc<Daemon>, project: &str, name: &str, new_name: &str, target: &str) -> Result<Arc<Op>> {
    d.instance_row(project, name).await?;
    let (dd, p, n, t) = (d.clone(), project.to_string(), name.to_string(), target.to_string());
    let rename = (!new_name.is_empty() && new_name != name).then(|| new_name.to_string());
    Ok(d.operations.spawn_task(crate::daemon::instances::instance_task(project, name, "Migrating instance"), async move {
        move_instance(&dd, &p, &n, &t, &[]).await.map_err(|e| e.to_string())?;
        if let Some(new) = rename {
            let node = nodes::list(&dd.global).await.map_err(|e| e.to_string())?.into_iter().find(|x| x.name == t);
            let address = node.map(|x| x.address).unwrap_or_default();
            let body = serde_json::json!({"name": new, "migration": false});
            remote_op(&dd, &address, "POST", &format!("/1.0/instances/{n}?project={p}"), body)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(None)
    }))
}

/// An instance's directory (rootfs, metadata) as a tar archive.
pub async fn pack(dir: &std::path::Path) -> Result<Vec<u8>> {
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

/// The target's side: unpacks the archive into this member's pool directory for the instance,
/// or for one of its snapshots.
pub async fn receive(d: &Daemon, project: &str, name: &str, snapshot: Option<&str>, archive: bytes::Bytes) -> Result<()> {
    let row = d.instance_row(project, name).await?;
    let dir = match snapshot {
        Some(s) => {
            crate::daemon::profiles::validate_name("snapshot", s)?;
            d.snapshots_dir(&row).await?.join(s)
        }
        None => d.instance_dir(&row).await?,
    };
    unpack(&dir, &archive).await
}

/// Unpacks an archive made by [`pack`] into `dir` (replacing what was there).
pub async fn unpack(dir: &std::path::Path, archive: &[u8]) -> Result<()> {
    if dir.exists() {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
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
        stdin.write_all(archive).await.map_err(|e| Error::Internal(e.to_string()))?;
    }
    let out = child.wait_with_output().await.map_err(|e| Error::Internal(e.to_string()))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(dir);
        return Err(Error::Internal(format!("unpacking the instance: {}", String::from_utf8_lossy(&out.stderr))));
    }
    Ok(())
}

/// The directory of an instance, or of one of its snapshots, on this member.
pub async fn source_dir(
    d: &Daemon,
    row: &crate::store::global::instances::Instance,
    snapshot: Option<&str>,
) -> Result<std::path::PathBuf> {
    match snapshot {
        Some(s) => Ok(d.snapshots_dir(row).await?.join(s)),
        None => d.instance_dir(row).await,
    }
}

/// The archive of an instance's directory (or a snapshot's), from this member or the member
/// hosting it.
pub async fn fetch_archive(d: &Daemon, project: &str, name: &str, snapshot: Option<&str>) -> Result<Vec<u8>> {
    let row = d.instance_row(project, name).await?;
    if d.is_local(&row) {
        return pack(&source_dir(d, &row, snapshot).await?).await;
    }
    let owner = nodes::get_by_id(&d.global, row.node_id).await?;
    let mut path = format!("/internal/instances/{name}/archive?project={project}");
    if let Some(s) = snapshot {
        path.push_str(&format!("&snapshot={s}"));
    }
    match forward::send(d, &owner.address, "GET", &path, None, &[]).await? {
        (200, _, body) => Ok(body.to_vec()),
        (_, _, body) => Err(Error::Internal(format!("fetching {name} from {}: {}", owner.name, String::from_utf8_lossy(&body)))),
    }
}
