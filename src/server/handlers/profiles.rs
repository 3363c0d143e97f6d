//! `/1.0/profiles` and `/1.0/profiles/<name>`.

use std::sync::Arc;

use crate::api::{NamePost, ProfilePut, ProfilesPost};
use crate::server::request::Request;
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;
use crate::services::profiles::{ProfilePatch, profile_url};

pub struct List {
    project: String,
    recursion: i64,
}

impl Action for List {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(List { project: req.project(), recursion: req.recursion() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let profiles = member.profiles.list(&self.project).await?;
        Ok(Response::list(self.recursion, profiles, |p| profile_url(&self.project, &p.name)))
    }
}

pub struct Create {
    project: String,
    body: ProfilesPost,
}

impl Action for Create {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Create { project: req.project(), body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let name = self.body.name.clone();
        member.profiles.create(&self.project, self.body).await?;
        Ok(Response::created(profile_url(&self.project, &name)))
    }
}

pub struct Get {
    project: String,
    name: String,
}

impl Action for Get {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Get { project: req.project(), name: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (profile, etag) = member.profiles.get(&self.project, &self.name).await?;
        Ok(Response::sync_etag(profile, etag))
    }
}

pub struct Replace {
    project: String,
    name: String,
    put: ProfilePut,
    if_match: Option<String>,
}

impl Action for Replace {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Replace { project: req.project(), name: p.at(0).to_string(), put: req.json()?, if_match: req.if_match() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.profiles.replace(&self.project, &self.name, self.put, self.if_match.as_deref()).await?;
        Ok(Response::empty())
    }
}

pub struct Patch {
    project: String,
    name: String,
    patch: ProfilePatch,
    if_match: Option<String>,
}

impl Action for Patch {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        let body: ProfilePut = req.json()?;
        let given_description = req.fields()?.contains_key("description");
        let patch = ProfilePatch {
            config: body.config,
            devices: body.devices,
            description: given_description.then_some(body.description),
        };
        Ok(Patch { project: req.project(), name: p.at(0).to_string(), patch, if_match: req.if_match() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.profiles.patch(&self.project, &self.name, self.patch, self.if_match.as_deref()).await?;
        Ok(Response::empty())
    }
}

pub struct Rename {
    project: String,
    name: String,
    body: NamePost,
}

impl Action for Rename {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Rename { project: req.project(), name: p.at(0).to_string(), body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.profiles.rename(&self.project, &self.name, &self.body.name).await?;
        Ok(Response::created(profile_url(&self.project, &self.body.name)))
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
        member.profiles.delete(&self.project, &self.name).await?;
        Ok(Response::empty())
    }
}
