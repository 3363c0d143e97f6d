//! Operations as an API resource across the cluster: this member's own (the registry in
//! `crate::operations`) listed together with every other member's; an operation that lives
//! elsewhere is found on its member.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Error, Result};
use crate::api::Operation;
use crate::cluster::{Cluster, Forwarded};
use crate::operations::{CancelError, Operations};

/// Which operations a listing shows.
pub struct OperationScope {
    pub project: String,
    pub all_projects: bool,
    pub recursion: i64,
    /// Another member asking: only this member's own.
    pub only_local: bool,
    /// The request as received (path and query), asked of the other members.
    pub uri: String,
}

pub struct OperationsApi {
    operations: Arc<Operations>,
    cluster: Arc<Cluster>,
}

impl OperationsApi {
    pub fn new(operations: Arc<Operations>, cluster: Arc<Cluster>) -> OperationsApi {
        OperationsApi { operations, cluster }
    }

    /// Operations grouped by lower-case status, as URLs or (with recursion) objects.
    pub async fn list(&self, scope: &OperationScope) -> BTreeMap<String, Vec<serde_json::Value>> {
        let mut groups: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for op in self.operations.list() {
            if !scope.all_projects && !op.project.is_empty() && op.project != scope.project {
                continue;
            }
            let rendered = op.render();
            let key = rendered.status.to_lowercase();
            let value = if scope.recursion > 0 { serde_json::to_value(&rendered).unwrap_or_default() } else { op.url().into() };
            groups.entry(key).or_default().push(value);
        }
        if !scope.only_local {
            for (status, item) in self.elsewhere(&scope.uri).await {
                groups.entry(status).or_default().push(item);
            }
        }
        groups
    }

    /// The operations of the other online members (as URLs or objects), for merging.
    async fn elsewhere(&self, uri: &str) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        let Some(rt) = self.cluster.runtime() else { return out };
        let Ok(others) = rt.online_others().await else { return out };
        for peer in others {
            if let Ok(Forwarded { status: 200, body, .. }) = rt.send(&peer.address, "GET", uri, None, &[]).await
                && let Ok(env) = serde_json::from_slice::<crate::api::Envelope>(&body)
                && let serde_json::Value::Object(groups) = env.metadata
            {
                for (status, items) in groups {
                    if let serde_json::Value::Array(items) = items {
                        out.extend(items.into_iter().map(|i| (status.clone(), i)));
                    }
                }
            }
        }
        out
    }

    /// Whether this member holds operation `id`.
    pub fn is_here(&self, id: &str) -> bool {
        self.operations.get(id).is_some()
    }

    pub fn get(&self, id: &str) -> Result<Operation> {
        self.operations.get(id).map(|op| op.render()).ok_or_else(not_found)
    }

    pub fn cancel(&self, id: &str) -> Result<()> {
        match self.operations.cancel(id) {
            Ok(()) => Ok(()),
            Err(CancelError::NotFound) => Err(not_found()),
            Err(e) => Err(Error::BadRequest(e.to_string())),
        }
    }

    /// Waits until the operation is final or `timeout` passes (None: forever).
    pub async fn wait(&self, id: &str, timeout: Option<Duration>) -> Result<Operation> {
        self.operations.wait(id, timeout).await.ok_or_else(not_found)
    }
}

fn not_found() -> Error {
    Error::NotFound("Operation not found".into())
}
