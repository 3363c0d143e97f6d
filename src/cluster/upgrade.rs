//! Rolling upgrades. Every member records the version it runs (global schema, API extension
//! count) in its `nodes` row when it starts. A member newer than some other member waits: its
//! API answers 503 until every member runs the same version, while the older members keep
//! serving and show as BLOCKED ("Needs updating to newer version"). A member older than another
//! refuses to start. No restart is needed once the last member is upgraded: it tells the others,
//! and the waiting members open their API.
//!
//! `RXD_TEST_EXTRA_API_EXTENSIONS=<n>` (tests only) makes this binary count `n` more API
//! extensions than it has, i.e. pretend to be a newer version.

use std::cmp::Ordering as CmpOrdering;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::runtime::Runtime;
use crate::store::Batch;
use crate::store::global::{self, nodes as store_nodes};

/// The global schema version this binary writes.
pub fn schema_version() -> i64 {
    global::schema_version()
}

pub use crate::api::extensions::count as api_count;

/// Compares two (schema, api) pairs: Some(order), or None when they are inconsistent (one
/// newer in schema, the other in API).
pub fn compare(a: (i64, i64), b: (i64, i64)) -> Option<CmpOrdering> {
    match (a.0.cmp(&b.0), a.1.cmp(&b.1)) {
        (x, y) if x == y => Some(x),
        (CmpOrdering::Equal, y) => Some(y),
        (x, CmpOrdering::Equal) => Some(x),
        _ => None,
    }
}

/// A heartbeat told this member the highest version in the cluster.
pub fn observe(rt: &Runtime, schema: i64, api: i64) {
    if rt.waiting_for_upgrade.load(Ordering::SeqCst)
        && compare((schema, api), (schema_version(), api_count())) != Some(CmpOrdering::Greater)
    {
        rt.upgrade_wake.notify_one();
    }
}

/// Tells every other member that this member's version changed (their gates re-check).
async fn notify_others(rt: &Runtime) {
    for m in rt.members().into_iter().filter(|m| m.id != rt.id) {
        let Ok(conn) = rt.connect(&m.address) else { continue };
        // A member that misses this re-checks on its own every few seconds.
        let _ =
            tokio::time::timeout(Duration::from_secs(2), conn.request("POST", "/internal/cluster/upgraded", None, None)).await;
    }
}

/// Records this member's version, then waits while it is newer than another member. A member
/// older than another shuts down with an error.
pub fn spawn_gate(rt: Arc<Runtime>) {
    tokio::spawn(async move {
        let own = (schema_version(), api_count());
        let mut recorded = false;
        loop {
            if rt.is_stopped() {
                return;
            }
            if !recorded {
                let mut b = Batch::new();
                store_nodes::set_version(&mut b, rt.id as i64, own.0, own.1);
                recorded = rt.env.global.apply(&b).await.is_ok();
                if recorded {
                    notify_others(&rt).await;
                }
            }
            if recorded && let Ok(nodes) = store_nodes::list(&rt.env.global).await {
                let others: Vec<_> =
                    nodes.iter().filter(|n| n.id as u64 != rt.id && n.state == store_nodes::STATE_CREATED).collect();
                if others.iter().any(|n| compare((n.schema, n.api_extensions), own) == Some(CmpOrdering::Greater)) {
                    tracing::error!("this node's version is behind, please upgrade");
                    rt.env.shutdown.fail("this node's version is behind, please upgrade");
                    return;
                }
                let newer = others.iter().any(|n| compare(own, (n.schema, n.api_extensions)) != Some(CmpOrdering::Equal));
                rt.waiting_for_upgrade.store(newer, Ordering::SeqCst);
                if !newer {
                    tracing::debug!("every member runs the same version");
                    return;
                }
                tracing::warn!("waiting for the other cluster members to be upgraded");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(if recorded { 10 } else { 1 })) => {}
                _ = rt.upgrade_wake.notified() => {}
            }
        }
    });
}
