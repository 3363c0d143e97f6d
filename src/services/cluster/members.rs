//! Cluster members as the API shows them (`GET /1.0/cluster/members[/<name>]`: roles, state and
//! message from heartbeats and versions) and the changes a user makes to one (PUT/PATCH:
//! description, config, failure domain, stored roles, groups, guarded by the ETag read; POST:
//! rename).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::{ClusterMember, ClusterMemberPut, etag_of};
use crate::cluster::rebalance::{heartbeat_fresh, offline_threshold};
use crate::cluster::{Cluster, ROLE_STANDBY, ROLE_VOTER};
use crate::events::EventHub;
use crate::services::{Error, Result};
use crate::store::Batch;
use crate::store::global::{GlobalDb, nodes as store_nodes};
use crate::util::time;

fn architecture_name(id: i64) -> &'static str {
    match id {
        1 => "i686",
        2 => "x86_64",
        3 => "armv7l",
        4 => "aarch64",
        6 => "ppc64le",
        7 => "s390x",
        _ => std::env::consts::ARCH,
    }
}

fn validate_config(config: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in config {
        if k.starts_with("user.") {
            continue;
        }
        if k != "scheduler.instance" {
            return Err(Error::BadRequest(format!("Invalid cluster configuration key \"{k}\"")));
        }
        if !["all", "group", "manual", ""].contains(&v.as_str()) {
            return Err(Error::BadRequest(format!("Invalid cluster configuration key \"{k}\" value")));
        }
    }
    Ok(())
}

/// The ETag of a member: its writable part.
pub fn etag(m: &ClusterMember) -> String {
    etag_of(&m.writable)
}

pub struct ClusterMembers {
    global: GlobalDb,
    cluster: Arc<Cluster>,
    events: Arc<EventHub>,
}

impl ClusterMembers {
    pub fn new(global: GlobalDb, cluster: Arc<Cluster>, events: Arc<EventHub>) -> ClusterMembers {
        ClusterMembers { global, cluster, events }
    }

    fn render(&self, view: &store_nodes::MembersView) -> Result<Vec<ClusterMember>> {
        let rt = self.cluster.runtime().ok_or_else(|| Error::Internal("LXD server isn't part of a cluster".into()))?;
        let threshold = offline_threshold(&view.config);
        let (voters, standbys, leader): (Vec<u64>, Vec<u64>, u64) = match rt.raft() {
            Some(r) => {
                let st = r.status();
                (st.voters, st.learners, st.leader)
            }
            None => {
                let known = rt.members();
                let pick = |role| known.iter().filter(|m| m.role == role).map(|m| m.id).collect::<Vec<_>>();
                (pick(ROLE_VOTER), pick(ROLE_STANDBY), rt.leader_id())
            }
        };
        let newest = view.nodes.iter().map(|n| (n.schema, n.api_extensions)).max().unwrap_or_default();
        let now = time::now_nanos();
        let mut out = Vec::new();
        for n in view.nodes.iter().filter(|n| n.state != store_nodes::STATE_PENDING) {
            let id = n.id as u64;
            let extra = view.extras.get(&n.id).cloned().unwrap_or_default();
            let mut roles = extra.roles.clone();
            if id == leader {
                roles.push("database-leader".to_string());
            }
            if voters.contains(&id) {
                roles.push("database".to_string());
            } else if standbys.contains(&id) {
                roles.push("database-standby".to_string());
            }
            let offline = !heartbeat_fresh(n, threshold, now);
            let (mut status, mut message) = ("Online", "Fully operational".to_string());
            if n.state == store_nodes::STATE_EVACUATED {
                (status, message) = ("Evacuated", "Unavailable due to maintenance".into());
            } else if offline {
                status = "Offline";
            } else if crate::cluster::upgrade::compare(newest, (n.schema, n.api_extensions)) == Some(std::cmp::Ordering::Greater)
            {
                (status, message) = ("Blocked", "Needs updating to newer version".into());
            }
            if offline {
                let last = time::parse_rfc3339(&n.heartbeat).unwrap_or(0);
                let elapsed = std::time::Duration::from_nanos((now - last).max(0) as u64);
                message = format!("No heartbeat for {} ({})", time::go_duration(elapsed), time::go_string(last));
            }
            out.push(ClusterMember {
                database: voters.contains(&id) || standbys.contains(&id),
                writable: ClusterMemberPut {
                    roles,
                    failure_domain: n.failure_domain.clone(),
                    description: n.description.clone(),
                    config: extra.config,
                    groups: if extra.groups.is_empty() { vec!["default".into()] } else { extra.groups },
                },
                server_name: n.name.clone(),
                url: format!("https://{}", n.address),
                status: status.into(),
                message,
                architecture: architecture_name(n.arch).into(),
            });
        }
        Ok(out)
    }

