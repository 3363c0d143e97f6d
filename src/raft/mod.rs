//! The raft-rs driver for the replicated global database: the durable log ([`log_store`]), the
//! SQLite state machine ([`state_machine`]), and the Ready loop with proposals, linearizable
//! reads, snapshots and membership changes ([`node`]). Messages travel through a [`Transport`]
//! supplied by the caller (mutual TLS between members in the daemon, channels in tests).
//!
//! May call: store, util. Nothing here knows about HTTP or cluster members' names.

pub mod log_store;
pub mod node;
pub mod offline;
pub mod state_machine;

use raft::prelude::Message;

pub use node::{Membership, RaftConfig, RaftHandle, RaftStatus, SnapshotData, start};

#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("not the database leader (leader: {leader})")]
    NotLeader { leader: u64 },
    #[error("the proposal was dropped (leadership changed); retry")]
    Dropped,
    /// Proposed, but this node lost leadership before it committed: it may or may not apply.
    #[error("leadership was lost while the change was being committed; it may or may not have been applied")]
    Uncertain,
    #[error("another membership change is in progress")]
    ChangeInProgress,
    #[error("this replica is already initialised")]
    AlreadyInitialised,
    #[error("the raft node has stopped")]
    Stopped,
    #[error("invalid raft entry: {0}")]
    Encode(String),
    #[error("snapshot: {0}")]
    Snapshot(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

impl RaftError {
    /// The HTTP status the API answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            RaftError::NotLeader { .. } | RaftError::Dropped | RaftError::Uncertain | RaftError::Stopped => 503,
            RaftError::ChangeInProgress => 409,
            RaftError::Store(e) => e.status(),
            _ => 500,
        }
    }
}

/// Delivers raft messages to peers. Implementations batch per peer and must never block the
/// caller (the Ready loop).
pub trait Transport: Send + Sync + 'static {
    /// Sends messages; failures are reported back to the node as unreachable peers.
    fn send(&self, msgs: Vec<Message>);
    /// Learns (or updates) the address of a peer.
    fn set_peer(&self, id: u64, address: &str);
}

/// A slog drain forwarding raft-rs records to `tracing` under the `rxd::raft` target.
pub struct TracingDrain;

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let msg = record.msg().to_string();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "rxd::raft", "{msg}")
            }
            slog::Level::Warning => tracing::warn!(target: "rxd::raft", "{msg}"),
            slog::Level::Info => tracing::info!(target: "rxd::raft", "{msg}"),
            slog::Level::Debug => tracing::debug!(target: "rxd::raft", "{msg}"),
            slog::Level::Trace => tracing::trace!(target: "rxd::raft", "{msg}"),
        }
        Ok(())
    }
}

/// The root logger handed to every `RawNode`.
pub fn logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

#[cfg(test)]
mod tests {
    use raft::prelude::*;
    use raft::storage::MemStorage;

    #[test]
    fn single_voter_commits_a_proposal_with_our_logger() {
        let storage = MemStorage::new_with_conf_state(ConfState::from((vec![1], vec![])));
        let cfg = Config { id: 1, election_tick: 10, heartbeat_tick: 1, ..Default::default() };
        let mut node = RawNode::new(&cfg, storage, &super::logger()).expect("raw node");
        node.campaign().expect("campaign");
        let mut committed = Vec::new();
        for _ in 0..5 {
            if node.raft.state == raft::StateRole::Leader && committed.is_empty() {
                node.propose(vec![], b"hello".to_vec()).expect("propose");
            }
            if !node.has_ready() {
                continue;
            }
            let mut rd = node.ready();
            node.mut_store().wl().append(rd.entries()).expect("append");
            if let Some(hs) = rd.hs() {
                node.mut_store().wl().set_hardstate(hs.clone());
            }
            committed.extend(rd.take_committed_entries().into_iter().filter(|e| !e.data.is_empty()).map(|e| e.data.to_vec()));
            let mut light = node.advance(rd);
            committed.extend(light.take_committed_entries().into_iter().filter(|e| !e.data.is_empty()).map(|e| e.data.to_vec()));
            node.advance_apply();
        }
        assert_eq!(committed, vec![b"hello".to_vec()]);
    }
}
