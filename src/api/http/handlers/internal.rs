//! `/internal/*` on the unix socket: readiness and shutdown for `lxd waitready` and
//! `lxd shutdown`.

use super::HResult;
use crate::api::http::response::Response;
use crate::daemon::Daemon;

pub async fn ready(daemon: &Daemon) -> HResult {
    if daemon.is_shutting_down() {
        return Err(Response::error(503, "LXD daemon is shutting down"));
    }
    Ok(Response::empty())
}

pub async fn shutdown(daemon: &Daemon) -> HResult {
    daemon.begin_shutdown();
    Ok(Response::empty())
}
