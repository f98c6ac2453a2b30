//! Marathon's own health and readiness probes, as the core sees them.
//!
//! Running instances of apps with `HTTP`, `HTTPS` or `TCP` health checks,
//! or with readiness checks, are watched by the [`Prober`]; its results
//! come back here, fold into the instance's health records (in memory: a
//! new leader probes again), raise Marathon's events, and mark instances
//! whose checks failed `maxConsecutiveFailures` times as due for a kill.
//! Kills are then made by [`Core::health_kills`] under the
//! [`policy`]: never more of an app at once than its upgrade strategy
//! allows, and none while a hold is on (right after the election, or while
//! most checks fail at once); when a hold ends, an instance is killed only
//! once one of its checks fails again.
//!
//! Mesos checks are the agent's: it kills, and its verdicts arrive as
//! status updates ([`super::updates`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::updates::health_events;
use super::Core;
use crate::health::policy::{self, Hold, ProbeWindow};
use crate::health::target::probe_target;
use crate::health::{Outcome, ProbeResult, ProbeStats, Prober};
use crate::model::health::HealthRecord;
use crate::model::instance::Goal;
use crate::model::{PathId, Timestamp};

/// The core's part of Marathon's own probes.
pub(super) struct Health {
    prober: Prober,
    window: ProbeWindow,
    elected: Instant,
    hold_after_election: Duration,
    /// Instances whose checks call for a kill, by app (oldest first).
    due: BTreeMap<PathId, Vec<String>>,
    /// Instances killed for their health and not ended yet, by app.
    killing: HashMap<String, PathId>,
    /// What was last said about a held kill, so it is said once.
    held: Option<String>,
}

impl Health {
    /// Probing for a term that began now, and where its results arrive.
    pub(super) fn new(
        hold_after_election: Duration,
        stats: Arc<ProbeStats>,
    ) -> (Self, ProbeResults) {
        let (tx, results) = mpsc::unbounded_channel();
        let health = Health {
            prober: Prober::new(tx, stats),
            window: ProbeWindow::default(),
            elected: Instant::now(),
            hold_after_election,
            due: BTreeMap::new(),
            killing: HashMap::new(),
            held: None,
        };
        (health, ProbeResults(results))
    }

    /// Whether the instance was killed for its health (its end counts as a
    /// failure).
    pub(super) fn was_killed(&self, instance_id: &str) -> bool {
        self.killing.contains_key(instance_id)
    }
}

/// Where probe results arrive.
pub(super) struct ProbeResults(mpsc::UnboundedReceiver<ProbeResult>);

impl ProbeResults {
    /// The next probe results: at least one, and all that are waiting.
    pub(super) async fn next(&mut self) -> Vec<ProbeResult> {
        let mut batch = Vec::new();
        if let Some(first) = self.0.recv().await {
            batch.push(first);
        }
        while let Ok(more) = self.0.try_recv() {
            batch.push(more);
        }
        batch
    }
}

impl Core {
    /// Probes the instance as it is now: watched while running (and meant
    /// to), forgotten otherwise.
    pub(super) fn watch_health(&mut self, instance_id: &str) {
        let target = {
            let st = self.state();
            st.instances
                .get(instance_id)
                .filter(|i| i.is_running() && i.goal == Goal::Running)
                .and_then(|i| {
                    let app = st.app_of(i)?;
                    let ready = st.readiness_passed(app, instance_id);
                    Some(probe_target(app, i, ready))
                })
        };
        match target {
            Some(target) => self.health.prober.watch(target),
            None => self.unwatch_health(instance_id),
        }
    }

    /// Forgets an instance that ended.
    pub(super) fn health_ended(&mut self, instance_id: &str) {
        self.unwatch_health(instance_id);
        self.health.killing.remove(instance_id);
    }

    fn unwatch_health(&mut self, instance_id: &str) {
        self.health.prober.forget(instance_id);
        self.health.window.forget(instance_id);
        for due in self.health.due.values_mut() {
            due.retain(|id| id != instance_id);
        }
        self.health.due.retain(|_, due| !due.is_empty());
    }

    /// Watches every running instance (a new term).
    pub(super) fn watch_all_health(&mut self) {
        let ids: Vec<String> = self.state().instances.keys().cloned().collect();
        for id in ids {
            self.watch_health(&id);
        }
    }

    /// Folds probe results into the instances' records.
    pub(super) fn on_probes(&mut self, results: Vec<ProbeResult>) {
        let now = Timestamp::now();
        let mut rewatch = BTreeSet::new();
        for result in results {
            match result {
                ProbeResult::Health {
                    instance_id,
                    index,
                    outcome,
                } => self.on_health_probe(&instance_id, index, outcome, now),
                ProbeResult::Readiness {
                    instance_id,
                    result,
                } => {
                    let mut st = self.state_mut();
                    let Some(app_id) = st.instances.get(&instance_id).map(|i| i.app_id.clone())
                    else {
                        continue;
                    };
                    let ready = result.ready;
                    let results = st.readiness.entry(instance_id.clone()).or_default();
                    results.retain(|r| r.name != result.name);
                    results.push(result);
                    st.touch(&app_id);
                    drop(st);
                    if ready {
                        rewatch.insert(instance_id);
                    }
                    self.dirty.insert(app_id);
                }
            }
        }
        // Ready instances are not checked for readiness again.
        for id in rewatch {
            self.watch_health(&id);
        }
    }

