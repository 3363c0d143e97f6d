//! The raft log and hard state, durable in `database/global/raft.db` and mirrored in memory
//! (raft-rs reads its log through the synchronous `Storage` trait, constantly). Every write goes
//! to SQLite first (synchronous=FULL), then to the mirror; on start the mirror is rebuilt from
//! the file. The `Storage::snapshot` answer is the state-machine snapshot the driver prepared.

use std::path::Path;
use std::sync::{Arc, Mutex};

use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use crate::store::db::{Database, int};
use crate::store::migrate::Migration;
use crate::store::{Batch, Stmt, StoreError, Value};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "
CREATE TABLE log (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, entry BLOB NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
",
}];

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

fn blob(m: &impl protobuf::Message) -> Value {
    Value::Blob(m.write_to_bytes().unwrap_or_default())
}

impl LogStore {
    /// Opens the log and rebuilds the in-memory view. A log whose entries do not follow each
    /// other, or whose metadata cannot be decoded, is refused.
    pub async fn open(path: &Path, applied_conf: Option<ConfState>) -> Result<LogStore, StoreError> {
        let db = Database::open(path, MIGRATIONS).await?;
        let meta = db.query(&Stmt::new("SELECT key, value FROM meta", vec![])).await?;
        let mut hs = HardState::default();
        let mut truncated = (0u64, 0u64);
        let mut conf = ConfState::default();
        for r in &meta.rows {
            let key = r.first().map(Value::render).unwrap_or_default();
            let Some(Value::Blob(v)) = r.get(1) else {
                continue;
            };
            match key.as_str() {
                "hard_state" => hs = decode(v, "hard state", path)?,
                "conf_state" => conf = decode(v, "conf state", path)?,
                "truncated" => {
                    let text = String::from_utf8_lossy(v);
                    let (i, t) = text.split_once(':').unwrap_or(("0", "0"));
                    truncated = (i.parse().unwrap_or(0), t.parse().unwrap_or(0));
                }
                _ => {}
            }
        }
        let rows = db.query(&Stmt::new("SELECT idx, term, entry FROM log ORDER BY idx", vec![])).await?;
        let mut entries = Vec::with_capacity(rows.rows.len());
        let mut expect = truncated.0 + 1;
        for r in &rows.rows {
            let idx = int(r, 0) as u64;
            let Some(Value::Blob(bytes)) = r.get(2) else {
                return Err(StoreError::Corrupt { path: path.display().to_string(), reason: format!("entry {idx} has no data") });
            };
            let e: Entry = decode(bytes, &format!("entry {idx}"), path)?;
            if idx != expect || e.index != idx || e.term != int(r, 1) as u64 {
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
                w.apply_snapshot(s).map_err(|e| StoreError::Guard(e.to_string()))?;
            }
            w.append(&entries).map_err(|e| StoreError::Guard(e.to_string()))?;
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
            let mut b = Batch::new();
            b.push("DELETE FROM log", vec![]);
            b.push("INSERT OR REPLACE INTO meta (key, value) VALUES ('hard_state', ?)", vec![blob(&hs)]);
            b.push("INSERT OR REPLACE INTO meta (key, value) VALUES ('conf_state', ?)", vec![blob(&conf)]);
            b.push("INSERT OR REPLACE INTO meta (key, value) VALUES ('truncated', ?)", vec![Value::Blob(b"1:1".to_vec())]);
            self.db.apply(&b).await?;
            let mut s = Snapshot::default();
            s.mut_metadata().index = 1;
            s.mut_metadata().term = 1;
            s.mut_metadata().set_conf_state(conf);
            self.mem.wl().apply_snapshot(s).map_err(|e| StoreError::Guard(e.to_string()))?;
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
            let mut b = Batch::new();
            if let Some(first) = entries.first() {
                b.push("DELETE FROM log WHERE idx >= ?", vec![Value::Int(first.index as i64)]);
            }
            for e in entries {
                b.push(
                    "INSERT INTO log (idx, term, entry) VALUES (?, ?, ?)",
                    vec![Value::Int(e.index as i64), Value::Int(e.term as i64), blob(e)],
                );
            }
            if let Some(hs) = hs {
                b.push("INSERT OR REPLACE INTO meta (key, value) VALUES ('hard_state', ?)", vec![blob(hs)]);
            }
            self.db.apply(&b).await?;
            let mut w = self.mem.wl();
            if !entries.is_empty() {
                w.append(entries).map_err(|e| StoreError::Guard(e.to_string()))?;
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
            let mut b = Batch::new();
            b.push("DELETE FROM log", vec![]);
            b.push("INSERT OR REPLACE INTO meta (key, value) VALUES ('hard_state', ?)", vec![blob(&hard)]);
            b.push("INSERT OR REPLACE INTO meta (key, value) VALUES ('conf_state', ?)", vec![blob(md.get_conf_state())]);
            b.push(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('truncated', ?)",
                vec![Value::Blob(format!("{}:{}", md.index, md.term).into_bytes())],
            );
            self.db.apply(&b).await?;
            let mut w = self.mem.wl();
            w.apply_snapshot(snap.clone()).map_err(|e| StoreError::Guard(e.to_string()))?;
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
            let mut b = Batch::new();
            b.push("DELETE FROM log WHERE idx <= ?", vec![Value::Int(index as i64)]);
            b.push(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('truncated', ?)",
                vec![Value::Blob(format!("{index}:{term}").into_bytes())],
            );
            b.push("INSERT OR REPLACE INTO meta (key, value) VALUES ('conf_state', ?)", vec![blob(conf)]);
            self.db.apply(&b).await?;
            self.mem.wl().compact(index).map_err(|e| StoreError::Guard(e.to_string()))?;
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
            let mut b = Batch::new();
            let mut changed = Vec::new();
            for e in entries {
                if matches!(e.get_entry_type(), EntryType::EntryConfChange | EntryType::EntryConfChangeV2) {
                    let mut blank = Entry { index: e.index, term: e.term, ..Default::default() };
                    blank.set_entry_type(EntryType::EntryNormal);
                    b.push("UPDATE log SET entry = ? WHERE idx = ?", vec![blob(&blank), Value::Int(e.index as i64)]);
                    changed.push(blank);
                }
            }
            b.push("INSERT OR REPLACE INTO meta (key, value) VALUES ('conf_state', ?)", vec![blob(conf)]);
            self.db.apply(&b).await?;
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
