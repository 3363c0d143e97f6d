//! `/1.0/cluster`, `/1.0/cluster/members[/<name>]` and the internal membership endpoints
//! (`/internal/cluster/{accept,rebalance,assign,handover,heartbeat,token,upgraded}`).

use std::sync::Arc;

use http::Method;

use super::{HResult, list_response};
use crate::api::http::request::Request;
use crate::api::http::response::{Response, etag_of};
use crate::api::{
    AcceptRequest, AssignRequest, Cluster, ClusterMemberConfigKey, ClusterMemberPost, ClusterMemberPut, ClusterPut,
    HandoverRequest, Heartbeat,
};
use crate::cluster::membership::{self, Plan};
use crate::cluster::removal::{self, Removed};
use crate::cluster::{forward, heartbeat, members, rebalance, runtime, tokens};
use crate::daemon::Daemon;
use crate::daemon::operations::{NewOp, OpClass};

/// The member-specific keys a joiner is asked for (`member_config`).
async fn member_config(daemon: &Daemon) -> crate::daemon::Result<Vec<ClusterMemberConfigKey>> {
    Ok(daemon
        .storage_pools()
        .await?
        .into_iter()
        .filter(|p| p.driver == "dir")
        .map(|p| ClusterMemberConfigKey {
            entity: "storage-pool".into(),
            key: "source".into(),
            value: String::new(),
            description: format!("\"source\" property for storage pool \"{}\"", p.name),
            name: p.name,
        })
        .collect())
}

pub async fn cluster(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    if req.method == Method::GET {
        let clustered = daemon.cluster_runtime().is_some();
        let (server_name, member_config) = if clustered {
            (daemon.stored_config().await?.server_name, member_config(daemon).await?)
        } else {
            (String::new(), vec![])
        };
        let c = Cluster { server_name, enabled: clustered, member_config };
        let etag = etag_of(&c);
        return Ok(Response::sync_etag(c, etag));
    }
    let body: ClusterPut = req.json()?;
    if !body.enabled {
        if !body.server_name.is_empty() {
            return Err(Response::error(400, "ServerName must be empty when disabling clustering"));
        }
        if daemon.cluster_runtime().is_none() {
            return Err(Response::error(400, "This server is not clustered"));
        }
        // Answer first: the member asking is waiting for this reply.
        let d = daemon.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if let Err(e) = removal::reset_to_standalone(&d).await {
                tracing::error!(error = %e, "resetting to a standalone server failed");
            }
        });
        return Ok(Response::empty());
    }
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

pub async fn members(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    if req.method == Method::POST {
        let body: ClusterMemberPost = req.json()?;
        let op = tokens::create(daemon, &body.server_name).await?;
        return Ok(Response::Async(op));
    }
    not_clustered(daemon)?;
    let list = members::list(daemon).await?;
    Ok(list_response(req, list, |m| format!("/1.0/cluster/members/{}", m.server_name)))
}

pub async fn member(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    not_clustered(daemon)?;
    match req.method {
        Method::GET => {
            let m = members::get(daemon, name).await?;
            let etag = etag_of(&m.writable);
            Ok(Response::sync_etag(m, etag))
        }
        Method::PUT | Method::PATCH => {
            let current = members::get(daemon, name).await?;
            req.check_etag(&etag_of(&current.writable))?;
            let body: ClusterMemberPut = req.json()?;
            members::update(daemon, name, body, req.method == Method::PATCH).await?;
            Ok(Response::empty())
        }
        Method::POST => {
            let body: ClusterMemberPost = req.json()?;
            members::rename(daemon, name, &body.server_name).await?;
            Ok(Response::empty())
        }
        _ => {
            let force = req.query("force") == Some("1");
            for _ in 0..3 {
                if let Some(r) = to_leader(daemon, req).await {
                    return Ok(r);
                }
                match removal::remove(daemon, name, force).await? {
                    Removed::Done => {
                        let d = daemon.clone();
                        tokio::spawn(async move { crate::cluster::images::replicate_all(&d).await });
                        return Ok(Response::empty());
                    }
                    Removed::LeadershipMoved => continue,
                }
            }
            Err(Response::error(503, "The cluster leader kept changing; try again"))
        }
    }
}

