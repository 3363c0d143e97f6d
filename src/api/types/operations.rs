//! `/1.0/operations`: the operation object and its status codes.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpStatus {
    Pending,
    Running,
    Cancelling,
    Success,
    Failure,
    Cancelled,
}

impl OpStatus {
    pub fn code(self) -> i64 {
        match self {
            OpStatus::Running => 103,
            OpStatus::Cancelling => 104,
            OpStatus::Pending => 105,
            OpStatus::Success => 200,
            OpStatus::Failure => 400,
            OpStatus::Cancelled => 401,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            OpStatus::Running => "Running",
            OpStatus::Cancelling => "Cancelling",
            OpStatus::Pending => "Pending",
            OpStatus::Success => "Success",
            OpStatus::Failure => "Failure",
            OpStatus::Cancelled => "Cancelled",
        }
    }
    pub fn is_final(self) -> bool {
        self.code() >= 200
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Operation {
    pub id: String,
    pub class: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    pub status: String,
    pub status_code: i64,
    pub resources: serde_json::Value,
    pub metadata: serde_json::Value,
    pub may_cancel: bool,
    pub err: String,
    pub location: String,
}
