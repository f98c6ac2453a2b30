//! Wall-clock helpers for the timestamps carried on the wire.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as Mesos puts in `TaskStatus.timestamp`.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Nanoseconds since the Unix epoch, as in Mesos' `TimeInfo`.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
