//! The global database as seen from a clustered member: writes are proposed to raft on the
//! leader and forwarded to it from anywhere else (`POST /internal/db`); reads are linearizable
//! (a read-index barrier on the leader). Every call gives up after a bounded time with
//! "cluster database unavailable: no quorum".

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::runtime::Runtime;
use crate::raft::{RaftError, RaftHandle};
use crate::store::global::Replicated;
use crate::store::{Batch, Rows, Stmt, StoreError};
use crate::util::BoxFuture;

/// How long a read or write may wait for a leader with a quorum.
pub const DEADLINE: Duration = Duration::from_secs(5);

pub fn no_quorum() -> StoreError {
    StoreError::Unavailable(
        "cluster database unavailable: no quorum (no leader reachable); retry when a majority of database members is online"
            .into(),
    )
}

/// A forwarded database request.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DbRequest {
    Apply {
        batch: Batch,
    },
    /// Reads answered together from one read point.
    Query {
        stmts: Vec<Stmt>,
    },
}

/// Its answer.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DbResponse {
    Applied { affected: Vec<u64> },
    Rows { sets: Vec<Rows> },
}

pub struct ClusterDb {
    /// The member's cluster machinery: its replica (None on a spare, which relays everything
    /// through the replicas) and its transport.
    pub rt: Arc<Runtime>,
}

impl ClusterDb {
    /// Runs `req` on this node if it leads, otherwise on the leader.
    async fn run(&self, req: DbRequest) -> Result<DbResponse, StoreError> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            // Taken before the attempt: a change of this replica's raft status (a leader
            // elected, its first entry applied) after it wakes the retry at once.
            let mut status = self.rt.raft().map(|r| {
                let mut w = r.watch();
                w.borrow_and_update();
                w
            });
            let attempt = match self.rt.raft() {
                Some(raft) => {
                    let st = raft.status();
                    if st.is_leader {
                        execute_on_leader(&raft, &req).await
                    } else if let (DbRequest::Query { stmts }, true) = (&req, st.leader != 0) {
                        // A linearizable read on this replica: the leader confirms its commit
                        // index over the raft link, then the local copy answers.
                        match follower_read(&raft, stmts).await {
                            Some(r) => r,
                            None => match self.rt.transport.address_of(st.leader) {
                                Some(addr) => self.forward(&addr, &req, false).await,
                                None => Err(Retry::Later),
                            },
                        }
                    } else if st.leader != 0 {
                        match self.rt.transport.address_of(st.leader) {
                            Some(addr) => self.forward(&addr, &req, false).await,
                            None => Err(Retry::Later),
                        }
                    } else {
                        // No leader known here (an election, or our raft links are still
                        // reconnecting): another replica may know it.
                        self.through_any_replica(&req).await
                    }
                }
                None => self.through_any_replica(&req).await,
            };
            match attempt {
                Ok(r) => return Ok(r),
                Err(Retry::Fail(e)) => return Err(e),
                Err(Retry::Later) if tokio::time::Instant::now() < deadline => {
                    let pause = Duration::from_millis(25);
                    match status.as_mut() {
                        Some(w) => {
                            let _ = tokio::time::timeout(pause, w.changed()).await;
                        }
                        None => tokio::time::sleep(pause).await,
                    }
                }
                Err(Retry::Later) => return Err(no_quorum()),
            }
        }
    }

    /// Asks the replicas in turn; whichever answers relays to its leader (one hop, never on).
    async fn through_any_replica(&self, req: &DbRequest) -> Result<DbResponse, Retry> {
        for address in self.rt.transport.addresses().values() {
            match self.forward(address, req, true).await {
                Err(Retry::Later) => continue,
                other => return other,
            }
        }
        Err(Retry::Later)
    }
}

/// A read on a follower after a read-index round trip; None when the leader did not confirm.
async fn follower_read(raft: &RaftHandle, stmts: &[Stmt]) -> Option<Result<DbResponse, Retry>> {
    raft.read_barrier().await.ok()?;
    Some(read_replica(raft, stmts).await)
}

/// Answers reads from this replica's copy (after a read barrier).
async fn read_replica(raft: &RaftHandle, stmts: &[Stmt]) -> Result<DbResponse, Retry> {
    let db = raft.state_machine.database();
    let db = db.read().await;
    db.query_many(stmts).await.map(|sets| DbResponse::Rows { sets }).map_err(Retry::Fail)
}

