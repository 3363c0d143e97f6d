//! `GET /1.0/events` as a websocket: each subscriber gets this member's event stream filtered
//! by type and project, with a keepalive ping every 10 s as LXD sends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use warp::ws::{Message, WebSocket, Ws};

use super::request::PeerInfo;
use super::response::Response;
use crate::daemon::Daemon;
use crate::daemon::events::{TYPE_LIFECYCLE, TYPE_LOGGING, TYPE_OPERATION};

struct Filter {
    types: Vec<String>,
    project: Option<String>,
    /// Another cluster member listening: only this member's own events go to it.
    own_only: bool,
}

fn parse_filter(query: &HashMap<String, String>) -> Result<Filter, Response> {
    let types: Vec<String> = match query.get("type").filter(|t| !t.is_empty()) {
        Some(t) => t.split(',').map(str::to_string).collect(),
        None => vec![TYPE_LOGGING.into(), TYPE_OPERATION.into(), TYPE_LIFECYCLE.into()],
    };
    for t in &types {
        if ![TYPE_LOGGING, TYPE_OPERATION, TYPE_LIFECYCLE].contains(&t.as_str()) {
            return Err(Response::error(400, format!("'{t}' isn't a supported event type")));
        }
    }
    let all_projects = query.get("all-projects").map(String::as_str) == Some("true");
    let project = query.get("project").filter(|p| !p.is_empty()).cloned();
    if all_projects && project.is_some() {
        return Err(Response::error(400, "Cannot specify a project when requesting all projects"));
    }
    Ok(Filter {
        types,
        project: if all_projects { None } else { Some(project.unwrap_or_else(|| "default".into())) },
        own_only: false,
    })
}

pub fn upgrade(daemon: Arc<Daemon>, ws: Ws, query: HashMap<String, String>, peer: PeerInfo) -> warp::reply::Response {
    let trusted = match peer.transport {
        super::Transport::Unix => true,
        super::Transport::Tls => peer.fingerprint.as_deref().is_some_and(|fp| daemon.is_trusted_client(fp)),
    };
    if !trusted {
        // The certificate may be a member's that joined a moment ago: reload for its retry.
        let d = daemon.clone();
        tokio::spawn(async move { d.refresh_trust().await });
        return Response::error(403, "not authorized").into_reply();
    }
    let mut filter = match parse_filter(&query) {
        Ok(f) => f,
        Err(r) => return r.into_reply(),
    };
    filter.own_only = peer
        .fingerprint
        .as_deref()
        .and_then(|fp| daemon.trusted(fp))
        .is_some_and(|t| t.kind == crate::store::global::certificates::TYPE_SERVER);
    use warp::Reply;
    ws.on_upgrade(move |socket| serve(daemon, socket, filter)).into_response()
}

async fn serve(daemon: Arc<Daemon>, socket: WebSocket, filter: Filter) {
    let _logging = (!filter.own_only && filter.types.iter().any(|t| t == TYPE_LOGGING)).then(|| daemon.events.want_logging());
    let _member = filter.own_only.then(|| daemon.events.member_stream());
    let mut rx = daemon.events.subscribe();
    let (mut tx, mut incoming) = socket.split();
    if tx.send(Message::ping("keepalive")).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(Duration::from_secs(10));
    ping.tick().await;
    let mut outstanding = 0u32;
    tracing::debug!("Event listener server handler started");
    loop {
        tokio::select! {
            _ = daemon.shutdown_requested() => break,
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if !filter.types.iter().any(|t| *t == ev.kind) {
                        continue;
                    }
                    if filter.own_only && ev.location != daemon.events.location() {
                        continue;
                    }
                    if let (Some(p), false) = (&filter.project, ev.project.is_empty())
                        && *p != ev.project {
                            continue;
                        }
                    let Ok(text) = serde_json::to_string(&*ev) else { continue };
                    if tx.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(n)) => tracing::warn!(skipped = n, "event listener too slow, events dropped"),
                Err(RecvError::Closed) => break,
            },
            msg = incoming.next() => match msg {
                Some(Ok(m)) if m.is_pong() => outstanding = 0,
                Some(Ok(m)) if m.is_close() => break,
                Some(Ok(_)) => {}
                _ => break,
            },
            _ = ping.tick() => {
                outstanding += 1;
                if outstanding > 2 || tx.send(Message::ping("keepalive")).await.is_err() {
                    break;
                }
            }
        }
    }
}
