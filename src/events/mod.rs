//! The event hub: every operation, lifecycle and logging event this member produces (and, in a
//! cluster, relays from the other members) goes through one broadcast channel that
//! `/1.0/events` listeners subscribe to. A handle every service holds.
//!
//! May call: api (event types), util.

pub mod logging;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::broadcast;

use crate::api::{Event, EventRequestor, LifecycleEvent};
use crate::util::time;

pub const TYPE_OPERATION: &str = "operation";
pub const TYPE_LIFECYCLE: &str = "lifecycle";
pub const TYPE_LOGGING: &str = "logging";

#[derive(Debug)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<Event>>,
    location: RwLock<String>,
    /// Listeners that asked for `logging` events: without any, log records are not turned
    /// into events at all (most listeners, such as other members, only want operations).
    logging_listeners: Arc<AtomicUsize>,
    /// Subscribers that are other members' event streams (not clients).
    member_streams: Arc<AtomicUsize>,
}

/// Held by a listener while it counts as a `logging` listener or a member stream.
pub struct ListenerGuard(Arc<AtomicUsize>);

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new()
    }
}

impl EventHub {
    pub fn new() -> EventHub {
        let (tx, _) = broadcast::channel(4096);
        EventHub {
            tx,
            location: RwLock::new("none".into()),
            logging_listeners: Arc::new(AtomicUsize::new(0)),
            member_streams: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The `location` stamped on this member's events: its name, or `none` when standalone.
    pub fn set_location(&self, name: &str) {
        if let Ok(mut l) = self.location.write() {
            *l = name.to_string();
        }
    }

    pub fn location(&self) -> String {
        self.location.read().map(|l| l.clone()).unwrap_or_else(|_| "none".into())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Registers a listener for `logging` events until the returned value is dropped.
    pub fn want_logging(&self) -> ListenerGuard {
        self.logging_listeners.fetch_add(1, Ordering::SeqCst);
        ListenerGuard(self.logging_listeners.clone())
    }

    /// Registers another member's event stream until the returned value is dropped.
    pub fn member_stream(&self) -> ListenerGuard {
        self.member_streams.fetch_add(1, Ordering::SeqCst);
        ListenerGuard(self.member_streams.clone())
    }

    /// Whether a client (not another member) listens: relayed events are only worth
    /// decoding then.
    pub fn has_client_listeners(&self) -> bool {
        self.tx.receiver_count() > self.member_streams.load(Ordering::SeqCst)
    }

    pub fn wants_logging(&self) -> bool {
        self.logging_listeners.load(Ordering::SeqCst) > 0
    }

    /// Publishes an event produced on this member.
    pub fn send(&self, kind: &str, project: &str, metadata: serde_json::Value) {
        let event = Event {
            kind: kind.into(),
            timestamp: time::rfc3339(time::now_nanos()),
            metadata,
            location: self.location(),
            project: project.into(),
        };
        // An error only means nobody listens right now.
        let _ = self.tx.send(Arc::new(event));
    }

    /// Re-publishes an event received from another member, keeping its origin.
    pub fn relay(&self, event: Event) {
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn lifecycle(&self, project: &str, action: &str, source: String, requestor: Option<EventRequestor>) {
        let ev = LifecycleEvent { action: action.into(), source, context: None, requestor };
        self.send(TYPE_LIFECYCLE, project, serde_json::to_value(ev).unwrap_or_default());
    }
}
