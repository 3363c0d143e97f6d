//! Requests answered by another member: `?target=<member>` on the endpoints that honour it, and
//! operations that live on another member.

use std::sync::Arc;

use http::Method;

use crate::api::http::request::Request;
use crate::api::http::response::Response;
use crate::cluster::forward;
use crate::daemon::Daemon;

/// Whether `?target=` selects the member that answers this request.
fn honours_target(method: &Method, segments: &[&str]) -> bool {
    let read_write = matches!(*method, Method::GET | Method::PUT | Method::PATCH);
    (matches!(segments, ["1.0"] | ["1.0", "storage-pools", _] | ["1.0", "resources"]) && read_write)
        || (segments == ["1.0", "instances"] && *method == Method::GET)
}

/// Forwards the request to `?target=<member>` when that is another member.
pub async fn by_target(daemon: &Arc<Daemon>, req: &Request, segments: &[&str]) -> Option<Response> {
    let target = req.query("target").filter(|t| !t.is_empty())?;
    if !honours_target(&req.method, segments) || daemon.cluster_runtime().is_none() {
        return None;
    }
    let address = match forward::resolve_target(daemon, target).await {
        Ok(None) => return None,
        Ok(Some(a)) => a,
        Err(e) => return Some(e.into()),
    };
    let body = (!req.body.is_empty()).then(|| req.body.to_vec());
    let mut headers = Vec::new();
    if let Some(v) = req.header("if-match") {
        headers.push(("If-Match", v.to_string()));
    }
    Some(match forward::send(daemon, &address, req.method.as_str(), &req.uri(), body, &headers).await {
        Ok((status, headers, body)) => Response::forwarded(status, &headers, body),
        Err(e) => e.into(),
    })
}

/// Asks the other online members for an operation this member does not have; the first that
/// knows it answers.
pub async fn operation_elsewhere(daemon: &Arc<Daemon>, req: &Request) -> Option<Response> {
    if req.cluster {
        return None;
    }
    let known = operation_id(req).and_then(|id| daemon.cluster_runtime()?.operation_owners.owner(id));
    if let Some(address) = known
        && let Ok((status, headers, body)) = forward::send(daemon, &address, req.method.as_str(), &req.uri(), None, &[]).await
        && status != 404
    {
        return Some(Response::forwarded(status, &headers, body));
    }
    for address in forward::online_others(daemon).await.ok()? {
        if let Ok((status, headers, body)) = forward::send(daemon, &address, req.method.as_str(), &req.uri(), None, &[]).await
            && status != 404
        {
            return Some(Response::forwarded(status, &headers, body));
        }
    }
    None
}

/// The operation id in `/1.0/operations/<id>[/…]`.
fn operation_id(req: &Request) -> Option<&str> {
    let rest = req.path.strip_prefix("/1.0/operations/")?;
    rest.split('/').next().filter(|id| !id.is_empty())
}

/// The operations of the other online members (as URLs or objects), for merging.
pub async fn operations_elsewhere(daemon: &Arc<Daemon>, req: &Request) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    if req.cluster {
        return out;
    }
    let Ok(others) = forward::online_others(daemon).await else { return out };
    for address in others {
        if let Ok((200, _, body)) = forward::send(daemon, &address, "GET", &req.uri(), None, &[]).await
            && let Ok(env) = serde_json::from_slice::<crate::api::Envelope>(&body)
            && let serde_json::Value::Object(groups) = env.metadata
        {
            for (status, items) in groups {
                if let serde_json::Value::Array(items) = items {
                    out.extend(items.into_iter().map(|i| (status.clone(), i)));
                }
            }
        }
    }
    out
}

/// Forwards a request about an existing instance to the member hosting it. An offline host
/// fails at once with the reason rather than after a connection timeout.
pub async fn by_instance(daemon: &Arc<Daemon>, req: &Request, segments: &[&str]) -> Option<Response> {
    let ["1.0", "instances", name, ..] = segments else { return None };
    let rt = daemon.cluster_runtime()?;
    let project = req.project();
    let (node_id, member, address) = match crate::store::global::instances::location(&daemon.global, &project, name).await {
        Ok(l) => l,
        Err(_) => return None,
    };
    if node_id as u64 == rt.id {
        return None;
    }
    // Reading the record works without its member (the instance shows as in error).
    let record_only = req.method == Method::GET && segments.len() == 3 && req.recursion() == 0;
    let online = forward::online_others(daemon).await.unwrap_or_default();
    if !online.contains(&address) {
        if record_only {
            return None;
        }
        return Some(Response::error(
            503,
            format!(
                "Missing event connection with target cluster member: member \"{member}\" hosting instance \"{name}\" is offline"
            ),
        ));
    }
    let body = (!req.body.is_empty()).then(|| req.body.to_vec());
    let mut headers: Vec<(&str, String)> = Vec::new();
    for (k, v) in req.headers.iter() {
        let n = k.as_str();
        if (n == "if-match" || n.starts_with("x-lxd-")) && v.to_str().is_ok() {
            headers.push((n, v.to_str().unwrap_or_default().to_string()));
        }
    }
    Some(match forward::send(daemon, &address, req.method.as_str(), &req.uri(), body, &headers).await {
        Ok((status, headers, body)) => Response::forwarded(status, &headers, body),
        Err(_) if record_only => return None,
        Err(e) => Response::error(
            503,
            format!("Cluster member \"{member}\" hosting instance \"{name}\" is offline or unreachable: {e}"),
        ),
    })
}
