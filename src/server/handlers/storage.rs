//! `/1.0/storage-pools` and `/1.0/storage-pools/<name>`. In a cluster a pool is defined per
//! member (`?target=`), then created on every member; members tell each other to create or
//! delete their part with notifications.

use std::sync::Arc;

use http::Method;

use crate::api::{StoragePoolPut, StoragePoolsPost};
use crate::server::request::Request;
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;
use crate::services::storage_pools::{Pools, Scope};

fn url(name: &str) -> String {
    format!("/1.0/storage-pools/{name}")
}

/// Who asks, which decides what a create or delete does.
fn scope(req: &Request) -> Scope {
    if Pools::is_notification(req.from_member(), req.header("user-agent")) {
        Scope::OwnPart
    } else if let Some(target) = req.query_given("target") {
        Scope::Member(target.to_string())
    } else {
        Scope::Whole
    }
}

pub struct List {
    recursion: i64,
    targeted: bool,
}

impl Action for List {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(List { recursion: req.recursion(), targeted: req.query("target").is_some() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let pools = member.pools.list(self.targeted).await?;
        Ok(Response::list(self.recursion, pools, |p| url(&p.name)))
    }
}

pub struct Create {
    body: StoragePoolsPost,
    scope: Scope,
}

impl Action for Create {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Create { body: req.json()?, scope: scope(req) })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let name = self.body.name.clone();
        member.pools.create(self.body, self.scope).await?;
        Ok(Response::created(url(&name)))
    }
}

pub struct Get {
    name: String,
    targeted: bool,
}

impl Action for Get {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Get { name: p.at(0).to_string(), targeted: req.query("target").is_some() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (pool, etag) = member.pools.get(&self.name, self.targeted).await?;
        Ok(Response::sync_etag(pool, etag))
    }
}

pub struct Update {
    name: String,
    put: StoragePoolPut,
    patch: bool,
    targeted: bool,
    if_match: Option<String>,
}

impl Action for Update {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Update {
            name: p.at(0).to_string(),
            put: req.json()?,
            patch: req.method == Method::PATCH,
            targeted: req.query("target").is_some(),
            if_match: req.if_match(),
        })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.pools.update(&self.name, self.put, self.patch, self.targeted, self.if_match.as_deref()).await?;
        Ok(Response::empty())
    }
}

pub struct Delete {
    name: String,
    scope: Scope,
}

impl Action for Delete {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(Delete { name: p.at(0).to_string(), scope: scope(req) })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.pools.delete(&self.name, self.scope).await?;
        Ok(Response::empty())
    }
}
