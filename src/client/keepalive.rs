//! Idle HTTP/1.1 connections kept for reuse, per target. Members talk to each other all the
//! time (forwarded requests, database reads and writes, image and instance traffic): a fresh
//! TCP and mutual-TLS handshake per request would cost more than most of those requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;

/// Idle connections kept per target; more are closed when they come back.
const MAX_IDLE_PER_TARGET: usize = 8;

/// How long a kept connection may take to say it can carry the next request.
const READY_WAIT: Duration = Duration::from_millis(200);

#[derive(Default)]
pub struct KeepAlive {
    idle: Mutex<HashMap<String, Vec<SendRequest<Full<Bytes>>>>>,
}

impl KeepAlive {
    pub fn new() -> KeepAlive {
        KeepAlive::default()
    }

    /// An idle connection to `target` that can take a request now, if one is kept.
    pub async fn take(&self, target: &str) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let mut sender = self.idle.lock().ok()?.get_mut(target)?.pop()?;
            if sender.is_closed() {
                continue;
            }
            if let Ok(Ok(())) = tokio::time::timeout(READY_WAIT, sender.ready()).await {
                return Some(sender);
            }
        }
    }

    /// Keeps `sender` for the next request to `target` (unless the connection is gone).
    pub fn put(&self, target: &str, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            let kept = idle.entry(target.to_string()).or_default();
            if kept.len() < MAX_IDLE_PER_TARGET {
                kept.push(sender);
            }
        }
    }

    /// Closes every kept connection (the member's identity or the peers changed).
    pub fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}
