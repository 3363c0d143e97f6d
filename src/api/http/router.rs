//! Routing: websocket endpoints through warp's upgrade filter, everything else through one
//! catch-all that authenticates and dispatches on (method, path). Unknown paths are 404, known
//! paths with the wrong method 405, both as LXD error envelopes.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method};
use warp::Filter;

use super::handlers;
use super::request::{PeerInfo, Request, Transport, parse_query, percent_decode};
use super::response::Response;
use crate::daemon::Daemon;

pub fn routes(daemon: Arc<Daemon>) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let with_daemon = {
        let d = daemon.clone();
        warp::any().map(move || d.clone())
    };
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let peer = warp::ext::get::<PeerInfo>();

    let events =
        warp::path!("1.0" / "events").and(warp::get()).and(warp::ws()).and(raw_query).and(peer).and(with_daemon.clone()).map(
            |ws: warp::ws::Ws, query: String, peer: PeerInfo, daemon: Arc<Daemon>| {
                super::events::upgrade(daemon, ws, parse_query(&query), peer)
            },
        );

    let operation_websocket = warp::path!("1.0" / "operations" / String / "websocket")
        .and(warp::get())
        .and(warp::ws())
        .and(raw_query)
        .and(with_daemon.clone())
        .map(|id: String, ws: warp::ws::Ws, query: String, daemon: Arc<Daemon>| {
            super::exec::upgrade(daemon, ws, id, parse_query(&query))
        });

    let catch_all = warp::method()
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .and(peer)
        .and(with_daemon)
        .then(
            |method: Method,
             path: warp::path::FullPath,
             query: String,
             headers: HeaderMap,
             body: Bytes,
             peer: PeerInfo,
             daemon: Arc<Daemon>| async move {
                let req = build(method, path.as_str(), &query, headers, body, peer, &daemon).await;
                dispatch(daemon, req).await.into_reply()
            },
        );

    events
        .or(operation_websocket)
        .unify()
        .or(catch_all)
        .unify()
        .recover(|rej: warp::Rejection| async move {
            let resp = Response::error(400, format!("Bad request: {rej:?}"));
            Ok::<_, std::convert::Infallible>(resp.into_reply())
        })
        .unify()
}

async fn build(
    method: Method,
    path: &str,
    query: &str,
    headers: HeaderMap,
    body: Bytes,
    peer: PeerInfo,
    daemon: &Daemon,
) -> Request {
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(|s| percent_decode(s, false)).collect();
    let (trusted, cluster) = match (peer.transport, peer.fingerprint.as_deref()) {
        (Transport::Unix, _) => (true, false),
        (Transport::Tls, Some(fp)) => match daemon.trusted_fresh(fp).await {
            Some(t) => (true, t.kind == crate::store::global::certificates::TYPE_SERVER),
            None => (false, false),
        },
        (Transport::Tls, None) => (false, false),
    };
    Request {
        method,
        path: path.to_string(),
        segments,
        query: parse_query(query),
        raw_query: query.to_string(),
        headers,
        body,
        peer,
        trusted,
        cluster,
    }
}

