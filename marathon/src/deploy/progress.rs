//! How far a deployment got, why it waits, and whether it stands still
//! past its deadline (pure).
//!
//! A deployment progresses when a step completes or one more instance of a
//! new version becomes healthy and ready. One that does neither for its
//! apps' `upgradeStrategy.progressDeadlineSeconds` (Agora's extension; the
//! smallest of its apps') is failed and rolled back by the core; without a
//! deadline it waits, visible with what it waits for.

use std::time::{Duration, Instant};

use super::plan::DeploymentPlan;
use crate::model::{AppDefinition, Instance, PathId};

/// What an action of the current step has of its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionProgress {
    /// The app.
    pub app: PathId,
    /// Instances the target wants.
    pub wanted: u32,
    /// Instances of the target version (running or on their way).
    pub new: usize,
    /// Of those, running.
    pub running: usize,
    /// Of those, healthy and ready: what counts.
    pub ready: usize,
    /// Why the latest of them failed a health check, if one does.
    pub health_failure: Option<String>,
    /// The app's last task failure, if any.
    pub task_failure: Option<String>,
}

impl ActionProgress {
    /// Of `instances` (the app's, counting), what the target version has.
    pub fn of(
        target: &AppDefinition,
        instances: &[&Instance],
        ready: &dyn Fn(&Instance) -> bool,
        task_failure: Option<&str>,
    ) -> Self {
        let version = target.version_or_epoch();
        let new: Vec<&&Instance> = instances
            .iter()
            .filter(|i| i.app_version == version)
            .collect();
        let health_failure = new
            .iter()
            .flat_map(|i| i.health.iter())
            .filter(|r| !r.alive)
            .filter_map(|r| Some((r.last_failure?, r.last_failure_cause.clone()?)))
            .max_by_key(|(at, _)| *at)
            .map(|(_, cause)| cause);
        ActionProgress {
            app: target.id.clone(),
            wanted: target.instances.max(0) as u32,
            new: new.len(),
            running: new.iter().filter(|i| i.is_running()).count(),
            ready: new.iter().filter(|i| ready(i)).count(),
            health_failure,
            task_failure: task_failure.map(String::from),
        }
    }

    /// Whether every wanted instance counts.
    pub fn is_complete(&self) -> bool {
        self.ready >= self.wanted as usize
    }

    /// What it waits for, as a sentence.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}: {} of {} new instances healthy and ready ({} running, {} launched)",
            self.app, self.ready, self.wanted, self.running, self.new
        );
        if let Some(cause) = &self.health_failure {
            s.push_str(&format!("; last health check failure: {cause}"));
        }
        if let Some(failure) = &self.task_failure {
            s.push_str(&format!("; last task failure: {failure}"));
        }
        s
    }
}

/// The progress a deployment made so far: its step and the new instances
/// that count. Any change of it is progress.
pub type Mark = (usize, usize);

/// Since when a deployment stands still.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// The progress last seen.
    pub mark: Mark,
    /// Since when it is that.
    pub since: Instant,
}

impl Watch {
    /// The watch after seeing `mark` at `now`.
    pub fn observe(previous: Option<Watch>, mark: Mark, now: Instant) -> Watch {
        match previous {
            Some(w) if w.mark == mark => w,
            _ => Watch { mark, since: now },
        }
    }

    /// Whether it stood still for longer than `deadline`.
    pub fn overdue(&self, deadline: Duration, now: Instant) -> bool {
        now.saturating_duration_since(self.since) > deadline
    }
}

/// A plan's deadline: the smallest `progressDeadlineSeconds` of its target apps.
pub fn deadline(plan: &DeploymentPlan) -> Option<Duration> {
    plan.target
        .values()
        .filter_map(|a| a.upgrade_strategy.progress_deadline_seconds)
        .filter(|s| *s > 0)
        .min()
        .map(|s| Duration::from_secs(s as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::health::HealthRecord;
    use crate::model::{TaskState, Timestamp};

    fn instance(n: u32, version: Timestamp, state: TaskState) -> Instance {
        let mut i: Instance = serde_json::from_value(serde_json::json!({
            "instanceId": format!("a.instance-{n}"), "appId": "/a",
            "appVersion": "2026-01-01T00:00:00.000Z", "taskId": format!("a.instance-{n}._app.1"),
            "agentId": "s", "host": "h", "state": "TASK_RUNNING", "goal": "Running",
            "stagedAt": "2026-01-01T00:00:00.000Z", "since": "2026-01-01T00:00:00.000Z"
        }))
        .expect("an instance");
        i.app_version = version;
        i.state = state;
        i
    }

    fn failing(mut i: Instance, at: i64, cause: &str) -> Instance {
        let mut r = HealthRecord::new(0);
        r.last_failure = Some(Timestamp(at));
        r.last_failure_cause = Some(cause.into());
        i.health = vec![r];
        i
    }

    #[test]
    fn progress_counts_the_new_version_and_names_the_latest_failure() {
        let new = Timestamp(2_000);
        let mut target = AppDefinition::with_id(PathId::parse("/a"));
        target.instances = 3;
        target.version = Some(new);
        let old = Timestamp(1_000);
        let instances = [
            instance(1, old, TaskState::TaskRunning),
            failing(instance(2, new, TaskState::TaskRunning), 10, "answered 500"),
            failing(
                instance(3, new, TaskState::TaskRunning),
                20,
                "connection refused",
            ),
            instance(4, new, TaskState::TaskStaging),
        ];
        let refs: Vec<&Instance> = instances.iter().collect();
        let ready = |i: &Instance| i.is_running() && i.health.is_empty();
        let p = ActionProgress::of(&target, &refs, &ready, Some("exited 1"));
        assert_eq!((p.new, p.running, p.ready), (3, 2, 0));
        assert!(!p.is_complete());
        assert_eq!(
            p.describe(),
            "/a: 0 of 3 new instances healthy and ready (2 running, 3 launched); \
             last health check failure: connection refused; last task failure: exited 1"
        );
    }

    #[test]
    fn a_deployment_is_overdue_only_after_standing_still_past_its_deadline() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // (seconds, mark, overdue with a 10 s deadline)
        let table = [
            (0, (0, 0), false),
            (8, (0, 0), false),
            (9, (0, 1), false), // one more instance counts: progress
            (18, (0, 1), false),
            (20, (0, 1), true),
            (21, (1, 0), false), // the next step began
        ];
        let mut watch = None;
        for (at, mark, overdue) in table {
            let w = Watch::observe(watch, mark, t0 + s(at));
            assert_eq!(w.overdue(s(10), t0 + s(at)), overdue, "at {at}s");
            watch = Some(w);
        }
    }
}
