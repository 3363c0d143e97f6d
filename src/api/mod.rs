//! The LXD 5.0 REST API as data: the wire types (serde) shared by the client, the HTTP server
//! and the members talking to each other, the response envelope, the API extensions rxd
//! announces, and ETags as LXD computes them. No behaviour: the server is `crate::server`.
//!
//! May call: util.

pub mod extensions;
pub mod types;

pub use types::*;

/// The LXD version rxd answers as: the stock 5.0 client's feature checks key on it.
pub const SERVER_VERSION: &str = "5.0.2";

/// The ETag of an object: SHA-256 of its JSON.
pub fn etag_of<T: serde::Serialize>(value: &T) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(value).unwrap_or_default();
    format!("{:x}", Sha256::digest(json))
}
