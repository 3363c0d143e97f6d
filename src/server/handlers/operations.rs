//! `/1.0/operations`, `/1.0/operations/<id>` and `/1.0/operations/<id>/wait`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;

use super::HResult;
use crate::api::http::request::Request;
use crate::api::http::response::Response;
use crate::daemon::Daemon;
use crate::daemon::operations::CancelError;

/// Operations grouped by lower-case status, as URLs or (with recursion) objects.
pub async fn collection(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    let all_projects = req.query("all-projects") == Some("true");
    let project = req.project();
    let mut groups: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for op in daemon.operations.list() {
        if !all_projects && !op.project.is_empty() && op.project != project {
            continue;
        }
        let rendered = op.render();
        let key = rendered.status.to_lowercase();
        let value = if req.recursion() > 0 { serde_json::to_value(&rendered).unwrap_or_default() } else { op.url().into() };
        groups.entry(key).or_default().push(value);
    }
    for (status, item) in super::forwarding::operations_elsewhere(daemon, req).await {
        groups.entry(status).or_default().push(item);
    }
    Ok(Response::sync(groups))
}

pub async fn item(daemon: &Arc<Daemon>, req: &Request, id: &str) -> HResult {
    let Some(op) = daemon.operations.get(id) else {
        return super::forwarding::operation_elsewhere(daemon, req)
            .await
            .ok_or_else(|| Response::error(404, "Operation not found"));
    };
    match req.method {
        Method::GET => Ok(Response::sync(op.render())),
        _ => match daemon.operations.cancel(id) {
            Ok(()) => Ok(Response::empty()),
            Err(CancelError::NotFound) => Err(Response::error(404, "Operation not found")),
            Err(e) => Err(Response::error(400, e.to_string())),
        },
    }
}

pub async fn wait(daemon: &Arc<Daemon>, req: &Request, id: &str) -> HResult {
    if daemon.operations.get(id).is_none()
        && let Some(r) = super::forwarding::operation_elsewhere(daemon, req).await
    {
        return Ok(r);
    }
    let timeout = match req.query("timeout").and_then(|t| t.parse::<f64>().ok()) {
        Some(t) if t >= 0.0 => Some(Duration::from_secs_f64(t)),
        _ => None,
    };
    daemon.operations.wait(id, timeout).await.map(Response::sync).ok_or_else(|| Response::error(404, "Operation not found"))
}
