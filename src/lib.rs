//! rxd: an LXD-compatible clustered system-container manager in one multi-call binary.
//!
//! Layers, top to bottom (calls only go downwards):
//! `applets` (in the binary) → `client` | `api` → `daemon` → `store`, `tls`, `util`.

pub mod api;
pub mod client;
pub mod cluster;
pub mod daemon;
pub mod image;
pub mod instance;
pub mod raft;
pub mod store;
pub mod tls;
pub mod util;
