//! Driving deployments and the scale check.
//!
//! [`Core::evaluate`] looks at every app marked dirty and decides, from the
//! current counts alone, how many instances of which definition must wait in
//! the launch queue and which instances must be killed: the current step of
//! the deployment that holds the app decides (scale, restart, stop); an app no
//! deployment holds is kept at its `instances` (Marathon's scale check).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tracing::info;

use super::changes::publish_plan_event;
use super::state::QueueEntry;
use super::{read, Core, CoreError};
use crate::deploy::demand::{self, AppInstances, Demand};
use crate::deploy::plan::{Action, ActionKind, DeploymentPlan};
use crate::deploy::progress::{self, Watch};
use crate::model::health::counts_as_ready;
use crate::model::instance::Goal;
use crate::model::{AppDefinition, Instance, PathId, TaskState, Timestamp};
use crate::storage::Write;

impl Core {
    /// Recomputes the demand of dirty apps, kills what must go, advances
    /// deployments, and suppresses or revives offers.
    ///
    /// Only dirty apps are looked at: every change to an app's instances
    /// (launch, status update, kill, expunge) and every new deployment step
    /// marks its apps dirty, and all apps are marked dirty every second for
    /// what changes with time alone (backoffs, unreachable instances turning
    /// inactive). So an event costs what its app costs, not what the whole
    /// state costs.
    pub(super) async fn evaluate(&mut self) -> Result<(), CoreError> {
        // Finishing a step makes the next step's apps dirty: go on until
        // nothing changes (bounded, in case two deployments keep waking each other).
        for _ in 0..16 {
            let dirty = std::mem::take(&mut self.dirty);
            if dirty.is_empty() {
                break;
            }
            let now = Timestamp::now();
            self.sync_steps();
            let holders = self.current_actions(&dirty);
            let mut kills = Vec::new();
            for app_id in &dirty {
                let demand = match holders.get(app_id) {
                    Some((plan, action)) => self.demand_for_action(plan, action, now),
                    None if self.locked(app_id) => continue,
                    None => self.scale_check(app_id, now),
                };
                self.set_queue(app_id, demand.launch);
                kills.extend(demand.kill);
            }
            self.decommission(kills).await?;
            self.advance_deployments(&dirty).await?;
        }
        self.update_suppression().await;
        Ok(())
    }

    /// Keeps one [`StepProgress`] per running deployment, for its current step.
    fn sync_steps(&mut self) {
        let st = read(&self.ctx.state);
        self.steps.retain(|id, p| {
            st.deployments
                .get(id)
                .is_some_and(|d| d.current_step == p.step && Arc::ptr_eq(&d.plan, &p.plan))
        });
        for d in st.deployments.values() {
            self.steps
                .entry(d.plan.id.clone())
                .or_insert_with(|| StepProgress::new(&d.plan, d.current_step));
        }
    }

    /// The action of each running deployment's current step, for the dirty
    /// apps (the first deployment, by id, holds an app).
    fn current_actions(
        &self,
        dirty: &BTreeSet<PathId>,
    ) -> BTreeMap<PathId, (Arc<DeploymentPlan>, Action)> {
        let mut holders = BTreeMap::new();
        let mut progress: Vec<&StepProgress> = self.steps.values().collect();
        progress.sort_by(|a, b| a.plan.id.cmp(&b.plan.id));
        for app in dirty {
            for p in &progress {
                let action = p
                    .by_app
                    .get(app)
                    .and_then(|i| i.first())
                    .and_then(|&i| p.plan.steps.get(p.step)?.actions.get(i));
                if let Some(action) = action {
                    holders.insert(app.clone(), (p.plan.clone(), action.clone()));
                    break;
                }
            }
        }
        holders
    }

    fn locked(&self, app: &PathId) -> bool {
        !self.state().deployments_of(app).is_empty()
    }

    fn demand_for_action(&self, plan: &DeploymentPlan, action: &Action, now: Timestamp) -> Demand {
        let mut demand = self.action_demand(plan, action, now);
        // An action is complete only once the instances it killed are gone
        // (an unreachable one cannot confirm; it is expunged in its time).
        if demand.done {
            let st = self.state();
            demand.done = st
                .app_instances(&action.app)
                .iter()
                .all(|i| i.goal == Goal::Running || i.state == TaskState::TaskUnreachable);
        }
        demand
    }