/// Executes a database request on this node, which believes it is the leader.
pub async fn execute_on_leader(raft: &RaftHandle, req: &DbRequest) -> Result<DbResponse, Retry> {
    match req {
        DbRequest::Apply { batch } => match tokio::time::timeout(DEADLINE, raft.propose(batch.clone())).await {
            Ok(Ok(Ok(affected))) => Ok(DbResponse::Applied { affected }),
            Ok(Ok(Err(e))) => Err(Retry::Fail(e)),
            Ok(Err(RaftError::Store(e))) => Err(Retry::Fail(e)),
            // Proposed but not known to be committed: retrying could apply it twice.
            Ok(Err(RaftError::Uncertain)) | Err(_) => Err(Retry::Fail(StoreError::Unavailable(
                "cluster database unavailable: no quorum to commit the change (it may or may not have been applied)".into(),
            ))),
            Ok(Err(_)) => Err(Retry::Later),
        },
        DbRequest::Query { stmts } => match raft.read_barrier().await {
            Ok(()) => read_replica(raft, stmts).await,
            Err(_) => Err(Retry::Later),
        },
    }
}

impl ClusterDb {
    async fn forward(&self, address: &str, req: &DbRequest, relay: bool) -> Result<DbResponse, Retry> {
        forward(&self.rt, address, req, relay).await
    }
}

/// The header asking a replica that is not the leader to pass a request on to its leader.
pub const RELAY_HEADER: &str = "x-rxd-relay";

/// What a member answers (503) when it neither leads nor knows a leader to relay to: the
/// caller tries elsewhere. Any other error is the leader's verdict on the request.
pub const NO_LEADER_HERE: &str = "no leader here; try the leader";

/// Sends a database request to the member at `address`; with `relay`, a member that does not
/// lead passes it on to its leader once.
pub async fn forward(rt: &Runtime, address: &str, req: &DbRequest, relay: bool) -> Result<DbResponse, Retry> {
    let conn = rt.connect(address).map_err(|_| Retry::Later)?;
    let body =
        serde_json::to_vec(req).map_err(|e| Retry::Fail(StoreError::Internal(format!("encoding a database request: {e}"))))?;
    let headers: Vec<(&str, String)> = if relay { vec![(RELAY_HEADER, "1".into())] } else { vec![] };
    let sent = tokio::time::timeout(DEADLINE, conn.raw("POST", "/internal/db", Some(body), &headers)).await;
    let Ok(Ok((status, _, bytes))) = sent else { return Err(Retry::Later) };
    let envelope: crate::api::Envelope = serde_json::from_slice(&bytes).map_err(|_| Retry::Later)?;
    if envelope.kind == "error" {
        return match status {
            // 403: the member has not seen our certificate yet (we are joining).
            403 => Err(Retry::Later),
            // The leader's own verdict (its error kind, unchanged), unless it is "no leader
            // here": only a member that cannot reach a leader says 503 without a reason.
            503 if envelope.error == NO_LEADER_HERE => Err(Retry::Later),
            s => Err(Retry::Fail(StoreError::from_status(s, envelope.error))),
        };
    }
    serde_json::from_value(envelope.metadata)
        .map_err(|e| Retry::Fail(StoreError::Internal(format!("decoding the leader's answer: {e}"))))
}

/// `POST /internal/db` on this member: the leader runs the request; a replica asked to relay
/// passes it to the leader it knows (one hop); anything else is "try again".
pub async fn serve(rt: &Runtime, req: &DbRequest, relay: bool) -> Result<DbResponse, Retry> {
    let Some(raft) = rt.raft() else { return Err(Retry::Later) };
    let st = raft.status();
    if st.is_leader {
        return execute_on_leader(&raft, req).await;
    }
    match rt.transport.address_of(st.leader) {
        Some(leader) if relay && st.leader != 0 => forward(rt, &leader, req, false).await,
        _ => Err(Retry::Later),
    }
}

/// Whether a failed attempt may be retried (no leader yet) or is final.
pub enum Retry {
    Later,
    Fail(StoreError),
}

impl Replicated for ClusterDb {
    fn apply<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<Vec<u64>, StoreError>> {
        Box::pin(async move {
            match self.run(DbRequest::Apply { batch: batch.clone() }).await? {
                DbResponse::Applied { affected } => Ok(affected),
                DbResponse::Rows { .. } => Err(StoreError::Internal("unexpected answer to a write".into())),
            }
        })
    }

    fn query_many<'a>(&'a self, stmts: &'a [Stmt]) -> BoxFuture<'a, Result<Vec<Rows>, StoreError>> {
        Box::pin(async move {
            match self.run(DbRequest::Query { stmts: stmts.to_vec() }).await? {
                DbResponse::Rows { sets } if sets.len() == stmts.len() => Ok(sets),
                _ => Err(StoreError::Internal("unexpected answer to a read".into())),
            }
        })
    }

    fn query_local<'a>(&'a self, stmts: &'a [Stmt]) -> BoxFuture<'a, Result<Vec<Rows>, StoreError>> {
        Box::pin(async move {
            let raft = self.rt.raft().ok_or_else(|| StoreError::Unavailable("this member holds no database replica".into()))?;
            let db = raft.state_machine.database();
            let db = db.read().await;
            db.query_many(stmts).await
        })
    }
}