/// Which methods a known path accepts; None for unknown paths.
fn allowed(segments: &[&str]) -> Option<&'static [Method]> {
    use Method as M;
    const GET: &[Method] = &[M::GET];
    const GET_PUT_PATCH: &[Method] = &[M::GET, M::PUT, M::PATCH];
    const GET_POST: &[Method] = &[M::GET, M::POST];
    const ITEM: &[Method] = &[M::GET, M::PUT, M::PATCH, M::POST, M::DELETE];
    const ITEM_NO_RENAME: &[Method] = &[M::GET, M::PUT, M::PATCH, M::DELETE];
    const GET_DELETE: &[Method] = &[M::GET, M::DELETE];
    const PUT: &[Method] = &[M::PUT];
    const POST: &[Method] = &[M::POST];
    const GET_PUT: &[Method] = &[M::GET, M::PUT];
    Some(match segments {
        [] => GET,
        ["1.0"] => GET_PUT_PATCH,
        ["1.0", "certificates"] => GET_POST,
        ["1.0", "certificates", _] => ITEM_NO_RENAME,
        ["1.0", "operations"] => GET,
        ["1.0", "operations", _] => GET_DELETE,
        ["1.0", "operations", _, "wait"] => GET,
        ["1.0", "operations", _, "websocket"] => GET,
        ["1.0", "instances"] => GET_POST,
        ["1.0", "instances", _] => ITEM,
        ["1.0", "instances", _, "state"] => GET_PUT,
        ["1.0", "instances", _, "exec"] => POST,
        ["1.0", "instances", _, "files"] => &[M::GET, M::POST, M::DELETE],
        ["1.0", "instances", _, "console"] => GET_DELETE,
        ["1.0", "instances", _, "snapshots"] => GET_POST,
        ["1.0", "instances", _, "snapshots", _] => &[M::GET, M::POST, M::DELETE],
        ["1.0", "instances", _, "logs"] => GET,
        ["1.0", "instances", _, "logs", _] => GET_DELETE,
        ["1.0", "images"] => GET_POST,
        ["1.0", "images", "aliases"] => GET_POST,
        ["1.0", "images", "aliases", _] => ITEM,
        ["1.0", "images", _] => ITEM_NO_RENAME,
        ["1.0", "images", _, "export"] => GET,
        ["1.0", "cluster", "members", _, "state"] => POST,
        ["internal", "images", _] => &[M::GET, M::PUT, M::DELETE],
        ["internal", "instances", _, "receive"] => POST,
        ["internal", "instances", _, "move"] => POST,
        ["internal", "instances", _, "archive"] => GET,
        ["1.0", "events"] => GET,
        ["1.0", "profiles"] => GET_POST,
        ["1.0", "profiles", _] => ITEM,
        ["1.0", "projects"] => GET_POST,
        ["1.0", "projects", _] => ITEM,
        ["1.0", "storage-pools"] => GET_POST,
        ["1.0", "storage-pools", _] => ITEM_NO_RENAME,
        ["1.0", "cluster"] => GET_PUT,
        ["1.0", "cluster", "members"] => GET_POST,
        ["1.0", "cluster", "members", _] => ITEM,
        ["1.0", "cluster", "groups"] => GET_POST,
        ["1.0", "cluster", "groups", _] => ITEM,
        ["internal", "ready"] => GET,
        ["internal", "shutdown"] => PUT,
        ["internal", "raft"] => POST,
        ["internal", "raft", "snapshot"] => POST,
        ["internal", "db"] => POST,
        ["internal", "cluster", "accept"] => POST,
        ["internal", "cluster", "rebalance"] => POST,
        ["internal", "cluster", "assign"] => POST,
        ["internal", "cluster", "handover"] => POST,
        ["internal", "cluster", "heartbeat"] => POST,
        ["internal", "cluster", "token"] => POST,
        ["internal", "cluster", "upgraded"] => POST,
        ["internal", "cluster", "raft-node", _] => &[M::DELETE],
        ["internal", "sql"] => GET_POST,
        _ => return None,
    })
}

/// Paths an untrusted TLS client may use.
fn open_to_untrusted(method: &Method, segments: &[&str]) -> bool {
    matches!((method, segments), (&Method::GET, []) | (&Method::GET, ["1.0"]) | (&Method::POST, ["1.0", "certificates"]))
}

