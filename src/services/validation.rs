//! Checks shared by several resources: names, instance configuration keys, devices.

use std::collections::BTreeMap;

use super::{Error, Result};
use crate::store::global::{GlobalDb, profiles::Devices, storage_pools};

/// Checks a profile, project, pool, instance or snapshot name: not empty, no slash or
/// whitespace, not `.`/`..`.
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

/// Checks devices (of a profile or an instance): known types, disks with a path and an
/// existing pool or a source, NICs with a type or network.
pub async fn validate_devices(global: &GlobalDb, devices: &Devices) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let pools = storage_pools::names(global).await?;
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
                Some(pool) if !pools.iter().any(|p| p == pool) => {
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
