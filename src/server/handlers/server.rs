//! `GET /`, `GET /1.0` and `PUT/PATCH /1.0`.

use std::sync::Arc;

use http::Method;

use crate::api::ServerPut;
use crate::server::request::{Caller, Request};
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;
use crate::services::server_config::untrusted_info;

pub struct Root;

impl Action for Root {
    fn parse(_: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Root)
    }

    async fn run(self, _: &Arc<Member>) -> Answer {
        Ok(Response::sync(["/1.0"]))
    }
}

pub struct Get {
    trusted: bool,
}

impl Action for Get {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Get { trusted: req.caller != Caller::Untrusted })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        if !self.trusted {
            return Ok(Response::sync(untrusted_info()));
        }
        let (info, etag) = member.config.info().await?;
        Ok(Response::sync_etag(info, etag))
    }
}

pub struct Update {
    body: ServerPut,
    replace: bool,
    if_match: Option<String>,
}

impl Action for Update {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Update { body: req.json()?, replace: req.method == Method::PUT, if_match: req.if_match() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.config.update(&self.body.config, self.replace, self.if_match.as_deref()).await?;
        Ok(Response::empty())
    }
}
