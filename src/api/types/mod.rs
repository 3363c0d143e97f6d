//! Wire types, one file per API resource, with LXD's JSON field names.

pub mod certificates;
pub mod cluster;
pub mod events;
pub mod images;
pub mod init;
pub mod instances;
pub mod operations;
pub mod profiles;
pub mod projects;
pub mod response;
pub mod server;
pub mod storage;

pub use certificates::*;
pub use cluster::*;
pub use events::*;
pub use images::*;
pub use init::*;
pub use instances::*;
pub use operations::*;
pub use profiles::*;
pub use projects::*;
pub use response::*;
pub use server::*;
pub use storage::*;

/// Renders a JSON config value as LXD stores it: strings as-is, other scalars as their text.
pub fn config_value_to_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Deserializes JSON `null` as the type's default: the Go client sends `null` for empty maps
/// and lists.
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
