//! Endpoint handlers, one file per API resource. Each turns a [`Request`] into a call on the
//! daemon and the daemon's answer into a [`Response`].

pub mod certificates;
pub mod cluster;
pub mod exec;
pub mod files;
pub mod forwarding;
pub mod images;
pub mod instances;
pub mod internal;
pub mod operations;
pub mod profiles;
pub mod projects;
pub mod server;
pub mod snapshots;
pub mod storage;

use super::request::Request;
use super::response::Response;

/// Handlers return the response on both paths so `?` works for request and daemon errors.
pub type HResult = Result<Response, Response>;

/// A list of URLs or, with `?recursion=1`, of objects.
pub fn list_response<T: serde::Serialize>(req: &Request, items: Vec<T>, url: impl Fn(&T) -> String) -> Response {
    if req.recursion() > 0 { Response::sync(items) } else { Response::sync(items.iter().map(url).collect::<Vec<_>>()) }
}

/// PATCH as LXD does it for profiles and instances: the config keys and devices sent are laid
/// over the current ones instead of replacing them.
pub fn patch_over(
    config: &mut std::collections::BTreeMap<String, String>,
    devices: &mut crate::api::DevicesMap,
    current_config: &std::collections::BTreeMap<String, String>,
    current_devices: &crate::api::DevicesMap,
) {
    let mut merged = current_config.clone();
    merged.append(config);
    *config = merged;
    let mut merged = current_devices.clone();
    merged.append(devices);
    *devices = merged;
}
