//! `/1.0/instances/<name>/snapshots` and `/1.0/instances/<name>/snapshots/<snapshot>`.

use std::sync::Arc;

use http::Method;

use super::HResult;
use crate::api::http::request::Request;
use crate::api::http::response::Response;
use crate::api::{Instance, InstancePut};
use crate::daemon::Daemon;
use crate::daemon::snapshots::snapshot_url;
use crate::store::global::{instances as store, snapshots};

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

/// An instance's snapshots rendered (for `recursion` on the instance itself).
pub async fn rendered(daemon: &Daemon, row: &store::Instance) -> Vec<Instance> {
    snapshots::list(&daemon.global, &row.project, &row.name).await.unwrap_or_default().iter().map(|s| render(row, s)).collect()
}

pub async fn collection(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    let project = req.project();
    let row = daemon.instance_row(&project, name).await?;
    if req.method == Method::POST {
        let body: serde_json::Value = req.json()?;
        let snap = body.get("name").and_then(|v| v.as_str()).unwrap_or("");
        let stateful = body.get("stateful").and_then(|v| v.as_bool()).unwrap_or(false);
        return Ok(Response::Async(daemon.create_snapshot(&project, name, snap, stateful).await?));
    }
    let all = snapshots::list(&daemon.global, &project, name).await?;
    if req.recursion() > 0 {
        return Ok(Response::sync(all.iter().map(|s| render(&row, s)).collect::<Vec<_>>()));
    }
    Ok(Response::sync(all.iter().map(|s| snapshot_url(name, &s.name)).collect::<Vec<_>>()))
}

pub async fn item(daemon: &Arc<Daemon>, req: &Request, name: &str, snap: &str) -> HResult {
    let project = req.project();
    let row = daemon.instance_row(&project, name).await?;
    let s = snapshots::get(&daemon.global, &project, name, snap).await?;
    match req.method {
        Method::GET => Ok(Response::sync(render(&row, &s))),
        Method::DELETE => Ok(Response::Async(daemon.delete_snapshot(&project, name, snap).await?)),
        _ => {
            let body: serde_json::Value = req.json()?;
            let new_name = body.get("name").and_then(|v| v.as_str()).unwrap_or("");
            if body.get("migration").and_then(|v| v.as_bool()) == Some(true) {
                return Err(Response::error(400, "Migrating snapshots is not supported: copy the snapshot into a new instance"));
            }
            Ok(Response::Async(daemon.rename_snapshot(&project, name, snap, new_name).await?))
        }
    }
}
