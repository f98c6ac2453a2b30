//! What a health check's results mean, with Mesos' rules (pure; the probes
//! and the clock are the caller's).
//!
//! * A success makes the task healthy and ends its grace period early.
//! * A failure within the grace period (from the task's start, until the
//!   first success) counts for nothing.
//! * A failure outside it makes the task unhealthy and counts; the
//!   `consecutive_failures`-th in a row kills the task (never when 0).
//! * Only a change of health is reported: healthy → unhealthy → healthy is
//!   three reports however many probes ran.

use std::time::{Duration, Instant};

/// A probe's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Passed,
    /// It failed, for this reason (`HTTP GET ... answered 500`).
    Failed(String),
    /// Neither (an HTTP 1xx answer with Marathon's `ignoreHttp1xx`).
    Ignored,
}

/// What the caller must do after a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing new.
    Nothing,
    /// The task's health changed: report it.
    Report {
        /// Its new health.
        healthy: bool,
        /// Why it is unhealthy.
        cause: Option<String>,
    },
    /// Report the task unhealthy if it was not, and kill it: it failed too
    /// many times in a row.
    Kill {
        /// The last failure's cause, with the count.
        cause: String,
        /// Whether it was reported unhealthy before this result.
        was_unhealthy: bool,
    },
}

/// One task's health so far.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    started: Instant,
    grace: Duration,
    consecutive_failures: u32,
    /// The grace period ended early with the first success.
    passed_once: bool,
    failures: u32,
    healthy: Option<bool>,
}

impl HealthTracker {
    /// A task started at `started`, with its check's grace period and
    /// failure limit; `healthy` is what was reported before (a supervisor
    /// taking over a task already checked), or `None`.
    pub fn new(
        started: Instant,
        grace: Duration,
        consecutive_failures: u32,
        healthy: Option<bool>,
    ) -> Self {
        HealthTracker {
            started,
            grace,
            consecutive_failures,
            passed_once: healthy == Some(true),
            failures: 0,
            healthy,
        }
    }

    /// The health last reported.
    pub fn healthy(&self) -> Option<bool> {
        self.healthy
    }

    /// Folds in a result that came at `now`.
    pub fn on(&mut self, now: Instant, outcome: Outcome) -> Verdict {
        match outcome {
            Outcome::Ignored => Verdict::Nothing,
            Outcome::Passed => {
                self.passed_once = true;
                self.failures = 0;
                if self.healthy == Some(true) {
                    return Verdict::Nothing;
                }
                self.healthy = Some(true);
                Verdict::Report {
                    healthy: true,
                    cause: None,
                }
            }
            Outcome::Failed(cause) => {
                let in_grace = !self.passed_once && now < self.started + self.grace;
                if in_grace {
                    return Verdict::Nothing;
                }
                self.failures += 1;
                let was_unhealthy = self.healthy == Some(false);
                self.healthy = Some(false);
                if self.consecutive_failures > 0 && self.failures >= self.consecutive_failures {
                    return Verdict::Kill {
                        cause: format!(
                            "{} consecutive health checks failed; the last: {cause}",
                            self.failures
                        ),
                        was_unhealthy,
                    };
                }
                if was_unhealthy {
                    Verdict::Nothing
                } else {
                    Verdict::Report {
                        healthy: false,
                        cause: Some(cause),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(s: &str) -> Outcome {
        Outcome::Failed(s.into())
    }

    #[test]
    fn the_rules_step_by_step() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let report = |healthy: bool, cause: Option<&str>| Verdict::Report {
            healthy,
            cause: cause.map(String::from),
        };
        // (seconds since the start, outcome, verdict)
        let table: Vec<(u64, Outcome, Verdict)> = vec![
            // Grace period of 10 s: early failures count for nothing.
            (1, fail("refused"), Verdict::Nothing),
            (5, fail("refused"), Verdict::Nothing),
            (6, Outcome::Ignored, Verdict::Nothing),
            (7, Outcome::Passed, report(true, None)),
            (8, Outcome::Passed, Verdict::Nothing),
            // The first success ended the grace period: this one counts.
            (9, fail("500"), report(false, Some("500"))),
            (10, fail("500"), Verdict::Nothing),
            (
                11,
                fail("timed out"),
                Verdict::Kill {
                    cause: "3 consecutive health checks failed; the last: timed out".into(),
                    was_unhealthy: true,
                },
            ),
        ];
        let mut t = HealthTracker::new(t0, Duration::from_secs(10), 3, None);
        for (at, outcome, verdict) in table {
            assert_eq!(
                t.on(s(at), outcome.clone()),
                verdict,
                "at {at}s: {outcome:?}"
            );
        }
    }

    #[test]
    fn a_success_resets_the_count_and_the_grace_period_runs_out_alone() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let mut t = HealthTracker::new(t0, Duration::from_secs(2), 2, None);
        assert_eq!(t.on(s(1), fail("x")), Verdict::Nothing);
        // Past the grace period without a success: failures count.
        assert!(matches!(
            t.on(s(3), fail("x")),
            Verdict::Report { healthy: false, .. }
        ));
        assert_eq!(
            t.on(s(4), Outcome::Passed),
            Verdict::Report {
                healthy: true,
                cause: None
            }
        );
        assert!(matches!(
            t.on(s(5), fail("y")),
            Verdict::Report { healthy: false, .. }
        ));
        assert_eq!(
            t.on(s(6), fail("z")),
            Verdict::Kill {
                cause: "2 consecutive health checks failed; the last: z".into(),
                was_unhealthy: true
            }
        );
    }

    #[test]
    fn zero_failures_never_kill_and_one_kills_at_once() {
        let t0 = Instant::now();
        let late = t0 + Duration::from_secs(100);
        let mut never = HealthTracker::new(t0, Duration::ZERO, 0, None);
        assert!(matches!(never.on(late, fail("x")), Verdict::Report { .. }));
        for _ in 0..10 {
            assert_eq!(never.on(late, fail("x")), Verdict::Nothing);
        }
        let mut once = HealthTracker::new(t0, Duration::ZERO, 1, None);
        assert_eq!(
            once.on(late, fail("x")),
            Verdict::Kill {
                cause: "1 consecutive health checks failed; the last: x".into(),
                was_unhealthy: false
            }
        );
    }

    #[test]
    fn a_tracker_taking_over_reports_no_change_that_is_not_one() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(t0, Duration::from_secs(60), 3, Some(true));
        assert_eq!(t.on(t0, Outcome::Passed), Verdict::Nothing);
        // Healthy before: the grace period is over already.
        assert!(matches!(
            t.on(t0, fail("x")),
            Verdict::Report { healthy: false, .. }
        ));
        let mut t = HealthTracker::new(t0, Duration::ZERO, 3, Some(false));
        assert_eq!(
            t.on(t0 + Duration::from_secs(1), fail("x")),
            Verdict::Nothing
        );
        assert_eq!(t.healthy(), Some(false));
    }
}
