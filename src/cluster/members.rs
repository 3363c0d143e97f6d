//! Cluster members as the API shows them (`GET /1.0/cluster/members[/<name>]`: roles, state and
//! message from heartbeats and versions) and the changes a user makes to one (PUT/PATCH:
//! description, config, failure domain, stored roles, groups; POST: rename).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::rebalance::{heartbeat_fresh, offline_threshold};
use super::{ROLE_STANDBY, ROLE_VOTER};
use crate::api::{ClusterMember, ClusterMemberPut};
use crate::daemon::{Daemon, Error, Result};
use crate::store::Batch;
use crate::store::global::{self, nodes as store_nodes};
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

/// Every admitted member, in id order.
pub async fn list(d: &Daemon) -> Result<Vec<ClusterMember>> {
    let rt = d.cluster_runtime().ok_or_else(|| Error::Internal("LXD server isn't part of a cluster".into()))?;
    let nodes = global::nodes::list(&d.global).await?;
    let extras = store_nodes::extras(&d.global).await?;
    let cfg = global::config::get_all(&d.global).await?;
    let threshold = offline_threshold(&cfg);
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
    let newest = nodes.iter().map(|n| (n.schema, n.api_extensions)).max().unwrap_or_default();
    let now = time::now_nanos();
    let mut out = Vec::new();
    for n in nodes.into_iter().filter(|n| n.state != store_nodes::STATE_PENDING) {
        let id = n.id as u64;
        let extra = extras.get(&n.id).cloned().unwrap_or_default();
        let mut roles = extra.roles.clone();
        if id == leader {
            roles.push("database-leader".to_string());
        }
        if voters.contains(&id) {
            roles.push("database".to_string());
        } else if standbys.contains(&id) {
            roles.push("database-standby".to_string());
        }
        let offline = !heartbeat_fresh(&n, threshold, now);
        let (mut status, mut message) = ("Online", "Fully operational".to_string());
        if n.state == store_nodes::STATE_EVACUATED {
            (status, message) = ("Evacuated", "Unavailable due to maintenance".into());
        } else if offline {
            status = "Offline";
        } else if super::upgrade::compare(newest, (n.schema, n.api_extensions)) == Some(std::cmp::Ordering::Greater) {
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
                failure_domain: n.failure_domain,
                description: n.description,
                config: extra.config,
                groups: if extra.groups.is_empty() { vec!["default".into()] } else { extra.groups },
            },
            server_name: n.name,
            url: format!("https://{}", n.address),
            status: status.into(),
            message,
            architecture: architecture_name(n.arch).into(),
        });
    }
    Ok(out)
}

pub async fn get(d: &Daemon, name: &str) -> Result<ClusterMember> {
    list(d)
        .await?
        .into_iter()
        .find(|m| m.server_name == name)
        .ok_or_else(|| Error::NotFound(format!("Member '{name}' not found")))
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

/// PUT (or, with `merge`, PATCH) of a member's writable part.
pub async fn update(d: &Daemon, name: &str, mut put: ClusterMemberPut, merge: bool) -> Result<()> {
    let current = get(d, name).await?;
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
    let id = global::nodes::list(&d.global)
        .await?
        .into_iter()
        .find(|n| n.name == name)
        .map(|n| n.id)
        .ok_or_else(|| Error::NotFound(format!("Member '{name}' not found")))?;
    let mut b = Batch::new();
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
    d.global.apply(&b).await?;
    d.events.lifecycle("default", "cluster-member-updated", format!("/1.0/cluster/members/{name}"), None);
    Ok(())
}

/// Renames a member (its row and its server certificate's name).
pub async fn rename(d: &Arc<Daemon>, old: &str, new: &str) -> Result<()> {
    if new.is_empty() {
        return Err(Error::BadRequest("No name provided".into()));
    }
    if new.starts_with('@') {
        return Err(Error::BadRequest("ServerName may not start with \"@\"".into()));
    }
    let mut b = Batch::new();
    store_nodes::rename(&mut b, old, new);
    b.push("UPDATE certificates SET name = ? WHERE type = 2 AND name = ?", vec![new.into(), old.into()]);
    d.global.apply(&b).await?;
    d.invalidate_config();
    if let Some(rt) = d.cluster_runtime() {
        let renamed: Vec<_> = rt
            .members()
            .into_iter()
            .map(|mut m| {
                if m.name == old {
                    m.name = new.to_string();
                }
                m
            })
            .collect();
        if renamed.iter().any(|m| m.id == rt.id && m.name == new) {
            d.events.set_location(new);
        }
        rt.set_members(renamed);
        rt.heartbeat_now.notify_one();
    }
    d.events.lifecycle("default", "cluster-member-renamed", format!("/1.0/cluster/members/{new}"), None);
    Ok(())
}
