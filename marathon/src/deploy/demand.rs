//! What an app needs now, from the counts alone (pure): the core asks,
//! for each app the current step of a deployment holds (or, held by none,
//! for the scale check), how many instances of which definition must wait
//! to be launched, which instances must be killed, and whether the action
//! is complete.
//!
//! "Ready" is the caller's predicate: running, healthy when the app has
//! health checks, ready when it has readiness checks
//! ([`crate::model::health::counts_as_ready`]). A restart replaces old
//! instances only as new ones become ready ([`super::replace`]); an action
//! is complete only when every instance it wants is ready.

use std::sync::Arc;

use super::plan::ActionKind;
use super::replace::{next_restart, select_for_kill, RestartView};
use crate::model::instance::Goal;
use crate::model::{AppDefinition, Instance};

/// What an app needs now.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// The definition to launch and how many more (0: nothing waits).
    pub launch: Option<(Arc<AppDefinition>, u32)>,
    /// Instances to kill for good.
    pub kill: Vec<Instance>,
    /// Whether the action holding the app is complete.
    pub done: bool,
}

impl Demand {
    /// Nothing to do, and done.
    pub fn done() -> Self {
        Demand {
            launch: None,
            kill: Vec::new(),
            done: true,
        }
    }
}

/// What an app's instances look like to a demand.
pub struct AppInstances<'a> {
    /// Every instance of the app, whatever its goal.
    pub all: &'a [&'a Instance],
    /// Those that count towards `instances` (running or on their way,
    /// not decommissioned, not inactive).
    pub counting: &'a [&'a Instance],
    /// Whether an instance is ready.
    pub ready: &'a dyn Fn(&Instance) -> bool,
}

/// The demand of an action of kind `kind` whose target definition is
/// `target` (absent when the target has no such app).
pub fn action_demand(
    kind: ActionKind,
    target: Option<Arc<AppDefinition>>,
    instances: &AppInstances<'_>,
) -> Demand {
    match kind {
        ActionKind::StartApplication => Demand::done(),
        ActionKind::StopApplication => Demand {
            launch: None,
            done: instances.all.is_empty(),
            kill: instances
                .all
                .iter()
                .filter(|i| i.goal == Goal::Running)
                .map(|i| (*i).clone())
                .collect(),
        },
        ActionKind::ScaleApplication => match target {
            Some(app) => scale_demand(app, instances),
            None => Demand::done(),
        },
        ActionKind::RestartApplication => match target {
            Some(app) => restart_demand(app, instances),
            None => Demand::done(),
        },
    }
}

/// Keep exactly `app.instances` counting instances: launch the missing,
/// kill the excess; done once that many are ready.
pub fn scale_demand(app: Arc<AppDefinition>, instances: &AppInstances<'_>) -> Demand {
    let counting = instances.counting;
    let target = app.instances.max(0) as usize;
    let active = counting.len();
    let kill = if active > target {
        select_for_kill(counting, active - target, app.kill_selection)
            .into_iter()
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let missing = target.saturating_sub(active) as u32;
    let done = active == target && counting.iter().all(|i| (instances.ready)(i));
    Demand {
        launch: Some((app, missing)),
        kill,
        done,
    }
}

/// Replace the instances of older configurations by `app.instances` of
/// this one, within the upgrade strategy, old ones going only as new ones
/// are ready.
pub fn restart_demand(app: Arc<AppDefinition>, instances: &AppInstances<'_>) -> Demand {
    let changed_at = app
        .version_info
        .map(|v| v.last_config_change_at)
        .unwrap_or_else(|| app.version_or_epoch());
    // Instances of a version between the last config change and the target
    // version run the target's configuration.
    let target_version = app.version_or_epoch();
    let (new, old): (Vec<&Instance>, Vec<&Instance>) = instances
        .counting
        .iter()
        .partition(|i| i.app_version >= changed_at && i.app_version <= target_version);
    let view = RestartView {
        target: app.instances.max(0) as u32,
        old_active: old.len() as u32,
        new_active: new.len() as u32,
        new_ready: new.iter().filter(|i| (instances.ready)(i)).count() as u32,
        min_health_capacity: app.upgrade_strategy.minimum_health_capacity,
        max_over_capacity: app.upgrade_strategy.maximum_over_capacity,
    };
    let decision = next_restart(&view);
    let kill = select_for_kill(&old, decision.kill_old as usize, app.kill_selection)
        .into_iter()
        .cloned()
        .collect();
    Demand {
        launch: Some((app, decision.launch_new)),
        kill,
        done: decision.done,
    }
}

#[cfg(test)]
mod tests;