    /// Every admitted member, in id order.
    pub async fn list(&self) -> Result<Vec<ClusterMember>> {
        self.cluster.runtime().ok_or_else(|| Error::Internal("LXD server isn't part of a cluster".into()))?;
        let view = store_nodes::members_view(&self.global, None).await?;
        self.render(&view)
    }

    /// One member with its ETag.
    pub async fn get(&self, name: &str) -> Result<(ClusterMember, String)> {
        let m = self.list().await?.into_iter().find(|m| m.server_name == name).ok_or_else(|| not_found(name))?;
        let etag = etag(&m);
        Ok((m, etag))
    }

    /// PUT (or, with `merge`, PATCH) of a member's writable part.
    pub async fn update(&self, name: &str, mut put: ClusterMemberPut, merge: bool, if_match: Option<&str>) -> Result<()> {
        self.cluster.runtime().ok_or_else(|| Error::Internal("LXD server isn't part of a cluster".into()))?;
        let view = store_nodes::members_view(&self.global, Some(name)).await?;
        let current = self.render(&view)?.into_iter().find(|m| m.server_name == name).ok_or_else(|| not_found(name))?;
        if let Some(given) = if_match {
            let current_etag = etag(&current);
            if current_etag != given {
                return Err(Error::etag_mismatch(&current_etag, given));
            }
        }
        let has_db = current.writable.roles.iter().any(|r| r == "database");
        let wants_db = put.roles.iter().any(|r| r == "database");
        if has_db && !wants_db {
            return Err(Error::BadRequest("The 'database' role cannot be dropped at this time".into()));
        }
        if !has_db && wants_db {
            return Err(Error::BadRequest("The 'database' role cannot be added at this time".into()));
        }
        if merge {
            for (k, v) in &current.writable.config {
                put.config.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        // An empty value unsets the key (what `lxc cluster unset` sends).
        put.config.retain(|_, v| !v.is_empty());
        if put.groups.is_empty() {
            return Err(Error::BadRequest("Cluster members need to belong to at least one group".into()));
        }
        validate_config(&put.config)?;
        let mut stored_roles = Vec::new();
        for r in &put.roles {
            if ["database", "database-standby", "database-leader"].contains(&r.as_str()) {
                continue;
            }
            match store_nodes::STORED_ROLES.iter().find(|(_, n)| n == r) {
                Some((id, _)) => stored_roles.push(*id),
                None => return Err(Error::BadRequest(format!("Invalid cluster role \"{r}\""))),
            }
        }
        if put.failure_domain.is_empty() {
            return Err(Error::BadRequest("Failure domain name can't be empty".into()));
        }
        let id = view.nodes.iter().find(|n| n.name == name).map(|n| n.id).ok_or_else(|| not_found(name))?;
        let mut b = Batch::new();
        if let (Some(_), Some(version)) = (if_match, &view.version) {
            b.require_unchanged(version, "ETag doesn't match: the member changed meanwhile");
        }
        store_nodes::update(
            &mut b,
            id,
            &store_nodes::MemberUpdate {
                description: &put.description,
                config: &put.config,
                roles: &stored_roles,
                failure_domain: &put.failure_domain,
                groups: &put.groups,
            },
        );
        self.global.apply(&b).await?;
        self.events.lifecycle("default", "cluster-member-updated", format!("/1.0/cluster/members/{name}"), None);
        Ok(())
    }

    /// Renames a member (its row and its server certificate's name).
    pub async fn rename(&self, old: &str, new: &str) -> Result<()> {
        if new.is_empty() {
            return Err(Error::BadRequest("No name provided".into()));
        }
        if new.starts_with('@') {
            return Err(Error::BadRequest("ServerName may not start with \"@\"".into()));
        }
        let mut b = Batch::new();
        store_nodes::rename(&mut b, old, new);
        self.global.apply(&b).await?;
        if let Some(rt) = self.cluster.runtime() {
            rt.renamed(old, new);
        }
        self.events.lifecycle("default", "cluster-member-renamed", format!("/1.0/cluster/members/{new}"), None);
        Ok(())
    }
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("Member '{name}' not found"))
}
