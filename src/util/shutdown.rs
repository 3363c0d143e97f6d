//! The daemon's stop signal: raised once (a request, a signal, or a fatal fault with its
//! reason), awaited by every long-running task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    requested: AtomicBool,
    signal: tokio::sync::watch::Sender<bool>,
    /// Why the daemon stops on its own, when it does.
    fatal: Mutex<Option<String>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            inner: Arc::new(Inner {
                requested: AtomicBool::new(false),
                signal: tokio::sync::watch::channel(false).0,
                fatal: Mutex::new(None),
            }),
        }
    }

    /// Starts the shutdown (once; later calls change nothing).
    pub fn begin(&self) {
        if !self.inner.requested.swap(true, Ordering::SeqCst) {
            self.inner.signal.send_replace(true);
        }
    }

    /// Stops the daemon because it cannot go on; the first reason given is kept.
    pub fn fail(&self, reason: &str) {
        if let Ok(mut f) = self.inner.fatal.lock() {
            f.get_or_insert_with(|| reason.to_string());
        }
        self.begin();
    }

    pub fn fatal_reason(&self) -> Option<String> {
        self.inner.fatal.lock().ok()?.clone()
    }

    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Resolves once the shutdown has begun (at once if it already has).
    pub async fn requested(&self) {
        let mut rx = self.inner.signal.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}