/// Relays a request to the raft leader when this member is not it.
async fn to_leader(daemon: &Daemon, req: &Request) -> Option<Response> {
    let rt = daemon.cluster_runtime()?;
    if rt.is_leader() {
        return None;
    }
    let Some(address) = rt.leader_address() else {
        return Some(Response::error(503, "Unable to find leader address"));
    };
    let body = (!req.body.is_empty()).then(|| req.body.to_vec());
    match forward::send(daemon, &address, req.method.as_str(), &req.uri(), body, &[]).await {
        Ok((status, headers, body)) => Some(Response::forwarded(status, &headers, body)),
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
    rebalance::rebalance(daemon).await?;
    Ok(Response::sync(serde_json::Value::Null))
}

pub async fn handover(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    if let Some(r) = to_leader(daemon, req).await {
        return Ok(r);
    }
    let body: HandoverRequest = req.json()?;
    Ok(Response::sync(rebalance::handover(daemon, &body.address).await?))
}

/// `POST /internal/cluster/assign`: the leader gives this member a new database role.
pub async fn assign(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    let body: AssignRequest = req.json()?;
    if body.raft_nodes.is_empty() {
        return Err(Response::error(400, "No raft members provided"));
    }
    let rt = daemon.cluster_runtime().ok_or_else(|| Response::error(400, "This server is not clustered"))?;
    {
        let _guard = daemon.membership_lock.lock().await;
        runtime::reconcile_role(daemon, &rt, &body.raft_nodes).await?;
    }
    if let Some(raft) = rt.raft() {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while raft.status().applied < body.catch_up_to {
            if tokio::time::Instant::now() > deadline {
                return Err(Response::error(503, "Timeout waiting for the database to replicate to this member"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    Ok(Response::sync(serde_json::Value::Null))
}

pub async fn heartbeat(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    let body: Heartbeat = req.json()?;
    Ok(Response::sync(heartbeat::receive(daemon, body).await?))
}

/// `DELETE /internal/cluster/raft-node/<address>` (`lxd cluster remove-raft-node`).
pub async fn raft_node(daemon: &Arc<Daemon>, req: &Request, address: &str) -> HResult {
    if let Some(r) = to_leader(daemon, req).await {
        return Ok(r);
    }
    rebalance::remove_raft_node(daemon, address).await?;
    Ok(Response::sync(serde_json::Value::Null))
}

/// `POST /internal/cluster/token`: another member asks whether this member issued a join token.
pub async fn token(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    #[derive(serde::Deserialize)]
    struct Body {
        server_name: String,
        secret: String,
    }
    let body: Body = req.json()?;
    if tokens::consume_local(daemon, &body.server_name, &body.secret) {
        Ok(Response::empty())
    } else {
        Err(Response::error(404, "No matching cluster join operation found"))
    }
}

/// `POST /internal/cluster/upgraded`: another member's version changed.
pub async fn upgraded(daemon: &Arc<Daemon>) -> HResult {
    if let Some(rt) = daemon.cluster_runtime() {
        rt.upgrade_wake.notify_one();
    }
    Ok(Response::empty())
}

/// `/1.0/cluster/groups`.
pub async fn groups(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    use crate::cluster::groups;
    if req.method == Method::POST {
        let body: crate::api::ClusterGroup = req.json()?;
        let name = body.name.clone();
        groups::create(daemon, body).await?;
        return Ok(Response::created(format!("/1.0/cluster/groups/{name}")));
    }
    let list = groups::list(daemon).await?;
    Ok(list_response(req, list, |g| format!("/1.0/cluster/groups/{}", g.name)))
}

/// `/1.0/cluster/groups/<name>`.
pub async fn group(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    use crate::cluster::groups;
    match req.method {
        Method::GET => {
            let g = groups::get(daemon, name).await?;
            let etag = etag_of(&(&g.description, &g.members));
            Ok(Response::sync_etag(g, etag))
        }
        Method::POST => {
            let body: crate::api::ClusterGroup = req.json()?;
            groups::rename(daemon, name, &body.name).await?;
            Ok(Response::empty())
        }
        Method::DELETE => {
            groups::delete(daemon, name).await?;
            Ok(Response::empty())
        }
        _ => {
            let g = groups::get(daemon, name).await?;
            req.check_etag(&etag_of(&(&g.description, &g.members)))?;
            let body: crate::api::ClusterGroupPut = req.json()?;
            groups::update(daemon, name, body, req.method == Method::PATCH).await?;
            Ok(Response::empty())
        }
    }
}

/// `POST /1.0/cluster/members/<name>/state` (`lxc cluster evacuate|restore`): runs on the
/// member itself.
pub async fn member_state(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    not_clustered(daemon)?;
    let member = members::get(daemon, name).await?;
    if member.server_name != daemon.events.location() {
        let (status, headers, body) =
            crate::cluster::forward::send(daemon, &member.url_address(), "POST", &req.uri(), Some(req.body.to_vec()), &[])
                .await?;
        return Ok(Response::forwarded(status, &headers, body));
    }
    let body: serde_json::Value = req.json()?;
    let action = body.get("action").and_then(|a| a.as_str()).unwrap_or("");
    Ok(Response::Async(crate::cluster::evacuate::start(daemon, action).await?))
}
