//! What the leading Marathon knows, shared read-only with the API.
//!
//! Only the core task writes (under the write lock, briefly, after the
//! change is stored); API handlers take the read lock to render answers, so
//! reads never queue behind offers or deployments.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::deploy::plan::DeploymentPlan;
use crate::deploy::progress::ActionProgress;
use crate::model::health::counts_as_ready;
use crate::model::instance::Goal;
use crate::model::{AppDefinition, Instance, PathId, RootGroup, TaskState, Timestamp};
use crate::scheduler::matcher::NoMatchReason;

/// A deployment being carried out.
#[derive(Debug, Clone)]
pub struct RunningDeployment {
    /// The plan.
    pub plan: Arc<DeploymentPlan>,
    /// Index of the step being executed (== steps.len() when done).
    pub current_step: usize,
    /// The whole root group before the change, for events (after a
    /// failover: the current root with the plan's apps put back).
    pub original: Arc<RootGroup>,
    /// The whole root group the change leads to, for events.
    pub target: Arc<RootGroup>,
}

impl RunningDeployment {
    /// Marathon's `/v2/deployments` entry, with the readiness results in `st`.
    pub fn to_json(&self, st: &State) -> serde_json::Value {
        self.plan
            .to_json(self.current_step + 1, &|app| st.readiness_json(app))
    }
}

/// An unused offer remembered for `/v2/queue?embed=lastUnusedOffers`.
#[derive(Debug, Clone)]
pub struct UnusedOffer {
    /// The offer, as Marathon renders it.
    pub offer: serde_json::Value,
    /// When.
    pub timestamp: Timestamp,
    /// Why it did not fit.
    pub reasons: Vec<NoMatchReason>,
}

/// An app waiting for offers.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    /// The definition to launch.
    pub app: Arc<AppDefinition>,
    /// Instances still to launch.
    pub count: u32,
    /// Since when something waits.
    pub since: Timestamp,
    /// Offers looked at / not used since the entry was made.
    pub processed_offers: u64,
    /// Offers not used.
    pub unused_offers: u64,
    /// When an offer was last used.
    pub last_used_offer_at: Option<Timestamp>,
    /// When an offer was last not used.
    pub last_unused_offer_at: Option<Timestamp>,
    /// Declines per reason.
    pub reject_summary: BTreeMap<&'static str, u64>,
    /// The last unused offers.
    pub last_unused: VecDeque<UnusedOffer>,
}

/// How many unused offers each queue entry remembers.
pub const UNUSED_OFFERS_KEPT: usize = 10;

impl QueueEntry {
    /// A fresh entry.
    pub fn new(app: Arc<AppDefinition>, count: u32) -> Self {
        QueueEntry {
            app,
            count,
            since: Timestamp::now(),
            processed_offers: 0,
            unused_offers: 0,
            last_used_offer_at: None,
            last_unused_offer_at: None,
            reject_summary: BTreeMap::new(),
            last_unused: VecDeque::new(),
        }
    }
}

/// The relaunch delay of an app after failures.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// No launch before this.
    pub until: Instant,
    /// The delay that was applied last.
    pub delay: Duration,
    /// The app version the delay belongs to (a new version resets it).
    pub version: Timestamp,
}

impl Backoff {
    /// The delay after one more failure of `app`, given the previous one.
    pub fn next(app: &AppDefinition, previous: Option<&Backoff>, now: Instant) -> Backoff {
        let max = Duration::from_secs(app.max_launch_delay_seconds.max(0) as u64);
        let first = Duration::from_secs(app.backoff_seconds.max(0) as u64);
        let delay = match previous {
            Some(p) if p.version == app.version_or_epoch() => {
                p.delay.mul_f64(app.backoff_factor.max(1.0)).min(max)
            }
            _ => first.min(max),
        };
        Backoff {
            until: now + delay,
            delay,
            version: app.version_or_epoch(),
        }
    }
}

/// The last failed task of an app (`lastTaskFailure`).
#[derive(Debug, Clone)]
pub struct TaskFailure {
    /// The app.
    pub app_id: PathId,
    /// The agent's host.
    pub host: String,
    /// Why, as the agent said.
    pub message: String,
    /// The terminal state.
    pub state: TaskState,
    /// The task.
    pub task_id: String,
    /// When.
    pub timestamp: Timestamp,
    /// The app version the task ran.
    pub version: Timestamp,
    /// The agent.
    pub slave_id: String,
}

