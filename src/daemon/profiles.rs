//! Profiles as an API resource: validation of names, instance config keys and devices, and the
//! create / replace / rename / delete actions with their lifecycle events.

use std::collections::BTreeMap;

use super::{Daemon, Error, Result};
use crate::api::{Profile, ProfilePut, ProfilesPost};
use crate::store::Batch;
use crate::store::global::profiles::{self as store_profiles, Devices};
use crate::store::global::{projects as store_projects, storage_pools};

/// Checks a profile, project or pool name: not empty, no slash or whitespace, not `.`/`..`.
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::BadRequest(format!("No name provided for the {what}")));
    }
    if name == "." || name == ".." || name.contains('/') || name.chars().any(char::is_whitespace) {
        return Err(Error::BadRequest(format!("Invalid {what} name \"{name}\"")));
    }
    Ok(())
}

const CONFIG_PREFIXES: &[&str] = &[
    "boot.",
    "cloud-init.",
    "cluster.",
    "environment.",
    "image.",
    "limits.",
    "linux.",
    "migration.",
    "nvidia.",
    "raw.",
    "security.",
    "snapshots.",
    "user.",
    "volatile.",
];
const CONFIG_KEYS: &[&str] = &["agent.nic_config", "user-data", "vendor-data", "network-config"];
const DEVICE_TYPES: &[&str] =
    &["none", "nic", "disk", "unix-char", "unix-block", "usb", "gpu", "infiniband", "proxy", "unix-hotplug", "tpm", "pci"];

/// Instance configuration keys a profile may carry.
pub fn validate_instance_config(config: &BTreeMap<String, String>) -> Result<()> {
    for k in config.keys() {
        let known = CONFIG_KEYS.contains(&k.as_str()) || CONFIG_PREFIXES.iter().any(|p| k.starts_with(p));
        if !known || k.starts_with("volatile.") {
            return Err(Error::BadRequest(format!("Invalid instance configuration key \"{k}\"")));
        }
    }
    Ok(())
}

impl Daemon {
    pub(crate) async fn validate_devices(&self, devices: &Devices) -> Result<()> {
        let pools = storage_pools::list(&self.global, 1).await?;
        for (name, dev) in devices {
            let kind = dev.get("type").map(String::as_str).unwrap_or("");
            if kind.is_empty() {
                return Err(Error::BadRequest(format!("Device \"{name}\": Missing device type")));
            }
            if !DEVICE_TYPES.contains(&kind) {
                return Err(Error::BadRequest(format!("Device \"{name}\": Unsupported device type \"{kind}\"")));
            }
            if kind == "disk" {
                let path = dev.get("path").map(String::as_str).unwrap_or("");
                if path.is_empty() {
                    return Err(Error::BadRequest(format!(
                        "Device \"{name}\": Disk entry is missing the required \"path\" property"
                    )));
                }
                match dev.get("pool") {
                    Some(pool) if !pools.iter().any(|p| &p.name == pool) => {
                        return Err(Error::BadRequest(format!("Device \"{name}\": Storage pool \"{pool}\" doesn't exist")));
                    }
                    None if path == "/" => {
                        return Err(Error::BadRequest(format!(
                            "Device \"{name}\": Root disk entry must have a \"pool\" property set"
                        )));
                    }
                    None if !dev.contains_key("source") => {
                        return Err(Error::BadRequest(format!(
                            "Device \"{name}\": Disk entry is missing the required \"source\" or \"pool\" property"
                        )));
                    }
                    _ => {}
                }
            }
            if kind == "nic" && !dev.contains_key("nictype") && !dev.contains_key("network") {
                return Err(Error::BadRequest(format!("Device \"{name}\": Missing nic type")));
            }
        }
        Ok(())
    }

    /// Profiles live in the project itself when it has `features.profiles`, else in `default`.
    pub async fn profile_project(&self, project: &str) -> Result<String> {
        // The default project always has its own profiles (its features cannot change).
        if project == "default" {
            return Ok(project.into());
        }
        let p = store_projects::get(&self.global, project).await?;
        Ok(if p.config.get("features.profiles").map(String::as_str) == Some("true") { p.name } else { "default".into() })
    }

    fn profile_to_api(p: store_profiles::Profile) -> Profile {
        Profile { config: p.config, description: p.description, devices: p.devices, name: p.name, used_by: Vec::new() }
    }

    pub async fn profiles(&self, project: &str) -> Result<Vec<Profile>> {
        let project = self.profile_project(project).await?;
        Ok(store_profiles::list(&self.global, Some(&project)).await?.into_iter().map(Self::profile_to_api).collect())
    }

    pub async fn profile(&self, project: &str, name: &str) -> Result<Profile> {
        let project = self.profile_project(project).await?;
        Ok(Self::profile_to_api(store_profiles::get(&self.global, &project, name).await?))
    }

    pub async fn create_profile(&self, project: &str, req: ProfilesPost) -> Result<()> {
        validate_name("profile", &req.name)?;
        validate_instance_config(&req.config)?;
        self.validate_devices(&req.devices).await?;
        let project = self.profile_project(project).await?;
        let p = store_profiles::Profile {
            name: req.name.clone(),
            description: req.description,
            config: req.config,
            devices: req.devices,
            ..Default::default()
        };
        let mut b = Batch::new();
        store_profiles::create(&mut b, &project, &p);
        self.global.apply(&b).await?;
        self.events.lifecycle(&project, "profile-created", profile_url(&project, &req.name), None);
        Ok(())
    }

    /// Replaces a profile's writable part. `current_devices` (what the caller read before) lets
    /// an update that leaves the devices alone skip re-validating them.
    pub async fn update_profile(
        &self,
        project: &str,
        name: &str,
        put: ProfilePut,
        current_devices: Option<&Devices>,
    ) -> Result<()> {
        validate_instance_config(&put.config)?;
        if current_devices != Some(&put.devices) {
            self.validate_devices(&put.devices).await?;
        }
        let project = self.profile_project(project).await?;
        let p = store_profiles::Profile {
            description: put.description,
            config: put.config,
            devices: put.devices,
            ..Default::default()
        };
        let mut b = Batch::new();
        store_profiles::replace(&mut b, &project, name, &p);
        self.global.apply(&b).await?;
        self.events.lifecycle(&project, "profile-updated", profile_url(&project, name), None);
        Ok(())
    }

    pub async fn rename_profile(&self, project: &str, name: &str, new_name: &str) -> Result<()> {
        if name == "default" {
            return Err(Error::Forbidden("The \"default\" profile cannot be renamed".into()));
        }
        validate_name("profile", new_name)?;
        let project = self.profile_project(project).await?;
        let mut b = Batch::new();
        store_profiles::rename(&mut b, &project, name, new_name);
        self.global.apply(&b).await?;
        self.events.lifecycle(&project, "profile-renamed", profile_url(&project, new_name), None);
        Ok(())
    }

    pub async fn delete_profile(&self, project: &str, name: &str) -> Result<()> {
        if name == "default" {
            return Err(Error::Forbidden("The \"default\" profile cannot be deleted".into()));
        }
        let project = self.profile_project(project).await?;
        let mut b = Batch::new();
        store_profiles::delete(&mut b, &project, name);
        self.global.apply(&b).await?;
        self.events.lifecycle(&project, "profile-deleted", profile_url(&project, name), None);
        Ok(())
    }
}

pub fn profile_url(project: &str, name: &str) -> String {
    if project == "default" { format!("/1.0/profiles/{name}") } else { format!("/1.0/profiles/{name}?project={project}") }
}
