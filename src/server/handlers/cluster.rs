//! `/1.0/cluster`, `/1.0/cluster/members[/<name>[/state]]`, `/1.0/cluster/groups[/<name>]`
//! and the internal membership endpoints (`/internal/cluster/…`).

use std::sync::Arc;

use http::Method;

use crate::api::{
    AcceptRequest, AssignRequest, ClusterGroup, ClusterGroupPut, ClusterMemberPost, ClusterMemberPut, ClusterPut, HandoverRequest,
};
use crate::server::request::Request;
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;

fn member_url(name: &str) -> String {
    format!("/1.0/cluster/members/{name}")
}

fn group_url(name: &str) -> String {
    format!("/1.0/cluster/groups/{name}")
}

pub struct Get;

impl Action for Get {
    fn parse(_: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Get)
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (info, etag) = member.membership.info().await?;
        Ok(Response::sync_etag(info, etag))
    }
}

/// `PUT /1.0/cluster`: bootstrap, join, or (from the leader) leave.
pub struct Update {
    body: ClusterPut,
}

impl Action for Update {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Update { body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(match member.membership.update(self.body).await? {
            Some(op) => Response::Async(op),
            None => Response::empty(),
        })
    }
}

pub struct Members {
    recursion: i64,
}

impl Action for Members {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Members { recursion: req.recursion() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let list = member.members.list().await?;
        Ok(Response::list(self.recursion, list, |m| member_url(&m.server_name)))
    }
}

/// `POST /1.0/cluster/members`: a join token for a future member.
pub struct AddToken {
    body: ClusterMemberPost,
}

impl Action for AddToken {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(AddToken { body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::Async(member.tokens.create(&self.body.server_name).await?))
    }
}

pub struct MemberGet {
    name: String,
}

impl Action for MemberGet {
    fn parse(_: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(MemberGet { name: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (m, etag) = member.members.get(&self.name).await?;
        Ok(Response::sync_etag(m, etag))
    }
}

pub struct MemberUpdate {
    name: String,
    put: ClusterMemberPut,
    patch: bool,
    if_match: Option<String>,
}

impl Action for MemberUpdate {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(MemberUpdate {
            name: p.at(0).to_string(),
            put: req.json()?,
            patch: req.method == Method::PATCH,
            if_match: req.if_match(),
        })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.members.update(&self.name, self.put, self.patch, self.if_match.as_deref()).await?;
        Ok(Response::empty())
    }
}

pub struct MemberRename {
    name: String,
    body: ClusterMemberPost,
}

impl Action for MemberRename {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(MemberRename { name: p.at(0).to_string(), body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.members.rename(&self.name, &self.body.server_name).await?;
        Ok(Response::empty())
    }
}

/// `DELETE /1.0/cluster/members/<name>[?force=1]` (on the leader).
pub struct MemberRemove {
    name: String,
    force: bool,
}

impl Action for MemberRemove {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(MemberRemove { name: p.at(0).to_string(), force: req.query("force") == Some("1") })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.membership.remove(&self.name, self.force).await?;
        Ok(Response::empty())
    }
}

/// `POST /1.0/cluster/members/<name>/state` (`lxc cluster evacuate|restore`), on the member
/// itself.
pub struct MemberState {
    action: String,
}

impl Action for MemberState {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        let body = req.fields()?;
        Ok(MemberState { action: body.get("action").and_then(|a| a.as_str()).unwrap_or("").to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::Async(member.instances.evacuation(&self.action).await?))
    }
}

pub struct Groups {
    recursion: i64,
}

impl Action for Groups {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Groups { recursion: req.recursion() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let list = member.groups.list().await?;
        Ok(Response::list(self.recursion, list, |g| group_url(&g.name)))
    }
}

pub struct GroupCreate {
    body: ClusterGroup,
}

impl Action for GroupCreate {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(GroupCreate { body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let name = self.body.name.clone();
        member.groups.create(self.body).await?;
        Ok(Response::created(group_url(&name)))
    }
}

pub struct GroupGet {
    name: String,
}

impl Action for GroupGet {
    fn parse(_: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(GroupGet { name: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let (g, etag) = member.groups.get(&self.name).await?;
        Ok(Response::sync_etag(g, etag))
    }
}

pub struct GroupUpdate {
    name: String,
    put: ClusterGroupPut,
    patch: bool,
    if_match: Option<String>,
}

impl Action for GroupUpdate {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(GroupUpdate {
            name: p.at(0).to_string(),
            put: req.json()?,
            patch: req.method == Method::PATCH,
            if_match: req.if_match(),
        })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.groups.update(&self.name, self.put, self.patch, self.if_match.as_deref()).await?;
        Ok(Response::empty())
    }
}

pub struct GroupRename {
    name: String,
    body: ClusterGroup,
}

impl Action for GroupRename {
    fn parse(req: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(GroupRename { name: p.at(0).to_string(), body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.groups.rename(&self.name, &self.body.name).await?;
        Ok(Response::empty())
    }
}

pub struct GroupDelete {
    name: String,
}

impl Action for GroupDelete {
    fn parse(_: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(GroupDelete { name: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.groups.delete(&self.name).await?;
        Ok(Response::empty())
    }
}

/// `POST /internal/cluster/accept` (on the leader): a joiner asks to be admitted.
pub struct Accept {
    body: AcceptRequest,
}

impl Action for Accept {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Accept { body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::sync(member.membership.accept(self.body).await?))
    }
}

pub struct Rebalance;

impl Action for Rebalance {
    fn parse(_: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Rebalance)
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.membership.rebalance().await?;
        Ok(Response::sync(serde_json::Value::Null))
    }
}

/// `POST /internal/cluster/assign`: the leader gives this member a new database role.
pub struct Assign {
    body: AssignRequest,
}

impl Action for Assign {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Assign { body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.membership.assign(self.body).await?;
        Ok(Response::sync(serde_json::Value::Null))
    }
}

pub struct Handover {
    body: HandoverRequest,
}

impl Action for Handover {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Handover { body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::sync(member.membership.handover(&self.body.address).await?))
    }
}

pub struct Heartbeat {
    body: crate::api::Heartbeat,
}

impl Action for Heartbeat {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Heartbeat { body: req.json()? })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        Ok(Response::sync(member.membership.heartbeat(self.body).await?))
    }
}

/// `POST /internal/cluster/token`: another member asks whether this member issued a join token.
pub struct TokenCheck {
    server_name: String,
    secret: String,
}

impl Action for TokenCheck {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        #[derive(serde::Deserialize)]
        struct Body {
            server_name: String,
            secret: String,
        }
        let body: Body = req.json()?;
        Ok(TokenCheck { server_name: body.server_name, secret: body.secret })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.membership.consume_token_here(&self.server_name, &self.secret)?;
        Ok(Response::empty())
    }
}

pub struct Upgraded;

impl Action for Upgraded {
    fn parse(_: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Upgraded)
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.membership.upgraded();
        Ok(Response::empty())
    }
}

/// `DELETE /internal/cluster/raft-node/<address>` (`lxd cluster remove-raft-node`).
pub struct RemoveRaftNode {
    address: String,
}

impl Action for RemoveRaftNode {
    fn parse(_: &mut Request, p: &Params) -> Result<Self, ApiError> {
        Ok(RemoveRaftNode { address: p.at(0).to_string() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.membership.remove_raft_node(&self.address).await?;
        Ok(Response::sync(serde_json::Value::Null))
    }
}