    fn action_demand(&self, plan: &DeploymentPlan, action: &Action, now: Timestamp) -> Demand {
        let st = self.state();
        let all = st.app_instances(&action.app);
        let counting = st.counting_instances(&action.app, now);
        let target = plan.target.get(&action.app).cloned();
        let ready = |i: &Instance| match &target {
            Some(app) => counts_as_ready(app, i, st.readiness_passed(app, &i.instance_id)),
            None => i.is_ready(),
        };
        demand::action_demand(
            action.kind,
            target.clone(),
            &AppInstances {
                all: &all,
                counting: &counting,
                ready: &ready,
            },
        )
    }

    fn scale_check(&self, app_id: &PathId, now: Timestamp) -> Demand {
        let st = self.state();
        let all = st.app_instances(app_id);
        match st.root.app(app_id) {
            Some(app) => {
                let counting = st.counting_instances(app_id, now);
                let ready = |i: &Instance| counts_as_ready(app, i, true);
                demand::scale_demand(
                    app.clone(),
                    &AppInstances {
                        all: &all,
                        counting: &counting,
                        ready: &ready,
                    },
                )
            }
            // Instances of an app that no longer exists (left by a forced cancel).
            None => Demand {
                launch: None,
                kill: all
                    .into_iter()
                    .filter(|i| i.goal == Goal::Running)
                    .cloned()
                    .collect(),
                done: true,
            },
        }
    }

    fn set_queue(&self, app_id: &PathId, launch: Option<(Arc<AppDefinition>, u32)>) {
        let mut st = self.state_mut();
        match launch {
            Some((app, count)) if count > 0 => match st.queue.get_mut(app_id) {
                Some(entry) if entry.app.version == app.version => entry.count = count,
                _ => {
                    st.queue.insert(app_id.clone(), QueueEntry::new(app, count));
                }
            },
            _ => {
                st.queue.remove(app_id);
            }
        }
    }

    /// Kills instances for good: stored as decommissioned first.
    async fn decommission(&mut self, instances: Vec<Instance>) -> Result<(), CoreError> {
        if instances.is_empty() {
            return Ok(());
        }
        let marked: Vec<Instance> = instances
            .into_iter()
            .map(|mut i| {
                i.goal = Goal::Decommissioned;
                i
            })
            .collect();
        self.persist(
            marked
                .iter()
                .map(|i| Write::Instance(Box::new(i.clone())))
                .collect(),
        )
        .await?;
        {
            let mut st = self.state_mut();
            for i in &marked {
                st.put_instance(i.clone());
            }
        }
        for i in &marked {
            self.watch_health(&i.instance_id);
            self.kill_instance(i).await;
            self.dirty.insert(i.app_id.clone());
        }
        Ok(())
    }

    /// Moves deployments whose current step is complete to the next step.
    /// A step's actions are all looked at when it begins; after that only
    /// those of the `dirty` apps (nothing else can have changed them).
    async fn advance_deployments(&mut self, dirty: &BTreeSet<PathId>) -> Result<(), CoreError> {
        loop {
            let now = Timestamp::now();
            self.sync_steps();
            let ids: Vec<String> = self.steps.keys().cloned().collect();
            let mut complete = Vec::new();
            for id in ids {
                let Some(mut p) = self.steps.remove(&id) else {
                    continue;
                };
                let actions = p
                    .plan
                    .steps
                    .get(p.step)
                    .map(|s| s.actions.as_slice())
                    .unwrap_or_default();
                let recheck: Vec<usize> = match p.undone {
                    None => (0..actions.len()).collect(),
                    Some(_) => dirty
                        .iter()
                        .filter_map(|app| p.by_app.get(app))
                        .flatten()
                        .copied()
                        .collect(),
                };
                let mut undone = p.undone.take().unwrap_or_default();
                for i in recheck {
                    if self.demand_for_action(&p.plan, &actions[i], now).done {
                        undone.remove(&i);
                    } else {
                        undone.insert(i);
                    }
                }
                if undone.is_empty() {
                    complete.push((p.plan.clone(), p.step));
                }
                p.undone = Some(undone);
                self.steps.insert(id, p);
            }
            if complete.is_empty() {
                return Ok(());
            }
            for (plan, step) in complete {
                self.finish_step(&plan, step).await?;
            }
        }
    }

