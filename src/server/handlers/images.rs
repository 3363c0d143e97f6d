//! `/1.0/images`, `/1.0/images/<fp>`, `/1.0/images/<fp>/export`, `/1.0/images/aliases…` and
//! `/internal/images/<fp>` (members fetching, pushing and dropping image files).

use std::sync::Arc;

use http::Method;

use crate::api::{ImageAlias, ImagePut, NamePost};
use crate::server::request::{Request, parse_query};
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;
use crate::services::images::{AliasChange, ImagePatch, Upload};

fn url(fp: &str) -> String {
    format!("/1.0/images/{fp}")
}

fn alias_url(name: &str) -> String {
    format!("/1.0/images/aliases/{name}")
}

pub struct List {
    project: String,
    recursion: i64,
}

impl Action for List {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(List { project: req.project(), recursion: req.recursion() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let images = member.images.list(&self.project).await?;
        Ok(Response::list(self.recursion, images, |i| url(&i.fingerprint)))
    }
}

/// An upload of a unified tarball.
pub struct Import {
    project: String,
    data: bytes::Bytes,
    upload: Upload,
}

impl Action for Import {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        let ctype = req.header("content-type").unwrap_or("");
        if ctype.starts_with("multipart/") {
            return Err(ApiError::bad_request(
                "Split images are not supported: import a unified tarball (metadata.yaml + rootfs/)",
            ));
        }
        if ctype.starts_with("application/json") {
            return Err(ApiError::bad_request(
                "Only image file uploads are supported (lxc image import <tarball>); copying from image servers is not",
            ));
        }
        if req.body.is_empty() {
            return Err(ApiError::bad_request("No image data received"));
        }
        let properties = req.header("x-lxd-properties").map(parse_query).unwrap_or_default().into_iter().collect();
        let upload = Upload {
            filename: req.header("x-lxd-filename").unwrap_or("").to_string(),
            public: req.header("x-lxd-public").is_some_and(|v| v == "true" || v == "1"),
            properties,
        };
        Ok(Import { project: req.project(), data: req.body.clone(), upload })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::Async(member.images.import(&self.project, self.data, self.upload)))
    }
}

pub struct Get {
    project: String,
    fingerprint: String,
}

impl Action for Get {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Get { project: req.project(), fingerprint: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (image, etag) = member.images.get(&self.project, &self.fingerprint).await?;
        Ok(Response::sync_etag(image, etag))
    }
}

pub struct Update {
    project: String,
    fingerprint: String,
    put: ImagePut,
    patch: Option<ImagePatch>,
    if_match: Option<String>,
}

impl Action for Update {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        let put: ImagePut = req.json()?;
        let patch = if req.method == Method::PATCH {
            let fields = req.fields()?;
            Some(ImagePatch {
                properties: put.properties.clone(),
                public: fields.contains_key("public").then_some(put.public),
                auto_update: fields.contains_key("auto_update").then_some(put.auto_update),
            })
        } else {
            None
        };
        Ok(Update { project: req.project(), fingerprint: p.at(0).to_string(), put, patch, if_match: req.if_match() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.images.update(&self.project, &self.fingerprint, self.put, self.patch, self.if_match.as_deref()).await?;
        Ok(Response::empty())
    }
}

pub struct Delete {
    project: String,
    fingerprint: String,
}

impl Action for Delete {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Delete { project: req.project(), fingerprint: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::Async(member.images.delete(&self.project, &self.fingerprint).await?))
    }
}

/// `GET /1.0/images/<fp>/export`: the tarball, from this member or one that holds it.
pub struct Export {
    project: String,
    fingerprint: String,
}

impl Action for Export {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Export { project: req.project(), fingerprint: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (data, filename) = member.images.export(&self.project, &self.fingerprint).await?;
        let headers = [("Content-Disposition", format!("inline;filename={filename}"))];
        Ok(Response::raw(200, "application/octet-stream", &headers, data.into()))
    }
}

pub struct AliasList {
    project: String,
    recursion: i64,
}

impl Action for AliasList {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(AliasList { project: req.project(), recursion: req.recursion() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let all = member.images.aliases(&self.project).await?;
        Ok(Response::list(self.recursion, all, |a| alias_url(&a.name)))
    }
}

pub struct AliasCreate {
    project: String,
    alias: ImageAlias,
}

impl Action for AliasCreate {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(AliasCreate { project: req.project(), alias: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::created(member.images.create_alias(&self.project, self.alias).await?))
    }
}

pub struct AliasGet {
    project: String,
    name: String,
}

impl Action for AliasGet {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(AliasGet { project: req.project(), name: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (alias, etag) = member.images.alias(&self.project, &self.name).await?;
        Ok(Response::sync_etag(alias, etag))
    }
}

pub struct AliasUpdate {
    project: String,
    name: String,
    change: AliasChange,
    if_match: Option<String>,
}

impl Action for AliasUpdate {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        let fields = req.fields()?;
        let text = |k: &str| fields.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let change = AliasChange { target: text("target"), description: text("description") };
        Ok(AliasUpdate { project: req.project(), name: p.at(0).to_string(), change, if_match: req.if_match() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.images.update_alias(&self.project, &self.name, self.change, self.if_match.as_deref()).await?;
        Ok(Response::empty())
    }
}

pub struct AliasRename {
    project: String,
    name: String,
    body: NamePost,
}

impl Action for AliasRename {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(AliasRename { project: req.project(), name: p.at(0).to_string(), body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.images.rename_alias(&self.project, &self.name, &self.body.name).await?;
        Ok(Response::empty())
    }
}

pub struct AliasDelete {
    project: String,
    name: String,
}

impl Action for AliasDelete {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(AliasDelete { project: req.project(), name: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.images.delete_alias(&self.project, &self.name).await?;
        Ok(Response::empty())
    }
}

/// Another member fetches this member's copy of an image file.
pub struct FileGet {
    fingerprint: String,
}

impl Action for FileGet {
    fn parse(_: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(FileGet { fingerprint: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let data = member.images.file(&self.fingerprint).await?;
        Ok(Response::raw(200, "application/octet-stream", &[], data.into()))
    }
}

/// Another member pushes a copy of an image file here.
pub struct FilePut {
    project: String,
    fingerprint: String,
    data: bytes::Bytes,
}

impl Action for FilePut {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(FilePut { project: req.project(), fingerprint: p.at(0).to_string(), data: req.body.clone() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.images.receive(&self.project, &self.fingerprint, self.data).await?;
        Ok(Response::empty())
    }
}

/// Another member tells this one to drop its copy of a deleted image.
pub struct FileDelete {
    fingerprint: String,
}

impl Action for FileDelete {
    fn parse(_: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(FileDelete { fingerprint: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.images.remove_file(&self.fingerprint)?;
        Ok(Response::empty())
    }
}
