//! `/internal/*` on the unix socket: readiness and shutdown for `lxd waitready` and
//! `lxd shutdown`.

use std::sync::Arc;

use http::Method;

use super::HResult;
use crate::api::http::request::Request;
use crate::api::http::response::Response;
use crate::daemon::Daemon;

pub async fn ready(daemon: &Daemon) -> HResult {
    if daemon.is_shutting_down() {
        return Err(Response::error(503, "LXD daemon is shutting down"));
    }
    Ok(Response::empty())
}

pub async fn shutdown(daemon: &Daemon) -> HResult {
    daemon.begin_shutdown();
    Ok(Response::empty())
}

fn replica(daemon: &Daemon) -> Result<crate::raft::RaftHandle, Response> {
    daemon.cluster_runtime().and_then(|rt| rt.raft()).ok_or_else(|| Response::error(503, "This member holds no database replica"))
}

/// `POST /internal/raft`: a batch of raft messages from a peer.
pub async fn raft(daemon: &Daemon, req: &Request) -> HResult {
    let node = replica(daemon)?;
    let msgs = crate::cluster::transport::decode(&req.body).map_err(|e| Response::error(400, e))?;
    for m in msgs {
        node.step(m);
    }
    Ok(Response::empty())
}

/// `POST /internal/raft/snapshot`: a snapshot file, with its raft message in a header. The file
/// is checked against the size and checksum the message announces before raft sees it.
pub async fn raft_snapshot(daemon: &Daemon, req: &Request) -> HResult {
    use base64::Engine;
    use protobuf::Message as _;
    use sha2::Digest;
    let node = replica(daemon)?;
    let header = req.header("x-raft-message").ok_or_else(|| Response::error(400, "missing X-Raft-Message"))?;
    let raw = base64::engine::general_purpose::STANDARD.decode(header).map_err(|e| Response::error(400, e.to_string()))?;
    let msg = raft::prelude::Message::parse_from_bytes(&raw).map_err(|e| Response::error(400, e.to_string()))?;
    let data: crate::raft::SnapshotData =
        serde_json::from_slice(&msg.get_snapshot().data).map_err(|e| Response::error(400, e.to_string()))?;
    let sum = format!("{:x}", sha2::Sha256::digest(&req.body));
    if req.body.len() as u64 != data.size || sum != data.sha256 {
        return Err(Response::error(400, "snapshot file does not match its announced size and checksum"));
    }
    let path = daemon.paths.global_dir().join(format!("incoming-{}", data.file));
    tokio::fs::write(&path, &req.body).await.map_err(|e| Response::error(500, e.to_string()))?;
    node.step_snapshot(msg, path);
    Ok(Response::empty())
}

/// `POST /internal/db`: a global read or write forwarded by another member. The leader runs
/// it; another replica relays it to its leader once when asked (`X-Rxd-Relay`).
pub async fn db(daemon: &Daemon, req: &Request) -> HResult {
    use crate::cluster::db::{DbRequest, RELAY_HEADER, Retry, serve};
    let body: DbRequest = req.json()?;
    let rt = daemon.cluster_runtime().ok_or_else(|| Response::error(503, "This server is not clustered"))?;
    match serve(&rt, &body, req.header(RELAY_HEADER).is_some()).await {
        Ok(r) => Ok(Response::sync(r)),
        Err(Retry::Later) => Err(Response::error(503, "no leader here; try the leader")),
        Err(Retry::Fail(e)) => Err(crate::daemon::Error::from(e).into()),
    }
}

/// `GET /internal/sql` (dump or schema) and `POST /internal/sql` (queries): the back end of
/// `lxd sql`.
pub async fn sql(daemon: &Daemon, req: &Request) -> HResult {
    use crate::daemon::sql::{self, Target};
    let target = |name: &str| match name {
        "local" => Ok(Target::Local),
        "global" => Ok(Target::Global),
        _ => Err(Response::error(400, "Invalid database type")),
    };
    if req.method == http::Method::GET {
        let t = target(req.query("database").unwrap_or(""))?;
        let text = sql::dump(daemon, t, req.query("schema") == Some("1")).await?;
        return Ok(Response::sync(serde_json::json!({ "text": text })));
    }
    #[derive(serde::Deserialize)]
    struct Body {
        database: String,
        query: String,
    }
    let body: Body = req.json()?;
    let results = sql::run(daemon, target(&body.database)?, &body.query).await?;
    Ok(Response::sync(serde_json::json!({ "Results": results })))
}

/// `/internal/images/<fp>`: another member fetches (GET), pushes (PUT) or drops (DELETE) this
/// member's copy of an image file.
pub async fn image(daemon: &Arc<Daemon>, req: &Request, fp: &str) -> HResult {
    if !crate::image::valid_fingerprint(fp) {
        return Err(Response::error(400, "Invalid image fingerprint"));
    }
    match req.method {
        Method::GET => {
            let data = tokio::fs::read(crate::image::path(&daemon.paths.dir, fp))
                .await
                .map_err(|_| Response::error(404, "Image file not found on this member"))?;
            Ok(Response::raw(200, "application/octet-stream", &[], data.into()))
        }
        Method::PUT => {
            crate::cluster::images::receive(daemon, &req.project(), fp, &req.body).await?;
            Ok(Response::empty())
        }
        _ => {
            crate::image::remove(&daemon.paths.dir, fp);
            Ok(Response::empty())
        }
    }
}

/// `/internal/instances/<name>/receive`: the files of an instance moving to this member.
pub async fn receive_instance(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    let snapshot = req.query("snapshot").filter(|s| !s.is_empty());
    crate::cluster::moving::receive(daemon, &req.project(), name, snapshot, req.body.clone()).await?;
    Ok(Response::empty())
}

/// `/internal/instances/<name>/move?target=`: moves a local instance (restore after evacuation).
pub async fn move_instance(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    let target = req.query("target").unwrap_or("").to_string();
    crate::cluster::moving::move_instance(daemon, &req.project(), name, &target, &[("volatile.evacuate.origin", None)]).await?;
    Ok(Response::empty())
}

/// `/internal/instances/<name>/archive`: this member's copy of an instance, as a tar archive
/// (for `lxc copy` to another member).
pub async fn instance_archive(daemon: &Arc<Daemon>, req: &Request, name: &str) -> HResult {
    let row = daemon.instance_row(&req.project(), name).await?;
    let dir = crate::cluster::moving::source_dir(daemon, &row, req.query("snapshot").filter(|s| !s.is_empty())).await?;
    let data = crate::cluster::moving::pack(&dir).await?;
    Ok(Response::raw(200, "application/x-tar", &[], data.into()))
}
