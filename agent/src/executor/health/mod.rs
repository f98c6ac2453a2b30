//! Health checks and general checks, run next to the task by its
//! supervisor (the executor shim, or the POSIX containerizer in-process).
//!
//! * [`spec`]: a task's `HealthCheck` and `CheckInfo` read into plain
//!   values with Mesos' defaults (pure);
//! * [`tracker`]: what a health check's results mean (pure, Mesos' grace
//!   period and consecutive failures);
//! * [`probe`]: one probe against a [`probe::Target`], the seam between a
//!   check and where the task runs (the host, or a Docker container's
//!   namespaces);
//! * [`start`]: the loops that run them on their schedule, publishing the
//!   task's [`HealthStatus`] on a `watch` whenever a verdict changes, and
//!   asking once for the task to be killed when the health check says so.

pub mod probe;
pub mod spec;
pub mod tracker;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use spec::{of_task, CheckError, CheckSpec, Checks, HealthSpec, Probe, Schedule};

use crate::executor::protocol::{CheckResult, HealthStatus};
use probe::{RawResult, Target};
use tracker::{HealthTracker, Verdict};

/// The checks of one task, running.
pub struct Running {
    /// The task's health and check state, changed on every new verdict.
    pub status: watch::Receiver<HealthStatus>,
    /// The cause, once the health check wants the task killed.
    pub kill: oneshot::Receiver<String>,
    loops: Vec<JoinHandle<()>>,
}

impl Running {
    /// Takes the kill request out, for a supervisor that waits on it apart
    /// from the rest (a later take gets a request that never comes).
    pub fn take_kill(&mut self) -> oneshot::Receiver<String> {
        std::mem::replace(&mut self.kill, oneshot::channel().1)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for l in &self.loops {
            l.abort();
        }
    }
}

/// Starts `checks` against `target` for a task started at `started`;
/// `previous` is what was reported before (a supervisor taking over), so
/// that an unchanged verdict is not reported again.
pub fn start(
    checks: &Checks,
    target: Arc<dyn Target>,
    started: Instant,
    previous: HealthStatus,
) -> Running {
    let (status_tx, status) = watch::channel(previous.clone());
    let (kill_tx, kill) = oneshot::channel();
    let mut loops = Vec::new();
    if let Some(health) = checks.health.clone() {
        let tracker = HealthTracker::new(
            started,
            health.grace_period,
            health.consecutive_failures,
            previous.healthy,
        );
        loops.push(tokio::spawn(health_loop(
            health,
            tracker,
            target.clone(),
            started,
            status_tx.clone(),
            kill_tx,
        )));
    }
    if let Some(check) = checks.check.clone() {
        loops.push(tokio::spawn(check_loop(check, target, started, status_tx)));
    }
    Running {
        status,
        kill,
        loops,
    }
}

async fn health_loop(
    spec: HealthSpec,
    mut tracker: HealthTracker,
    target: Arc<dyn Target>,
    started: Instant,
    status: watch::Sender<HealthStatus>,
    kill: oneshot::Sender<String>,
) {
    tokio::time::sleep_until((started + spec.schedule.delay).into()).await;
    loop {
        let probed = probe::run(&spec.probe, &target, spec.schedule.timeout).await;
        match tracker.on(Instant::now(), probed.outcome) {
            Verdict::Nothing => {}
            Verdict::Report { healthy, cause } => {
                tracing::info!(healthy, ?cause, "health changed");
                status.send_modify(|s| {
                    s.healthy = Some(healthy);
                    s.cause = cause;
                });
            }
            Verdict::Kill {
                cause,
                was_unhealthy,
            } => {
                tracing::warn!(%cause, "killing the task for failing its health checks");
                if !was_unhealthy {
                    status.send_modify(|s| {
                        s.healthy = Some(false);
                        s.cause = Some(cause.clone());
                    });
                }
                // The supervisor may be gone already: nothing left to kill.
                let _ = kill.send(cause);
                return;
            }
        }
        tokio::time::sleep(spec.schedule.interval).await;
    }
}

async fn check_loop(
    spec: CheckSpec,
    target: Arc<dyn Target>,
    started: Instant,
    status: watch::Sender<HealthStatus>,
) {
    tokio::time::sleep_until((started + spec.schedule.delay).into()).await;
    loop {
        let probed = probe::run(&spec.probe, &target, spec.schedule.timeout).await;
        let result = match (&spec.probe, probed.result) {
            (Probe::Command { .. }, Some(RawResult::ExitCode(code))) => CheckResult::Command {
                exit_code: Some(code),
            },
            (Probe::Command { .. }, _) => CheckResult::Command { exit_code: None },
            (Probe::Http { .. }, Some(RawResult::Status(code))) => CheckResult::Http {
                status_code: Some(code),
            },
            (Probe::Http { .. }, _) => CheckResult::Http { status_code: None },
            (Probe::Tcp { .. }, Some(RawResult::Connected(up))) => {
                CheckResult::Tcp { succeeded: up }
            }
            (Probe::Tcp { .. }, _) => CheckResult::Tcp { succeeded: false },
        };
        status.send_if_modified(|s| {
            let changed = s.check != Some(result);
            s.check = Some(result);
            changed
        });
        tokio::time::sleep(spec.schedule.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An HTTP server whose answers `healthy` decides (200 or 503).
    async fn server(healthy: Arc<std::sync::atomic::AtomicBool>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let code = if healthy.load(std::sync::atomic::Ordering::SeqCst) {
                    "200 OK"
                } else {
                    "503 Unavailable"
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        port
    }

    #[tokio::test]
    async fn a_task_turns_healthy_then_unhealthy_and_is_killed_with_the_cause() {
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let port = server(up.clone()).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let fast = Schedule {
            delay: Duration::ZERO,
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(2),
        };
        let checks = Checks {
            health: Some(HealthSpec {
                probe: Probe::Http {
                    https: false,
                    port,
                    path: "/".into(),
                    statuses: vec![],
                },
                schedule: fast,
                consecutive_failures: 3,
                grace_period: Duration::ZERO,
            }),
            check: Some(CheckSpec {
                probe: Probe::Tcp { port },
                schedule: fast,
            }),
            kill_grace: Duration::ZERO,
        };
        let target: Arc<dyn Target> = Arc::new(probe::HostTarget {
            sandbox: dir.path().to_path_buf(),
            env: Vec::new(),
        });
        let mut running = start(&checks, target, Instant::now(), HealthStatus::default());
        let healthy = running
            .status
            .wait_for(|s| s.healthy == Some(true))
            .await
            .expect("healthy")
            .clone();
        assert_eq!(healthy.cause, None);
        running
            .status
            .wait_for(|s| s.check == Some(CheckResult::Tcp { succeeded: true }))
            .await
            .expect("the general check");
        up.store(false, std::sync::atomic::Ordering::SeqCst);
        let cause = tokio::time::timeout(Duration::from_secs(10), &mut running.kill)
            .await
            .expect("a kill in time")
            .expect("a cause");
        assert_eq!(
            cause,
            format!("3 consecutive health checks failed; the last: GET http://127.0.0.1:{port}/ answered 503")
        );
        let now = running.status.borrow().clone();
        assert_eq!(now.healthy, Some(false));
        assert!(now.cause.is_some_and(|c| c.contains("answered 503")));
    }
}
