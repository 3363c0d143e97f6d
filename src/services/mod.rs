//! The member's work, one module per resource: server configuration, trust and certificates,
//! profiles, projects, storage pools, images, instances, the cluster as a resource
//! (membership, members, groups, join tokens), operations, events and `lxd sql`. Each service
//! holds only the handles it needs (the databases, the event hub, the operations registry,
//! the container driver, the cluster); [`Member`] is where they are made and wired, once.
//! Nothing here knows about HTTP: the HTTP server parses requests and calls one function here.
//!
//! May call: storage, instance, image, cluster, client, operations, events, raft, store, api,
//! config, paths, tls, util.

pub mod certificates;
pub mod cluster;
pub mod error;
pub mod events;
pub mod identity;
pub mod images;
pub mod instances;
pub mod member;
pub mod operations;
pub mod profiles;
pub mod projects;
pub mod server_config;
pub mod sql;
pub mod storage_pools;
pub mod trust;
pub mod validation;

pub use error::{Error, Result};
pub use member::{Member, StartError};

/// Architecture id as LXD numbers them (x86_64 = 2, aarch64 = 4).
pub fn architecture_id() -> i64 {
    match std::env::consts::ARCH {
        "x86" => 1,
        "x86_64" => 2,
        "arm" => 3,
        "aarch64" => 4,
        "powerpc64" => 6,
        "s390x" => 7,
        _ => 0,
    }
}

/// How many times a merge (a PATCH without If-Match) is tried on fresh data when another
/// writer changed the object between its read and its write.
const MERGE_ATTEMPTS: usize = 8;

/// Runs a read-merge-write whose write is guarded by what it read until it lands: a write that
/// lost the race to another is tried again on fresh data, a few times.
pub async fn merge_until_unchanged<F, Fut>(mut attempt: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    for _ in 1..MERGE_ATTEMPTS {
        match attempt().await {
            Err(Error::Store(crate::store::StoreError::PreconditionFailed(_))) => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            other => return other,
        }
    }
    attempt().await
}

/// Another member's answer to a request this member sent on its own behalf: success, or its
/// error with its status unchanged.
pub fn answer_of(reply: &crate::cluster::Forwarded) -> Result<()> {
    if reply.status < 300 { Ok(()) } else { Err(Error::Remote { status: reply.status, message: reply.error_text() }) }
}
