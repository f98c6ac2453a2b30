use super::*;
use crate::model::app::{UpgradeStrategy, VersionInfo};
use crate::model::{PathId, TaskState, Timestamp};

const OLD: Timestamp = Timestamp(1_000);
const NEW: Timestamp = Timestamp(2_000);

fn app(instances: i64, min_health: f64, max_over: f64) -> Arc<AppDefinition> {
    let mut app = AppDefinition::with_id(PathId::parse("/web"));
    app.instances = instances;
    app.version = Some(NEW);
    app.version_info = Some(VersionInfo {
        last_scaling_at: NEW,
        last_config_change_at: NEW,
    });
    app.upgrade_strategy = UpgradeStrategy {
        minimum_health_capacity: min_health,
        maximum_over_capacity: max_over,
        progress_deadline_seconds: None,
    };
    Arc::new(app)
}

fn instance(n: u32, version: Timestamp, state: TaskState) -> Instance {
    Instance {
        instance_id: format!("web.instance-{n}"),
        app_id: PathId::parse("/web"),
        app_version: version,
        task_id: format!("web.instance-{n}._app.1"),
        agent_id: "a".into(),
        host: "h".into(),
        attributes: Vec::new(),
        ports: Vec::new(),
        ip_addresses: Vec::new(),
        state,
        goal: Goal::Running,
        staged_at: Timestamp(i64::from(n)),
        started_at: None,
        unreachable_since: None,
        health: Vec::new(),
        since: Timestamp(0),
    }
}

/// `old` running old instances, `new` new ones of which the first `ready` are ready.
fn fleet(old: u32, new: u32) -> Vec<Instance> {
    (0..old)
        .map(|n| instance(n, OLD, TaskState::TaskRunning))
        .chain((0..new).map(|n| instance(100 + n, NEW, TaskState::TaskRunning)))
        .collect()
}

fn demand(kind: ActionKind, app: Arc<AppDefinition>, fleet: &[Instance], ready_new: u32) -> Demand {
    let refs: Vec<&Instance> = fleet.iter().collect();
    let ready = |i: &Instance| {
        i.app_version == OLD
            || i.instance_id
                .trim_start_matches("web.instance-")
                .parse::<u32>()
                .is_ok_and(|n| n < 100 + ready_new)
    };
    action_demand(
        kind,
        Some(app),
        &AppInstances {
            all: &refs,
            counting: &refs,
            ready: &ready,
        },
    )
}

fn launched(d: &Demand) -> u32 {
    d.launch.as_ref().map_or(0, |(_, n)| *n)
}

#[test]
fn a_rolling_restart_replaces_old_instances_only_as_new_ones_are_ready() {
    use ActionKind::RestartApplication as Restart;
    // (old running, new running, new ready) -> (launch, kill, done), for 3
    // instances, minimumHealthCapacity 1, maximumOverCapacity 1.
    let table = [
        ((3, 0, 0), (3, 0, false)),
        // New ones run but none is ready (a broken version): the old stay.
        ((3, 3, 0), (0, 0, false)),
        ((3, 3, 1), (0, 1, false)),
        ((2, 3, 3), (0, 2, false)),
        ((0, 3, 3), (0, 0, true)),
    ];
    for ((old, new, ready), (launch, kill, done)) in table {
        let d = demand(Restart, app(3, 1.0, 1.0), &fleet(old, new), ready);
        assert_eq!(
            (launched(&d), d.kill.len(), d.done),
            (launch, kill as usize, done),
            "old {old}, new {new}, ready {ready}"
        );
        assert!(
            d.kill.iter().all(|i| i.app_version == OLD),
            "only old instances go"
        );
    }
}

#[test]
fn a_restart_that_may_lose_capacity_kills_before_new_ones_are_ready() {
    // minimumHealthCapacity 0.5, maximumOverCapacity 0: 2 of 4 may go at
    // once, and 2 new ones take their room.
    let d = demand(
        ActionKind::RestartApplication,
        app(4, 0.5, 0.0),
        &fleet(4, 0),
        0,
    );
    assert_eq!((launched(&d), d.kill.len()), (2, 2));
    let d = demand(
        ActionKind::RestartApplication,
        app(4, 0.5, 0.0),
        &fleet(2, 0),
        0,
    );
    assert_eq!((launched(&d), d.kill.len()), (2, 0));
}

#[test]
fn scaling_launches_the_missing_kills_the_excess_and_is_done_when_all_are_ready() {
    let scale = ActionKind::ScaleApplication;
    let d = demand(scale, app(5, 1.0, 1.0), &fleet(0, 3), 3);
    assert_eq!((launched(&d), d.kill.len(), d.done), (2, 0, false));
    let d = demand(scale, app(2, 1.0, 1.0), &fleet(0, 3), 3);
    assert_eq!((launched(&d), d.kill.len(), d.done), (0, 1, false));
    let d = demand(scale, app(3, 1.0, 1.0), &fleet(0, 3), 2);
    assert_eq!((launched(&d), d.done), (0, false), "one not ready yet");
    let d = demand(scale, app(3, 1.0, 1.0), &fleet(0, 3), 3);
    assert!(d.done);
}

#[test]
fn stopping_kills_every_instance_and_is_done_when_none_is_left() {
    let d = demand(
        ActionKind::StopApplication,
        app(3, 1.0, 1.0),
        &fleet(1, 2),
        2,
    );
    assert_eq!((d.kill.len(), d.done), (3, false));
    let d = demand(ActionKind::StopApplication, app(3, 1.0, 1.0), &[], 0);
    assert_eq!((d.kill.len(), d.done), (0, true));
    assert_eq!(
        demand(ActionKind::StartApplication, app(3, 1.0, 1.0), &[], 0),
        Demand::done()
    );
    let refs: Vec<&Instance> = Vec::new();
    let never = |_: &Instance| false;
    let gone = action_demand(
        ActionKind::ScaleApplication,
        None,
        &AppInstances {
            all: &refs,
            counting: &refs,
            ready: &never,
        },
    );
    assert_eq!(gone, Demand::done(), "an app the target does not have");
}
