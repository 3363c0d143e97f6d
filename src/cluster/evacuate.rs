//! `lxc cluster evacuate|restore <member>` (LXD 5.0): evacuating marks the member EVACUATED so
//! nothing is placed or started on it, then moves each of its instances to the member the
//! scheduler picks (started there again if it ran), or only stops it when its
//! `cluster.evacuate` is `stop`. Restoring brings back the instances that left
//! (`volatile.evacuate.origin`) and starts the ones that were stopped in place.

use std::sync::Arc;

use crate::daemon::instances::{DEFAULT_STOP_TIMEOUT, driver_name};
use crate::daemon::operations::{NewOp, Op, OpClass};
use crate::daemon::{Daemon, Error, Result};
use crate::store::Batch;
use crate::store::global::{instances as store, nodes, profiles};

const ORIGIN: &str = "volatile.evacuate.origin";

pub async fn start(d: &Arc<Daemon>, action: &str) -> Result<Arc<Op>> {
    let node = nodes::get_by_id(&d.global, d.node_id()).await?;
    let description = match action {
        "evacuate" if node.state == nodes::STATE_EVACUATED => {
            return Err(Error::BadRequest("Cluster member is already evacuated".into()));
        }
        "evacuate" => "Evacuating cluster member",
        "restore" if node.state != nodes::STATE_EVACUATED => {
            return Err(Error::BadRequest("Cluster member isn't evacuated".into()));
        }
        "restore" => "Restoring cluster member",
        other => return Err(Error::BadRequest(format!("Unknown cluster member state action \"{other}\""))),
    };
    let dd = d.clone();
    let evacuate = action == "evacuate";
    Ok(d.operations.spawn_task(
        NewOp {
            class: OpClass::Task,
            description: description.into(),
            project: String::new(),
            resources: serde_json::json!({"cluster": [format!("/1.0/cluster/members/{}", node.name)]}),
            metadata: serde_json::Value::Null,
            may_cancel: false,
        },
        async move {
            let r = if evacuate { evacuate_here(&dd, &node.name).await } else { restore_here(&dd, &node.name).await };
            r.map(|_| None).map_err(|e| e.to_string())
        },
    ))
}

async fn evacuate_here(d: &Arc<Daemon>, me: &str) -> Result<()> {
    let mut b = Batch::new();
    nodes::set_state(&mut b, d.node_id(), nodes::STATE_EVACUATED);
    d.global.apply(&b).await?;
    for row in d.local_instances(None).await? {
        let all_profiles = profiles::list(&d.global, Some(&row.project)).await?;
        let mode = row
            .config
            .get("cluster.evacuate")
            .cloned()
            .or_else(|| {
                row.profiles.iter().rev().find_map(|p| {
                    all_profiles.iter().find(|x| &x.name == p).and_then(|x| x.config.get("cluster.evacuate").cloned())
                })
            })
            .unwrap_or_else(|| "auto".into());
        let running = d.driver.init_pid(&driver_name(&row.project, &row.name)).is_some();
        if mode == "stop" {
            if running {
                // Keep last_state RUNNING: restore starts it again.
                d.stop_instance(&row, false, DEFAULT_STOP_TIMEOUT, false).await?;
            }
            continue;
        }
        let Some((target, _)) = super::placement::choose(d, None).await? else {
            return Err(Error::BadRequest("No suitable cluster member could be found".into()));
        };
        super::moving::move_instance(d, &row.project, &row.name, &target, &[(ORIGIN, Some(me.to_string()))]).await?;
    }
    d.events.lifecycle("", "cluster-member-evacuated", format!("/1.0/cluster/members/{me}"), None);
    Ok(())
}

async fn restore_here(d: &Arc<Daemon>, me: &str) -> Result<()> {
    let mut b = Batch::new();
    nodes::set_state(&mut b, d.node_id(), nodes::STATE_CREATED);
    d.global.apply(&b).await?;
    // Instances that left: their current member moves them back here.
    for row in store::list(&d.global, None, None).await? {
        if row.config.get(ORIGIN).map(String::as_str) != Some(me) || d.is_local(&row) {
            continue;
        }
        let owner = nodes::get_by_id(&d.global, row.node_id).await?;
        let path = format!("/internal/instances/{}/move?project={}&target={me}", row.name, row.project);
        let (status, _, body) = super::forward::send(d, &owner.address, "POST", &path, None, &[]).await?;
        if status != 200 {
            return Err(Error::Internal(format!("moving {} back: {}", row.name, String::from_utf8_lossy(&body))));
        }
    }
    for row in d.local_instances(None).await? {
        let mut b = Batch::new();
        store::set_keys(&mut b, &row.project, &row.name, &[(ORIGIN, None)]);
        d.global.apply(&b).await?;
        let running = d.driver.init_pid(&driver_name(&row.project, &row.name)).is_some();
        if !running && row.config.get("volatile.last_state.power").map(String::as_str) == Some("RUNNING") {
            d.start_instance(&row).await?;
        }
    }
    d.events.lifecycle("", "cluster-member-restored", format!("/1.0/cluster/members/{me}"), None);
    Ok(())
}
