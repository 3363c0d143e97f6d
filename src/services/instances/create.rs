//! Creating an instance on this member: from an image (unpacked once per member, then copied),
//! as a copy of another instance or of one of its snapshots (its files fetched from its member),
//! or empty.

use std::sync::Arc;

use super::limits::validate_config;
use super::{Instances, driver_name, expand, instance_task, instance_url, root_pool};
use crate::api::InstancesPost;
use crate::operations::Op;
use crate::services::validation::{validate_devices, validate_name};
use crate::services::{Error, Result};
use crate::store::Batch;
use crate::store::global::{self, images as store_images, instances as store};
use crate::util::time;

/// What a new instance's root filesystem comes from.
enum Origin {
    Image(store_images::Image),
    /// A copy of another instance (stopped or running; its files as they are) or of one of its
    /// snapshots.
    Copy(store::Instance, Option<String>),
    Empty,
}

impl Instances {
    /// Creates an instance on this member (async: "Creating instance").
    pub async fn create(self: &Arc<Self>, project: &str, req: InstancesPost) -> Result<Arc<Op>> {
        validate_name("instance", &req.name)?;
        if !req.kind.is_empty() && req.kind != "container" {
            return Err(Error::BadRequest(format!("Instance type \"{}\" is not supported: rxd runs containers", req.kind)));
        }
        validate_config(&req.put.config)?;
        validate_devices(&self.global, &req.put.devices).await?;
        let origin = match req.source.kind.as_str() {
            "image" => Origin::Image(self.images.resolve_source(project, &req.source).await?),
            "copy" => {
                let source_project = if req.source.project.is_empty() { project } else { req.source.project.as_str() };
                let (instance, snapshot) = match req.source.source.split_once('/') {
                    Some((i, s)) => (i, Some(s.to_string())),
                    None => (req.source.source.as_str(), None),
                };
                let mut src = self.row(source_project, instance).await?;
                if let Some(s) = &snapshot {
                    src.config = global::snapshots::get(&self.global, source_project, instance, s).await?.config;
                }
                Origin::Copy(src, snapshot)
            }
            "none" => Origin::Empty,
            "" => return Err(Error::BadRequest("No source type provided: use an image (source.type \"image\")".into())),
            other => return Err(Error::BadRequest(format!("Unsupported instance source type \"{other}\""))),
        };
        let mut profiles = if req.put.profiles.is_empty() && !req.put.devices.contains_key("root") {
            vec!["default".to_string()]
        } else {
            req.put.profiles.clone()
        };
        let mut config = req.put.config.clone();
        let mut devices = req.put.devices.clone();
        match &origin {
            Origin::Image(img) => {
                for (k, v) in &img.properties {
                    config.insert(format!("image.{k}"), v.clone());
                }
                config.insert("volatile.base_image".into(), img.fingerprint.clone());
            }
            Origin::Copy(src, _) => {
                // The stock client sends the source's writable part; a bare API call gets it here.
                if req.put.config.is_empty() && req.put.profiles.is_empty() {
                    config = src.config.clone();
                    devices = src.devices.clone();
                    profiles = src.profiles.clone();
                }
                config.retain(|k, _| !k.starts_with("volatile."));
                if let Some(base) = src.config.get("volatile.base_image") {
                    config.insert("volatile.base_image".into(), base.clone());
                }
            }
            Origin::Empty => {}
        }
        config.insert("volatile.uuid".into(), uuid::Uuid::new_v4().to_string());
        config.insert("volatile.last_state.power".into(), "STOPPED".into());
        let row = store::Instance {
            project: project.to_string(),
            name: req.name.clone(),
            node_id: self.cluster.node_id(),
            architecture: match &origin {
                Origin::Image(i) => i.architecture.clone(),
                Origin::Copy(src, _) => src.architecture.clone(),
                Origin::Empty => std::env::consts::ARCH.into(),
            },
            ephemeral: req.put.ephemeral,
            stateful: req.put.stateful,
            description: req.put.description.clone(),
            created_at: time::rfc3339(time::now_nanos()),
            config,
            devices,
            profiles,
            ..Default::default()
        };
        let all_profiles = global::profiles::list(&self.global, Some(project)).await?;
        for p in &row.profiles {
            if !all_profiles.iter().any(|x| &x.name == p) {
                return Err(Error::BadRequest(format!("Requested profile '{p}' doesn't exist")));
            }
        }
        let (_, devices) = expand(&row, &all_profiles);
        let pool = root_pool(&devices)?;
        let instances = self.clone();
        let project_s = project.to_string();
        let op = self.operations.spawn_task(instance_task(project, &req.name, "Creating instance"), async move {
            instances.create_task(&project_s, row, origin, &pool).await.map(|_| None)
        });
        Ok(op)
    }

    async fn create_task(self: &Arc<Self>, project: &str, row: store::Instance, origin: Origin, pool: &str) -> Result<()> {
        let mut b = Batch::new();
        store::create(&mut b, &row);
        if let Origin::Image(img) = &origin {
            store_images::touch(&mut b, project, &img.fingerprint, &time::rfc3339(time::now_nanos()));
        }
        self.global.apply(&b).await?;
        let dir = self.pools.root(pool).await?.join("containers").join(driver_name(project, &row.name));
        let made = async {
            if dir.exists() {
                return Err(Error::Conflict(format!("Instance directory {} already exists", dir.display())));
            }
            match &origin {
                Origin::Copy(src, snapshot) => {
                    let archive = self.fetch_archive(&src.project, &src.name, snapshot.as_deref()).await?;
                    super::moving::unpack(&dir, &archive).await?;
                }
                Origin::Image(img) => {
                    self.images.ensure_file(project, &img.fingerprint).await?;
                    let lxd_dir = self.paths.dir.clone();
                    let fp = img.fingerprint.clone();
                    let dest = dir.clone();
                    tokio::task::spawn_blocking(move || crate::image::unpack(&lxd_dir, &fp, &dest)).await??;
                }
                Origin::Empty => {
                    let rootfs = dir.join("rootfs");
                    std::fs::create_dir_all(&rootfs).map_err(Error::io("creating", &rootfs))?
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = made {
            if let Err(cleanup) = std::fs::remove_dir_all(&dir)
                && cleanup.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %dir.display(), error = %cleanup, "cannot remove a failed instance's files");
            }
            let mut b = Batch::new();
            store::delete(&mut b, project, &row.name);
            if let Err(undo) = self.global.apply(&b).await {
                tracing::warn!(instance = %row.name, error = %undo, "cannot remove a failed instance's record");
            }
            return Err(e);
        }
        self.events.lifecycle(project, "instance-created", instance_url(project, &row.name), None);
        Ok(())
    }
}
