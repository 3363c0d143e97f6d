//! rxd: an LXD-compatible clustered system-container manager in one multi-call binary.
//!
//! The crate is layered, and calls only go down the layers. [`LAYERS`] is the order, top first;
//! a module may use the modules below its own layer and nothing above it or beside it
//! (`tests/layering.rs` reads every `crate::` path and fails otherwise). Where a lower layer
//! must reach up, it defines a trait the upper one implements (`store::global::Replicated`,
//! implemented by the cluster's replicated database; `services::server_config::ListenerControl`,
//! implemented by the HTTP server's listeners).
//!
//! ```text
//! applets (the binary)                  argv → a call into the library, output, exit code
//! server                                the HTTP API: one route table, typed actions, forwarding
//! services                              the member's work, one module per resource
//! storage | instance | image            pool drivers, the container driver, image files
//! cluster                               raft transport, replicated db, directory, forwarder
//! client                                the HTTP client (lxc, and members to members)
//! operations                            the registry of this member's operations
//! events                                the event hub
//! raft                                  the raft-rs driver
//! store                                 every SQL statement
//! api | config | paths | tls            wire types, the settings schema, LXD_DIR, certificates
//! util                                  small helpers
//! ```

pub mod api;
pub mod client;
pub mod cluster;
pub mod config;
pub mod events;
pub mod image;
pub mod instance;
pub mod operations;
pub mod paths;
pub mod raft;
pub mod server;
pub mod services;
pub mod storage;
pub mod store;
pub mod tls;
pub mod util;

/// The layers, top first: a module may use only modules of the layers below its own.
pub const LAYERS: &[&[&str]] = &[
    &["server"],
    &["services"],
    &["storage", "instance", "image"],
    &["cluster"],
    &["client"],
    &["operations"],
    &["events"],
    &["raft"],
    &["store"],
    &["api", "config", "paths", "tls"],
    &["util"],
];
