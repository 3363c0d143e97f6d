//! The response envelope every LXD endpoint returns (sync, async or error), with all fields
//! always present.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub status_code: i64,
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub error_code: i64,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub metadata: serde_json::Value,
}

impl Envelope {
    pub fn sync(metadata: serde_json::Value) -> Envelope {
        Envelope {
            kind: "sync".into(),
            status: "Success".into(),
            status_code: 200,
            operation: String::new(),
            error_code: 0,
            error: String::new(),
            metadata,
        }
    }

    pub fn async_op(operation_url: String, metadata: serde_json::Value) -> Envelope {
        Envelope {
            kind: "async".into(),
            status: "Operation created".into(),
            status_code: 100,
            operation: operation_url,
            error_code: 0,
            error: String::new(),
            metadata,
        }
    }

    pub fn error(code: u16, message: impl Into<String>) -> Envelope {
        Envelope {
            kind: "error".into(),
            status: String::new(),
            status_code: 0,
            operation: String::new(),
            error_code: i64::from(code),
            error: message.into(),
            metadata: serde_json::Value::Null,
        }
    }
}
