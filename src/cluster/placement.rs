//! Where a new instance goes (LXD 5.0's scheduler): `?target=<member>` or `@<group>`, else the
//! online, non-evacuated member with the fewest instances whose `scheduler.instance` is not
//! `manual` (`group` members only take instances aimed at one of their groups); ties go to the
//! lowest member id.

use super::rebalance::{heartbeat_fresh, offline_threshold};
use super::runtime::Runtime;
use super::{Error, Result};
use crate::store::global::{self, instances, nodes};
use crate::util::time;

/// The chosen member: None for this member, else (name, address).
pub async fn choose(rt: &Runtime, target: Option<&str>) -> Result<Option<(String, String)>> {
    let db = &rt.env.global;
    let all = nodes::list(db).await?;
    let self_id = rt.id as i64;
    let found = |n: &nodes::Node| if n.id == self_id { None } else { Some((n.name.clone(), n.address.clone())) };
    let group = match target {
        Some(t) if t.starts_with('@') => Some(t.trim_start_matches('@').to_string()),
        Some(name) => {
            let node = all
                .iter()
                .find(|n| n.name == name && n.state != nodes::STATE_PENDING)
                .ok_or_else(|| Error::NotFound("Cluster member not found".into()))?;
            if node.state == nodes::STATE_EVACUATED {
                return Err(Error::BadRequest(format!("Cluster member \"{name}\" is evacuated")));
            }
            return Ok(found(node));
        }
        None => None,
    };
    let extras = nodes::extras(db).await?;
    if let Some(g) = &group
        && !global::cluster_groups::list(db).await?.iter().any(|x| &x.name == g)
    {
        return Err(Error::BadRequest(format!("Cluster group \"{g}\" doesn't exist")));
    }
    let cfg = global::config::get_all(db).await?;
    let threshold = offline_threshold(&cfg);
    let now = time::now_nanos();
    let counts = instances::count_by_node(db).await?;
    let best = all
        .iter()
        .filter(|n| n.state == nodes::STATE_CREATED)
        .filter(|n| n.id == self_id || heartbeat_fresh(n, threshold, now))
        .filter(|n| {
            let e = extras.get(&n.id).cloned().unwrap_or_default();
            let scheduler = e.config.get("scheduler.instance").map(String::as_str).unwrap_or("all");
            match &group {
                Some(g) => scheduler != "manual" && e.groups.contains(g),
                None => scheduler == "all" || scheduler.is_empty(),
            }
        })
        .min_by_key(|n| (counts.get(&n.id).copied().unwrap_or(0), n.id))
        .ok_or_else(|| Error::BadRequest("No suitable cluster member could be found".into()))?;
    Ok(found(best))
}
