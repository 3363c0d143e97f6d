//! `/1.0/instances/<name>/snapshots` and `/1.0/instances/<name>/snapshots/<snapshot>`.

use std::sync::Arc;

use crate::server::request::Request;
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;
use crate::services::instances::snapshots::snapshot_url;

pub struct List {
    project: String,
    name: String,
    recursion: i64,
}

impl Action for List {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(List { project: req.project(), name: p.at(0).to_string(), recursion: req.recursion() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let all = member.instances.snapshots(&self.project, &self.name).await?;
        Ok(Response::list(self.recursion, all, |s| snapshot_url(&self.name, &s.name)))
    }
}

pub struct Create {
    project: String,
    name: String,
    snapshot: String,
    stateful: bool,
}

impl Action for Create {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        let body = req.fields()?;
        Ok(Create {
            project: req.project(),
            name: p.at(0).to_string(),
            snapshot: body.get("name").and_then(|v| v.as_str()).unwrap_or("").to_string(),
            stateful: body.get("stateful").and_then(|v| v.as_bool()).unwrap_or(false),
        })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::Async(member.instances.create_snapshot(&self.project, &self.name, &self.snapshot, self.stateful).await?))
    }
}

/// The snapshot a request is about.
pub struct Which {
    project: String,
    name: String,
    snapshot: String,
}

fn which(req: &Request, p: &Params) -> Which {
    Which { project: req.project(), name: p.at(0).to_string(), snapshot: p.at(1).to_string() }
}

pub struct Get(Which);

impl Action for Get {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Get(which(req, p)))
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let w = self.0;
        Ok(Response::sync(member.instances.snapshot(&w.project, &w.name, &w.snapshot).await?))
    }
}

pub struct Rename {
    which: Which,
    new_name: String,
}

impl Action for Rename {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        let body = req.fields()?;
        if body.get("migration").and_then(|v| v.as_bool()) == Some(true) {
            return Err(ApiError::bad_request("Migrating snapshots is not supported: copy the snapshot into a new instance"));
        }
        let new_name = body.get("name").and_then(|v| v.as_str()).unwrap_or("").to_string();
        Ok(Rename { which: which(req, p), new_name })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let w = self.which;
        Ok(Response::Async(member.instances.rename_snapshot(&w.project, &w.name, &w.snapshot, &self.new_name).await?))
    }
}

pub struct Delete(Which);

impl Action for Delete {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Delete(which(req, p)))
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let w = self.0;
        Ok(Response::Async(member.instances.delete_snapshot(&w.project, &w.name, &w.snapshot).await?))
    }
}
