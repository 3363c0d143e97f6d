//! The member directory: every admitted member with its address, state and when it last
//! answered a heartbeat, held in memory so that finding a live member costs no database read.
//! The leader fills it from what it records each heartbeat round; every other member takes the
//! leader's copy from the heartbeats it receives; membership changes on this member (a join, a
//! rename, a removal) update it at once. Until the first of those, it is read once from the
//! database.

use std::sync::RwLock;
use std::time::Duration;

use crate::api::DirectoryEntry;
use crate::store::global::nodes::{self as store_nodes, Node};
use crate::util::time;

/// A member as the directory knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub id: i64,
    pub name: String,
    pub address: String,
    /// `nodes.state`: created, pending or evacuated.
    pub state: i64,
    /// When it last answered a heartbeat, in nanoseconds since the epoch (0: never).
    pub heartbeat: i64,
}

impl Peer {
    pub fn from_node(n: &Node) -> Peer {
        Peer {
            id: n.id,
            name: n.name.clone(),
            address: n.address.clone(),
            state: n.state,
            heartbeat: time::parse_rfc3339(&n.heartbeat).unwrap_or(0),
        }
    }

    pub fn from_entry(e: &DirectoryEntry) -> Peer {
        Peer {
            id: e.id as i64,
            name: e.name.clone(),
            address: e.address.clone(),
            state: e.state,
            heartbeat: time::parse_rfc3339(&e.heartbeat).unwrap_or(0),
        }
    }

    pub fn entry(&self) -> DirectoryEntry {
        DirectoryEntry {
            id: self.id as u64,
            name: self.name.clone(),
            address: self.address.clone(),
            state: self.state,
            heartbeat: if self.heartbeat > 0 { time::rfc3339(self.heartbeat) } else { String::new() },
        }
    }

    /// Whether the last heartbeat is within `threshold` of `now` (nanoseconds).
    pub fn fresh(&self, threshold: Duration, now: i64) -> bool {
        self.heartbeat > 0 && now - self.heartbeat <= threshold.as_nanos() as i64
    }

    /// An admitted member (not a joiner still catching up).
    pub fn admitted(&self) -> bool {
        self.state != store_nodes::STATE_PENDING
    }
}

#[derive(Default)]
struct State {
    /// Whether the directory holds a complete view (from the database or a heartbeat).
    known: bool,
    peers: Vec<Peer>,
    threshold: Duration,
}

#[derive(Default)]
pub struct Directory {
    state: RwLock<State>,
}

impl Directory {
    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.state.read() {
            Ok(s) => f(&s),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn write(&self, f: impl FnOnce(&mut State)) {
        match self.state.write() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Every member, when the directory knows them.
    pub fn peers(&self) -> Option<Vec<Peer>> {
        self.read(|s| s.known.then(|| s.peers.clone()))
    }

    pub fn threshold(&self) -> Duration {
        self.read(|s| s.threshold)
    }

    /// Replaces the whole view (a heartbeat's copy, or what the leader just recorded).
    pub fn replace(&self, mut peers: Vec<Peer>, threshold: Duration) {
        peers.sort_by_key(|p| p.id);
        self.write(|s| {
            s.peers = peers;
            s.threshold = threshold;
            s.known = true;
        });
    }

    /// Adds or updates one member (a joiner admitted, a row re-read).
    pub fn upsert(&self, peer: Peer) {
        self.write(|s| {
            match s.peers.iter_mut().find(|p| p.id == peer.id) {
                Some(p) => *p = peer,
                None => s.peers.push(peer),
            }
            s.peers.sort_by_key(|p| p.id);
        });
    }

    pub fn remove(&self, id: i64) {
        self.write(|s| s.peers.retain(|p| p.id != id));
    }

    pub fn rename(&self, old: &str, new: &str) {
        self.write(|s| {
            for p in s.peers.iter_mut().filter(|p| p.name == old) {
                p.name = new.to_string();
            }
        });
    }

    /// Records that members `ids` answered at `now`; returns those that had been offline
    /// (their return is news the other members should hear at once).
    pub fn heard(&self, ids: &[i64], now: i64) -> Vec<i64> {
        let mut revived = Vec::new();
        self.write(|s| {
            let threshold = s.threshold;
            for p in s.peers.iter_mut().filter(|p| ids.contains(&p.id)) {
                if !p.fresh(threshold, now) {
                    revived.push(p.id);
                }
                p.heartbeat = now;
            }
        });
        revived
    }

    /// Forgets everything (the member left its cluster).
    pub fn clear(&self) {
        self.write(|s| *s = State::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: i64, heartbeat: i64) -> Peer {
        Peer { id, name: format!("node{id}"), address: format!("127.0.0.{id}:8443"), state: 0, heartbeat }
    }

    #[test]
    fn liveness_follows_heartbeats_and_returns_are_reported() {
        let d = Directory::default();
        assert!(d.peers().is_none(), "unknown until filled");
        let second = 1_000_000_000;
        d.replace(vec![peer(2, 10 * second), peer(1, 30 * second)], Duration::from_secs(20));
        let peers = d.peers().unwrap_or_default();
        assert_eq!(peers.iter().map(|p| p.id).collect::<Vec<_>>(), vec![1, 2]);
        let now = 40 * second;
        assert!(peers[0].fresh(d.threshold(), now));
        assert!(!peers[1].fresh(d.threshold(), now), "30 s without a heartbeat is offline");
        assert_eq!(d.heard(&[1, 2], now), vec![2], "node2 comes back, node1 never left");
        assert!(d.peers().unwrap_or_default().iter().all(|p| p.fresh(d.threshold(), now)));
        d.rename("node2", "n2");
        d.remove(1);
        assert_eq!(d.peers().unwrap_or_default().iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec!["n2"]);
    }
}
