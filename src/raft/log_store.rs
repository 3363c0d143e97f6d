//! The raft log and hard state, durable in `database/global/raft.db` and mirrored in memory
//! (raft-rs reads its log through the synchronous `Storage` trait, constantly). Every write goes
//! to SQLite first (synchronous=FULL), then to the mirror; on start the mirror is rebuilt from
//! the file. The `Storage::snapshot` answer is the state-machine snapshot the driver prepared.

use std::path::Path;
use std::sync::{Arc, Mutex};

use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use crate::store::db::Database;
use crate::store::{StoreError, raft_log};

/// Durable raft state of one replica.
#[derive(Clone)]
pub struct LogStore {
    db: Database,
    mem: MemStorage,
    /// The snapshot `Storage::snapshot` hands out (prepared by the driver), and whether one is wanted.
    snapshot: Arc<Mutex<SnapshotSlot>>,
}

#[derive(Default)]
pub struct SnapshotSlot {
    pub ready: Option<Snapshot>,
    pub wanted: bool,
}

fn decode<M: protobuf::Message>(bytes: &[u8], what: &str, path: &Path) -> Result<M, StoreError> {
    M::parse_from_bytes(bytes)
        .map_err(|e| StoreError::Corrupt { path: path.display().to_string(), reason: format!("{what}: {e}") })
}

fn encode(m: &impl protobuf::Message) -> Vec<u8> {
    m.write_to_bytes().unwrap_or_default()
}

/// The in-memory log refused what the file holds or what raft handed over.
fn mirror(e: raft::Error) -> StoreError {
    StoreError::Internal(format!("raft log: {e}"))
}

