//! `/1.0/storage-pools` and `/1.0/storage-pools/<name>`.

use http::Method;

use super::{HResult, list_response};
use crate::api::http::request::Request;
use crate::api::http::response::{Response, etag_of};
use crate::api::{StoragePoolPut, StoragePoolsPost};
use crate::daemon::Daemon;

pub async fn collection(daemon: &Daemon, req: &Request) -> HResult {
    match req.method {
        Method::GET => {
            let pools = daemon.storage_pools().await?;
            Ok(list_response(req, pools, |p| format!("/1.0/storage-pools/{}", p.name)))
        }
        _ => {
            let body: StoragePoolsPost = req.json()?;
            let name = body.name.clone();
            daemon.create_storage_pool(body).await?;
            Ok(Response::created(format!("/1.0/storage-pools/{name}")))
        }
    }
}

pub async fn item(daemon: &Daemon, req: &Request, name: &str) -> HResult {
    let current = daemon.storage_pool(name).await?;
    let etag = etag_of(&(&current.config, &current.description));
    match req.method {
        Method::GET => Ok(Response::sync_etag(current, etag)),
        Method::DELETE => {
            daemon.delete_storage_pool(name).await?;
            Ok(Response::empty())
        }
        _ => {
            let mut body: StoragePoolPut = req.json()?;
            req.check_etag(&etag)?;
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
