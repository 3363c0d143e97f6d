//! The HTTP client used by `lxc` (and, in a cluster, by members talking to each other): requests
//! over the unix socket or HTTPS with a client certificate and a pinned server certificate (one
//! connection per request, or kept connections reused between members), LXD envelope decoding,
//! operation waiting and the events websocket.

pub mod config;
pub mod connection;
pub mod keepalive;
pub mod preseed;

pub use connection::{Connection, Reply, Target};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Failed to connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{0}")]
    Api(String),
    #[error("{0}")]
    Http(String),
    #[error("invalid response from server: {0}")]
    Decode(String),
    #[error("{0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, ClientError>;
