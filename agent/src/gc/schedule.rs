//! The pure core of sandbox garbage collection: which paths are due, when.
//!
//! A path enters the schedule with the instant its task was done with it
//! (its terminal update acknowledged, or, after a restart, its directory's
//! mtime). It is due `gc_delay` later, or earlier under disk pressure, by
//! Mesos' rule (`Slave::age` and `GarbageCollector::prune`):
//!
//! ```text
//! max allowed age = gc_delay × max(0, 1 − gc_disk_headroom − disk usage)
//! ```
//!
//! so a disk filling up shortens every sandbox's life, down to nothing when
//! usage reaches `1 − headroom`. As in Mesos this applies whenever a disk
//! reading is given, which shortens the life of every sandbox by the
//! headroom even on an empty disk (90 % of `gc_delay` with the default 0.1).
//!
//! No clock and no file system here: the caller passes `now` and the usage
//! fraction, and removes what [`GcSchedule::take_due`] hands back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

/// The GC policy: Mesos' `--gc-delay` and `--gc-disk-headroom`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcPolicy {
    /// How long a finished sandbox is kept when the disk has room.
    pub delay: Duration,
    /// The fraction of the disk kept free (0.0..=1.0).
    pub headroom: f64,
}

impl GcPolicy {
    /// The oldest a finished sandbox may be at this disk usage (a fraction
    /// of the work dir's file system in use, 0.0..=1.0); `None` when usage
    /// is unknown, which leaves `delay` alone.
    pub fn max_age(&self, usage: Option<f64>) -> Duration {
        match usage {
            None => self.delay,
            Some(usage) => {
                let factor = (1.0 - self.headroom - usage).clamp(0.0, 1.0);
                self.delay.mul_f64(factor)
            }
        }
    }
}

/// The sandboxes waiting to be removed, with the instant each was done with.
#[derive(Debug)]
pub struct GcSchedule {
    policy: GcPolicy,
    /// Path → when its task was done with it. A `BTreeMap` keeps the walk
    /// in path order, so a run removes siblings together.
    paths: BTreeMap<PathBuf, Instant>,
}

impl GcSchedule {
    /// An empty schedule under `policy`.
    pub fn new(policy: GcPolicy) -> Self {
        GcSchedule {
            policy,
            paths: BTreeMap::new(),
        }
    }

    /// Schedules `path`, done with at `since`; a path scheduled again keeps
    /// the later instant (a sandbox reused is younger).
    pub fn schedule(&mut self, path: PathBuf, since: Instant) {
        let entry = self.paths.entry(path).or_insert(since);
        *entry = (*entry).max(since);
    }

    /// Takes `path` off the schedule; whether it was on it.
    pub fn unschedule(&mut self, path: &Path) -> bool {
        self.paths.remove(path).is_some()
    }

    /// How many paths wait.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The paths due at `now` with the disk `usage` fraction (oldest
    /// allowed age by Mesos' rule), without taking them.
    pub fn due(&self, now: Instant, usage: Option<f64>) -> Vec<PathBuf> {
        let max_age = self.policy.max_age(usage);
        self.paths
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= max_age)
            .map(|(path, _)| path.clone())
            .collect()
    }

    /// Like [`GcSchedule::due`], and takes them off the schedule.
    pub fn take_due(&mut self, now: Instant, usage: Option<f64>) -> Vec<PathBuf> {
        let due = self.due(now, usage);
        for path in &due {
            self.paths.remove(path);
        }
        due
    }

    /// When the next path falls due at this disk `usage`; `None` when
    /// nothing waits.
    pub fn next_deadline(&self, usage: Option<f64>) -> Option<Instant> {
        let max_age = self.policy.max_age(usage);
        self.paths.values().min().map(|since| *since + max_age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn schedule() -> GcSchedule {
        GcSchedule::new(GcPolicy {
            delay: 10 * DAY,
            headroom: 0.1,
        })
    }

    #[test]
    fn a_path_is_due_gc_delay_after_it_was_done_with() {
        let mut s = schedule();
        let t0 = Instant::now();
        s.schedule("/w/a".into(), t0);
        s.schedule("/w/b".into(), t0 + DAY);
        assert_eq!(s.next_deadline(None), Some(t0 + 10 * DAY));
        assert!(s
            .due(t0 + 10 * DAY - Duration::from_secs(1), None)
            .is_empty());
        assert_eq!(s.take_due(t0 + 10 * DAY, None), vec![PathBuf::from("/w/a")]);
        assert_eq!(s.len(), 1);
        assert_eq!(s.next_deadline(None), Some(t0 + 11 * DAY));
    }

    #[test]
    fn disk_pressure_shortens_the_allowed_age_by_mesos_formula() {
        let policy = schedule().policy;
        assert_eq!(policy.max_age(None), 10 * DAY);
        // 1 − 0.1 − 0.5 = 0.4 of the delay.
        let four_days = policy.max_age(Some(0.5));
        assert!((four_days.as_secs_f64() - (4 * DAY).as_secs_f64()).abs() < 1.0);
        // At or beyond 1 − headroom, nothing may be kept.
        assert_eq!(policy.max_age(Some(0.9)), Duration::ZERO);
        assert_eq!(policy.max_age(Some(1.0)), Duration::ZERO);

        let mut s = schedule();
        let t0 = Instant::now();
        s.schedule("/w/old".into(), t0);
        s.schedule("/w/new".into(), t0 + 5 * DAY);
        let now = t0 + 6 * DAY;
        assert!(s.due(now, None).is_empty());
        assert_eq!(s.due(now, Some(0.5)), vec![PathBuf::from("/w/old")]);
        assert_eq!(s.due(now, Some(0.95)).len(), 2);
    }

    #[test]
    fn rescheduling_keeps_the_later_instant_and_unschedule_removes() {
        let mut s = schedule();
        let t0 = Instant::now();
        s.schedule("/w/a".into(), t0 + DAY);
        s.schedule("/w/a".into(), t0);
        assert_eq!(s.next_deadline(None), Some(t0 + 11 * DAY));
        assert!(s.unschedule(Path::new("/w/a")));
        assert!(!s.unschedule(Path::new("/w/a")));
        assert!(s.is_empty() && s.next_deadline(None).is_none());
    }

    #[test]
    fn a_path_done_with_in_the_past_is_due_at_once() {
        // Recovery schedules from mtimes: `since` may be long before `now`.
        let mut s = schedule();
        let now = Instant::now() + 30 * DAY;
        s.schedule("/w/ancient".into(), now - 20 * DAY);
        assert_eq!(s.take_due(now, None).len(), 1);
    }
}
