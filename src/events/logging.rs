//! A `tracing` layer that turns this crate's log records into `logging` events, so
//! `lxc monitor --type logging` shows the daemon's log as LXD's does.

use std::sync::Arc;

use super::{EventHub, TYPE_LOGGING};

/// Publishes log records on `hub` while someone listens for them.
pub struct LoggingLayer {
    pub hub: Arc<EventHub>,
}

struct FieldCollector {
    message: String,
    context: serde_json::Map<String, serde_json::Value>,
}

impl tracing::field::Visit for FieldCollector {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.context.insert(field.name().into(), value.into());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.context.insert(field.name().into(), text.into());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LoggingLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        if !self.hub.wants_logging() || !event.metadata().target().starts_with("rxd") {
            return;
        }
        let mut fields = FieldCollector { message: String::new(), context: serde_json::Map::new() };
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        let metadata = serde_json::json!({
            "message": fields.message,
            "level": level,
            "context": fields.context,
        });
        self.hub.send(TYPE_LOGGING, "", metadata);
    }
}
