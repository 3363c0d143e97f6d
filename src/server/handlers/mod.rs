//! One file per API resource, one type per endpoint: each parses its request into typed fields
//! (LXD's error for a bad body) and runs it by calling one service function.

pub mod certificates;
pub mod cluster;
pub mod events;
pub mod exec;
pub mod files;
pub mod images;
pub mod instances;
pub mod internal;
pub mod operations;
pub mod profiles;
pub mod projects;
pub mod server;
pub mod snapshots;
pub mod storage;
