//! Helpers shared by coord's integration tests.

#![allow(dead_code)]

pub mod zk;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Polls `check` every 25 ms until it holds, panicking with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
