//! The HTTP client used by `lxc` (and, in a cluster, by members talking to each other): requests
//! over the unix socket or HTTPS with a client certificate and a pinned server certificate (one
//! connection per request, or kept connections reused between members), LXD envelope decoding,
//! operation waiting and the events websocket.
//!
//! May call: api, config, tls, util.

pub mod config;
pub mod connection;
pub mod keepalive;
pub mod preseed;

pub use connection::{Connection, Reply, Target};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Failed to connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The server's error answer, with its status (0: a failed operation, which has none).
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("{0}")]
    Http(String),
    #[error("invalid response from server: {0}")]
    Decode(String),
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// The status to answer with when this error passes on (a member relaying what another
    /// member said keeps its status; a member that cannot be reached is unavailable).
    pub fn status(&self) -> u16 {
        match self {
            ClientError::Api { status, .. } if *status >= 400 => *status,
            ClientError::Api { .. } => 400,
            ClientError::Connect { .. } | ClientError::Http(_) => 503,
            ClientError::Decode(_) | ClientError::Config(_) => 500,
        }
    }

    pub fn api(status: u16, message: impl Into<String>) -> ClientError {
        ClientError::Api { status, message: message.into() }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;
