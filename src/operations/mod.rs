//! Operations: the in-memory registry of this member's long-running actions and tokens. Every
//! state change is published as an `operation` event, which is how clients learn an operation
//! finished; finished operations are kept a few seconds so late readers still see the result.
//! A handle every service holds; the operations API across members is `services::operations`.
//!
//! May call: events, api, util.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::api::{OpStatus, Operation};
use crate::events::{EventHub, TYPE_OPERATION};
use crate::util::time;

/// How long a finished operation stays visible.
const RETENTION: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpClass {
    Task,
    Websocket,
    Token,
}

impl OpClass {
    pub fn name(self) -> &'static str {
        match self {
            OpClass::Task => "task",
            OpClass::Websocket => "websocket",
            OpClass::Token => "token",
        }
    }
}

#[derive(Debug)]
struct OpState {
    status: OpStatus,
    metadata: serde_json::Value,
    err: String,
    updated_at: i64,
}

#[derive(Debug)]
pub struct Op {
    pub id: String,
    pub class: OpClass,
    pub description: String,
    pub project: String,
    pub resources: serde_json::Value,
    pub may_cancel: bool,
    created_at: i64,
    location: String,
    state: Mutex<OpState>,
    done: watch::Sender<bool>,
}

impl Op {
    pub fn status(&self) -> OpStatus {
        self.state.lock().map(|s| s.status).unwrap_or(OpStatus::Failure)
    }

    pub fn metadata(&self) -> serde_json::Value {
        self.state.lock().map(|s| s.metadata.clone()).unwrap_or_default()
    }

    pub fn render(&self) -> Operation {
        let (status, metadata, err, updated) = match self.state.lock() {
            Ok(s) => (s.status, s.metadata.clone(), s.err.clone(), s.updated_at),
            Err(_) => (OpStatus::Failure, serde_json::Value::Null, "poisoned".into(), self.created_at),
        };
        Operation {
            id: self.id.clone(),
            class: self.class.name().into(),
            description: self.description.clone(),
            created_at: time::rfc3339(self.created_at),
            updated_at: time::rfc3339(updated),
            status: status.name().into(),
            status_code: status.code(),
            resources: self.resources.clone(),
            metadata,
            may_cancel: self.may_cancel && !status.is_final(),
            err,
            location: self.location.clone(),
        }
    }

    pub fn url(&self) -> String {
        format!("/1.0/operations/{}", self.id)
    }
}

/// How an operation ended: new metadata on success, or the failure as the operation's `err`
/// reports it (the wire form of the error that ended it).
pub type Outcome = Result<Option<serde_json::Value>, Failure>;

/// The text of the error that failed an operation, as LXD's `err` field carries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

impl Failure {
    pub fn of(e: impl std::fmt::Display) -> Failure {
        Failure(e.to_string())
    }
}

#[derive(Debug)]
pub struct Operations {
    ops: Mutex<HashMap<String, Arc<Op>>>,
    events: Arc<EventHub>,
}

pub struct NewOp {
    pub class: OpClass,
    pub description: String,
    pub project: String,
    pub resources: serde_json::Value,
    pub metadata: serde_json::Value,
    pub may_cancel: bool,
}

impl Operations {
    pub fn new(events: Arc<EventHub>) -> Arc<Operations> {
        Arc::new(Operations { ops: Mutex::new(HashMap::new()), events })
    }

    fn publish(&self, op: &Op) {
        let rendered = op.render();
        self.events.send(TYPE_OPERATION, &op.project, serde_json::to_value(rendered).unwrap_or_default());
    }

    /// Registers an operation in the Running state.
    pub fn start(self: &Arc<Self>, new: NewOp) -> Arc<Op> {
        let now = time::now_nanos();
        let (done, _) = watch::channel(false);
        let op = Arc::new(Op {
            id: uuid::Uuid::new_v4().to_string(),
            class: new.class,
            description: new.description,
            project: new.project,
            resources: new.resources,
            may_cancel: new.may_cancel,
            created_at: now,
            location: self.events.location(),
            state: Mutex::new(OpState { status: OpStatus::Running, metadata: new.metadata, err: String::new(), updated_at: now }),
            done,
        });
        if let Ok(mut ops) = self.ops.lock() {
            ops.insert(op.id.clone(), op.clone());
        }
        self.publish(&op);
        op
    }