impl LogStore {
    /// Opens the log and rebuilds the in-memory view. A log whose entries do not follow each
    /// other, or whose metadata cannot be decoded, is refused.
    pub async fn open(path: &Path, applied_conf: Option<ConfState>) -> Result<LogStore, StoreError> {
        let db = raft_log::open(path).await?;
        let (meta, stored) = raft_log::load(&db).await?;
        let hs: HardState = match &meta.hard_state {
            Some(v) => decode(v, "hard state", path)?,
            None => HardState::default(),
        };
        let conf: ConfState = match &meta.conf_state {
            Some(v) => decode(v, "conf state", path)?,
            None => ConfState::default(),
        };
        let truncated = meta.truncated;
        let mut entries = Vec::with_capacity(stored.len());
        let mut expect = truncated.0 + 1;
        for (idx, term, bytes) in &stored {
            let idx = *idx;
            let e: Entry = decode(bytes, &format!("entry {idx}"), path)?;
            if idx != expect || e.index != idx || e.term != *term {
                return Err(StoreError::Corrupt {
                    path: path.display().to_string(),
                    reason: format!("log entry {idx} is out of sequence (expected {expect})"),
                });
            }
            expect += 1;
            entries.push(e);
        }
        let last = expect - 1;
        if hs.commit > last || (hs.commit > 0 && hs.commit < truncated.0) {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                reason: format!("commit index {} is outside the log [{}, {}]", hs.commit, truncated.0, last),
            });
        }
        let mem = MemStorage::new();
        {
            let mut w = mem.wl();
            if truncated.0 > 0 {
                let mut s = Snapshot::default();
                s.mut_metadata().index = truncated.0;
                s.mut_metadata().term = truncated.1;
                s.mut_metadata().set_conf_state(conf.clone());
                w.apply_snapshot(s).map_err(mirror)?;
            }
            w.append(&entries).map_err(mirror)?;
            w.set_hardstate(hs);
            w.set_conf_state(applied_conf.unwrap_or(conf));
        }
        Ok(LogStore { db, mem, snapshot: Arc::new(Mutex::new(SnapshotSlot::default())) })
    }

    /// Whether this replica has ever been initialised (bootstrapped or received a snapshot).
    pub fn initialised(&self) -> bool {
        self.mem.initial_state().map(|s| s.initialized()).unwrap_or(false)
    }

    /// Writes the founding state of a new cluster: a snapshot boundary at index 1, term 1 with
    /// `voters`, so joiners learn the configuration from a snapshot, never from an empty log.
    pub fn bootstrap<'a>(&'a self, voters: Vec<u64>) -> crate::util::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let conf = ConfState::from((voters, vec![]));
            let hs = HardState { term: 1, commit: 1, ..Default::default() };
            self.db.apply(&raft_log::reset(encode(&hs), encode(&conf), 1, 1)).await?;
            let mut s = Snapshot::default();
            s.mut_metadata().index = 1;
            s.mut_metadata().term = 1;
            s.mut_metadata().set_conf_state(conf);
            self.mem.wl().apply_snapshot(s).map_err(mirror)?;
            Ok(())
        })
    }

    /// Persists new entries (replacing any conflicting tail) and the hard state, in one
    /// transaction, before the mirror sees them.
    pub fn persist<'a>(
        &'a self,
        entries: &'a [Entry],
        hs: Option<&'a HardState>,
    ) -> crate::util::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if entries.is_empty() && hs.is_none() {
                return Ok(());
            }
            let stored: Vec<raft_log::Stored> = entries.iter().map(|e| (e.index, e.term, encode(e))).collect();
            self.db.apply(&raft_log::append(&stored, hs.map(encode))).await?;
            let mut w = self.mem.wl();
            if !entries.is_empty() {
                w.append(entries).map_err(mirror)?;
            }
            if let Some(hs) = hs {
                w.set_hardstate(hs.clone());
            }
            Ok(())
        })
    }

    /// Records a commit index learned without new entries (no fsync needed for safety).
    pub fn persist_commit<'a>(&'a self, commit: u64) -> crate::util::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut hs = self.mem.rl().hard_state().clone();
            if commit <= hs.commit {
                return Ok(());
            }
            hs.commit = commit;
            self.persist(&[], Some(&hs)).await
        })
    }

    /// Installs a received snapshot's boundary: the whole log is replaced by it.
    pub fn install_snapshot<'a>(
        &'a self,
        snap: &'a Snapshot,
        hs: Option<&'a HardState>,
    ) -> crate::util::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let md = snap.get_metadata();
            let mut hard = hs.cloned().unwrap_or_else(|| self.mem.rl().hard_state().clone());
            hard.commit = hard.commit.max(md.index);
            hard.term = hard.term.max(md.term);
            self.db.apply(&raft_log::reset(encode(&hard), encode(md.get_conf_state()), md.index, md.term)).await?;
            let mut w = self.mem.wl();
            w.apply_snapshot(snap.clone()).map_err(mirror)?;
            w.set_hardstate(hard);
            Ok(())
        })
    }

    /// Drops entries up to `index` (inclusive), which a snapshot now covers.
    pub fn compact<'a>(&'a self, index: u64, conf: &'a ConfState) -> crate::util::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let term = match self.mem.term(index) {
                Ok(t) => t,
                Err(_) => return Ok(()),
            };
            if index < self.mem.first_index().unwrap_or(1) {
                return Ok(());
            }
            self.db.apply(&raft_log::compact(index, term, encode(conf))).await?;
            self.mem.wl().compact(index).map_err(mirror)?;
            Ok(())
        })
    }

    /// Offline recovery: makes `conf` the configuration the log starts from, and turns every
    /// membership change after `applied` into an empty entry (same index and term) so that the
    /// old configuration is not re-applied. Returns how many entries were neutralised.
    pub fn rewrite_membership<'a>(
        &'a self,
        applied: u64,
        conf: &'a ConfState,
    ) -> crate::util::BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            use raft::prelude::EntryType;
            let last = self.mem.last_index().unwrap_or(0);
            let first = (applied + 1).max(self.mem.first_index().unwrap_or(1));
            let entries = if first <= last {
                self.mem.entries(first, last + 1, None, GetEntriesContext::empty(false)).unwrap_or_default()
            } else {
                vec![]
            };
            let mut changed = Vec::new();
            for e in entries {
                if matches!(e.get_entry_type(), EntryType::EntryConfChange | EntryType::EntryConfChangeV2) {
                    let mut blank = Entry { index: e.index, term: e.term, ..Default::default() };
                    blank.set_entry_type(EntryType::EntryNormal);
                    changed.push((e.index, encode(&blank)));
                }
            }
            self.db.apply(&raft_log::rewrite(&changed, encode(conf))).await?;
            Ok(changed.len())
        })
    }

    /// Keeps the mirror's configuration in step with the applied one.
    pub fn set_conf_state(&self, cs: ConfState) {
        self.mem.wl().set_conf_state(cs);
    }

    pub fn hard_state(&self) -> HardState {
        self.mem.rl().hard_state().clone()
    }

    pub fn snapshot_slot(&self) -> Arc<Mutex<SnapshotSlot>> {
        self.snapshot.clone()
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

impl Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }

    /// The prepared state-machine snapshot, if it is recent enough and includes `to`;
    /// otherwise asks the driver to prepare one and lets raft retry.
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let mut slot = self.snapshot.lock().map_err(|_| raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable))?;
        let first = self.mem.first_index().unwrap_or(1);
        if let Some(s) = &slot.ready {
            let md = s.get_metadata();
            let cs = md.get_conf_state();
            let includes = cs.voters.contains(&to) || cs.learners.contains(&to);
            if md.index >= request_index && md.index + 1 >= first && includes {
                return Ok(s.clone());
            }
        }
        slot.wanted = true;
        Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable))
    }
}
