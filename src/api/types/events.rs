//! `/1.0/events` messages.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: String,
    pub metadata: serde_json::Value,
    #[serde(default)]
    pub location: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LifecycleEvent {
    pub action: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requestor: Option<EventRequestor>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EventRequestor {
    pub username: String,
    pub protocol: String,
    pub address: String,
}
