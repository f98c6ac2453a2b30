//! Sandbox garbage collection (Mesos' `GarbageCollector`).
//!
//! A finished task's sandbox is kept for `--gc-delay` after its terminal
//! update is acknowledged (so that its logs can still be read through the
//! files API), then removed with the `latest` link pointing at it and the
//! executor and framework directories it leaves empty. Under disk pressure
//! sandboxes go earlier, by Mesos' formula (see [`schedule`]), the work
//! dir's file system being measured every `--disk-watch-interval`.
//!
//! Parts: [`schedule`] is the pure core (paths, the instants they were done
//! with, which are due); [`fs`] removes, scans and measures (blocking); this
//! module is the collector, a task of its own rather than a timer in the
//! agent actor, so that the actor never waits on a large `rm -r`: the actor
//! only sends [`GcHandle::schedule`] (an unbounded channel, never blocks),
//! and the collector runs every removal and `statvfs` in `spawn_blocking`.
//!
//! After a restart, [`crate::start`] schedules every sandbox no
//! checkpointed task owns from its directory's mtime, so that a crash does
//! not make the agent forget what to collect.

pub mod fs;
pub mod schedule;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use agora_common::shutdown::Shutdown;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

pub use schedule::{GcPolicy, GcSchedule};

/// What the collector needs.
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// `--gc-delay` and `--gc-disk-headroom`.
    pub policy: GcPolicy,
    /// `--disk-watch-interval`: how often the work dir's disk is measured.
    pub disk_watch_interval: Duration,
    /// The file system measured (the agent's `--work-dir`).
    pub work_dir: PathBuf,
}

#[derive(Debug)]
enum Command {
    Schedule { path: PathBuf, since: Instant },
}

/// Sends paths to the collector; cheap to clone.
#[derive(Debug, Clone)]
pub struct GcHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl GcHandle {
    /// Schedules a sandbox its task is done with now.
    pub fn schedule(&self, path: PathBuf) {
        self.schedule_since(path, Instant::now());
    }

    /// Schedules a sandbox its task was done with at `since`.
    pub fn schedule_since(&self, path: PathBuf, since: Instant) {
        // The collector is gone only once the agent is stopping: nothing is
        // collected any more, the next run's scan will schedule it again.
        let _ = self.tx.send(Command::Schedule { path, since });
    }

    /// Schedules a sandbox last modified at `mtime` (restart recovery).
    pub fn schedule_from_mtime(&self, path: PathBuf, mtime: SystemTime, delay: Duration) {
        self.schedule_since(path, instant_of(mtime, delay));
    }
}

/// The monotonic instant of a wall-clock `mtime`. Ages beyond `delay` are
/// all due alike, so the age is capped there, which keeps the subtraction
/// within the monotonic clock's range but on a freshly booted host; there
/// the sandbox is kept one full delay, the safe side.
fn instant_of(mtime: SystemTime, delay: Duration) -> Instant {
    let now = Instant::now();
    let age = SystemTime::now()
        .duration_since(mtime)
        .unwrap_or(Duration::ZERO)
        .min(delay);
    now.checked_sub(age).unwrap_or(now)
}

/// Starts the collector; it runs until `stop` fires or every handle is
/// dropped. The caller owns the returned task.
pub fn spawn(config: GcConfig, stop: Shutdown) -> (GcHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(config, rx, stop));
    (GcHandle { tx }, task)
}

async fn run(config: GcConfig, mut rx: mpsc::UnboundedReceiver<Command>, stop: Shutdown) {
    let mut schedule = GcSchedule::new(config.policy);
    // Unknown until the first measurement, which the first tick takes at once.
    let mut usage: Option<f64> = None;
    let mut disk_watch = tokio::time::interval(config.disk_watch_interval);
    disk_watch.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let far = Duration::from_secs(86_400);
    loop {
        let next = schedule.next_deadline(usage);
        tokio::select! {
            _ = stop.fired() => break,
            command = rx.recv() => match command {
                Some(Command::Schedule { path, since }) => {
                    tracing::debug!(path = %path.display(), "sandbox scheduled for gc");
                    schedule.schedule(path, since);
                }
                None => break,
            },
            _ = sleep_until(next.unwrap_or_else(|| Instant::now() + far)), if next.is_some() => {}
            _ = disk_watch.tick() => {
                usage = measure(config.work_dir.clone()).await;
            }
        }
        let due = schedule.take_due(Instant::now(), usage);
        if !due.is_empty() {
            remove(due, usage).await;
        }
    }
    tracing::debug!(pending = schedule.len(), "sandbox gc stopped");
}

/// The work dir's disk usage, or `None` (logged) when it cannot be read.
async fn measure(work_dir: PathBuf) -> Option<f64> {
    let result = tokio::task::spawn_blocking(move || fs::disk_usage(&work_dir)).await;
    match result {
        Ok(Ok(usage)) => Some(usage),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot measure the work dir's disk usage");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "disk usage measurement failed");
            None
        }
    }
}

/// Removes `paths` off the runtime's threads.
async fn remove(paths: Vec<PathBuf>, usage: Option<f64>) {
    let joined = tokio::task::spawn_blocking(move || {
        for path in paths {
            match fs::remove_sandbox(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), ?usage, "garbage-collected sandbox")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove sandbox")
                }
            }
        }
    })
    .await;
    if let Err(e) = joined {
        tracing::error!(error = %e, "sandbox removal panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_collector_removes_a_scheduled_sandbox_after_the_delay() {
        let root = tempfile::tempdir().expect("tempdir");
        let run = root.path().join("slaves/a/frameworks/f/executors/t/runs/c");
        std::fs::create_dir_all(&run).expect("mkdir");
        let (trigger, stop) = agora_common::shutdown::channel();
        let (gc, task) = spawn(
            GcConfig {
                policy: GcPolicy {
                    delay: Duration::from_millis(200),
                    headroom: 0.0,
                },
                disk_watch_interval: Duration::from_secs(60),
                work_dir: root.path().to_path_buf(),
            },
            stop,
        );
        // When it goes depends on this disk's usage (the schedule's tests
        // cover the timing); here it only has to go, off the caller's thread.
        gc.schedule(run.clone());
        let deadline = Instant::now() + Duration::from_secs(10);
        while run.exists() {
            assert!(Instant::now() < deadline, "sandbox not collected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!root.path().join("slaves/a/frameworks/f").exists());
        trigger.fire();
        task.await.expect("collector ends");
    }

    #[test]
    fn an_mtime_in_the_past_maps_to_an_earlier_instant() {
        let delay = Duration::from_secs(3600);
        let since = instant_of(SystemTime::now() - Duration::from_secs(60), delay);
        let age = Instant::now().saturating_duration_since(since);
        assert!(age >= Duration::from_secs(59) && age < Duration::from_secs(120));
        let future = instant_of(SystemTime::now() + Duration::from_secs(60), delay);
        assert!(Instant::now().saturating_duration_since(future) < Duration::from_secs(1));
    }
}
