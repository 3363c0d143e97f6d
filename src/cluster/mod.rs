//! Cluster membership: bootstrapping a cluster, joining one and admitting joiners, join tokens,
//! database roles and their rebalancing, heartbeats and member state, removal, rolling
//! upgrades, forwarding and event relay between members, the raft transport, and the
//! replicated global database seen from any member (locally on the leader, forwarded to it
//! elsewhere).
//!
//! May call: daemon (state), raft, store, client, tls.

pub mod admin;
pub mod db;
pub mod evacuate;
pub mod forward;
pub mod groups;
pub mod heartbeat;
pub mod images;
pub mod members;
pub mod membership;
pub mod moving;
pub mod placement;
pub mod pools;
pub mod rebalance;
pub mod relay;
pub mod removal;
pub mod roles;
pub mod runtime;
pub mod tokens;
pub mod transport;
pub mod upgrade;

/// Raft role numbers as LXD stores them in `raft_nodes.role`.
pub const ROLE_VOTER: i64 = 0;
pub const ROLE_STANDBY: i64 = 1;
pub const ROLE_SPARE: i64 = 2;

/// The user agent marking member-to-member requests.
pub const NOTIFIER_AGENT: &str = "lxd-cluster-notifier";