/// Who leads, for `/v2/info` and `/v2/leader`.
#[derive(Debug, Clone, Default)]
pub struct Leadership {
    /// Whether this instance leads.
    pub elected: bool,
    /// `host:port` of the leader, if known.
    pub leader: Option<String>,
}

/// The whole state.
#[derive(Debug)]
pub struct State {
    /// Apps and groups.
    pub root: RootGroup,
    /// Instances by id.
    pub instances: BTreeMap<String, Instance>,
    /// Instance ids per app.
    pub by_app: HashMap<PathId, BTreeSet<String>>,
    /// Running deployments by id.
    pub deployments: BTreeMap<String, RunningDeployment>,
    /// Apps waiting for offers.
    pub queue: BTreeMap<PathId, QueueEntry>,
    /// Relaunch delays.
    pub backoffs: HashMap<PathId, Backoff>,
    /// Last task failure per app.
    pub failures: HashMap<PathId, TaskFailure>,
    /// The framework id once subscribed.
    pub framework_id: Option<String>,
    /// Leadership.
    pub leadership: Leadership,
    /// Whether the state has been loaded (this instance leads and is ready).
    pub ready: bool,
    /// Readiness check results of instances being deployed, by instance id
    /// (in memory: a new leader checks again).
    pub readiness: HashMap<String, Vec<ReadinessResult>>,
    /// Revision of what the API shows of each app (see [`State::app_revision`]).
    revisions: HashMap<PathId, u64>,
    /// The revision of apps not in `revisions`.
    base_revision: u64,
    /// The last revision handed out.
    last_revision: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            root: RootGroup::empty(Timestamp(0)),
            instances: BTreeMap::new(),
            by_app: HashMap::new(),
            deployments: BTreeMap::new(),
            queue: BTreeMap::new(),
            backoffs: HashMap::new(),
            failures: HashMap::new(),
            framework_id: None,
            leadership: Leadership::default(),
            ready: false,
            readiness: HashMap::new(),
            revisions: HashMap::new(),
            base_revision: 0,
            last_revision: 0,
        }
    }
}

/// A readiness check's latest result for one instance, in Marathon's shape
/// (a deployment's `readinessCheckResults`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessResult {
    /// The check's name.
    pub name: String,
    /// The task.
    pub task_id: String,
    /// Ready (an answer with one of `httpStatusCodesForReady`).
    pub ready: bool,
    /// The last answer, with `preserveLastResponse`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_response: Option<ReadinessResponse>,
}

/// An answer to a readiness check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessResponse {
    /// The HTTP status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its body.
    pub body: String,
}

/// Task counts of an app, as `GET /v2/apps` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Staging or starting.
    pub staged: usize,
    /// Running.
    pub running: usize,
    /// Running and healthy.
    pub healthy: usize,
    /// Running and unhealthy.
    pub unhealthy: usize,
}

impl State {
    /// A number that changes whenever anything `GET /v2/apps` shows of the
    /// app may have changed: its definition, its instances, the deployments
    /// affecting it, its last failure. While an app is in the root group
    /// its revisions are never reused (one that comes back is given a new
    /// one), so an app rendered at a revision is rendered the same until
    /// its revision changes.
    pub fn app_revision(&self, app: &PathId) -> u64 {
        self.revisions
            .get(app)
            .copied()
            .unwrap_or(self.base_revision)
    }

    /// A number that changes whenever any app's revision changes (or an
    /// app comes or goes).
    pub fn revision(&self) -> u64 {
        self.last_revision
    }

    /// Gives `app` a new revision.
    pub fn touch(&mut self, app: &PathId) {
        self.last_revision += 1;
        self.revisions.insert(app.clone(), self.last_revision);
    }

    /// Forgets everything but leadership (a new term loads anew, a standby
    /// shows nothing of its own). Revisions keep growing, so nothing
    /// rendered before the reset is ever served for what comes after.
    pub fn reset(&mut self) {
        let leadership = std::mem::take(&mut self.leadership);
        let last = self.last_revision;
        *self = State {
            leadership,
            last_revision: last,
            ..State::default()
        };
        self.touch_all();
    }

