//! `/1.0/profiles` and `/1.0/profiles/<name>`.

use http::Method;

use super::{HResult, list_response};
use crate::api::http::request::Request;
use crate::api::http::response::{Response, etag_of};
use crate::api::{NamePost, ProfilePut, ProfilesPost};
use crate::daemon::Daemon;

fn url(project: &str, name: &str) -> String {
    crate::daemon::profiles::profile_url(project, name)
}

pub async fn collection(daemon: &Daemon, req: &Request) -> HResult {
    let project = req.project();
    match req.method {
        Method::GET => {
            let profiles = daemon.profiles(&project).await?;
            Ok(list_response(req, profiles, |p| url(&project, &p.name)))
        }
        _ => {
            let body: ProfilesPost = req.json()?;
            let name = body.name.clone();
            daemon.create_profile(&project, body).await?;
            Ok(Response::created(url(&project, &name)))
        }
    }
}

pub async fn item(daemon: &Daemon, req: &Request, name: &str) -> HResult {
    let project = req.project();
    let current = daemon.profile(&project, name).await?;
    let writable =
        ProfilePut { config: current.config.clone(), description: current.description.clone(), devices: current.devices.clone() };
    let etag = etag_of(&writable);
    match req.method {
        Method::GET => Ok(Response::sync_etag(current, etag)),
        Method::DELETE => {
            daemon.delete_profile(&project, name).await?;
            Ok(Response::empty())
        }
        Method::POST => {
            let body: NamePost = req.json()?;
            daemon.rename_profile(&project, name, &body.name).await?;
            Ok(Response::created(url(&project, &body.name)))
        }
        _ => {
            let mut body: ProfilePut = req.json()?;
            req.check_etag(&etag)?;
            if req.method == Method::PATCH {
                let raw: serde_json::Value = req.json()?;
                if raw.get("description").is_none() {
                    body.description = writable.description.clone();
                }
                super::patch_over(&mut body.config, &mut body.devices, &writable.config, &writable.devices);
            }
            daemon.update_profile(&project, name, body, Some(&writable.devices)).await?;
            Ok(Response::empty())
        }
    }
}
