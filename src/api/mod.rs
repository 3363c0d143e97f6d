//! The LXD 5.0 REST API: the wire types (shared by the client and the daemon), the response
//! envelope, and the HTTP server (routing, authentication, operations, events).

pub mod extensions;
pub mod http;
pub mod types;

pub use types::*;

/// The LXD version rxd answers as: the stock 5.0 client's feature checks key on it.
pub const SERVER_VERSION: &str = "5.0.2";
