//! The HTTP side of "where a route runs": each function either hands the request back to be
//! answered here, or answers it by sending it on through the cluster's forwarder (the other
//! member's answer passes through unchanged).

use std::sync::Arc;

use http::Method;

use super::request::{Caller, Request};
use super::response::{ApiError, Response};
use crate::services::Member;

/// Answered here (the request comes back) or already answered elsewhere.
pub type Routed = Result<Request, Response>;

/// Headers a forwarded request keeps.
fn kept_headers(req: &Request) -> Vec<(&str, String)> {
    req.headers
        .iter()
        .filter(|(k, _)| {
            let n = k.as_str();
            n == "if-match" || n.starts_with("x-lxd-")
        })
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?.to_string())))
        .collect()
}

async fn send(member: &Member, address: &str, req: &Request, path: &str, headers: &[(&str, String)]) -> Response {
    let Some(rt) = member.cluster.runtime() else { return Response::error(400, "This server is not clustered") };
    let body = (!req.body.is_empty()).then(|| req.body.to_vec());
    match rt.send(address, req.method.as_str(), path, body, headers).await {
        Ok(reply) => Response::forwarded(reply),
        Err(e) => Response::Error(e.into()),
    }
}

/// `?target=<member>`: answered by that member when it is another one. An untrusted caller is
/// always answered here: the forwarded request would carry this member's own certificate and
/// come back with what only a trusted client may see.
pub async fn by_target(member: &Arc<Member>, req: Request) -> Routed {
    if req.caller == Caller::Untrusted {
        return Ok(req);
    }
    let Some(target) = req.query_given("target").map(str::to_string) else { return Ok(req) };
    let Some(rt) = member.cluster.runtime() else { return Ok(req) };
    let peer = match rt.resolve_target(&target).await {
        Ok(None) => return Ok(req),
        Ok(Some(p)) => p,
        Err(e) => return Err(Response::Error(e.into())),
    };
    let headers: Vec<(&str, String)> = req.header("if-match").map(|v| vec![("If-Match", v.to_string())]).unwrap_or_default();
    Err(send(member, &peer.address, &req, &req.uri(), &headers).await)
}

/// A request about an existing instance goes to the member hosting it: one read of where it
/// lives, the member's address and liveness from the directory. An offline host fails at once
/// with the reason rather than after a connection timeout; reading the record alone works
/// without it.
pub async fn by_instance(member: &Arc<Member>, req: Request, name: &str) -> Routed {
    // Another member routed this here already: it read where the instance lives.
    if req.from_member() {
        return Ok(req);
    }
    let host = match member.instances.host(&req.project(), name).await {
        Ok(None) => return Ok(req),
        Ok(Some(h)) => h,
        // Unknown here: the local action answers (404, or what it does without the record).
        Err(_) => return Ok(req),
    };
    let (peer, online) = host;
    let record_only = req.method == Method::GET && req.segments.len() == 3 && req.recursion() == 0;
    if !online {
        if record_only {
            return Ok(req);
        }
        return Err(Response::error(
            503,
            format!(
                "Missing event connection with target cluster member: member \"{}\" hosting instance \"{name}\" is offline",
                peer.name
            ),
        ));
    }
    let Some(rt) = member.cluster.runtime() else { return Ok(req) };
    let body = (!req.body.is_empty()).then(|| req.body.to_vec());
    match rt.send(&peer.address, req.method.as_str(), &req.uri(), body, &kept_headers(&req)).await {
        Ok(reply) => Err(Response::forwarded(reply)),
        Err(_) if record_only => Ok(req),
        Err(e) => Err(Response::error(
            503,
            format!("Cluster member \"{}\" hosting instance \"{name}\" is offline or unreachable: {e}", peer.name),
        )),
    }
}

/// The raft leader answers.
pub async fn to_leader(member: &Arc<Member>, req: Request) -> Routed {
    let Some(rt) = member.cluster.runtime() else { return Ok(req) };
    if rt.is_leader() {
        return Ok(req);
    }
    let Some(address) = rt.leader_address() else {
        return Err(Response::error(503, "Unable to find leader address"));
    };
    let body = (!req.body.is_empty()).then(|| req.body.to_vec());
    match rt.send(&address, req.method.as_str(), &req.uri(), body, &[]).await {
        Ok(reply) => Err(Response::forwarded(reply)),
        Err(e) => Err(Response::error(503, format!("Failed to reach the cluster leader: {e}"))),
    }
}

/// The member holding operation `id` answers (this one when it has it); another member asking
/// gets only this member's answer. A websocket to another member's operation is proxied.
pub async fn by_operation(member: &Arc<Member>, mut req: Request, id: &str, websocket: bool) -> Routed {
    if member.ops.is_here(id) {
        return Ok(req);
    }
    let Some(rt) = member.cluster.runtime() else { return Ok(req) };
    if websocket {
        let secret = req.query("secret").unwrap_or_default().to_string();
        return match super::websocket::Upgrade::take(&mut req) {
            Ok(upgrade) => Err(super::websocket::proxy(rt, upgrade, secret, id.to_string())),
            Err(e) => Err(Response::Error(e)),
        };
    }
    if req.from_member() {
        return Ok(req);
    }
    match rt.operation_owner(id).await {
        Some(address) => match rt.send(&address, req.method.as_str(), &req.uri(), None, &[]).await {
            Ok(reply) if reply.status != 404 => Err(Response::forwarded(reply)),
            _ => Ok(req),
        },
        None => Ok(req),
    }
}

/// The cluster member `name` answers (this one when it is it).
pub async fn to_member(member: &Arc<Member>, req: Request, name: &str) -> Routed {
    let rt = member.cluster.runtime().ok_or_else(|| Response::error(500, "LXD server isn't part of a cluster"))?;
    let peer = match rt.peer_named(name).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(Response::error(404, format!("Member '{name}' not found"))),
        Err(e) => return Err(Response::Error(e.into())),
    };
    if peer.id as u64 == rt.id {
        return Ok(req);
    }
    Err(send(member, &peer.address, &req, &req.uri(), &[]).await)
}

/// A new instance goes where the scheduler (or `?target=`) places it.
pub async fn placed(member: &Arc<Member>, req: Request) -> Routed {
    if !member.cluster.is_clustered() {
        return Ok(req);
    }
    let target = req.query_given("target").map(str::to_string);
    match member.instances.place(target.as_deref()).await {
        Ok(None) => Ok(req),
        Ok(Some((name, address))) => {
            let path = format!("/1.0/instances?project={}&target={name}", req.project());
            Err(send(member, &address, &req, &path, &[]).await)
        }
        Err(e) => Err(Response::Error(ApiError::from(e))),
    }
}
