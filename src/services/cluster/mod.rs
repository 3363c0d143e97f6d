//! The cluster as an API resource: membership (bootstrap, join, admission, removal and the
//! internal endpoints members call on each other), members, groups and join tokens.

pub mod groups;
pub mod members;
pub mod membership;
pub mod tokens;
