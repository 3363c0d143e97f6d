//! A stopped replica's files, read and rewritten by the offline admin tools: what the replica
//! holds (applied and last log index and term, configuration) and, for quorum-loss recovery
//! and `lxd cluster edit`, a new membership written into both the log and the state machine.

use std::path::Path;

use raft::Storage;
use raft::prelude::ConfState;

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use crate::store::StoreError;

/// What a stopped replica holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaFacts {
    pub applied_index: u64,
    pub applied_term: u64,
    pub last_index: u64,
    pub last_term: u64,
    pub commit: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
}

async fn open(dir: &Path) -> Result<(StateMachine, LogStore), StoreError> {
    let state_path = dir.join("state.db");
    let log_path = dir.join("raft.db");
    if !state_path.exists() || !log_path.exists() {
        return Err(StoreError::NotFound(format!("no database replica in {}", dir.display())));
    }
    let sm = StateMachine::open(&state_path).await?;
    let applied = sm.applied().await?;
    let log = LogStore::open(&log_path, Some(applied.conf)).await?;
    Ok((sm, log))
}

/// Reads a stopped replica.
pub async fn inspect(dir: &Path) -> Result<ReplicaFacts, StoreError> {
    let (sm, log) = open(dir).await?;
    let applied = sm.applied().await?;
    let last_index = log.last_index().unwrap_or(0);
    let facts = ReplicaFacts {
        applied_index: applied.index,
        applied_term: applied.term,
        last_index,
        last_term: log.term(last_index).unwrap_or(0),
        commit: log.hard_state().commit,
        voters: applied.conf.voters.clone(),
        learners: applied.conf.learners.clone(),
    };
    sm.close().await;
    log.close().await;
    Ok(facts)
}

/// Makes `voters` and `learners` the replica's configuration. Every entry of its log is kept
/// (membership changes not yet applied become empty entries). Returns how many were emptied.
pub async fn rewrite_membership(dir: &Path, voters: Vec<u64>, learners: Vec<u64>) -> Result<usize, StoreError> {
    let (sm, log) = open(dir).await?;
    let conf = ConfState::from((voters, learners));
    let applied = sm.applied().await?;
    let neutralised = log.rewrite_membership(applied.index, &conf).await?;
    sm.set_applied_conf(&conf).await?;
    sm.close().await;
    log.close().await;
    Ok(neutralised)
}
