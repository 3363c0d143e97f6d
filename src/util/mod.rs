//! Small helpers with no knowledge of the rest of rxd.
//!
//! May call: nothing else in rxd.

pub mod secret;
pub mod shutdown;
pub mod time;
pub mod tree;

/// A boxed, sendable future. Returned by the storage layer's async methods so that tasks
/// holding them are provably `Send` (works around the compiler's higher-ranked lifetime limits
/// with sqlx executors).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
