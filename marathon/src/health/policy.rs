//! When Marathon kills instances for failing its health checks (pure).
//!
//! Marathon once killed healthy apps en masse when it was itself overloaded
//! and its probes timed out. Here a kill is always the last step of three:
//!
//! 1. the instance's check failed `maxConsecutiveFailures` times in a row,
//!    outside its grace period, as seen by this leader
//!    ([`crate::model::health::HealthRecord::should_kill`]);
//! 2. no **hold** is on: not within the first moments of leadership (a new
//!    leader has not probed everything yet), and not while most checks fail
//!    at once — each check's latest result counts, so a hold begins the
//!    moment the failures spread, before any instance has failed often
//!    enough to be killed. That many failing together is more likely
//!    Marathon's own overload, or a partition between it and the agents,
//!    than every app failing at once;
//! 3. the app's **budget** allows it: no more instances are being killed
//!    for health at once than the upgrade strategy would let go during an
//!    upgrade (`instances − ceil(instances × minimumHealthCapacity)`, at
//!    least one).
//!
//! A kill held is logged and reported as an event instead, and tried again
//! on the next round.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::deploy::replace::min_healthy;
use crate::model::AppDefinition;

/// A check's latest result older than this says nothing any more.
pub const WINDOW: Duration = Duration::from_secs(10);
/// The share of failing checks that holds kills.
pub const OVERLOAD_SHARE: f64 = 0.5;
/// Fewer checks than this say nothing about overload.
pub const OVERLOAD_MIN_CHECKS: usize = 20;

/// Why kills are held.
#[derive(Debug, Clone, PartialEq)]
pub enum Hold {
    /// Leadership began too recently.
    AfterElection {
        /// Until the hold ends.
        remaining: Duration,
    },
    /// Too many checks fail at once.
    Overload {
        /// Checks failing.
        failed: usize,
        /// Checks with a recent result.
        total: usize,
    },
}

impl Hold {
    /// The reason, as logs and events say it.
    pub fn reason(&self) -> String {
        match self {
            Hold::AfterElection { remaining } => format!(
                "this Marathon leads since moments ago; health kills are held for {:.0} s more",
                remaining.as_secs_f64().ceil()
            ),
            Hold::Overload { failed, total } => format!(
                "{failed} of {total} health checks fail at once: held as a likely overload or partition rather than failing apps"
            ),
        }
    }
}

/// The latest result of every check, for the overload watch.
#[derive(Debug, Default)]
pub struct ProbeWindow {
    latest: HashMap<(String, usize), (Instant, bool)>,
}

impl ProbeWindow {
    /// Records that check `index` of `instance_id` `passed` or not at `at`.
    pub fn record(&mut self, instance_id: &str, index: usize, at: Instant, passed: bool) {
        self.latest
            .insert((instance_id.to_string(), index), (at, passed));
    }

    /// Forgets the checks of an instance that is no longer probed.
    pub fn forget(&mut self, instance_id: &str) {
        self.latest.retain(|(id, _), _| id != instance_id);
    }

    /// `(failing, total)` of the checks with a result within [`WINDOW`] before `now`.
    pub fn counts(&mut self, now: Instant) -> (usize, usize) {
        self.latest
            .retain(|_, (at, _)| now.saturating_duration_since(*at) <= WINDOW);
        let failed = self.latest.values().filter(|(_, passed)| !passed).count();
        (failed, self.latest.len())
    }
}

/// The hold in force at `now`, if any: leadership since `elected` holds
/// kills for `after_election`; the checks hold them while too many fail.
pub fn hold(
    now: Instant,
    elected: Instant,
    after_election: Duration,
    window: &mut ProbeWindow,
) -> Option<Hold> {
    let led = now.saturating_duration_since(elected);
    if led < after_election {
        return Some(Hold::AfterElection {
            remaining: after_election - led,
        });
    }
    let (failed, total) = window.counts(now);
    if total >= OVERLOAD_MIN_CHECKS && failed as f64 > total as f64 * OVERLOAD_SHARE {
        return Some(Hold::Overload { failed, total });
    }
    None
}

