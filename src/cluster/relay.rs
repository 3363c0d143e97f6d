//! Event relay: every member keeps an event-stream connection to every other member and
//! re-publishes what it hears on its own `/1.0/events`, so a client watching any member sees
//! the whole cluster (the stock client waits for operations this way). A member serving another
//! member's stream sends only its own events, so nothing goes round in circles.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::runtime::Runtime;
use crate::api::Event;

pub fn spawn(rt: Arc<Runtime>) {
    tokio::spawn(async move {
        let mut links: HashMap<u64, (String, JoinHandle<()>)> = HashMap::new();
        loop {
            if rt.is_stopped() {
                break;
            }
            let members = rt.members();
            links.retain(|id, (address, task)| {
                let keep = members.iter().any(|m| m.id == *id && m.address == *address) && !task.is_finished();
                if !keep {
                    task.abort();
                }
                keep
            });
            for m in members.iter().filter(|m| m.id != rt.id && !m.address.is_empty()) {
                links.entry(m.id).or_insert_with(|| (m.address.clone(), tokio::spawn(follow(rt.clone(), m.address.clone()))));
            }
            // Links are re-checked when the member list changes, and every few seconds to
            // reconnect broken ones.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3)) => {}
                _ = rt.members_changed.notified() => {}
            }
        }
        for (_, (_, task)) in links {
            task.abort();
        }
    });
}

/// Follows one member's event stream until it breaks.
async fn follow(rt: Arc<Runtime>, address: String) {
    let events = &rt.env.events;
    let Ok(conn) = rt.connect(&address) else { return };
    let Ok(Ok(mut ws)) =
        tokio::time::timeout(Duration::from_secs(3), conn.websocket("/1.0/events?all-projects=true&type=operation,lifecycle"))
            .await
    else {
        return;
    };
    tracing::debug!(member = %address, "following the member's events");
    while let Some(Ok(msg)) = ws.next().await {
        if let tokio_tungstenite::tungstenite::Message::Text(text) = msg
            && events.has_client_listeners()
            && let Ok(event) = serde_json::from_str::<Event>(&text)
            && event.location != events.location()
        {
            events.relay(event);
        }
    }
}
