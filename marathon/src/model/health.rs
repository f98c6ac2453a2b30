//! What Marathon knows of an instance's health, check by check, and what
//! makes an instance count during a deployment (pure).
//!
//! A [`HealthRecord`] is one health check's result so far, in the shape of
//! Marathon's `healthCheckResults`. Results come from the agent (Mesos
//! checks: a `TASK_RUNNING` update whose `healthy` changed) or from
//! Marathon's own probes (HTTP, HTTPS, TCP). [`HealthRecord::observe`]
//! folds one in, honouring the check's grace period: failures within it,
//! before the first success, are not counted.

use serde::{Deserialize, Serialize};

use super::app::{AppDefinition, HealthCheck};
use super::{Instance, Timestamp};

/// One health check's result so far for one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthRecord {
    /// Which of the app's `healthChecks`.
    pub check_index: usize,
    /// Healthy now.
    pub alive: bool,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The first success.
    pub first_success: Option<Timestamp>,
    /// The latest success.
    pub last_success: Option<Timestamp>,
    /// The latest failure.
    pub last_failure: Option<Timestamp>,
    /// Why it failed last.
    pub last_failure_cause: Option<String>,
}

impl HealthRecord {
    /// A record of check `check_index` with no result yet.
    pub fn new(check_index: usize) -> Self {
        HealthRecord {
            check_index,
            alive: false,
            consecutive_failures: 0,
            first_success: None,
            last_success: None,
            last_failure: None,
            last_failure_cause: None,
        }
    }

    /// Folds in a result at `at` of an instance started at `started`;
    /// returns whether `alive` changed. A failure within the check's grace
    /// period, before any success, is not counted (and changes nothing).
    pub fn observe(
        &mut self,
        check: &HealthCheck,
        started: Option<Timestamp>,
        passed: bool,
        cause: Option<&str>,
        at: Timestamp,
    ) -> bool {
        let was = self.has_result().then_some(self.alive);
        if passed {
            self.alive = true;
            self.consecutive_failures = 0;
            self.first_success.get_or_insert(at);
            self.last_success = Some(at);
        } else {
            let grace_over = started.is_none_or(|s| {
                at.millis() - s.millis() >= check.grace_period_seconds.max(0) * 1000
            });
            if self.first_success.is_none() && !grace_over {
                return false;
            }
            self.alive = false;
            self.consecutive_failures += 1;
            self.last_failure = Some(at);
            self.last_failure_cause = cause.map(String::from);
        }
        was != Some(self.alive)
    }

    /// Whether any result was counted yet.
    pub fn has_result(&self) -> bool {
        self.first_success.is_some() || self.last_failure.is_some()
    }

    /// Whether the check has failed often enough to kill the instance
    /// (`maxConsecutiveFailures`, never when 0).
    pub fn should_kill(&self, check: &HealthCheck) -> bool {
        let max = check.max_consecutive_failures;
        max > 0 && !self.alive && i64::from(self.consecutive_failures) >= max
    }
}

/// The instance's health: `Some(false)` when one of the app's checks is
/// failing, `Some(true)` when every one has passed last, `None` while some
/// has no result yet (or the app has none).
pub fn healthy(app: &AppDefinition, instance: &Instance) -> Option<bool> {
    if app.health_checks.is_empty() {
        return None;
    }
    let results: Vec<Option<&HealthRecord>> = (0..app.health_checks.len())
        .map(|i| {
            instance
                .health
                .iter()
                .find(|r| r.check_index == i && r.has_result())
        })
        .collect();
    if results.iter().flatten().any(|r| !r.alive) {
        Some(false)
    } else if results.iter().all(Option::is_some) {
        Some(true)
    } else {
        None
    }
}

