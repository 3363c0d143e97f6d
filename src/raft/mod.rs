//! The raft-rs driver for the replicated global database (Ready loop, log storage, transport,
//! snapshots, membership). So far it holds the logging bridge raft-rs needs: raft-rs logs
//! through `slog`, rxd through `tracing`.

/// A slog drain forwarding raft-rs records to `tracing` under the `rxd::raft` target.
pub struct TracingDrain;

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(
        &self,
        record: &slog::Record<'_>,
        _values: &slog::OwnedKVList,
    ) -> Result<(), slog::Never> {
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
        let cfg = Config {
            id: 1,
            election_tick: 10,
            heartbeat_tick: 1,
            ..Default::default()
        };
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
            committed.extend(
                rd.take_committed_entries()
                    .into_iter()
                    .filter(|e| !e.data.is_empty())
                    .map(|e| e.data.to_vec()),
            );
            let mut light = node.advance(rd);
            committed.extend(
                light
                    .take_committed_entries()
                    .into_iter()
                    .filter(|e| !e.data.is_empty())
                    .map(|e| e.data.to_vec()),
            );
            node.advance_apply();
        }
        assert_eq!(committed, vec![b"hello".to_vec()]);
    }
}
