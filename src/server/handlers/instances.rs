//! `/1.0/instances` and everything under `/1.0/instances/<name>` for instances on this member
//! (requests for instances elsewhere were forwarded before reaching here), plus the cluster-wide
//! listing and placement of new instances.

use std::collections::HashMap;
use std::sync::Arc;

use http::Method;
use serde_json::value::RawValue;

use super::HResult;
use crate::api::http::request::Request;
use crate::api::http::response::{Response, etag_of};
use crate::api::{Instance, InstancePost, InstancePut, InstanceStatePut, InstanceStatus, InstancesPost};
use crate::cluster::forward;
use crate::daemon::Daemon;
use crate::daemon::instances::instance_url;
use crate::store::global::instances as store;

/// GET lists every instance of the project (all members'); POST creates one, placed by the
/// scheduler unless `?target=` names the member.
pub async fn collection(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    let project = req.project();
    if req.method == Method::POST {
        let body: InstancesPost = req.json()?;
        if daemon.cluster_runtime().is_some() {
            let member = crate::cluster::placement::choose(daemon, req.query("target").filter(|t| !t.is_empty())).await?;
            if let Some((name, address)) = member {
                let path = format!("/1.0/instances?project={project}&target={name}");
                let (status, headers, body) =
                    forward::send(daemon, &address, "POST", &path, Some(req.body.to_vec()), &[]).await?;
                return Ok(Response::forwarded(status, &headers, body));
            }
        }
        return Ok(Response::Async(daemon.create_instance(&project, body).await?));
    }
    let all_projects = req.query("all-projects") == Some("true");
    let scope = (!all_projects).then_some(project.as_str());
    // A member asked by another member, or `?target=`: only this member's instances.
    let only_local = req.cluster || req.query("target").is_some_and(|t| !t.is_empty());
    let rows = store::list(&daemon.global, scope, only_local.then(|| daemon.node_id())).await?;
    if req.recursion() == 0 {
        return Ok(Response::sync(rows.iter().map(|r| instance_url(&r.project, &r.name)).collect::<Vec<_>>()));
    }
    let with_state = req.recursion() >= 2;
    let profiles = crate::store::global::profiles::list(&daemon.global, scope).await?;
    let mut remote = if only_local || daemon.cluster_runtime().is_none() {
        Default::default()
    } else {
        remote_listing(daemon, req, &rows).await
    };
    let snapshot_counts =
        if with_state { crate::store::global::snapshots::counts(&daemon.global).await? } else { Default::default() };
    let json = |i: &Instance| serde_json::value::to_raw_value(i).map_err(|e| crate::daemon::Error::Internal(e.to_string()));
    // Other members' instances are passed on as they sent them, never re-parsed in full.
    let mut out: Vec<Box<RawValue>> = Vec::with_capacity(rows.len());
    for r in &rows {
        if daemon.is_local(r) {
            let mut i = daemon.render_with(r, &profiles, with_state);
            if with_state {
                let has_snapshots = snapshot_counts.get(&r.id).is_some_and(|n| *n > 0);
                i.snapshots = Some(if has_snapshots { super::snapshots::rendered(daemon, r).await } else { Vec::new() });
            }
            out.push(json(&i)?);
        } else if let Some(i) = remote.remove(&(r.project.clone(), r.name.clone())) {
            out.push(i);
        } else {
            // The member is offline or did not answer: the instance is shown in error.
            let mut i = daemon.render_with(r, &profiles, false);
            i.status = InstanceStatus::Error.name().into();
            i.status_code = InstanceStatus::Error.code();
            if with_state {
                i.state = Some(crate::api::InstanceState {
                    status: i.status.clone(),
                    status_code: i.status_code,
                    pid: -1,
                    processes: -1,
                    ..Default::default()
                });
            }
            out.push(json(&i)?);
        }
    }
    Ok(Response::sync_json(&json_list(&out)?))
}

fn json_list(items: &[Box<RawValue>]) -> Result<Box<RawValue>, crate::daemon::Error> {
    serde_json::value::to_raw_value(items).map_err(|e| crate::daemon::Error::Internal(e.to_string()))
}

