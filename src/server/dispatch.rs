//! One request, start to end: authenticate the caller, find its route (404, 405), check the
//! route's access, hold the API closed while this member waits for an upgrade, send the
//! request where the route says it runs, else parse it into its action and run it here.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method};

use super::forward;
use super::request::{Caller, PeerInfo, Request, Transport, parse_query, percent_decode};
use super::response::{ApiError, Response};
use super::routes::{self, Access, Found, Runs};
use crate::services::Member;

/// The parts of an incoming HTTP request the dispatcher needs.
pub struct Incoming {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: PeerInfo,
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

async fn caller(member: &Member, peer: &PeerInfo) -> Caller {
    match (peer.transport, peer.fingerprint.as_deref()) {
        (Transport::Unix, _) => Caller::Client,
        (Transport::Tls, Some(fp)) => match member.trust.trusted_fresh(fp).await {
            Some(t) if t.is_member() => Caller::Member,
            Some(_) => Caller::Client,
            None => Caller::Untrusted,
        },
        (Transport::Tls, None) => Caller::Untrusted,
    }
}

fn allowed(access: Access, req: &Request) -> bool {
    match access {
        Access::Untrusted => true,
        Access::Trusted => req.caller != Caller::Untrusted,
        Access::Internal => req.peer.transport == Transport::Unix || req.caller == Caller::Member,
    }
}

pub async fn dispatch(member: &Arc<Member>, incoming: Incoming) -> Response {
    let segments: Vec<String> = incoming.path.split('/').filter(|s| !s.is_empty()).map(|s| percent_decode(s, false)).collect();
    tracing::debug!(method = %incoming.method, url = %incoming.path, ip = %incoming.peer.remote, "Handling API request");
    let (route, params) = match routes::find(&incoming.method, &segments) {
        Found::Route(r, p) => (r, p),
        Found::MethodNotAllowed => return Response::error(405, "method not allowed"),
        Found::NotFound => return Response::error(404, "not found"),
    };
    let caller = caller(member, &incoming.peer).await;
    let req = Request {
        method: incoming.method,
        path: incoming.path,
        segments,
        query: parse_query(&incoming.query),
        raw_query: incoming.query,
        headers: incoming.headers,
        body: incoming.body,
        peer: incoming.peer,
        caller,
        upgrade: if route.websocket { incoming.upgrade } else { None },
    };
    if !allowed(route.access, &req) {
        if route.websocket && req.caller == Caller::Untrusted {
            // The certificate may be a member's that joined a moment ago: reload for its retry.
            let trust = member.trust.clone();
            tokio::spawn(async move {
                if let Err(e) = trust.refresh().await {
                    tracing::debug!(error = %e, "trust store not reloaded");
                }
            });
        }
        return Response::error(403, "not authorized");
    }
    if route.access != Access::Internal && !route.websocket && member.cluster.waits_for_upgrade() {
        return Response::error(
            503,
            "This member runs a newer version than other cluster members and waits for them to be upgraded",
        );
    }
    let req = match route.runs {
        Runs::Here => req,
        Runs::Target => match forward::by_target(member, req).await {
            Ok(req) => req,
            Err(answer) => return answer,
        },
        Runs::Instance => match forward::by_instance(member, req, params.at(0)).await {
            Ok(req) => req,
            Err(answer) => return answer,
        },
        Runs::Leader => match forward::to_leader(member, req).await {
            Ok(req) => req,
            Err(answer) => return answer,
        },
        Runs::Operation => match forward::by_operation(member, req, params.at(0), route.websocket).await {
            Ok(req) => req,
            Err(answer) => return answer,
        },
        Runs::Member => match forward::to_member(member, req, params.at(0)).await {
            Ok(req) => req,
            Err(answer) => return answer,
        },
        Runs::Placed => match forward::placed(member, req).await {
            Ok(req) => req,
            Err(answer) => return answer,
        },
    };
    route.run(member, req, params).await
}

/// A request the dispatcher refuses before routing (a body too large, a malformed request).
pub fn refused(e: ApiError) -> Response {
    Response::Error(e)
}