/// Whether an instance counts as up in a deployment: running, healthy when
/// the app has health checks, and ready when it has readiness checks.
pub fn counts_as_ready(app: &AppDefinition, instance: &Instance, ready: bool) -> bool {
    instance.is_running()
        && (app.health_checks.is_empty() || healthy(app, instance) == Some(true))
        && (app.readiness_checks.is_empty() || ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(grace: i64, failures: i64) -> HealthCheck {
        let mut c: HealthCheck = serde_json::from_value(serde_json::json!({
            "protocol": "HTTP", "gracePeriodSeconds": grace, "maxConsecutiveFailures": failures
        }))
        .expect("a check");
        c.grace_period_seconds = grace;
        c
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp(secs * 1000)
    }

    #[test]
    fn results_fold_into_marathons_record() {
        let c = check(10, 3);
        let started = Some(at(0));
        let mut r = HealthRecord::new(0);
        // (seconds, passed, alive changed, alive, failures)
        let table = [
            (1, false, false, false, 0), // within the grace period: not counted
            (5, true, true, true, 0),
            (6, true, false, true, 0),
            (7, false, true, false, 1), // after a success the grace period is over
            (8, false, false, false, 2),
            (9, false, false, false, 3),
            (12, true, true, true, 0),
        ];
        for (secs, passed, changed, alive, failures) in table {
            let cause = (!passed).then_some("answered 500");
            assert_eq!(
                r.observe(&c, started, passed, cause, at(secs)),
                changed,
                "at {secs}s"
            );
            assert_eq!(
                (r.alive, r.consecutive_failures),
                (alive, failures),
                "at {secs}s"
            );
        }
        assert_eq!(r.first_success, Some(at(5)));
        assert_eq!(r.last_success, Some(at(12)));
        assert_eq!(r.last_failure, Some(at(9)));
        assert_eq!(r.last_failure_cause.as_deref(), Some("answered 500"));
    }

    #[test]
    fn kills_follow_max_consecutive_failures() {
        let mut r = HealthRecord::new(0);
        let c = check(0, 2);
        r.observe(&c, Some(at(0)), false, None, at(1));
        assert!(!r.should_kill(&c));
        r.observe(&c, Some(at(0)), false, None, at(2));
        assert!(r.should_kill(&c));
        assert!(!r.should_kill(&check(0, 0)), "0: never");
        // Past the grace period without a success, failures count.
        let mut late = HealthRecord::new(0);
        assert!(late.observe(&check(3, 1), Some(at(0)), false, None, at(4)));
        assert!(late.should_kill(&check(3, 1)));
    }

    #[test]
    fn an_instance_is_healthy_when_every_check_is() {
        let mut app = AppDefinition::with_id(crate::model::PathId::parse("/a"));
        let mut instance: Instance = serde_json::from_value(serde_json::json!({
            "instanceId": "a.instance-1", "appId": "/a", "appVersion": "2026-01-01T00:00:00.000Z",
            "taskId": "t", "agentId": "s", "host": "h", "state": "TASK_RUNNING",
            "goal": "Running", "stagedAt": "2026-01-01T00:00:00.000Z", "since": "2026-01-01T00:00:00.000Z"
        }))
        .expect("an instance");
        assert_eq!(healthy(&app, &instance), None, "no checks");
        assert!(counts_as_ready(&app, &instance, false));
        app.health_checks = vec![check(0, 3), check(0, 3)];
        assert_eq!(healthy(&app, &instance), None, "no result yet");
        assert!(!counts_as_ready(&app, &instance, false));
        let mut first = HealthRecord::new(0);
        first.observe(&app.health_checks[0], None, true, None, at(1));
        instance.health = vec![first.clone()];
        assert_eq!(healthy(&app, &instance), None, "one check still unknown");
        let mut second = HealthRecord::new(1);
        second.observe(&app.health_checks[1], None, true, None, at(1));
        instance.health = vec![first.clone(), second.clone()];
        assert_eq!(healthy(&app, &instance), Some(true));
        assert!(counts_as_ready(&app, &instance, false));
        second.observe(&app.health_checks[1], None, false, Some("x"), at(2));
        instance.health = vec![first, second];
        assert_eq!(healthy(&app, &instance), Some(false));
        assert!(!counts_as_ready(&app, &instance, true));
    }
}
