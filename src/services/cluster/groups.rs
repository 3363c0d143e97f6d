//! Cluster groups (`/1.0/cluster/groups`): create, rename, update (guarded by the ETag read),
//! delete, with LXD's rules (group `default` always exists; every member belongs to at least
//! one group).

use std::sync::Arc;

use crate::api::{ClusterGroup, ClusterGroupPut, etag_of};
use crate::cluster::Cluster;
use crate::events::EventHub;
use crate::services::{Error, Result};
use crate::store::Batch;
use crate::store::global::GlobalDb;
use crate::store::global::cluster_groups::{self as store, Group};

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

fn etag(g: &ClusterGroup) -> String {
    etag_of(&(&g.description, &g.members))
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("Cluster group \"{name}\" not found"))
}

pub struct ClusterGroups {
    global: GlobalDb,
    cluster: Arc<Cluster>,
    events: Arc<EventHub>,
}

impl ClusterGroups {
    pub fn new(global: GlobalDb, cluster: Arc<Cluster>, events: Arc<EventHub>) -> ClusterGroups {
        ClusterGroups { global, cluster, events }
    }

    pub async fn list(&self) -> Result<Vec<ClusterGroup>> {
        self.cluster.clustered()?;
        Ok(store::list(&self.global).await?.into_iter().map(to_api).collect())
    }

    /// A group with its ETag.
    pub async fn get(&self, name: &str) -> Result<(ClusterGroup, String)> {
        let g = self.list().await?.into_iter().find(|g| g.name == name).ok_or_else(|| not_found(name))?;
        let etag = etag(&g);
        Ok((g, etag))
    }

    pub async fn create(&self, g: ClusterGroup) -> Result<()> {
        self.cluster.clustered()?;
        validate_name(&g.name)?;
        let mut b = Batch::new();
        store::create(&mut b, &Group { name: g.name.clone(), description: g.description, members: g.members });
        self.global.apply(&b).await?;
        self.events.lifecycle("default", "cluster-group-created", format!("/1.0/cluster/groups/{}", g.name), None);
        Ok(())
    }

    /// PUT replaces; PATCH refuses to leave a member without any group.
    pub async fn update(&self, name: &str, put: ClusterGroupPut, patch: bool, if_match: Option<&str>) -> Result<()> {
        self.cluster.clustered()?;
        let (all, version) = store::list_versioned(&self.global, name).await?;
        let groups: Vec<ClusterGroup> = all.into_iter().map(to_api).collect();
        let current = groups.iter().find(|g| g.name == name).ok_or_else(|| not_found(name))?;
        if let Some(given) = if_match {
            let current_etag = etag(current);
            if current_etag != given {
                return Err(Error::etag_mismatch(&current_etag, given));
            }
        }
        if patch {
            for m in current.members.iter().filter(|m| !put.members.contains(m)) {
                if !groups.iter().any(|g| g.name != name && g.members.contains(m)) {
                    return Err(Error::BadRequest(format!(
                        "Cannot remove {m} from group as member needs to belong to at least one group"
                    )));
                }
            }
        }
        let mut b = Batch::new();
        if if_match.is_some() {
            b.require_unchanged(&version, "ETag doesn't match: the cluster group changed meanwhile");
        }
        store::update(&mut b, &Group { name: name.to_string(), description: put.description, members: put.members });
        self.global.apply(&b).await?;
        self.events.lifecycle("default", "cluster-group-updated", format!("/1.0/cluster/groups/{name}"), None);
        Ok(())
    }

    pub async fn rename(&self, name: &str, new: &str) -> Result<()> {
        self.get(name).await?;
        if name == "default" {
            return Err(Error::Forbidden("The \"default\" group cannot be renamed".into()));
        }
        validate_name(new)?;
        let mut b = Batch::new();
        store::rename(&mut b, name, new);
        self.global.apply(&b).await?;
        self.events.lifecycle("default", "cluster-group-renamed", format!("/1.0/cluster/groups/{new}"), None);
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        if name == "default" {
            return Err(Error::Forbidden("The 'default' cluster group cannot be deleted".into()));
        }
        self.get(name).await?;
        let mut b = Batch::new();
        store::delete(&mut b, name);
        self.global.apply(&b).await?;
        self.events.lifecycle("default", "cluster-group-deleted", format!("/1.0/cluster/groups/{name}"), None);
        Ok(())
    }
}
