//! Images as an API resource: importing an uploaded unified tarball, the records and their
//! aliases, export, deletion everywhere, and making sure this member has an image's file
//! before a container is made from it. Copies between members are [`replication`].

pub mod replication;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Error, Result};
use crate::api::{Image, ImageAlias, ImageAliasEntry, ImagePut, InstanceSource, etag_of};
use crate::cluster::Cluster;
use crate::events::EventHub;
use crate::operations::{NewOp, Op, OpClass, Operations};
use crate::paths::Paths;
use crate::store::Batch;
use crate::store::global::{GlobalDb, images as store};
use crate::util::time;

/// What came with an upload besides the bytes.
#[derive(Debug, Default, Clone)]
pub struct Upload {
    pub filename: String,
    pub public: bool,
    pub properties: BTreeMap<String, String>,
}

/// A PATCH of an image: properties laid over the current ones, flags when given.
#[derive(Debug, Default, Clone)]
pub struct ImagePatch {
    pub properties: BTreeMap<String, String>,
    pub public: Option<bool>,
    pub auto_update: Option<bool>,
}

/// A PUT or PATCH of an alias: the fields given.
#[derive(Debug, Default, Clone)]
pub struct AliasChange {
    pub target: Option<String>,
    pub description: Option<String>,
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

fn alias_url(name: &str) -> String {
    format!("/1.0/images/aliases/{name}")
}

fn alias_to_api(a: store::Alias) -> ImageAlias {
    ImageAlias { name: a.name, description: a.description, target: a.target, kind: "container".into() }
}

fn alias_etag(a: &ImageAlias) -> String {
    etag_of(&(&a.description, &a.target))
}

pub struct Images {
    paths: Paths,
    global: GlobalDb,
    cluster: Arc<Cluster>,
    events: Arc<EventHub>,
    operations: Arc<Operations>,
}

impl Images {
    pub fn new(
        paths: Paths,
        global: GlobalDb,
        cluster: Arc<Cluster>,
        events: Arc<EventHub>,
        operations: Arc<Operations>,
    ) -> Images {
        Images { paths, global, cluster, events, operations }
    }

    pub async fn list(&self, project: &str) -> Result<Vec<Image>> {
        Ok(store::list(&self.global, project).await?.iter().map(render).collect())
    }

    /// An image (by fingerprint or unique prefix) with its ETag.
    pub async fn get(&self, project: &str, fp: &str) -> Result<(Image, String)> {
        let (image, _) = store::get(&self.global, project, fp).await?;
        let image = render(&image);
        let etag = etag_of(&image.put);
        Ok((image, etag))
    }

    /// The image an instance source names, by fingerprint (or unique prefix) or alias.
    pub async fn resolve_source(&self, project: &str, source: &InstanceSource) -> Result<store::Image> {
        if !source.server.is_empty() {
            return Err(Error::BadRequest(
                "Remote image servers are not supported: import the image first (lxc image import)".into(),
            ));
        }
        let fp = if !source.fingerprint.is_empty() {
            source.fingerprint.clone()
        } else if !source.alias.is_empty() {
            store::alias(&self.global, project, &source.alias).await?.0.target
        } else {
            return Err(Error::BadRequest("No image fingerprint or alias given".into()));
        };
        Ok(store::get(&self.global, project, &fp).await?.0)
    }

    /// Imports an uploaded image (async: "Downloading image"); the final metadata carries the
    /// fingerprint and size (as a string), which the stock client requires.
    pub fn import(self: &Arc<Self>, project: &str, data: bytes::Bytes, upload: Upload) -> Arc<Op> {
        let images = self.clone();
        let project = project.to_string();
        self.operations.spawn_task(
            NewOp {
                class: OpClass::Task,
                description: "Downloading image".into(),
                project: project.clone(),
                resources: serde_json::Value::Null,
                metadata: serde_json::Value::Null,
                may_cancel: false,
            },
            async move {
                let (fp, size) = images.import_task(&project, data, upload).await?;
                Ok::<_, Error>(Some(serde_json::json!({"fingerprint": fp, "size": size.to_string()})))
            },
        )
    }

    async fn import_task(self: &Arc<Self>, project: &str, data: bytes::Bytes, upload: Upload) -> Result<(String, i64)> {
        let lxd_dir = self.paths.dir.clone();
        let size = data.len() as i64;
        let (fp, meta) = tokio::task::spawn_blocking(move || crate::image::store(&lxd_dir, &data)).await??;
        if store::exists(&self.global, project, &fp).await? {
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
        store::create(&mut b, &image, self.cluster.node_id());
        self.global.apply(&b).await?;
        self.events.lifecycle(project, "image-created", format!("/1.0/images/{fp}"), None);
        if self.cluster.is_clustered() {
            self.replicate(project, &fp)
                .await
                .map_err(|e| Error::Internal(format!("Failed syncing image between nodes: {e}")))?;
        }
        Ok((fp, size))
    }

    /// PUT (`patch` None) or PATCH of an image's public flag, auto-update flag and properties.
    pub async fn update(
        &self,
        project: &str,
        fp: &str,
        put: ImagePut,
        patch: Option<ImagePatch>,
        if_match: Option<&str>,
    ) -> Result<()> {
        let (image, version) = store::get(&self.global, project, fp).await?;
        let current = render(&image).put;
        if let Some(given) = if_match {
            let current_etag = etag_of(&current);
            if current_etag != given {
                return Err(Error::etag_mismatch(&current_etag, given));
            }
        }
        let (public, auto_update, properties) = match patch {
            None => (put.public, put.auto_update, put.properties),
            Some(p) => {
                let mut properties = current.properties.clone();
                properties.extend(p.properties);
                (p.public.unwrap_or(current.public), p.auto_update.unwrap_or(current.auto_update), properties)
            }
        };
        let mut b = Batch::new();
        if if_match.is_some() {
            b.require_unchanged(&version, "ETag doesn't match: the image changed meanwhile");
        }
        store::update(&mut b, project, &image.fingerprint, public, auto_update, &properties);
        self.global.apply(&b).await?;
        self.events.lifecycle(project, "image-updated", format!("/1.0/images/{}", image.fingerprint), None);
        Ok(())
    }

    /// The tarball of an image (from this member or one that holds it) and the file name to
    /// offer it as.
    pub async fn export(&self, project: &str, fp: &str) -> Result<(Vec<u8>, String)> {
        let (image, _) = store::get(&self.global, project, fp).await?;
        self.ensure_file(project, &image.fingerprint).await?;
        let path = crate::image::path(&self.paths.dir, &image.fingerprint);
        let data = tokio::fs::read(&path).await.map_err(Error::io("reading the image", &path))?;
        let ext = image
            .filename
            .split_once('.')
            .map(|(_, e)| e.to_string())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "tar.gz".into());
        Ok((data, format!("{}.{ext}", image.fingerprint)))
    }

