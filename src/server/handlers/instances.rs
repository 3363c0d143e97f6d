//! `/1.0/instances` and `/1.0/instances/<name>[/state]`, plus the internal endpoints members
//! use to move an instance's files between them.

use std::sync::Arc;

use http::Method;

use crate::api::{InstancePost, InstancePut, InstanceStatePut, InstancesPost};
use crate::server::request::Request;
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;
use crate::services::instances::lifecycle::{InstanceChange, InstancePatch};
use crate::services::instances::{ListScope, Listing};

/// Every instance of the project (all members'), or only this member's when another member
/// or `?target=` asks.
pub struct List {
    scope: ListScope,
}

impl Action for List {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(List {
            scope: ListScope {
                project: (!req.all_projects()).then(|| req.project()),
                only_local: req.from_member() || req.query_given("target").is_some(),
                recursion: req.recursion(),
                query: req.raw_query.clone(),
            },
        })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(match member.instances.list(&self.scope).await? {
            Listing::Urls(urls) => Response::sync(urls),
            Listing::Objects(json) => Response::sync_json(&json),
        })
    }
}

/// A new instance on this member (the route placed it here).
pub struct Create {
    project: String,
    body: InstancesPost,
}

impl Action for Create {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Create { project: req.project(), body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::Async(member.instances.create(&self.project, self.body).await?))
    }
}

pub struct Get {
    project: String,
    name: String,
    full: bool,
}

impl Action for Get {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Get { project: req.project(), name: p.at(0).to_string(), full: req.recursion() >= 1 })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (instance, etag) = member.instances.get(&self.project, &self.name, self.full).await?;
        Ok(Response::sync_etag(instance, etag))
    }
}

/// PUT or PATCH of an instance, or (a PUT naming `restore`) a restore from a snapshot.
pub enum Update {
    Change { project: String, name: String, change: InstanceChange, if_match: Option<String> },
    Restore { project: String, name: String, snapshot: String, if_match: Option<String> },
}

impl Action for Update {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        let (project, name) = (req.project(), p.at(0).to_string());
        let fields = req.fields()?;
        if let Some(snap) = fields.get("restore").and_then(|v| v.as_str()).filter(|s| !s.is_empty()) {
            // The stock client names it "<instance>/<snapshot>".
            let snapshot = snap.rsplit('/').next().unwrap_or(snap).to_string();
            return Ok(Update::Restore { project, name, snapshot, if_match: req.if_match() });
        }
        let invalid = |e: serde_json::Error| ApiError::bad_request(format!("Invalid instance: {e}"));
        let put: InstancePut = serde_json::from_value(serde_json::Value::Object(fields.clone())).map_err(invalid)?;
        let change = if req.method == Method::PATCH {
            InstanceChange::Patch(InstancePatch {
                config: put.config,
                devices: put.devices,
                profiles: fields.contains_key("profiles").then_some(put.profiles),
                description: fields.contains_key("description").then_some(put.description),
                ephemeral: fields.contains_key("ephemeral").then_some(put.ephemeral),
            })
        } else {
            InstanceChange::Replace(put)
        };
        Ok(Update::Change { project, name, change, if_match: req.if_match() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let op = match self {
            Update::Restore { project, name, snapshot, if_match } => {
                member.instances.restore_snapshot(&project, &name, &snapshot, if_match.as_deref()).await?
            }
            Update::Change { project, name, change, if_match } => {
                member.instances.update(&project, &name, change, if_match.as_deref()).await?
            }
        };
        Ok(Response::Async(op))
    }
}

/// POST: a rename, or (with `migration` and `?target=`) a move to another member.
pub struct Rename {
    project: String,
    name: String,
    body: InstancePost,
    target: Option<String>,
}

impl Action for Rename {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Rename {
            project: req.project(),
            name: p.at(0).to_string(),
            body: req.json()?,
            target: req.query_given("target").map(str::to_string),
        })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        if self.body.migration {
            let target = self.target.ok_or_else(|| {
                ApiError::bad_request("Moving an instance needs a target member (lxc move <instance> --target <member>)")
            })?;
            return Ok(Response::Async(member.instances.migrate(&self.project, &self.name, &self.body.name, &target).await?));
        }
        Ok(Response::Async(member.instances.rename(&self.project, &self.name, &self.body.name).await?))
    }
}

pub struct Delete {
    project: String,
    name: String,
}

impl Action for Delete {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Delete { project: req.project(), name: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::Async(member.instances.delete(&self.project, &self.name).await?))
    }
}

pub struct State {
    project: String,
    name: String,
}

impl Action for State {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(State { project: req.project(), name: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::sync(member.instances.state(&self.project, &self.name).await?))
    }
}

pub struct ChangeState {
    project: String,
    name: String,
    put: InstanceStatePut,
}

impl Action for ChangeState {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(ChangeState { project: req.project(), name: p.at(0).to_string(), put: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::Async(member.instances.change_state(&self.project, &self.name, self.put).await?))
    }
}

/// `/internal/instances/<name>/receive`: the files of an instance moving to this member.
pub struct Receive {
    project: String,
    name: String,
    snapshot: Option<String>,
    archive: bytes::Bytes,
}

impl Action for Receive {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Receive {
            project: req.project(),
            name: p.at(0).to_string(),
            snapshot: req.query_given("snapshot").map(str::to_string),
            archive: req.body.clone(),
        })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.instances.receive(&self.project, &self.name, self.snapshot.as_deref(), self.archive).await?;
        Ok(Response::empty())
    }
}

/// `/internal/instances/<name>/move?target=`: moves a local instance home after an evacuation.
pub struct MoveHome {
    project: String,
    name: String,
    target: String,
}

impl Action for MoveHome {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(MoveHome { project: req.project(), name: p.at(0).to_string(), target: req.query("target").unwrap_or("").to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.instances.move_home(&self.project, &self.name, &self.target).await?;
        Ok(Response::empty())
    }
}

/// `/internal/instances/<name>/archive`: this member's copy of an instance as a tar archive.
pub struct Archive {
    project: String,
    name: String,
    snapshot: Option<String>,
}

impl Action for Archive {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Archive {
            project: req.project(),
            name: p.at(0).to_string(),
            snapshot: req.query_given("snapshot").map(str::to_string),
        })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let data = member.instances.archive(&self.project, &self.name, self.snapshot.as_deref()).await?;
        Ok(Response::raw(200, "application/x-tar", &[], data.into()))
    }
}