    /// Gives every app a new revision (after the whole state was replaced).
    pub fn touch_all(&mut self) {
        self.last_revision += 1;
        self.base_revision = self.last_revision;
        self.revisions.clear();
    }

    /// Replaces the root group; apps that changed, came or went get a new revision.
    pub fn set_root(&mut self, root: RootGroup) {
        let changed: Vec<PathId> = root
            .apps
            .iter()
            .filter(|(id, app)| {
                self.root
                    .apps
                    .get(*id)
                    .is_none_or(|old| !Arc::ptr_eq(old, app))
            })
            .map(|(id, _)| id.clone())
            .chain(
                self.root
                    .apps
                    .keys()
                    .filter(|id| !root.apps.contains_key(*id))
                    .cloned(),
            )
            .collect();
        for id in &changed {
            self.touch(id);
        }
        self.revisions
            .retain(|id, _| root.apps.contains_key(id) || self.by_app.contains_key(id));
        self.root = root;
    }

    /// Starts tracking a deployment; the apps it affects get a new revision.
    pub fn insert_deployment(&mut self, deployment: RunningDeployment) {
        for app in deployment.plan.affected_apps() {
            self.touch(&app);
        }
        self.deployments
            .insert(deployment.plan.id.clone(), deployment);
    }

    /// Forgets a deployment; the apps it affected get a new revision.
    pub fn remove_deployment(&mut self, id: &str) -> Option<RunningDeployment> {
        let removed = self.deployments.remove(id)?;
        for app in removed.plan.affected_apps() {
            self.touch(&app);
        }
        Some(removed)
    }

    /// Records the last failure of an app.
    pub fn record_failure(&mut self, failure: TaskFailure) {
        self.touch(&failure.app_id);
        self.failures.insert(failure.app_id.clone(), failure);
    }

    /// Adds or replaces an instance.
    pub fn put_instance(&mut self, instance: Instance) {
        self.touch(&instance.app_id);
        self.by_app
            .entry(instance.app_id.clone())
            .or_default()
            .insert(instance.instance_id.clone());
        self.instances
            .insert(instance.instance_id.clone(), instance);
    }

