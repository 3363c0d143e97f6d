//! The server configuration schema: which keys exist, where each one is stored (this member's
//! local database or the cluster-wide one), defaults, hidden keys and validation with LXD's
//! messages, plus the address forms `core.https_address` and `cluster.https_address` take.
//! Pure data and functions: every layer that reads a setting can use it.
//!
//! May call: nothing else in rxd.

pub mod address;
pub mod keys;

pub use address::{AddressError, cluster_address, host_ip, is_address_covered, is_wildcard, parse_address};
pub use keys::{InvalidSetting, Scope, default, effective, effective_i64, is_hidden, parse_expiry, scope, validate};
