//! `GET/PUT/PATCH /1.0`.

use std::sync::Arc;

use http::Method;

use super::HResult;
use crate::api::ServerPut;
use crate::api::http::request::Request;
use crate::api::http::response::{Response, etag_of};
use crate::daemon::Daemon;

pub async fn handle(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    if !req.trusted {
        return Ok(Response::sync(daemon.untrusted_info()));
    }
    let info = daemon.server_info().await?;
    let etag = etag_of(&info.config);
    match req.method {
        Method::GET => Ok(Response::sync_etag(info, etag)),
        _ => {
            let body: ServerPut = req.json()?;
            req.check_etag(&etag)?;
            daemon.update_config(&body.config, req.method == Method::PUT).await?;
            // New role limits take effect now, not at the next heartbeat round.
            let limits = ["cluster.max_voters", "cluster.max_standby"];
            if limits.iter().any(|k| body.config.contains_key(*k) || (req.method == Method::PUT && info.config.contains_key(*k)))
            {
                crate::cluster::rebalance::nudge(daemon);
            }
            if body.config.contains_key("cluster.images_minimal_replica") && daemon.cluster_runtime().is_some() {
                let d = daemon.clone();
                tokio::spawn(async move { crate::cluster::images::rebalance(&d).await });
            }
            Ok(Response::empty())
        }
    }
}