    /// Removes an instance.
    pub fn remove_instance(&mut self, id: &str) -> Option<Instance> {
        self.readiness.remove(id);
        let instance = self.instances.remove(id)?;
        self.touch(&instance.app_id);
        if let Some(ids) = self.by_app.get_mut(&instance.app_id) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_app.remove(&instance.app_id);
            }
        }
        Some(instance)
    }

    /// The instances of an app.
    pub fn app_instances(&self, app: &PathId) -> Vec<&Instance> {
        self.by_app
            .get(app)
            .map(|ids| ids.iter().filter_map(|id| self.instances.get(id)).collect())
            .unwrap_or_default()
    }

    /// Instances that count toward the app's `instances`: launched or
    /// running, wanted, and not unreachable past `inactiveAfterSeconds`.
    pub fn counting_instances(&self, app: &PathId, now: Timestamp) -> Vec<&Instance> {
        let inactive_after = self
            .root
            .app(app)
            .map(|a| a.unreachable_strategy)
            .unwrap_or_default();
        self.app_instances(app)
            .into_iter()
            .filter(|i| i.goal == Goal::Running && i.is_active())
            .filter(|i| !is_inactive(i, inactive_after, now))
            .collect()
    }

    /// Whether every readiness check of `app` has found the instance ready
    /// (true when the app has none).
    pub fn readiness_passed(&self, app: &AppDefinition, instance_id: &str) -> bool {
        if app.readiness_checks.is_empty() {
            return true;
        }
        self.readiness.get(instance_id).is_some_and(|results| {
            app.readiness_checks
                .iter()
                .all(|c| results.iter().any(|r| r.name == c.name && r.ready))
        })
    }

    /// The definition an instance runs: its app at the instance's version
    /// (the current one, or one a running deployment replaces), else the
    /// current one.
    pub fn app_of(&self, instance: &Instance) -> Option<&AppDefinition> {
        let current = self.root.app(&instance.app_id).map(|a| a.as_ref());
        if current.is_some_and(|a| a.version_or_epoch() == instance.app_version) {
            return current;
        }
        self.deployments
            .values()
            .flat_map(|d| {
                [
                    d.plan.original.get(&instance.app_id),
                    d.plan.target.get(&instance.app_id),
                ]
            })
            .flatten()
            .map(|a| a.as_ref())
            .find(|a| a.version_or_epoch() == instance.app_version)
            .or(current)
    }

    /// The readiness check results of an app's instances, in Marathon's
    /// shape (`readinessCheckResults`).
    pub fn readiness_json(&self, app: &PathId) -> serde_json::Value {
        let results: Vec<&ReadinessResult> = self
            .app_instances(app)
            .into_iter()
            .filter_map(|i| self.readiness.get(&i.instance_id))
            .flatten()
            .collect();
        serde_json::to_value(results).unwrap_or_default()
    }

    /// What the current step of a deployment has of its target, app by app.
    pub fn deployment_progress(&self, d: &RunningDeployment) -> Vec<ActionProgress> {
        let now = Timestamp::now();
        let Some(step) = d.plan.steps.get(d.current_step) else {
            return Vec::new();
        };
        step.actions
            .iter()
            .filter_map(|action| {
                let target = d.plan.target.get(&action.app)?;
                let counting = self.counting_instances(&action.app, now);
                let ready = |i: &Instance| {
                    counts_as_ready(target, i, self.readiness_passed(target, &i.instance_id))
                };
                let failure = self.failures.get(&action.app).map(|f| f.message.as_str());
                Some(ActionProgress::of(target, &counting, &ready, failure))
            })
            .collect()
    }

    /// Task counts of an app.
    pub fn counts(&self, app: &PathId) -> TaskCounts {
        let mut counts = TaskCounts::default();
        for i in self.app_instances(app) {
            let definition = self.app_of(i);
            match i.state {
                TaskState::TaskStaging | TaskState::TaskStarting => counts.staged += 1,
                TaskState::TaskRunning => {
                    counts.running += 1;
                    match definition.and_then(|d| crate::model::health::healthy(d, i)) {
                        Some(true) => counts.healthy += 1,
                        Some(false) => counts.unhealthy += 1,
                        None => {}
                    }
                }
                _ => {}
            }
        }
        counts
    }

    /// Ids of the deployments affecting an app.
    pub fn deployments_of(&self, app: &PathId) -> Vec<String> {
        self.deployments
            .values()
            .filter(|d| d.plan.original.contains_key(app) || d.plan.target.contains_key(app))
            .map(|d| d.plan.id.clone())
            .collect()
    }
}

/// Whether an unreachable instance has been unreachable past its app's `inactiveAfterSeconds`.
pub fn is_inactive(
    instance: &Instance,
    strategy: crate::model::app::UnreachableStrategy,
    now: Timestamp,
) -> bool {
    use crate::model::app::UnreachableStrategy;
    if instance.state != TaskState::TaskUnreachable {
        return false;
    }
    match strategy {
        UnreachableStrategy::Disabled => false,
        UnreachableStrategy::Enabled {
            inactive_after_seconds,
            ..
        } => {
            let since = instance.unreachable_since.unwrap_or(instance.since);
            now.millis() - since.millis() >= inactive_after_seconds * 1000
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(backoff: i64, factor: f64, max: i64) -> AppDefinition {
        let mut a = AppDefinition::with_id(PathId::parse("/a"));
        a.backoff_seconds = backoff;
        a.backoff_factor = factor;
        a.max_launch_delay_seconds = max;
        a
    }

    #[test]
    fn backoff_grows_to_the_maximum_and_resets_with_a_new_version() {
        let now = Instant::now();
        let a = app(1, 2.0, 5);
        let b1 = Backoff::next(&a, None, now);
        assert_eq!(b1.delay, Duration::from_secs(1));
        let b2 = Backoff::next(&a, Some(&b1), now);
        assert_eq!(b2.delay, Duration::from_secs(2));
        let b3 = Backoff::next(&a, Some(&b2), now);
        let b4 = Backoff::next(&a, Some(&b3), now);
        assert_eq!(b4.delay, Duration::from_secs(5));
        let mut newer = a.clone();
        newer.version = Some(Timestamp(42));
        assert_eq!(
            Backoff::next(&newer, Some(&b4), now).delay,
            Duration::from_secs(1)
        );
    }
}