    async fn finish_step(
        &mut self,
        plan: &Arc<DeploymentPlan>,
        step: usize,
    ) -> Result<(), CoreError> {
        let next = step + 1;
        let running = self.state().deployments.get(&plan.id).cloned();
        if let (Some(s), Some(running)) = (plan.steps.get(step), &running) {
            publish_plan_event(
                &self.ctx.events,
                "deployment_step_success",
                running,
                json!({"currentStep": step_json(s)}),
            );
        }
        if let Some(s) = plan.steps.get(step) {
            for action in &s.actions {
                if action.kind == ActionKind::StopApplication {
                    self.ctx
                        .events
                        .publish("app_terminated_event", json!({"appId": action.app}));
                }
            }
        }
        if next >= plan.steps.len() {
            self.persist(vec![Write::DeleteDeployment(plan.id.clone())])
                .await?;
            self.state_mut().remove_deployment(&plan.id);
            info!(deployment = %plan.id, "deployment finished");
            if let Some(running) = &running {
                publish_plan_event(
                    &self.ctx.events,
                    "deployment_success",
                    running,
                    json!({"id": plan.id}),
                );
            }
        } else {
            self.persist(vec![Write::Deployment(Box::new((**plan).clone()), next)])
                .await?;
            if let Some(d) = self.state_mut().deployments.get_mut(&plan.id) {
                d.current_step = next;
            }
            if let Some(running) = &running {
                publish_plan_event(
                    &self.ctx.events,
                    "deployment_info",
                    running,
                    json!({"currentStep": step_json(&plan.steps[next])}),
                );
            }
        }
        self.dirty.extend(plan.affected_apps());
        Ok(())
    }

    /// Fails (and rolls back) deployments that made no progress within
    /// their deadline (`upgradeStrategy.progressDeadlineSeconds`).
    pub(super) async fn check_deadlines(&mut self) -> Result<(), CoreError> {
        let now = Instant::now();
        let mut overdue = Vec::new();
        {
            let st = read(&self.ctx.state);
            self.progress
                .retain(|id, _| st.deployments.contains_key(id));
            for d in st.deployments.values() {
                let Some(deadline) = progress::deadline(&d.plan) else {
                    continue;
                };
                let actions = st.deployment_progress(d);
                let mark = (d.current_step, actions.iter().map(|a| a.ready).sum());
                let watch = Watch::observe(self.progress.get(&d.plan.id).copied(), mark, now);
                self.progress.insert(d.plan.id.clone(), watch);
                if watch.overdue(deadline, now) {
                    let waiting: Vec<String> = actions
                        .iter()
                        .filter(|a| !a.is_complete())
                        .map(|a| a.describe())
                        .collect();
                    let reason = format!(
                        "no progress for {} s (upgradeStrategy.progressDeadlineSeconds): {}; rolled back",
                        deadline.as_secs(),
                        waiting.join("; ")
                    );
                    overdue.push((d.plan.id.clone(), reason));
                }
            }
        }
        for (id, reason) in overdue {
            self.progress.remove(&id);
            self.fail_deployment(&id, &reason).await?;
        }
        Ok(())
    }

    /// Suppresses offers when nothing waits; revives when something does.
    async fn update_suppression(&mut self) {
        let waiting = {
            let st = self.state();
            let now = Instant::now();
            st.queue
                .iter()
                .any(|(id, e)| e.count > 0 && st.backoffs.get(id).is_none_or(|b| b.until <= now))
        };
        let role = self.ctx.config.mesos_role.clone();
        if waiting && self.suppressed {
            if self.scheduler.revive(&[role.as_str()]).await.is_ok() {
                self.suppressed = false;
            }
        } else if !waiting
            && !self.suppressed
            && self.subscribed
            && self.scheduler.suppress(&[role.as_str()]).await.is_ok()
        {
            self.suppressed = true;
        }
    }
}

/// The current step of a running deployment: where each app's actions
/// are, and which actions are not done yet (`None`: not looked at yet).
pub(super) struct StepProgress {
    plan: Arc<DeploymentPlan>,
    step: usize,
    by_app: HashMap<PathId, Vec<usize>>,
    undone: Option<BTreeSet<usize>>,
}

impl StepProgress {
    fn new(plan: &Arc<DeploymentPlan>, step: usize) -> Self {
        let mut by_app: HashMap<PathId, Vec<usize>> = HashMap::new();
        if let Some(s) = plan.steps.get(step) {
            for (i, action) in s.actions.iter().enumerate() {
                by_app.entry(action.app.clone()).or_default().push(i);
            }
        }
        StepProgress {
            plan: plan.clone(),
            step,
            by_app,
            undone: None,
        }
    }
}

/// A step as events carry it.
pub(super) fn step_json(step: &crate::deploy::plan::Step) -> serde_json::Value {
    json!({"actions": step.actions.iter().map(|a| json!({
        "action": a.kind.as_str(),
        "app": a.app,
    })).collect::<Vec<_>>()})
}
