//! Rolling-restart and scale-down arithmetic, as Marathon's
//! `TaskReplaceActor` and `ScalingProposition`.
//!
//! A restart replaces the instances of the old version by `target` new ones
//! within the app's upgrade strategy: at least `ceil(target *
//! minimumHealthCapacity)` instances stay up (old ones, or new ones that are
//! ready), and at most `floor(target * (1 + maximumOverCapacity))` run at
//! once. When the two bounds meet (`minimumHealthCapacity` 1 and
//! `maximumOverCapacity` 0) nothing could move, so, as Marathon does, one
//! instance over capacity is allowed. [`next_restart`] is stateless: the
//! deployment calls it with the counts it sees and does what it says.

use crate::model::app::KillSelection;
use crate::model::{Instance, TaskState};

/// Tolerance for float noise in `target * share` (`10 * 0.7` is 7, not 7.000001).
const EPSILON: f64 = 1e-9;

/// What a restart sees of an app.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartView {
    /// Instances the new version should run.
    pub target: u32,
    /// Active instances of old versions not yet told to die.
    pub old_active: u32,
    /// Instances of the new version launched or queued and not terminal.
    pub new_active: u32,
    /// Instances of the new version that are ready (running, healthy, ready).
    pub new_ready: u32,
    /// The app's `upgradeStrategy.minimumHealthCapacity`.
    pub min_health_capacity: f64,
    /// The app's `upgradeStrategy.maximumOverCapacity`.
    pub max_over_capacity: f64,
}

/// What to do next in a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartDecision {
    /// Old instances to kill now.
    pub kill_old: u32,
    /// New instances to launch now.
    pub launch_new: u32,
    /// The restart is complete: no old instance left, `target` new ones ready.
    pub done: bool,
}

/// Instances that must stay up: `ceil(target * minimumHealthCapacity)`.
pub fn min_healthy(target: u32, min_health_capacity: f64) -> u32 {
    let share = min_health_capacity.clamp(0.0, 1.0);
    let n = (f64::from(target) * share - EPSILON).ceil().max(0.0) as u32;
    n.min(target)
}

/// Instances that may run at once: `floor(target * (1 +
/// maximumOverCapacity))`, one more when that leaves no room to move (it
/// equals [`min_healthy`]) and there is something to run.
pub fn max_capacity(target: u32, min_health_capacity: f64, max_over_capacity: f64) -> u32 {
    let over = max_over_capacity.max(0.0);
    let n = (f64::from(target) * (1.0 + over) + EPSILON).floor() as u32;
    let n = n.max(target);
    if target > 0 && n == min_healthy(target, min_health_capacity) {
        n + 1
    } else {
        n
    }
}

/// The next move of a restart: kill old instances as far as
/// `old_active + new_ready` stays at least [`min_healthy`], then launch new
/// ones up to `target` as far as `old_active` (after the kills) +
/// `new_active` stays within [`max_capacity`].
pub fn next_restart(view: &RestartView) -> RestartDecision {
    if view.old_active == 0 && view.new_ready >= view.target {
        return RestartDecision {
            kill_old: 0,
            launch_new: 0,
            done: true,
        };
    }
    let min_healthy = min_healthy(view.target, view.min_health_capacity);
    let max_capacity = max_capacity(
        view.target,
        view.min_health_capacity,
        view.max_over_capacity,
    );
    let up = view.old_active.saturating_add(view.new_ready);
    let kill_old = up.saturating_sub(min_healthy).min(view.old_active);
    let old_left = view.old_active - kill_old;
    let room = max_capacity.saturating_sub(old_left.saturating_add(view.new_active));
    let launch_new = view.target.saturating_sub(view.new_active).min(room);
    RestartDecision {
        kill_old,
        launch_new,
        done: false,
    }
}

/// The order in which instances go: those not running yet first
/// (unreachable, staging, starting), then running ones, then any others.
fn kill_weight(state: TaskState) -> u8 {
    match state {
        TaskState::TaskUnreachable => 0,
        TaskState::TaskStaging => 1,
        TaskState::TaskStarting => 2,
        TaskState::TaskRunning => 3,
        _ => 4,
    }
}

