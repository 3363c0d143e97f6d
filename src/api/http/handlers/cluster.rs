//! `/1.0/cluster`, `/1.0/cluster/members[/<name>]` and the internal join endpoints
//! (`/internal/cluster/accept`, `/internal/cluster/rebalance`).

use std::sync::Arc;

use http::Method;

use super::{HResult, list_response};
use crate::api::http::request::Request;
use crate::api::http::response::{Response, etag_of};
use crate::api::{AcceptRequest, Cluster, ClusterPut};
use crate::client::Connection;
use crate::cluster::membership::{self, Plan};
use crate::daemon::Daemon;
use crate::daemon::operations::{NewOp, OpClass};
use crate::tls::ServerPin;

pub async fn cluster(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    if req.method == Method::GET {
        let clustered = daemon.cluster_runtime().is_some();
        let server_name = if clustered { daemon.stored_config().await?.server_name } else { String::new() };
        let c = Cluster { server_name, enabled: clustered, member_config: vec![] };
        let etag = etag_of(&c);
        return Ok(Response::sync_etag(c, etag));
    }
    let body: ClusterPut = req.json()?;
    let plan = membership::plan(daemon, body).await?;
    let d = daemon.clone();
    let (description, work): (&str, crate::util::BoxFuture<'static, crate::daemon::Result<()>>) = match plan {
        Plan::Bootstrap { name, address } => ("Creating bootstrap node", Box::pin(membership::bootstrap(d, name, address))),
        Plan::Join { req } => ("Joining cluster", Box::pin(membership::join(d, req))),
    };
    let op = daemon.operations.spawn_task(
        NewOp {
            class: OpClass::Task,
            description: description.into(),
            project: String::new(),
            resources: serde_json::json!({"cluster": null}),
            metadata: serde_json::Value::Null,
            may_cancel: false,
        },
        async move { work.await.map(|()| None).map_err(|e| e.to_string()) },
    );
    Ok(Response::Async(op))
}

fn not_clustered(daemon: &Daemon) -> Result<(), Response> {
    match daemon.cluster_runtime() {
        Some(_) => Ok(()),
        None => Err(Response::error(500, "LXD server isn't part of a cluster")),
    }
}

pub async fn members(daemon: &Daemon, req: &Request) -> HResult {
    not_clustered(daemon)?;
    let members = membership::members(daemon).await?;
    Ok(list_response(req, members, |m| format!("/1.0/cluster/members/{}", m.server_name)))
}

pub async fn member(daemon: &Daemon, name: &str) -> HResult {
    not_clustered(daemon)?;
    let m = membership::members(daemon)
        .await?
        .into_iter()
        .find(|m| m.server_name == name)
        .ok_or_else(|| Response::error(404, "Cluster member not found"))?;
    let etag = etag_of(&(&m.roles, &m.failure_domain, &m.description, &m.config, &m.groups));
    Ok(Response::sync_etag(m, etag))
}

/// Relays a request to the raft leader when this member is not it.
async fn to_leader(daemon: &Daemon, req: &Request) -> Option<Response> {
    let rt = daemon.cluster_runtime()?;
    let raft = rt.raft.clone()?;
    let st = raft.status();
    if st.is_leader || st.leader == 0 {
        return None;
    }
    let address = rt.transport.address_of(st.leader)?;
    let conn = Connection::https(&address, ServerPin::Fingerprint(rt.cluster_fingerprint.clone()), Some(&daemon.server_cert))
        .ok()?
        .bound_to(rt.transport.source());
    let path = req.path.clone();
    match conn.raw(req.method.as_str(), &path, Some(req.body.to_vec()), &[]).await {
        Ok((status, _, body)) => {
            let mut resp = warp::reply::Response::new(body.into());
            *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
            resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
            Some(Response::Raw(Box::new(resp)))
        }
        Err(e) => Some(Response::error(503, format!("Failed to reach the cluster leader: {e}"))),
    }
}

pub async fn accept(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    if let Some(r) = to_leader(daemon, req).await {
        return Ok(r);
    }
    let body: AcceptRequest = req.json()?;
    Ok(Response::sync(membership::accept(daemon, body).await?))
}

pub async fn rebalance(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    if let Some(r) = to_leader(daemon, req).await {
        return Ok(r);
    }
    membership::rebalance(daemon).await?;
    Ok(Response::sync(serde_json::Value::Null))
}
