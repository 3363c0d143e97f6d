//! `/1.0/operations`, `/1.0/operations/<id>`, `…/wait` and `…/websocket` (the streams of an
//! exec session on this member).

use std::sync::Arc;
use std::time::Duration;

use crate::server::request::Request;
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::server::websocket;
use crate::services::Member;
use crate::services::operations::OperationScope;

pub struct List {
    scope: OperationScope,
}

impl Action for List {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(List {
            scope: OperationScope {
                project: req.project(),
                all_projects: req.all_projects(),
                recursion: req.recursion(),
                only_local: req.from_member(),
                uri: req.uri(),
            },
        })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::sync(member.ops.list(&self.scope).await))
    }
}

pub struct Get {
    id: String,
}

impl Action for Get {
    fn parse(_: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Get { id: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::sync(member.ops.get(&self.id)?))
    }
}

pub struct Cancel {
    id: String,
}

impl Action for Cancel {
    fn parse(_: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Cancel { id: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.ops.cancel(&self.id)?;
        Ok(Response::empty())
    }
}

pub struct Wait {
    id: String,
    timeout: Option<Duration>,
}

impl Action for Wait {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        let timeout = match req.query("timeout").and_then(|t| t.parse::<f64>().ok()) {
            Some(t) if t >= 0.0 => Some(Duration::from_secs_f64(t)),
            _ => None,
        };
        Ok(Wait { id: p.at(0).to_string(), timeout })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::sync(member.ops.wait(&self.id, self.timeout).await?))
    }
}

/// `GET /1.0/operations/<id>/websocket?secret=…`: one stream of an exec session here.
pub struct Websocket {
    upgrade: websocket::Upgrade,
    secret: String,
}

impl Action for Websocket {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        let secret = req.query("secret").unwrap_or_default().to_string();
        Ok(Websocket { upgrade: websocket::Upgrade::take(req)?, secret })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let Some(attach) = member.instances.attach(&self.secret) else {
            return Err(ApiError::new(403, "Invalid websocket secret"));
        };
        Ok(websocket::accept(self.upgrade, move |socket| websocket::carry(socket, attach)))
    }
}