/// The `n` instances to kill when scaling down or replacing: not yet
/// running first, then by `selection` — `YOUNGEST_FIRST` the latest
/// started (or staged) first, `OLDEST_FIRST` the earliest first.
pub fn select_for_kill<'a>(
    instances: &[&'a Instance],
    n: usize,
    selection: KillSelection,
) -> Vec<&'a Instance> {
    let mut sorted = instances.to_vec();
    sorted.sort_by(|a, b| {
        let since = |i: &Instance| i.started_at.unwrap_or(i.staged_at);
        let by_age = match selection {
            KillSelection::YoungestFirst => since(b).cmp(&since(a)),
            KillSelection::OldestFirst => since(a).cmp(&since(b)),
        };
        kill_weight(a.state)
            .cmp(&kill_weight(b.state))
            .then(by_age)
            .then_with(|| a.instance_id.cmp(&b.instance_id))
    });
    sorted.truncate(n);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::instance::Goal;
    use crate::model::{PathId, Timestamp};

    fn view(target: u32, old: u32, new: u32, ready: u32, min: f64, over: f64) -> RestartView {
        RestartView {
            target,
            old_active: old,
            new_active: new,
            new_ready: ready,
            min_health_capacity: min,
            max_over_capacity: over,
        }
    }

    fn decision(kill_old: u32, launch_new: u32, done: bool) -> RestartDecision {
        RestartDecision {
            kill_old,
            launch_new,
            done,
        }
    }

    #[test]
    fn bounds() {
        assert_eq!(min_healthy(10, 0.7), 7);
        assert_eq!(min_healthy(3, 0.5), 2);
        assert_eq!(min_healthy(3, 0.0), 0);
        assert_eq!(min_healthy(3, 1.5), 3);
        assert_eq!(min_healthy(0, 1.0), 0);
        assert_eq!(max_capacity(10, 0.7, 0.7), 17);
        assert_eq!(max_capacity(3, 0.5, 0.5), 4);
        assert_eq!(max_capacity(3, 1.0, 1.0), 6);
        assert_eq!(max_capacity(3, 0.5, 0.0), 3);
        assert_eq!(max_capacity(3, 1.0, 0.0), 4, "no room: one over capacity");
        assert_eq!(max_capacity(3, 1.0, -1.0), 4);
        assert_eq!(max_capacity(0, 1.0, 0.0), 0);
    }

    #[test]
    fn decisions() {
        #[rustfmt::skip]
        let table: &[(RestartView, RestartDecision, &str)] = &[
            // Marathon's default (1, 1): all new at once, old go as new get ready.
            (view(3, 3, 0, 0, 1.0, 1.0), decision(0, 3, false), "default: launch all"),
            (view(3, 3, 3, 1, 1.0, 1.0), decision(1, 0, false), "default: one ready, one old goes"),
            (view(3, 2, 3, 3, 1.0, 1.0), decision(2, 0, false), "default: all ready, rest goes"),
            (view(3, 0, 3, 3, 1.0, 1.0), decision(0, 0, true), "default: done"),
            (view(3, 0, 3, 2, 1.0, 1.0), decision(0, 0, false), "default: waits for readiness"),
            // No room (1, 0): one over capacity at a time.
            (view(3, 3, 0, 0, 1.0, 0.0), decision(0, 1, false), "no room: one extra"),
            (view(3, 3, 1, 0, 1.0, 0.0), decision(0, 0, false), "no room: wait"),
            (view(3, 3, 1, 1, 1.0, 0.0), decision(1, 1, false), "no room: swap one"),
            (view(3, 1, 3, 2, 1.0, 0.0), decision(0, 0, false), "no room: wait again"),
            (view(3, 1, 3, 3, 1.0, 0.0), decision(1, 0, false), "no room: last old goes"),
            // Half healthy, no over capacity: kill half, then swap.
            (view(4, 4, 0, 0, 0.5, 0.0), decision(2, 2, false), "half: kill 2 launch 2"),
            (view(4, 2, 2, 0, 0.5, 0.0), decision(0, 0, false), "half: wait"),
            (view(4, 2, 2, 2, 0.5, 0.0), decision(2, 2, false), "half: swap the rest"),
            // minHealth 0: everything old at once.
            (view(5, 5, 0, 0, 0.0, 0.0), decision(5, 5, false), "zero: kill all launch all"),
            (view(5, 5, 0, 0, 0.0, 1.0), decision(5, 5, false), "zero/over: same"),
            // maxOver 1 with minHealth 0.5.
            (view(4, 4, 0, 0, 0.5, 1.0), decision(2, 4, false), "half/over"),
            // Target 0: all old go, nothing starts.
            (view(0, 3, 0, 0, 1.0, 1.0), decision(3, 0, false), "target 0: kill all"),
            (view(0, 0, 0, 0, 1.0, 0.0), decision(0, 0, true), "target 0: done"),
            // Nothing old (old ones died): just launch.
            (view(2, 0, 0, 0, 1.0, 0.0), decision(0, 2, false), "no old: launch"),
            // Fewer old than minHealthy: no kill, launch into the room.
            (view(4, 2, 0, 0, 1.0, 0.0), decision(0, 3, false), "degraded: no kill"),
            // More new than target (an over-launch): nothing more.
            (view(2, 1, 3, 1, 1.0, 1.0), decision(0, 0, false), "over-launched: no launch"),
            (view(2, 1, 3, 2, 1.0, 1.0), decision(1, 0, false), "over-launched: old still goes"),
            // Float noise: 10 * 0.7 is 7.
            (view(10, 10, 0, 0, 0.7, 0.0), decision(3, 3, false), "0.7 of 10"),
        ];
        for (v, expected, what) in table {
            assert_eq!(next_restart(v), *expected, "{what}: {v:?}");
        }
    }

    /// Runs a restart to its end: launched instances get ready one tick
    /// later, kills take effect at once. Checks Marathon's bounds at every tick.
    fn simulate(target: u32, old: u32, min: f64, over: f64) -> usize {
        let min_up = min_healthy(target, min).min(old);
        let cap = max_capacity(target, min, over).max(old);
        let (mut old_active, mut new_active, mut new_ready) = (old, 0u32, 0u32);
        for tick in 1..1000 {
            let d = next_restart(&view(target, old_active, new_active, new_ready, min, over));
            if d.done {
                assert_eq!((old_active, new_ready), (0, target));
                return tick;
            }
            old_active -= d.kill_old;
            assert!(
                old_active + new_ready >= min_up,
                "below minimum health at tick {tick}"
            );
            // Instances launched before this tick are ready now.
            new_ready = new_active;
            new_active += d.launch_new;
            assert!(
                old_active + new_active <= cap,
                "over capacity at tick {tick}"
            );
            assert!(new_active <= target);
        }
        panic!("restart of {target} (min {min}, over {over}) does not finish");
    }

    #[test]
    fn every_strategy_finishes_within_bounds() {
        for target in [0, 1, 2, 3, 5, 10] {
            for old in [0, target / 2, target] {
                for min in [0.0, 0.3, 0.5, 0.7, 1.0] {
                    for over in [0.0, 0.2, 0.5, 1.0] {
                        simulate(target, old, min, over);
                    }
                }
            }
        }
        // All at once is fast; one at a time takes a tick per instance pair.
        assert!(simulate(10, 10, 0.0, 1.0) <= 3);
        assert!(simulate(10, 10, 1.0, 0.0) >= 10);
    }

    fn instance(n: u32, state: TaskState, staged: i64, started: Option<i64>) -> Instance {
        Instance {
            instance_id: format!("app.instance-{n}"),
            app_id: PathId::parse("/app"),
            app_version: Timestamp(0),
            task_id: format!("app.instance-{n}._app.1"),
            agent_id: "agent".into(),
            host: "host".into(),
            attributes: Vec::new(),
            ports: Vec::new(),
            ip_addresses: Vec::new(),
            state,
            goal: Goal::Running,
            staged_at: Timestamp(staged),
            started_at: started.map(Timestamp),
            unreachable_since: None,
            health: Vec::new(),
            since: Timestamp(staged),
        }
    }

    #[test]
    fn kill_selection() {
        let all = [
            instance(1, TaskState::TaskRunning, 10, Some(11)),
            instance(2, TaskState::TaskRunning, 20, Some(40)),
            instance(3, TaskState::TaskStaging, 5, None),
            instance(4, TaskState::TaskRunning, 30, Some(31)),
            instance(5, TaskState::TaskUnreachable, 1, Some(2)),
            instance(6, TaskState::TaskStarting, 50, None),
        ];
        let refs: Vec<&Instance> = all.iter().collect();
        let pick = |n, sel| -> Vec<String> {
            select_for_kill(&refs, n, sel)
                .iter()
                .map(|i| {
                    i.instance_id
                        .trim_start_matches("app.instance-")
                        .to_string()
                })
                .collect()
        };
        assert_eq!(
            pick(6, KillSelection::YoungestFirst),
            vec!["5", "3", "6", "2", "4", "1"]
        );
        assert_eq!(
            pick(6, KillSelection::OldestFirst),
            vec!["5", "3", "6", "1", "4", "2"]
        );
        assert_eq!(
            pick(4, KillSelection::YoungestFirst),
            vec!["5", "3", "6", "2"]
        );
        assert_eq!(pick(0, KillSelection::YoungestFirst), Vec::<String>::new());
        assert_eq!(pick(10, KillSelection::OldestFirst).len(), 6);
    }
}