    /// Makes sure this member holds the image's file, fetching it from a member that has it.
    pub async fn ensure_file(&self, project: &str, fp: &str) -> Result<()> {
        if crate::image::has(&self.paths.dir, fp) {
            return Ok(());
        }
        if !self.cluster.is_clustered() {
            return Err(Error::NotFound(format!("Image file {fp} is missing on this server")));
        }
        self.fetch(project, fp).await
    }

    /// Deletes an image everywhere: the record, and the file on every member that has it.
    pub async fn delete(self: &Arc<Self>, project: &str, fp: &str) -> Result<Arc<Op>> {
        let (image, _) = store::get(&self.global, project, fp).await?;
        if self.cluster.is_clustered() {
            self.check_all_reachable().await?;
        }
        let images = self.clone();
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
                images.global.apply(&b).await?;
                crate::image::remove(&images.paths.dir, &image.fingerprint);
                if images.cluster.is_clustered() {
                    images.delete_elsewhere(&image.fingerprint).await;
                }
                images.events.lifecycle(&project, "image-deleted", format!("/1.0/images/{}", image.fingerprint), None);
                Ok::<_, Error>(None)
            },
        ))
    }

    /// This member's copy of an image file (another member fetching it).
    pub async fn file(&self, fp: &str) -> Result<Vec<u8>> {
        if !crate::image::valid_fingerprint(fp) {
            return Err(Error::BadRequest("Invalid image fingerprint".into()));
        }
        tokio::fs::read(crate::image::path(&self.paths.dir, fp))
            .await
            .map_err(|_| Error::NotFound("Image file not found on this member".into()))
    }

    /// Drops this member's copy of an image file (the image was deleted).
    pub fn remove_file(&self, fp: &str) -> Result<()> {
        if !crate::image::valid_fingerprint(fp) {
            return Err(Error::BadRequest("Invalid image fingerprint".into()));
        }
        crate::image::remove(&self.paths.dir, fp);
        Ok(())
    }

    pub async fn aliases(&self, project: &str) -> Result<Vec<ImageAlias>> {
        Ok(store::aliases(&self.global, project).await?.into_iter().map(alias_to_api).collect())
    }

    /// An alias with its ETag.
    pub async fn alias(&self, project: &str, name: &str) -> Result<(ImageAlias, String)> {
        let a = alias_to_api(store::alias(&self.global, project, name).await?.0);
        let etag = alias_etag(&a);
        Ok((a, etag))
    }

    pub async fn create_alias(&self, project: &str, alias: ImageAlias) -> Result<String> {
        if alias.name.is_empty() {
            return Err(Error::BadRequest("Alias name missing".into()));
        }
        let (image, _) = store::get(&self.global, project, &alias.target).await?;
        let mut b = Batch::new();
        store::create_alias(
            &mut b,
            project,
            &store::Alias { name: alias.name.clone(), description: alias.description, target: image.fingerprint },
        );
        self.global.apply(&b).await?;
        self.events.lifecycle(project, "image-alias-created", alias_url(&alias.name), None);
        Ok(alias_url(&alias.name))
    }

    pub async fn update_alias(&self, project: &str, name: &str, change: AliasChange, if_match: Option<&str>) -> Result<()> {
        let (stored, version) = store::alias(&self.global, project, name).await?;
        let current = alias_to_api(stored);
        if let Some(given) = if_match {
            let current_etag = alias_etag(&current);
            if current_etag != given {
                return Err(Error::etag_mismatch(&current_etag, given));
            }
        }
        let target = change.target.unwrap_or_else(|| current.target.clone());
        let description = change.description.unwrap_or_else(|| current.description.clone());
        let (image, _) = store::get(&self.global, project, &target).await?;
        let mut b = Batch::new();
        if if_match.is_some() {
            b.require_unchanged(&version, "ETag doesn't match: the alias changed meanwhile");
        }
        store::update_alias(&mut b, project, name, &image.fingerprint, &description);
        self.global.apply(&b).await?;
        Ok(())
    }

    pub async fn rename_alias(&self, project: &str, name: &str, new_name: &str) -> Result<()> {
        let mut b = Batch::new();
        store::rename_alias(&mut b, project, name, new_name);
        self.global.apply(&b).await?;
        Ok(())
    }

    pub async fn delete_alias(&self, project: &str, name: &str) -> Result<()> {
        let mut b = Batch::new();
        store::delete_alias(&mut b, project, name);
        self.global.apply(&b).await?;
        Ok(())
    }
}
