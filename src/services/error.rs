//! The services' error: the class of failure (each answers with one HTTP status) with the
//! message a user reads, or a lower layer's error kept as it is, its status derived from it.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// Another member's answer, its status unchanged.
    #[error("{message}")]
    Remote { status: u16, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::Error),
    #[error(transparent)]
    Instance(#[from] crate::instance::InstanceError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Setting(#[from] crate::config::InvalidSetting),
    #[error(transparent)]
    Address(#[from] crate::config::AddressError),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: String, source: std::io::Error },
}

impl Error {
    /// The HTTP status the API answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) | Error::Setting(_) | Error::Address(_) => 400,
            Error::Forbidden(_) => 403,
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::PreconditionFailed(_) => 412,
            Error::Unavailable(_) => 503,
            Error::Internal(_) | Error::Tls(_) | Error::Io { .. } => 500,
            Error::Remote { status, .. } => *status,
            Error::Store(e) => e.status(),
            Error::Cluster(e) => e.status(),
            Error::Instance(e) => e.status(),
            Error::Image(e) => e.status(),
            Error::Storage(e) => e.status(),
            Error::Client(e) => e.status(),
        }
    }

    /// An I/O failure on `path` while doing `what`.
    pub fn io<'a>(what: &'static str, path: &'a std::path::Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |source| Error::Io { what, path: path.display().to_string(), source }
    }

    /// The answer to an If-Match that no longer matches.
    pub fn etag_mismatch(current: &str, given: &str) -> Error {
        Error::PreconditionFailed(format!("ETag doesn't match: {current} vs {given}"))
    }
}

/// A blocking task that could not be joined (it panicked or the runtime is stopping).
impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("a background task failed: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