async fn dispatch(daemon: Arc<Daemon>, req: Request) -> Response {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    tracing::debug!(method = %req.method, url = %req.path, ip = %req.peer.remote, "Handling API request");
    let Some(methods) = allowed(&segs) else {
        return Response::error(404, "not found");
    };
    if !methods.contains(&req.method) {
        return Response::error(405, "method not allowed");
    }
    if segs.first() == Some(&"internal") && req.peer.transport != Transport::Unix && !req.cluster {
        return Response::error(403, "not authorized");
    }
    if !req.trusted && !open_to_untrusted(&req.method, &segs) {
        return Response::error(403, "not authorized");
    }
    if segs.first() != Some(&"internal")
        && daemon.cluster_runtime().is_some_and(|rt| rt.waiting_for_upgrade.load(std::sync::atomic::Ordering::SeqCst))
    {
        return Response::error(
            503,
            "This member runs a newer version than other cluster members and waits for them to be upgraded",
        );
    }
    if let Some(r) = handlers::forwarding::by_target(&daemon, &req, &segs).await {
        return r;
    }
    if let Some(r) = handlers::forwarding::by_instance(&daemon, &req, &segs).await {
        return r;
    }
    let result = match segs.as_slice() {
        [] => Ok(Response::sync(["/1.0"])),
        ["1.0"] => handlers::server::handle(&daemon, &req).await,
        ["1.0", "certificates"] => handlers::certificates::collection(&daemon, &req).await,
        ["1.0", "certificates", fp] => handlers::certificates::item(&daemon, &req, fp).await,
        ["1.0", "operations"] => handlers::operations::collection(&daemon, &req).await,
        ["1.0", "operations", id] => handlers::operations::item(&daemon, &req, id).await,
        ["1.0", "operations", id, "wait"] => handlers::operations::wait(&daemon, &req, id).await,
        ["1.0", "operations", _, "websocket"] => {
            Ok(Response::error(400, "websocket: the client is not using the websocket protocol"))
        }
        ["1.0", "instances"] => handlers::instances::collection(&daemon, &req).await,
        ["1.0", "instances", name] => handlers::instances::item(&daemon, &req, name).await,
        ["1.0", "instances", name, "state"] => handlers::instances::state(&daemon, &req, name).await,
        ["1.0", "instances", name, "exec"] => handlers::exec::post(&daemon, &req, name).await,
        ["1.0", "instances", name, "files"] => handlers::files::handle(&daemon, &req, name).await,
        ["1.0", "instances", name, "console"] => handlers::instances::console(&daemon, &req, name).await,
        ["1.0", "instances", name, "snapshots"] => handlers::snapshots::collection(&daemon, &req, name).await,
        ["1.0", "instances", name, "snapshots", snap] => handlers::snapshots::item(&daemon, &req, name, snap).await,
        ["1.0", "instances", name, "logs"] => handlers::exec::logs(&daemon, &req, name, None).await,
        ["1.0", "instances", name, "logs", file] => handlers::exec::logs(&daemon, &req, name, Some(file)).await,
        ["1.0", "images"] => handlers::images::collection(&daemon, &req).await,
        ["1.0", "images", "aliases"] => handlers::images::aliases(&daemon, &req).await,
        ["1.0", "images", "aliases", name] => handlers::images::alias(&daemon, &req, name).await,
        ["1.0", "images", fp] => handlers::images::item(&daemon, &req, fp).await,
        ["1.0", "images", fp, "export"] => handlers::images::export(&daemon, &req, fp).await,
        ["1.0", "cluster", "members", name, "state"] => handlers::cluster::member_state(&daemon, &req, name).await,
        ["internal", "images", fp] => handlers::internal::image(&daemon, &req, fp).await,
        ["internal", "instances", name, "receive"] => handlers::internal::receive_instance(&daemon, &req, name).await,
        ["internal", "instances", name, "move"] => handlers::internal::move_instance(&daemon, &req, name).await,
        ["internal", "instances", name, "archive"] => handlers::internal::instance_archive(&daemon, &req, name).await,
        ["1.0", "events"] => Ok(Response::error(400, "websocket: the client is not using the websocket protocol")),
        ["1.0", "profiles"] => handlers::profiles::collection(&daemon, &req).await,
        ["1.0", "profiles", name] => handlers::profiles::item(&daemon, &req, name).await,
        ["1.0", "projects"] => handlers::projects::collection(&daemon, &req).await,
        ["1.0", "projects", name] => handlers::projects::item(&daemon, &req, name).await,
        ["1.0", "storage-pools"] => handlers::storage::collection(&daemon, &req).await,
        ["1.0", "storage-pools", name] => handlers::storage::item(&daemon, &req, name).await,
        ["1.0", "cluster"] => handlers::cluster::cluster(&daemon, &req).await,
        ["1.0", "cluster", "members"] => handlers::cluster::members(&daemon, &req).await,
        ["1.0", "cluster", "members", name] => handlers::cluster::member(&daemon, &req, name).await,
        ["1.0", "cluster", "groups"] => handlers::cluster::groups(&daemon, &req).await,
        ["1.0", "cluster", "groups", name] => handlers::cluster::group(&daemon, &req, name).await,
        ["internal", "ready"] => handlers::internal::ready(&daemon).await,
        ["internal", "shutdown"] => handlers::internal::shutdown(&daemon).await,
        ["internal", "raft"] => handlers::internal::raft(&daemon, &req).await,
        ["internal", "raft", "snapshot"] => handlers::internal::raft_snapshot(&daemon, &req).await,
        ["internal", "db"] => handlers::internal::db(&daemon, &req).await,
        ["internal", "cluster", "accept"] => handlers::cluster::accept(&daemon, &req).await,
        ["internal", "cluster", "rebalance"] => handlers::cluster::rebalance(&daemon, &req).await,
        ["internal", "cluster", "assign"] => handlers::cluster::assign(&daemon, &req).await,
        ["internal", "cluster", "handover"] => handlers::cluster::handover(&daemon, &req).await,
        ["internal", "cluster", "heartbeat"] => handlers::cluster::heartbeat(&daemon, &req).await,
        ["internal", "cluster", "token"] => handlers::cluster::token(&daemon, &req).await,
        ["internal", "cluster", "upgraded"] => handlers::cluster::upgraded(&daemon).await,
        ["internal", "cluster", "raft-node", address] => handlers::cluster::raft_node(&daemon, &req, address).await,
        ["internal", "sql"] => handlers::internal::sql(&daemon, &req).await,
        _ => Ok(Response::error(404, "not found")),
    };
    result.unwrap_or_else(|r| r)
}
