//! `/1.0/projects` and `/1.0/projects/<name>`.

use std::sync::Arc;

use http::Method;

use crate::api::{NamePost, ProjectPut, ProjectsPost};
use crate::server::request::Request;
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;
use crate::services::projects::{ProjectChange, ProjectPatch};

fn url(name: &str) -> String {
    format!("/1.0/projects/{name}")
}

pub struct List {
    recursion: i64,
}

impl Action for List {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(List { recursion: req.recursion() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let projects = member.projects.list().await?;
        Ok(Response::list(self.recursion, projects, |p| url(&p.name)))
    }
}

pub struct Create {
    body: ProjectsPost,
}

impl Action for Create {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Create { body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let name = self.body.name.clone();
        member.projects.create(self.body).await?;
        Ok(Response::created(url(&name)))
    }
}

pub struct Get {
    name: String,
}

impl Action for Get {
    fn parse(_: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Get { name: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (project, etag) = member.projects.get(&self.name).await?;
        Ok(Response::sync_etag(project, etag))
    }
}

pub struct Update {
    name: String,
    change: ProjectChange,
    if_match: Option<String>,
}

impl Action for Update {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        let put: ProjectPut = req.json()?;
        let change = if req.method == Method::PATCH {
            let given_description = req.fields()?.contains_key("description");
            ProjectChange::Patch(ProjectPatch { config: put.config, description: given_description.then_some(put.description) })
        } else {
            ProjectChange::Replace(put)
        };
        Ok(Update { name: p.at(0).to_string(), change, if_match: req.if_match() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.projects.update(&self.name, self.change, self.if_match.as_deref()).await?;
        Ok(Response::empty())
    }
}

pub struct Rename {
    name: String,
    body: NamePost,
}

impl Action for Rename {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Rename { name: p.at(0).to_string(), body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.projects.rename(&self.name, &self.body.name).await?;
        Ok(Response::created(url(&self.body.name)))
    }
}

pub struct Delete {
    name: String,
}

impl Action for Delete {
    fn parse(_: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Delete { name: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.projects.delete(&self.name).await?;
        Ok(Response::empty())
    }
}
