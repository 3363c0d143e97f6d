//! Cluster groups (`/1.0/cluster/groups`): create, rename, update, delete, with LXD's rules
//! (group `default` always exists; every member belongs to at least one group).

use crate::api::{ClusterGroup, ClusterGroupPut};
use crate::daemon::{Daemon, Error, Result};
use crate::store::Batch;
use crate::store::global::cluster_groups::{self as store, Group};

fn clustered(d: &Daemon) -> Result<()> {
    match d.cluster_runtime() {
        Some(_) => Ok(()),
        None => Err(Error::BadRequest("This server is not clustered".into())),
    }
}

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::BadRequest("No name provided".into()));
    }
    if name.contains(['/', ' ', '_', '\'', '"']) || ["*", ".", ".."].contains(&name) {
        return Err(Error::BadRequest(format!("Invalid cluster group name \"{name}\"")));
    }
    Ok(())
}

fn to_api(g: Group) -> ClusterGroup {
    ClusterGroup { name: g.name, description: g.description, members: g.members }
}

pub async fn list(d: &Daemon) -> Result<Vec<ClusterGroup>> {
    clustered(d)?;
    Ok(store::list(&d.global).await?.into_iter().map(to_api).collect())
}

pub async fn get(d: &Daemon, name: &str) -> Result<ClusterGroup> {
    list(d)
        .await?
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| Error::NotFound(format!("Cluster group \"{name}\" not found")))
}

pub async fn create(d: &Daemon, g: ClusterGroup) -> Result<()> {
    clustered(d)?;
    validate_name(&g.name)?;
    let mut b = Batch::new();
    store::create(&mut b, &Group { name: g.name.clone(), description: g.description, members: g.members });
    d.global.apply(&b).await?;
    d.events.lifecycle("default", "cluster-group-created", format!("/1.0/cluster/groups/{}", g.name), None);
    Ok(())
}

/// PUT replaces; PATCH refuses to leave a member without any group.
pub async fn update(d: &Daemon, name: &str, put: ClusterGroupPut, patch: bool) -> Result<()> {
    let current = get(d, name).await?;
    if patch {
        let groups = list(d).await?;
        for m in current.members.iter().filter(|m| !put.members.contains(m)) {
            if !groups.iter().any(|g| g.name != name && g.members.contains(m)) {
                return Err(Error::BadRequest(format!(
                    "Cannot remove {m} from group as member needs to belong to at least one group"
                )));
            }
        }
    }
    let mut b = Batch::new();
    store::update(&mut b, &Group { name: name.to_string(), description: put.description, members: put.members });
    d.global.apply(&b).await?;
    d.events.lifecycle("default", "cluster-group-updated", format!("/1.0/cluster/groups/{name}"), None);
    Ok(())
}

pub async fn rename(d: &Daemon, name: &str, new: &str) -> Result<()> {
    get(d, name).await?;
    if name == "default" {
        return Err(Error::Forbidden("The \"default\" group cannot be renamed".into()));
    }
    validate_name(new)?;
    let mut b = Batch::new();
    store::rename(&mut b, name, new);
    d.global.apply(&b).await?;
    d.events.lifecycle("default", "cluster-group-renamed", format!("/1.0/cluster/groups/{new}"), None);
    Ok(())
}

pub async fn delete(d: &Daemon, name: &str) -> Result<()> {
    if name == "default" {
        return Err(Error::Forbidden("The 'default' cluster group cannot be deleted".into()));
    }
    get(d, name).await?;
    let mut b = Batch::new();
    store::delete(&mut b, name);
    d.global.apply(&b).await?;
    d.events.lifecycle("default", "cluster-group-deleted", format!("/1.0/cluster/groups/{name}"), None);
    Ok(())
}