/// The instances of every other member that hosts some, asked in parallel, by (project, name).
async fn remote_listing(
    daemon: &Arc<Daemon>,
    req: &Request,
    rows: &[store::Instance],
) -> HashMap<(String, String), Box<RawValue>> {
    #[derive(serde::Deserialize)]
    struct Listing {
        metadata: Vec<Box<RawValue>>,
    }
    #[derive(serde::Deserialize)]
    struct Key {
        name: String,
        project: String,
    }
    let Ok(online) = forward::online_other_members(daemon).await else { return HashMap::new() };
    let hosting: Vec<String> = online.into_iter().filter(|n| rows.iter().any(|r| r.node_id == n.id)).map(|n| n.address).collect();
    let path = format!("/1.0/instances?{}", req.raw_query);
    let asks = hosting.iter().map(|address| {
        let path = path.clone();
        async move {
            match forward::send(daemon, address, "GET", &path, None, &[]).await {
                Ok((200, _, body)) => serde_json::from_slice::<Listing>(&body).map(|l| l.metadata).unwrap_or_default(),
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

pub async fn item(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    let project = req.project();
    let row = daemon.instance_row(&project, name).await?;
    let full = req.method == Method::GET && req.recursion() >= 1;
    let mut current = daemon.render_instance(&row, full).await?;
    if full {
        current.snapshots = Some(super::snapshots::rendered(daemon, &row).await);
    }
    let etag = etag_of(&current.put);
    match req.method {
        Method::GET => Ok(Response::sync_etag(current, etag)),
        Method::DELETE => Ok(Response::Async(daemon.delete_instance(&project, name).await?)),
        Method::POST => {
            let body: InstancePost = req.json()?;
            if body.migration {
                let target = req.query("target").filter(|t| !t.is_empty()).ok_or_else(|| {
                    Response::error(400, "Moving an instance needs a target member (lxc move <instance> --target <member>)")
                })?;
                return Ok(Response::Async(
                    crate::cluster::moving::move_instance_op(daemon, &project, name, &body.name, target).await?,
                ));
            }
            Ok(Response::Async(daemon.rename_instance(&project, name, &body.name).await?))
        }
        _ => {
            req.check_etag(&etag)?;
            let raw: serde_json::Value = req.json()?;
            if let Some(snap) = raw.get("restore").and_then(|v| v.as_str()).filter(|s| !s.is_empty()) {
                // The stock client names it "<instance>/<snapshot>".
                let snap = snap.rsplit('/').next().unwrap_or(snap);
                return Ok(Response::Async(daemon.restore_snapshot(&project, name, snap).await?));
            }
            let mut body: InstancePut =
                serde_json::from_value(raw.clone()).map_err(|e| Response::error(400, format!("Invalid instance: {e}")))?;
            if req.method == Method::PATCH {
                let base = current.put;
                super::patch_over(&mut body.config, &mut body.devices, &base.config, &base.devices);
                if raw.get("profiles").is_none() {
                    body.profiles = base.profiles;
                }
                if raw.get("description").is_none() {
                    body.description = base.description;
                }
                if raw.get("ephemeral").is_none() {
                    body.ephemeral = base.ephemeral;
                }
            }
            Ok(Response::Async(daemon.update_instance(&project, name, body).await?))
        }
    }
}

pub async fn state(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    let project = req.project();
    let row = daemon.instance_row(&project, name).await?;
    match req.method {
        Method::GET => Ok(Response::sync(daemon.instance_state(&row))),
        _ => {
            let body: InstanceStatePut = req.json()?;
            Ok(Response::Async(daemon.change_state(&project, name, body).await?))
        }
    }
}

/// `GET /1.0/instances/<name>/console`: the console log (what init printed).
pub async fn console(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    let project = req.project();
    daemon.instance_row(&project, name).await?;
    let key = crate::daemon::instances::driver_name(&project, name);
    let log = daemon.driver.log_dir(&key).join("console.log");
    match req.method {
        Method::DELETE => {
            let _ = std::fs::write(&log, b"");
            Ok(Response::empty())
        }
        _ => {
            let data = std::fs::read(&log).unwrap_or_default();
            Ok(Response::raw(200, "application/octet-stream", &[], data.into()))
        }
    }
}