    /// Registers a Running task and runs `work` in the background; its result completes it.
    pub fn spawn_task<F, E>(self: &Arc<Self>, new: NewOp, work: F) -> Arc<Op>
    where
        F: Future<Output = Result<Option<serde_json::Value>, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let op = self.start(new);
        let ops = self.clone();
        let id = op.id.clone();
        tokio::spawn(async move {
            let result = work.await.map_err(Failure::of);
            ops.finish(&id, result);
        });
        op
    }

    /// Moves a running operation to Success or Failure.
    pub fn finish(self: &Arc<Self>, id: &str, result: Outcome) {
        let status = if result.is_ok() { OpStatus::Success } else { OpStatus::Failure };
        self.transition(id, status, |s| match result {
            Ok(Some(md)) => s.metadata = md,
            Ok(None) => {}
            Err(e) => s.err = e.0,
        });
    }

    /// Replaces the metadata of a running operation (progress) and publishes it.
    pub fn update_metadata(&self, id: &str, metadata: serde_json::Value) {
        let Some(op) = self.get(id) else { return };
        if let Ok(mut s) = op.state.lock() {
            if s.status.is_final() {
                return;
            }
            s.metadata = metadata;
            s.updated_at = time::now_nanos();
        }
        self.publish(&op);
    }

    /// Sets a final status once; returns false if the operation was already final (or absent).
    fn transition(self: &Arc<Self>, id: &str, status: OpStatus, edit: impl FnOnce(&mut OpState)) -> bool {
        let Some(op) = self.get(id) else { return false };
        {
            let Ok(mut s) = op.state.lock() else {
                return false;
            };
            if s.status.is_final() {
                return false;
            }
            s.status = status;
            s.updated_at = time::now_nanos();
            edit(&mut s);
        }
        self.publish(&op);
        op.done.send_replace(true);
        let ops = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(RETENTION).await;
            if let Ok(mut all) = ops.ops.lock() {
                all.remove(&id);
            }
        });
        true
    }

    /// Cancels a cancelable operation. Tokens are revoked this way.
    pub fn cancel(self: &Arc<Self>, id: &str) -> Result<(), CancelError> {
        let op = self.get(id).ok_or(CancelError::NotFound)?;
        if !op.may_cancel {
            return Err(CancelError::NotCancelable);
        }
        if self.transition(id, OpStatus::Cancelled, |_| {}) { Ok(()) } else { Err(CancelError::AlreadyDone) }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Op>> {
        self.ops.lock().ok()?.get(id).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Op>> {
        let mut v: Vec<Arc<Op>> = self.ops.lock().map(|o| o.values().cloned().collect()).unwrap_or_default();
        v.sort_by_key(|o| o.created_at);
        v
    }

    /// Finds a running token operation whose metadata `secret` matches and consumes it (one use),
    /// returning its metadata.
    pub fn consume_token(
        self: &Arc<Self>,
        secret: &str,
        extra: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let candidates: Vec<Arc<Op>> = self.list().into_iter().filter(|o| o.class == OpClass::Token).collect();
        for op in candidates {
            let md = op.metadata();
            if md.get("secret").and_then(|s| s.as_str()) == Some(secret)
                && extra(&md)
                && self.transition(&op.id, OpStatus::Cancelled, |_| {})
            {
                return Some(md);
            }
        }
        None
    }

    /// Waits until the operation is final or `timeout` passes (None: forever).
    pub async fn wait(&self, id: &str, timeout: Option<Duration>) -> Option<Operation> {
        let op = self.get(id)?;
        let mut rx = op.done.subscribe();
        let wait = async {
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        match timeout {
            Some(t) => {
                let _ = tokio::time::timeout(t, wait).await;
            }
            None => wait.await,
        }
        Some(op.render())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("Operation not found")]
    NotFound,
    #[error("This operation can't be cancelled")]
    NotCancelable,
    #[error("This operation has already finished")]
    AlreadyDone,
}
