//! `/1.0/images`, `/1.0/images/<fp>`, `/1.0/images/<fp>/export` and `/1.0/images/aliases…`.

use std::sync::Arc;

use http::Method;

use super::HResult;
use crate::api::http::request::{Request, parse_query};
use crate::api::http::response::{Response, etag_of};
use crate::api::{ImageAlias, ImagePut};
use crate::daemon::Daemon;
use crate::daemon::images::{Upload, render};
use crate::store::Batch;
use crate::store::global::images as store;

pub async fn collection(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    let project = req.project();
    if req.method == Method::POST {
        let ctype = req.header("content-type").unwrap_or("");
        if ctype.starts_with("multipart/") {
            return Err(Response::error(
                400,
                "Split images are not supported: import a unified tarball (metadata.yaml + rootfs/)",
            ));
        }
        if ctype.starts_with("application/json") {
            return Err(Response::error(
                400,
                "Only image file uploads are supported (lxc image import <tarball>); copying from image servers is not",
            ));
        }
        if req.body.is_empty() {
            return Err(Response::error(400, "No image data received"));
        }
        let properties = req.header("x-lxd-properties").map(parse_query).unwrap_or_default().into_iter().collect();
        let upload = Upload {
            filename: req.header("x-lxd-filename").unwrap_or("").to_string(),
            public: req.header("x-lxd-public").is_some_and(|v| v == "true" || v == "1"),
            properties,
        };
        return Ok(Response::Async(daemon.import_image(&project, req.body.clone(), upload).await?));
    }
    let images = store::list(&daemon.global, &project).await?;
    if req.recursion() > 0 {
        return Ok(Response::sync(images.iter().map(render).collect::<Vec<_>>()));
    }
    Ok(Response::sync(images.iter().map(|i| format!("/1.0/images/{}", i.fingerprint)).collect::<Vec<_>>()))
}

pub async fn item(daemon: &Arc<Daemon>, req: &Request, fp: &str) -> HResult {
    let project = req.project();
    let image = store::get(&daemon.global, &project, fp).await?;
    let current = render(&image);
    let etag = etag_of(&current.put);
    match req.method {
        Method::GET => Ok(Response::sync_etag(current, etag)),
        Method::DELETE => Ok(Response::Async(daemon.delete_image(&project, &image.fingerprint).await?)),
        _ => {
            req.check_etag(&etag)?;
            let mut body: ImagePut = req.json()?;
            if req.method == Method::PATCH {
                let raw: serde_json::Value = req.json()?;
                let mut props = current.put.properties.clone();
                props.extend(body.properties);
                body.properties = props;
                if raw.get("public").is_none() {
                    body.public = current.put.public;
                }
                if raw.get("auto_update").is_none() {
                    body.auto_update = current.put.auto_update;
                }
            }
            let mut b = Batch::new();
            store::update(&mut b, &project, &image.fingerprint, body.public, body.auto_update, &body.properties);
            daemon.global.apply(&b).await.map_err(crate::daemon::Error::from)?;
            daemon.events.lifecycle(&project, "image-updated", format!("/1.0/images/{}", image.fingerprint), None);
            Ok(Response::empty())
        }
    }
}

/// `GET /1.0/images/<fp>/export`: the tarball, from this member or one that holds it.
pub async fn export(daemon: &Arc<Daemon>, req: &Request, fp: &str) -> HResult {
    let project = req.project();
    let image = store::get(&daemon.global, &project, fp).await?;
    if !crate::image::has(&daemon.paths.dir, &image.fingerprint) {
        daemon.ensure_image_file(&project, &image.fingerprint).await?;
    }
    let data = tokio::fs::read(crate::image::path(&daemon.paths.dir, &image.fingerprint))
        .await
        .map_err(|e| Response::error(500, format!("reading the image: {e}")))?;
    let ext =
        image.filename.split_once('.').map(|(_, e)| e.to_string()).filter(|e| !e.is_empty()).unwrap_or_else(|| "tar.gz".into());
    let headers = [("Content-Disposition", format!("inline;filename={}.{ext}", image.fingerprint))];
    Ok(Response::raw(200, "application/octet-stream", &headers, data.into()))
}

fn alias_url(name: &str) -> String {
    format!("/1.0/images/aliases/{name}")
}

pub async fn aliases(daemon: &Arc<Daemon>, req: &Request) -> HResult {
    let project = req.project();
    if req.method == Method::POST {
        let body: ImageAlias = req.json()?;
        if body.name.is_empty() {
            return Err(Response::error(400, "Alias name missing"));
        }
        let image = store::get(&daemon.global, &project, &body.target).await?;
        let mut b = Batch::new();
        store::create_alias(
            &mut b,
            &project,
            &store::Alias { name: body.name.clone(), description: body.description, target: image.fingerprint },
        );
        daemon.global.apply(&b).await.map_err(crate::daemon::Error::from)?;
        daemon.events.lifecycle(&project, "image-alias-created", alias_url(&body.name), None);
        return Ok(Response::created(alias_url(&body.name)));
    }
    let all = store::aliases(&daemon.global, &project).await?;
    if req.recursion() > 0 {
        let out: Vec<ImageAlias> = all
            .into_iter()
            .map(|a| ImageAlias { name: a.name, description: a.description, target: a.target, kind: "container".into() })
            .collect();
        return Ok(Response::sync(out));
    }
    Ok(Response::sync(all.iter().map(|a| alias_url(&a.name)).collect::<Vec<_>>()))
}

pub async fn alias(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    let project = req.project();
    let a = store::alias(&daemon.global, &project, name).await?;
    let current = ImageAlias {
        name: a.name.clone(),
        description: a.description.clone(),
        target: a.target.clone(),
        kind: "container".into(),
    };
    let etag = etag_of(&(&current.description, &current.target));
    let mut b = Batch::new();
    match req.method {
        Method::GET => return Ok(Response::sync_etag(current, etag)),
        Method::DELETE => store::delete_alias(&mut b, &project, name),
        Method::POST => {
            let body: crate::api::NamePost = req.json()?;
            store::rename_alias(&mut b, &project, name, &body.name);
        }
        _ => {
            req.check_etag(&etag)?;
            let raw: serde_json::Value = req.json()?;
            let target = raw.get("target").and_then(|v| v.as_str()).map(str::to_string).unwrap_or(a.target.clone());
            let description =
                raw.get("description").and_then(|v| v.as_str()).map(str::to_string).unwrap_or(a.description.clone());
            let target = store::get(&daemon.global, &project, &target).await?.fingerprint;
            store::update_alias(&mut b, &project, name, &target, &description);
        }
    }
    daemon.global.apply(&b).await.map_err(crate::daemon::Error::from)?;
    Ok(Response::empty())
}
