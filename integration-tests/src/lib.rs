//! The test harness: a real cluster (master and agents) on loopback sockets,
//! running real processes, plus the tools tests need around it.
//!
//! * [`Cluster`]: starts a master and agents through their `start`
//!   functions, each with its own shutdown trigger so a test can stop or
//!   restart one of them; agents can dial the master through a [`FaultProxy`]
//!   to cut and restore their link.
//! * [`TestFramework`]: a framework on the SDK with helpers that wait for
//!   the events a test expects.
//! * [`Marathon`]: the bundled Marathon on the cluster, with a small
//!   client for its REST API.
//! * [`HealthServer`]: a tiny HTTP server for health checks, whose
//!   answers files toggle.
//! * [`assert_eventually!`]: polls a condition instead of sleeping.

mod cluster;
mod framework;
mod health_server;
mod marathon;
mod proxy;

pub use cluster::{Cluster, ClusterBuilder};
pub use framework::TestFramework;
pub use health_server::HealthServer;
pub use marathon::{EventStream, Marathon, MarathonAnswer};
pub use proxy::FaultProxy;

/// Polls `$cond` (an async expression yielding `bool`) every 20 ms until it
/// holds, panicking with the message after `$timeout`.
#[macro_export]
macro_rules! assert_eventually {
    ($timeout:expr, $cond:expr, $($msg:tt)+) => {{
        let deadline = tokio::time::Instant::now() + $timeout;
        loop {
            if $cond {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!($($msg)+);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }};
}
