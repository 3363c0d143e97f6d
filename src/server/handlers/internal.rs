//! `/internal/*` besides membership: readiness and shutdown (`lxd waitready`, `lxd shutdown`),
//! the raft transport's endpoints, the database requests other members forward, and
//! `lxd sql`.

use std::sync::Arc;

use crate::cluster::db::{DbRequest, NO_LEADER_HERE, RELAY_HEADER, Retry};
use crate::server::request::Request;
use crate::server::response::{Answer, ApiError, Response};
use crate::server::routes::{Action, Params};
use crate::services::Member;
use crate::services::sql::Target;

pub struct Ready;

impl Action for Ready {
    fn parse(_: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Ready)
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        if member.shutdown.is_requested() {
            return Err(ApiError::new(503, "LXD daemon is shutting down"));
        }
        Ok(Response::empty())
    }
}

pub struct Shutdown;

impl Action for Shutdown {
    fn parse(_: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Shutdown)
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        member.shutdown.begin();
        Ok(Response::empty())
    }
}

fn no_replica() -> ApiError {
    ApiError::new(503, "This member holds no database replica")
}

/// `POST /internal/raft`: a batch of raft messages from a peer.
pub struct RaftMessages {
    body: bytes::Bytes,
}

impl Action for RaftMessages {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(RaftMessages { body: req.body.clone() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let rt = member.cluster.runtime().ok_or_else(no_replica)?;
        crate::cluster::transport::receive_messages(&rt, &self.body).map_err(|e| ApiError::new(e.status(), e.to_string()))?;
        Ok(Response::empty())
    }
}

/// `POST /internal/raft/snapshot`: a snapshot file, its raft message in `X-Raft-Message`.
pub struct RaftSnapshot {
    header: Option<String>,
    body: bytes::Bytes,
}

impl Action for RaftSnapshot {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(RaftSnapshot { header: req.header("x-raft-message").map(str::to_string), body: req.body.clone() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let rt = member.cluster.runtime().ok_or_else(no_replica)?;
        crate::cluster::transport::receive_snapshot(&rt, self.header.as_deref(), &self.body)
            .await
            .map_err(|e| ApiError::new(e.status(), e.to_string()))?;
        Ok(Response::empty())
    }
}

/// `POST /internal/db`: a global read or write forwarded by another member. The leader runs it
/// and answers with its verdict, error kind included; another replica relays it to its leader
/// once when asked (`X-Rxd-Relay`).
pub struct Db {
    request: DbRequest,
    relay: bool,
}

impl Action for Db {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(Db { request: req.json()?, relay: req.header(RELAY_HEADER).is_some() })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let rt = member.cluster.runtime().ok_or_else(|| ApiError::new(503, NO_LEADER_HERE))?;
        match crate::cluster::db::serve(&rt, &self.request, self.relay).await {
            Ok(r) => Ok(Response::sync(r)),
            Err(Retry::Later) => Err(ApiError::new(503, NO_LEADER_HERE)),
            Err(Retry::Fail(e)) => Err(ApiError::new(e.status(), e.to_string())),
        }
    }
}

fn target(name: &str) -> Result<Target, ApiError> {
    match name {
        "local" => Ok(Target::Local),
        "global" => Ok(Target::Global),
        _ => Err(ApiError::bad_request("Invalid database type")),
    }
}

/// `GET /internal/sql?database=…[&schema=1]`: `lxd sql … .dump` / `.schema`.
pub struct SqlDump {
    target: Target,
    schema_only: bool,
}

impl Action for SqlDump {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        Ok(SqlDump { target: target(req.query("database").unwrap_or(""))?, schema_only: req.query("schema") == Some("1") })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let text = member.sql.dump(self.target, self.schema_only).await?;
        Ok(Response::sync(serde_json::json!({ "text": text })))
    }
}

/// `POST /internal/sql`: `lxd sql <database> <query>`.
pub struct SqlRun {
    target: Target,
    query: String,
}

impl Action for SqlRun {
    fn parse(req: &mut Request, _: &Params) -> Result<Self, ApiError> {
        #[derive(serde::Deserialize)]
        struct Body {
            database: String,
            query: String,
        }
        let body: Body = req.json()?;
        Ok(SqlRun { target: target(&body.database)?, query: body.query })
    }

    async fn run(self, member: &Arc<Member>) -> Answer {
        let results = member.sql.run(self.target, &self.query).await?;
        Ok(Response::sync(serde_json::json!({ "Results": results })))
    }
}
