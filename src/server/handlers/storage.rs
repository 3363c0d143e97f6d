//! `/1.0/storage-pools` and `/1.0/storage-pools/<name>`. In a cluster a pool is defined per
//! member (`?target=`), then created on every member; members tell each other to create or
//! delete their part with notifications.

use std::sync::Arc;

use http::Method;

use super::{HResult, list_response};
use crate::api::StoragePool;
use crate::api::http::request::Request;
use crate::api::http::response::{Response, etag_of};
use crate::api::{StoragePoolPut, StoragePoolsPost};
use crate::cluster::{NOTIFIER_AGENT, pools};
use crate::daemon::Daemon;
use crate::daemon::storage::MEMBER_KEYS;

/// A request another member sent to have this member change only its own part.
fn is_notification(req: &Request) -> bool {
    req.cluster && req.header("user-agent") == Some(NOTIFIER_AGENT)
}

/// In a cluster, without `?target`, a pool shows only its cluster-wide keys.
fn cluster_view(daemon: &Daemon, req: &Request, mut pool: StoragePool) -> StoragePool {
    if daemon.cluster_runtime().is_some() && req.query("target").is_none() {
        pool.config.retain(|k, _| !MEMBER_KEYS.contains(&k.as_str()));
    }
    pool
}

pub async fn collection(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    match req.method {
        Method::GET => {
            let pools: Vec<StoragePool> =
                daemon.storage_pools().await?.into_iter().map(|p| cluster_view(daemon, req, p)).collect();
            Ok(list_response(req, pools, |p| format!("/1.0/storage-pools/{}", p.name)))
        }
        _ => {
            let body: StoragePoolsPost = req.json()?;
            let name = body.name.clone();
            if daemon.cluster_runtime().is_none() {
                daemon.create_storage_pool(body).await?;
            } else if is_notification(req) {
                daemon.create_storage_pool_part(body).await?;
            } else if let Some(target) = req.query("target").filter(|t| !t.is_empty()) {
                let node = crate::store::global::nodes::list(&daemon.global)
                    .await
                    .map_err(crate::daemon::Error::from)?
                    .into_iter()
                    .find(|n| n.name == target)
                    .ok_or_else(|| Response::error(404, format!("No cluster member called '{target}'")))?;
                daemon.define_storage_pool(&body, node.id, &node.name).await?;
            } else {
                pools::create_everywhere(daemon, body).await?;
            }
            Ok(Response::created(format!("/1.0/storage-pools/{name}")))
        }
    }
}

pub async fn item(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    let current = cluster_view(daemon, req, daemon.storage_pool(name).await?);
    let etag = etag_of(&(&current.config, &current.description));
    match req.method {
        Method::GET => Ok(Response::sync_etag(current, etag)),
        Method::DELETE => {
            if daemon.cluster_runtime().is_none() {
                daemon.delete_storage_pool(name).await?;
            } else if is_notification(req) {
                let own = daemon.storage_pool(name).await?;
                daemon.delete_storage_pool_part(name, own.config.get("source").map(String::as_str));
            } else {
                pools::delete_everywhere(daemon, name).await?;
            }
            Ok(Response::empty())
        }
        _ => {
            let mut body: StoragePoolPut = req.json()?;
            req.check_etag(&etag)?;
            if daemon.cluster_runtime().is_some() {
                if let Some(k) = body.config.keys().find(|k| MEMBER_KEYS.contains(&k.as_str())) {
                    return Err(Response::error(400, format!("Config key \"{k}\" is node-specific")));
                }
                if current.status != "Created" {
                    return Err(Response::error(400, "Cannot update storage pool global config when not in created state"));
                }
            }
            if req.method == Method::PATCH {
                let mut config = current.config.clone();
                config.extend(body.config);
                body.config = config;
            }
            daemon.update_storage_pool(name, body).await?;
            Ok(Response::empty())
        }
    }
}
