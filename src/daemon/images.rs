//! Images: importing an uploaded unified tarball, the API's view of the records, aliases, and
//! making sure this member has an image's file before a container is made from it.

use std::sync::Arc;

use super::operations::{NewOp, Op, OpClass};
use super::{Daemon, Error, Result};
use crate::api::{Image, ImageAliasEntry, ImagePut, InstanceSource};
use crate::store::Batch;
use crate::store::global::images as store;
use crate::util::time;

/// What came with an upload besides the bytes.
#[derive(Debug, Default, Clone)]
pub struct Upload {
    pub filename: String,
    pub public: bool,
    pub properties: std::collections::BTreeMap<String, String>,
}

pub fn render(i: &store::Image) -> Image {
    let ts = |s: &str| if s.is_empty() { "1970-01-01T00:00:00Z".to_string() } else { s.to_string() };
    Image {
        put: ImagePut {
            auto_update: i.auto_update,
            properties: i.properties.clone(),
            public: i.public,
            expires_at: "1970-01-01T00:00:00Z".into(),
            profiles: vec!["default".into()],
        },
        aliases: i.aliases.iter().map(|(n, d)| ImageAliasEntry { name: n.clone(), description: d.clone() }).collect(),
        architecture: i.architecture.clone(),
        cached: false,
        filename: i.filename.clone(),
        fingerprint: i.fingerprint.clone(),
        size: i.size,
        kind: "container".into(),
        created_at: ts(&i.created_at),
        last_used_at: ts(&i.last_used_at),
        uploaded_at: ts(&i.uploaded_at),
    }
}

impl Daemon {
    /// The image an instance source names, by fingerprint (or unique prefix) or alias.
    pub async fn resolve_image_source(&self, project: &str, source: &InstanceSource) -> Result<store::Image> {
        if !source.server.is_empty() {
            return Err(Error::BadRequest(
                "Remote image servers are not supported: import the image first (lxc image import)".into(),
            ));
        }
        let fp = if !source.fingerprint.is_empty() {
            source.fingerprint.clone()
        } else if !source.alias.is_empty() {
            store::alias(&self.global, project, &source.alias).await?.target
        } else {
            return Err(Error::BadRequest("No image fingerprint or alias given".into()));
        };
        Ok(store::get(&self.global, project, &fp).await?)
    }

    /// Imports an uploaded image (async: "Downloading image"); the final metadata carries the
    /// fingerprint and size (as a string), which the stock client requires.
    pub async fn import_image(self: &Arc<Self>, project: &str, data: bytes::Bytes, upload: Upload) -> Result<Arc<Op>> {
        let d = self.clone();
        let project = project.to_string();
        Ok(self.operations.spawn_task(
            NewOp {
                class: OpClass::Task,
                description: "Downloading image".into(),
                project: project.clone(),
                resources: serde_json::Value::Null,
                metadata: serde_json::Value::Null,
                may_cancel: false,
            },
            async move {
                let fp = d.import_task(&project, data, upload).await.map_err(|e| e.to_string())?;
                let img = store::get(&d.global, &project, &fp).await.map_err(|e| e.to_string())?;
                Ok(Some(serde_json::json!({"fingerprint": fp, "size": img.size.to_string()})))
            },
        ))
    }

    async fn import_task(self: &Arc<Self>, project: &str, data: bytes::Bytes, upload: Upload) -> Result<String> {
        let lxd_dir = self.paths.dir.clone();
        let size = data.len() as i64;
        let (fp, meta) = tokio::task::spawn_blocking(move || crate::image::store(&lxd_dir, &data))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        if store::get(&self.global, project, &fp).await.is_ok_and(|i| i.fingerprint == fp) {
            return Err(Error::Conflict("Image with same fingerprint already exists".into()));
        }
        let mut properties = meta.properties.clone();
        properties.extend(upload.properties.clone());
        let created = if meta.creation_date > 0 { time::rfc3339(meta.creation_date * 1_000_000_000) } else { String::new() };
        let image = store::Image {
            project: project.to_string(),
            fingerprint: fp.clone(),
            filename: upload.filename.clone(),
            size,
            public: upload.public,
            architecture: if meta.architecture.is_empty() { std::env::consts::ARCH.into() } else { meta.architecture.clone() },
            created_at: created,
            uploaded_at: time::rfc3339(time::now_nanos()),
            properties,
            ..Default::default()
        };
        let mut b = Batch::new();
        store::create(&mut b, &image, self.node_id());
        if let Err(e) = self.global.apply(&b).await {
            return Err(e.into());
        }
        self.events.lifecycle(project, "image-created", format!("/1.0/images/{fp}"), None);
        if self.cluster_runtime().is_some() {
            crate::cluster::images::replicate(self, project, &fp)
                .await
                .map_err(|e| Error::Internal(format!("Failed syncing image between nodes: {e}")))?;
        }
        Ok(fp)
    }

    /// Makes sure this member holds the image's file, fetching it from a member that has it.
    pub async fn ensure_image_file(&self, project: &str, fp: &str) -> Result<()> {
        if crate::image::has(&self.paths.dir, fp) {
            return Ok(());
        }
        if self.cluster_runtime().is_none() {
            return Err(Error::NotFound(format!("Image file {fp} is missing on this server")));
        }
        crate::cluster::images::fetch(self, project, fp).await
    }

    /// Deletes an image everywhere: the record, and the file on every member that has it.
    pub async fn delete_image(self: &Arc<Self>, project: &str, fp: &str) -> Result<Arc<Op>> {
        let image = store::get(&self.global, project, fp).await?;
        if self.cluster_runtime().is_some() {
            crate::cluster::images::check_all_reachable(self).await?;
        }
        let d = self.clone();
        let project = project.to_string();
        Ok(self.operations.spawn_task(
            NewOp {
                class: OpClass::Task,
                description: "Deleting image".into(),
                project: project.clone(),
                resources: serde_json::json!({"images": [format!("/1.0/images/{}", image.fingerprint)]}),
                metadata: serde_json::Value::Null,
                may_cancel: false,
            },
            async move {
                let mut b = Batch::new();
                store::delete(&mut b, &project, &image.fingerprint);
                d.global.apply(&b).await.map_err(|e| e.to_string())?;
                crate::image::remove(&d.paths.dir, &image.fingerprint);
                if d.cluster_runtime().is_some() {
                    crate::cluster::images::delete_elsewhere(&d, &image.fingerprint).await;
                }
                d.events.lifecycle(&project, "image-deleted", format!("/1.0/images/{}", image.fingerprint), None);
                Ok(None)
            },
        ))
    }
}
