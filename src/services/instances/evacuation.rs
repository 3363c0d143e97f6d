//! `lxc cluster evacuate|restore <member>` (LXD 5.0), run on the member itself: evacuating
//! marks it EVACUATED so nothing is placed or started on it, then moves each of its instances
//! to the member the scheduler picks (started there again if it ran), or only stops it when
//! its `cluster.evacuate` is `stop`. Restoring brings back the instances that left
//! (`volatile.evacuate.origin`) and starts the ones that were stopped in place.

use std::sync::Arc;

use super::lifecycle::DEFAULT_STOP_TIMEOUT;
use super::{Instances, driver_name};
use crate::operations::{NewOp, Op, OpClass};
use crate::services::{Error, Result};
use crate::store::Batch;
use crate::store::global::{instances as store, nodes, profiles};

const ORIGIN: &str = "volatile.evacuate.origin";

impl Instances {
    /// Starts evacuating (`action` "evacuate") or restoring ("restore") this member.
    pub async fn evacuation(self: &Arc<Self>, action: &str) -> Result<Arc<Op>> {
        let node = nodes::get_by_id(&self.global, self.cluster.node_id()).await?;
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
        let instances = self.clone();
        let evacuate = action == "evacuate";
        Ok(self.operations.spawn_task(
            NewOp {
                class: OpClass::Task,
                description: description.into(),
                project: String::new(),
                resources: serde_json::json!({"cluster": [format!("/1.0/cluster/members/{}", node.name)]}),
                metadata: serde_json::Value::Null,
                may_cancel: false,
            },
            async move {
                if evacuate { instances.evacuate(&node.name).await } else { instances.restore(&node.name).await }.map(|_| None)
            },
        ))
    }

    async fn evacuate(self: &Arc<Self>, me: &str) -> Result<()> {
        let rt = self.cluster.clustered()?;
        let mut b = Batch::new();
        nodes::set_state(&mut b, self.cluster.node_id(), nodes::STATE_EVACUATED);
        self.global.apply(&b).await?;
        for row in self.local_rows(None).await? {
            let all_profiles = profiles::list(&self.global, Some(&row.project)).await?;
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
            let running = self.driver.init_pid(&driver_name(&row.project, &row.name)).is_some();
            if mode == "stop" {
                if running {
                    // Keep last_state RUNNING: restore starts it again.
                    self.stop(&row, false, DEFAULT_STOP_TIMEOUT, false).await?;
                }
                continue;
            }
            let Some((target, _)) = crate::cluster::placement::choose(&rt, None).await? else {
                return Err(Error::BadRequest("No suitable cluster member could be found".into()));
            };
            self.move_to(&row.project, &row.name, &target, &[(ORIGIN, Some(me.to_string()))]).await?;
        }
        self.events.lifecycle("", "cluster-member-evacuated", format!("/1.0/cluster/members/{me}"), None);
        Ok(())
    }

    async fn restore(self: &Arc<Self>, me: &str) -> Result<()> {
        let rt = self.cluster.clustered()?;
        let mut b = Batch::new();
        nodes::set_state(&mut b, self.cluster.node_id(), nodes::STATE_CREATED);
        self.global.apply(&b).await?;
        // Instances that left: their current member moves them back here.
        for row in store::list(&self.global, None, None).await? {
            if row.config.get(ORIGIN).map(String::as_str) != Some(me) || self.is_local(&row) {
                continue;
            }
            let owner = nodes::get_by_id(&self.global, row.node_id).await?;
            let path = format!("/internal/instances/{}/move?project={}&target={me}", row.name, row.project);
            let reply = rt.send(&owner.address, "POST", &path, None, &[]).await?;
            if reply.status != 200 {
                return Err(Error::Internal(format!("moving {} back: {}", row.name, String::from_utf8_lossy(&reply.body))));
            }
        }
        for row in self.local_rows(None).await? {
            let mut b = Batch::new();
            store::set_keys(&mut b, &row.project, &row.name, &[(ORIGIN, None)]);
            self.global.apply(&b).await?;
            let running = self.driver.init_pid(&driver_name(&row.project, &row.name)).is_some();
            if !running && row.config.get("volatile.last_state.power").map(String::as_str) == Some("RUNNING") {
                self.start(&row).await?;
            }
        }
        self.events.lifecycle("", "cluster-member-restored", format!("/1.0/cluster/members/{me}"), None);
        Ok(())
    }

    /// `/internal/instances/<name>/move?target=`: moves a local instance home after an
    /// evacuation (its origin mark goes with the move).
    pub async fn move_home(&self, project: &str, name: &str, target: &str) -> Result<()> {
        self.move_to(project, name, target, &[(ORIGIN, None)]).await
    }
}
