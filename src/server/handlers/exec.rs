//! `POST /1.0/instances/<name>/exec`: a websocket operation (its streams are attached through
//! `/1.0/operations/<id>/websocket`), or with `record-output` a task whose output goes to log
//! files.

use std::sync::Arc;

use crate::api::ExecPost;
use crate::server::request::Request;
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;

pub struct Exec {
    project: String,
    name: String,
    body: ExecPost,
}

impl Action for Exec {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Exec { project: req.project(), name: p.at(0).to_string(), body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::Async(member.instances.exec(&self.project, &self.name, self.body).await?))
    }
}