    fn on_health_probe(
        &mut self,
        instance_id: &str,
        index: usize,
        outcome: Outcome,
        now: Timestamp,
    ) {
        let (passed, cause) = match outcome {
            Outcome::Passed => (true, None),
            Outcome::Failed(cause) => (false, Some(cause)),
            Outcome::Ignored => return,
        };
        self.health
            .window
            .record(instance_id, index, Instant::now(), passed);
        let mut st = self.state_mut();
        let Some(mut instance) = st.instances.get(instance_id).cloned() else {
            return;
        };
        let Some(check) = st
            .app_of(&instance)
            .and_then(|a| a.health_checks.get(index))
            .cloned()
        else {
            return;
        };
        if !instance.health.iter().any(|r| r.check_index == index) {
            instance.health.push(HealthRecord::new(index));
        }
        let Some(record) = instance.health.iter_mut().find(|r| r.check_index == index) else {
            return;
        };
        let changed = record.observe(&check, instance.started_at, passed, cause.as_deref(), now);
        let kill = record.should_kill(&check);
        st.put_instance(instance.clone());
        drop(st);
        if !passed {
            self.ctx.events.publish(
                "failed_health_check_event",
                json!({
                    "appId": instance.app_id,
                    "taskId": instance.task_id,
                    "instanceId": instance.instance_id,
                    "healthCheck": check,
                }),
            );
        }
        if changed {
            health_events(&self.ctx.events, &instance, passed);
            self.dirty.insert(instance.app_id.clone());
        }
        let due = self.health.due.entry(instance.app_id.clone()).or_default();
        let listed = due.iter().any(|id| id == instance_id);
        if kill && !listed && !self.health.killing.contains_key(instance_id) {
            due.push(instance.instance_id.clone());
        } else if !kill && listed {
            due.retain(|id| id != instance_id);
        }
        self.health.due.retain(|_, due| !due.is_empty());
    }

    /// Kills instances whose checks call for it, within each app's budget,
    /// unless a hold is on (then says so, once, and waits).
    pub(super) async fn health_kills(&mut self) {
        if self.health.due.is_empty() && self.health.held.is_none() {
            return;
        }
        let hold = policy::hold(
            Instant::now(),
            self.health.elected,
            self.health.hold_after_election,
            &mut self.health.window,
        );
        if let Some(hold) = hold {
            self.report_hold(&hold);
            return;
        }
        if self.health.held.take().is_some() {
            // The hold is over: what was due during it is forgotten, and
            // an instance is killed only once a check fails again after
            // it (most pass again when an overload ends; their turn to be
            // probed may just not have come yet).
            info!("health kills resume");
            self.health.due.clear();
            return;
        }
        let due = std::mem::take(&mut self.health.due);
        for (app_id, candidates) in due {
            let Some(app) = self.state().root.app(&app_id).cloned() else {
                continue;
            };
            let in_flight = self
                .health
                .killing
                .values()
                .filter(|a| **a == app_id)
                .count();
            let (now, later) = policy::select(&candidates, in_flight, policy::budget(&app));
            if !later.is_empty() {
                info!(app = %app_id, waiting = later.len(), in_flight,
                    "more instances fail their health checks than the upgrade strategy lets go at once; the rest wait");
                self.health.due.insert(app_id.clone(), later);
            }
            for id in now {
                let Some(instance) = self.state().instances.get(&id).cloned() else {
                    continue;
                };
                if instance.goal != Goal::Running || !instance.is_running() {
                    continue;
                }
                let cause = instance
                    .health
                    .iter()
                    .filter(|r| !r.alive)
                    .find_map(|r| r.last_failure_cause.clone())
                    .unwrap_or_else(|| "failed its health check".into());
                warn!(task = %instance.task_id, %cause, "killing a task that fails its health check");
                self.ctx.events.publish(
                    "unhealthy_task_kill_event",
                    json!({
                        "appId": instance.app_id,
                        "taskId": instance.task_id,
                        "instanceId": instance.instance_id,
                        "version": instance.app_version,
                        "reason": cause,
                        "host": instance.host,
                        "slaveId": instance.agent_id,
                    }),
                );
                self.health.killing.insert(id, app_id.clone());
                self.kill_instance(&instance).await;
            }
        }
    }

    fn report_hold(&mut self, hold: &Hold) {
        let reason = hold.reason();
        let kind = match hold {
            Hold::AfterElection { .. } => "after election",
            Hold::Overload { .. } => "overload",
        };
        if self.health.held.as_deref() == Some(kind) {
            return;
        }
        self.health.held = Some(kind.to_string());
        let instances: Vec<&String> = self.health.due.values().flatten().collect();
        warn!(held = instances.len(), %reason, "health kills held");
        self.ctx.events.publish(
            "unhealthy_task_kill_held_event",
            json!({
                "instanceIds": instances,
                "reason": reason,
            }),
        );
    }
}
