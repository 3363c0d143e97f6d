//! Profiles: listing, reading (with the ETag of their writable part), creating, replacing,
//! patching, renaming and deleting, with their lifecycle events. A write made with an If-Match
//! is guarded inside the database write itself: of two writers holding the same ETag exactly
//! one succeeds. A PATCH carries only what it changes, so concurrent patches of different keys
//! all land.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::validation::{validate_devices, validate_instance_config, validate_name};
use super::{Error, Result};
use crate::api::{Profile, ProfilePut, ProfilesPost, etag_of};
use crate::events::EventHub;
use crate::store::Batch;
use crate::store::global::profiles::{self as store, Devices};
use crate::store::global::{GlobalDb, projects as store_projects};

/// A PATCH of a profile: the keys and devices to lay over the current ones.
#[derive(Clone, Debug, Default)]
pub struct ProfilePatch {
    pub config: BTreeMap<String, String>,
    pub devices: Devices,
    pub description: Option<String>,
}

pub fn profile_url(project: &str, name: &str) -> String {
    if project == "default" { format!("/1.0/profiles/{name}") } else { format!("/1.0/profiles/{name}?project={project}") }
}

fn to_api(p: store::Profile) -> Profile {
    Profile { config: p.config, description: p.description, devices: p.devices, name: p.name, used_by: Vec::new() }
}

/// The ETag of a profile: its writable part.
pub fn etag(p: &Profile) -> String {
    etag_of(&ProfilePut { config: p.config.clone(), description: p.description.clone(), devices: p.devices.clone() })
}

#[derive(Clone)]
pub struct Profiles {
    global: GlobalDb,
    events: Arc<EventHub>,
}

impl Profiles {
    pub fn new(global: GlobalDb, events: Arc<EventHub>) -> Profiles {
        Profiles { global, events }
    }

    /// Profiles live in the project itself when it has `features.profiles`, else in `default`.
    pub async fn project_for(&self, project: &str) -> Result<String> {
        // The default project always has its own profiles (its features cannot change).
        if project == "default" {
            return Ok(project.into());
        }
        let (p, _) = store_projects::get(&self.global, project).await?;
        Ok(if p.config.get("features.profiles").map(String::as_str) == Some("true") { p.name } else { "default".into() })
    }

    pub async fn list(&self, project: &str) -> Result<Vec<Profile>> {
        let project = self.project_for(project).await?;
        Ok(store::list(&self.global, Some(&project)).await?.into_iter().map(to_api).collect())
    }

    /// A profile with its ETag.
    pub async fn get(&self, project: &str, name: &str) -> Result<(Profile, String)> {
        let project = self.project_for(project).await?;
        let p = to_api(store::get(&self.global, &project, name).await?.0);
        let etag = etag(&p);
        Ok((p, etag))
    }

    pub async fn create(&self, project: &str, req: ProfilesPost) -> Result<()> {
        validate_name("profile", &req.name)?;
        validate_instance_config(&req.config)?;
        validate_devices(&self.global, &req.devices).await?;
        let project = self.project_for(project).await?;
        let p = store::Profile {
            name: req.name.clone(),
            description: req.description,
            config: req.config,
            devices: req.devices,
            ..Default::default()
        };
        let mut b = Batch::new();
        store::create(&mut b, &project, &p);
        self.global.apply(&b).await?;
        self.events.lifecycle(&project, "profile-created", profile_url(&project, &req.name), None);
        Ok(())
    }

    /// Reads the profile and checks `if_match` against its ETag; the version it returns guards
    /// the write that follows.
    async fn check(&self, project: &str, name: &str, if_match: &str) -> Result<(store::Profile, crate::store::Version)> {
        let (current, version) = store::get(&self.global, project, name).await?;
        let current_etag = etag(&to_api(current.clone()));
        if current_etag != if_match {
            return Err(Error::etag_mismatch(&current_etag, if_match));
        }
        Ok((current, version))
    }

    /// PUT: replaces the profile's writable part.
    pub async fn replace(&self, project: &str, name: &str, put: ProfilePut, if_match: Option<&str>) -> Result<()> {
        validate_instance_config(&put.config)?;
        let project = self.project_for(project).await?;
        let mut b = Batch::new();
        let unchanged_devices = match if_match {
            Some(given) => {
                let (current, version) = self.check(&project, name, given).await?;
                b.require_unchanged(&version, "ETag doesn't match: the profile changed meanwhile");
                current.devices == put.devices
            }
            None => false,
        };
        if !unchanged_devices {
            validate_devices(&self.global, &put.devices).await?;
        }
        let p = store::Profile { description: put.description, config: put.config, devices: put.devices, ..Default::default() };
        store::replace(&mut b, &project, name, &p);
        self.global.apply(&b).await?;
        self.events.lifecycle(&project, "profile-updated", profile_url(&project, name), None);
        Ok(())
    }

    /// PATCH: lays the given keys and devices over the current ones.
    pub async fn patch(&self, project: &str, name: &str, patch: ProfilePatch, if_match: Option<&str>) -> Result<()> {
        validate_instance_config(&patch.config)?;
        validate_devices(&self.global, &patch.devices).await?;
        let project = self.project_for(project).await?;
        let mut b = Batch::new();
        if let Some(given) = if_match {
            let (_, version) = self.check(&project, name, given).await?;
            b.require_unchanged(&version, "ETag doesn't match: the profile changed meanwhile");
        }
        store::patch(&mut b, &project, name, &patch.config, &patch.devices, patch.description.as_deref());
        self.global.apply(&b).await?;
        self.events.lifecycle(&project, "profile-updated", profile_url(&project, name), None);
        Ok(())
    }

    pub async fn rename(&self, project: &str, name: &str, new_name: &str) -> Result<()> {
        if name == "default" {
            return Err(Error::Forbidden("The \"default\" profile cannot be renamed".into()));
        }
        validate_name("profile", new_name)?;
        let project = self.project_for(project).await?;
        let mut b = Batch::new();
        store::rename(&mut b, &project, name, new_name);
        self.global.apply(&b).await?;
        self.events.lifecycle(&project, "profile-renamed", profile_url(&project, new_name), None);
        Ok(())
    }

    pub async fn delete(&self, project: &str, name: &str) -> Result<()> {
        if name == "default" {
            return Err(Error::Forbidden("The \"default\" profile cannot be deleted".into()));
        }
        let project = self.project_for(project).await?;
        let mut b = Batch::new();
        store::delete(&mut b, &project, name);
        self.global.apply(&b).await?;
        self.events.lifecycle(&project, "profile-deleted", profile_url(&project, name), None);
        Ok(())
    }
}