/// How many instances of `app` may be down for health kills at once.
pub fn budget(app: &AppDefinition) -> usize {
    let n = app.instances.max(0) as u32;
    let keep = min_healthy(n, app.upgrade_strategy.minimum_health_capacity);
    (n.saturating_sub(keep) as usize).max(1)
}

/// Of `candidates` (instances of one app that should be killed, oldest
/// failure first), those to kill now, given `in_flight` already being
/// killed for health and the app's `budget`; the rest wait.
pub fn select<T: Clone>(candidates: &[T], in_flight: usize, budget: usize) -> (Vec<T>, Vec<T>) {
    let room = budget.saturating_sub(in_flight).min(candidates.len());
    (candidates[..room].to_vec(), candidates[room..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::app::UpgradeStrategy;
    use crate::model::PathId;

    fn app(instances: i64, min_health: f64) -> AppDefinition {
        let mut a = AppDefinition::with_id(PathId::parse("/a"));
        a.instances = instances;
        a.upgrade_strategy = UpgradeStrategy {
            minimum_health_capacity: min_health,
            maximum_over_capacity: 1.0,
            progress_deadline_seconds: None,
        };
        a
    }

    #[test]
    fn the_budget_is_what_an_upgrade_may_take_down_and_at_least_one() {
        let table = [
            (10, 1.0, 1),
            (10, 0.8, 2),
            (10, 0.5, 5),
            (10, 0.0, 10),
            (3, 0.5, 1),
            (1, 1.0, 1),
            (0, 1.0, 1),
        ];
        for (instances, min_health, want) in table {
            assert_eq!(
                budget(&app(instances, min_health)),
                want,
                "{instances} x {min_health}"
            );
        }
    }

    #[test]
    fn kills_wait_for_room_in_the_budget() {
        let c = ["a", "b", "c"];
        assert_eq!(select(&c, 0, 2), (vec!["a", "b"], vec!["c"]));
        assert_eq!(select(&c, 1, 2), (vec!["a"], vec!["b", "c"]));
        assert_eq!(select(&c, 2, 2), (vec![], vec!["a", "b", "c"]));
        assert_eq!(select(&c, 5, 2), (vec![], vec!["a", "b", "c"]));
        assert_eq!(select(&c, 0, 9), (vec!["a", "b", "c"], vec![]));
    }

    #[test]
    fn holds_after_election_and_while_most_probes_fail() {
        let t0 = Instant::now();
        let mut window = ProbeWindow::default();
        let hold_for = Duration::from_secs(30);
        assert!(matches!(
            hold(t0 + Duration::from_secs(10), t0, hold_for, &mut window),
            Some(Hold::AfterElection { remaining }) if remaining == Duration::from_secs(20)
        ));
        let later = t0 + Duration::from_secs(60);
        assert_eq!(hold(later, t0, hold_for, &mut window), None);
        // Too few checks to say: no hold, even if all fail.
        for i in 0..OVERLOAD_MIN_CHECKS - 1 {
            window.record(&format!("i{i}"), 0, later, false);
        }
        assert_eq!(hold(later, t0, hold_for, &mut window), None);
        window.record("i19", 0, later, false);
        assert_eq!(
            hold(later, t0, hold_for, &mut window),
            Some(Hold::Overload {
                failed: 20,
                total: 20
            })
        );
        // A check's latest result counts: passing again, it no longer fails.
        for i in 0..10 {
            window.record(&format!("i{i}"), 0, later, true);
        }
        assert_eq!(window.counts(later), (10, 20));
        assert_eq!(
            hold(later, t0, hold_for, &mut window),
            None,
            "half is not most"
        );
        // A forgotten instance no longer counts; one more failing tips it.
        window.forget("i0");
        assert_eq!(window.counts(later), (10, 19));
        window.record("i20", 0, later, false);
        assert_eq!(window.counts(later), (11, 20));
        assert!(hold(later, t0, hold_for, &mut window).is_some());
        // And old results leave the window.
        let much_later = later + WINDOW + Duration::from_secs(1);
        assert_eq!(window.counts(much_later), (0, 0));
        assert!(Hold::Overload {
            failed: 3,
            total: 4
        }
        .reason()
        .starts_with("3 of 4 health checks fail at once"));
    }
}
