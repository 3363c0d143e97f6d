//! `/1.0/projects` and `/1.0/projects/<name>`.

use http::Method;

use super::{HResult, list_response};
use crate::api::http::request::Request;
use crate::api::http::response::{Response, etag_of};
use crate::api::{NamePost, ProjectPut, ProjectsPost};
use crate::daemon::Daemon;

pub async fn collection(daemon: &Daemon, req: &Request) -> HResult {
    match req.method {
        Method::GET => {
            let projects = daemon.projects().await?;
            Ok(list_response(req, projects, |p| format!("/1.0/projects/{}", p.name)))
        }
        _ => {
            let body: ProjectsPost = req.json()?;
            let name = body.name.clone();
            daemon.create_project(body).await?;
            Ok(Response::created(format!("/1.0/projects/{name}")))
        }
    }
}

pub async fn item(daemon: &Daemon, req: &Request, name: &str) -> HResult {
    let current = daemon.project(name).await?;
    let writable = ProjectPut { config: current.config.clone(), description: current.description.clone() };
    let etag = etag_of(&(&writable.config, &writable.description));
    match req.method {
        Method::GET => Ok(Response::sync_etag(current, etag)),
        Method::DELETE => {
            daemon.delete_project(name).await?;
            Ok(Response::empty())
        }
        Method::POST => {
            let body: NamePost = req.json()?;
            daemon.rename_project(name, &body.name).await?;
            Ok(Response::created(format!("/1.0/projects/{}", body.name)))
        }
        _ => {
            let mut body: ProjectPut = req.json()?;
            req.check_etag(&etag)?;
            if req.method == Method::PATCH {
                let raw: serde_json::Value = req.json()?;
                if raw.get("description").is_none() {
                    body.description = writable.description.clone();
                }
                let mut config = writable.config.clone();
                config.extend(body.config);
                body.config = config;
            }
            daemon.update_project(name, body).await?;
            Ok(Response::empty())
        }
    }
}
