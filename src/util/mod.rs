//! Small helpers with no knowledge of the rest of rxd.

pub mod time;
