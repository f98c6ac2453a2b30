//! Status updates: the instance is updated and stored, then the update is
//! acknowledged. Tasks this state does not know are killed; terminal
//! instances are expunged; failures delay the next launch of the app.

use std::time::Instant;

use agora_proto::TaskStatus;
use serde_json::json;
use tracing::{debug, info};

use super::offers::instance_changed_json;
use super::state::{Backoff, TaskFailure};
use super::{Core, CoreError};
use crate::model::app::UnreachableStrategy;
use crate::model::health::HealthRecord;
use crate::model::instance::Goal;
use crate::model::TaskStateExt;
use crate::model::{Instance, TaskState, Timestamp};
use crate::storage::Write;

/// The addresses in a status' `container_status.network_infos`.
fn reported_addresses(status: &TaskStatus) -> Vec<std::net::IpAddr> {
    status
        .container_status
        .iter()
        .flat_map(|c| c.network_infos.iter())
        .flat_map(|n| n.ip_addresses.iter())
        .filter_map(|ip| ip.ip_address.as_deref()?.parse().ok())
        .collect()
}

impl Core {
    /// Folds the agent's verdict on an instance's Mesos health check into
    /// its record; returns whether the record changed (events follow a
    /// change of `alive`).
    fn observe_mesos_health(
        &self,
        instance: &mut Instance,
        healthy: bool,
        message: &str,
        now: Timestamp,
    ) -> bool {
        let Some(app) = self.state().root.app(&instance.app_id).cloned() else {
            return false;
        };
        let Some((index, check)) = app
            .health_checks
            .iter()
            .enumerate()
            .find(|(_, c)| c.protocol.is_mesos())
        else {
            return false;
        };
        if !instance.health.iter().any(|r| r.check_index == index) {
            instance.health.push(HealthRecord::new(index));
        }
        let Some(record) = instance.health.iter_mut().find(|r| r.check_index == index) else {
            return false;
        };
        // The agent applied the grace period already; its verdict counts.
        let alive_changed = record.observe(check, None, healthy, Some(message), now);
        if !healthy {
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
        if alive_changed {
            health_events(&self.ctx.events, instance, healthy);
        }
        true
    }
}

/// `health_status_changed_event` and `instance_health_changed_event` for
/// an instance whose health turned `alive`.
pub(super) fn health_events(events: &crate::events::EventBus, instance: &Instance, alive: bool) {
    events.publish(
        "health_status_changed_event",
        json!({
            "appId": instance.app_id,
            "taskId": instance.task_id,
            "instanceId": instance.instance_id,
            "version": instance.app_version,
            "alive": alive,
        }),
    );
    events.publish(
        "instance_health_changed_event",
        json!({
            "instanceId": instance.instance_id,
            "runSpecId": instance.app_id,
            "runSpecVersion": instance.app_version,
            "healthy": alive,
        }),
    );
}

/// `ipAddresses` in Marathon's shape.
pub(crate) fn ip_addresses_json(addresses: &[std::net::IpAddr]) -> serde_json::Value {
    addresses
        .iter()
        .map(|ip| {
            let protocol = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            json!({"ipAddress": ip.to_string(), "protocol": protocol})
        })
        .collect()
}

impl Core {
    pub(super) async fn handle_update(&mut self, status: TaskStatus) -> Result<(), CoreError> {
        let task_id = status
            .task_id
            .as_ref()
            .map(|t| t.value.clone())
            .unwrap_or_default();
        let state = TaskState::from_mesos(status.state);
        let now = Timestamp::now();
        let known = Instance::instance_id_of(&task_id)
            .and_then(|id| self.state().instances.get(id).cloned())
            .filter(|i| i.task_id == task_id);
        let Some(mut instance) = known else {
            if !state.is_terminal() {
                info!(%task_id, state = state.as_str(), "killing a task this Marathon does not know");
                let _ = self
                    .scheduler
                    .kill(&task_id, status.agent_id.clone(), None)
                    .await;
            }
            let _ = self.scheduler.acknowledge(&status).await;
            return Ok(());
        };
        let message = status.message.clone().unwrap_or_default();
        let previous = instance.state;
        instance.state = state;
        instance.since = now;
        let health_changed = match status.healthy {
            Some(healthy) => self.observe_mesos_health(&mut instance, healthy, &message, now),
            None => false,
        };
        let addresses = reported_addresses(&status);
        let readdressed = !addresses.is_empty() && addresses != instance.ip_addresses;
        if readdressed {
            instance.ip_addresses = addresses;
        }
        if state == TaskState::TaskRunning && instance.started_at.is_none() {
            instance.started_at = Some(now);
        }
        instance.unreachable_since = match state {
            TaskState::TaskUnreachable => instance.unreachable_since.or(Some(now)),
            _ => None,
        };
        if state.is_terminal() {
            self.persist(vec![Write::DeleteInstance(instance.instance_id.clone())])
                .await?;
            // A task its health check killed (the agent for a Mesos check,
            // this Marathon for its own) failed too: it backs off and
            // counts against its deployment like any failure.
            let killed_by_agent = state == TaskState::TaskKilled && status.healthy == Some(false);
            let killed_unhealthy = killed_by_agent || self.health.was_killed(&instance.instance_id);
            self.health_ended(&instance.instance_id);
            let failed = (state.is_failure() || killed_unhealthy) && instance.goal == Goal::Running;
            if killed_by_agent {
                self.ctx.events.publish(
                    "unhealthy_task_kill_event",
                    json!({
                        "appId": instance.app_id,
                        "taskId": task_id,
                        "instanceId": instance.instance_id,
                        "version": instance.app_version,
                        "reason": message,
                        "host": instance.host,
                        "slaveId": instance.agent_id,
                    }),
                );
            }
            {
                let mut st = self.state_mut();
                st.remove_instance(&instance.instance_id);
                if failed {
                    if let Some(app) = st.root.app(&instance.app_id).cloned() {
                        let backoff = Backoff::next(&app, st.backoffs.get(&app.id), Instant::now());
                        debug!(app = %app.id, delay = ?backoff.delay, "task failed; delaying the next launch");
                        st.backoffs.insert(app.id.clone(), backoff);
                    }
                    st.record_failure(TaskFailure {
                        app_id: instance.app_id.clone(),
                        host: instance.host.clone(),
                        message: message.clone(),
                        state,
                        task_id: task_id.clone(),
                        timestamp: now,
                        version: instance.app_version,
                        slave_id: instance.agent_id.clone(),
                    });
                }
            }
            if failed {
                self.count_deployment_failure(&instance, &message).await?;
            }
        } else if previous != state || readdressed {
            self.persist(vec![Write::Instance(Box::new(instance.clone()))])
                .await?;
            self.state_mut().put_instance(instance.clone());
            self.watch_health(&instance.instance_id);
        } else if health_changed {
            // Health is not stored: a new leader learns it again.
            self.state_mut().put_instance(instance.clone());
        }
        let _ = self.scheduler.acknowledge(&status).await;
        self.ctx.events.publish(
            "status_update_event",
            json!({
                "slaveId": instance.agent_id,
                "taskId": task_id,
                "taskStatus": state.as_str(),
                "message": message,
                "appId": instance.app_id,
                "host": instance.host,
                "ipAddresses": ip_addresses_json(&instance.ip_addresses),
                "ports": instance.ports,
                "version": instance.app_version,
            }),
        );
        if previous != state {
            self.ctx.events.publish(
                "instance_changed_event",
                instance_changed_json(&instance, condition_name(state)),
            );
        }
        self.dirty.insert(instance.app_id.clone());
        Ok(())
    }

    /// Counts a failed task against the deployments rolling out its
    /// version; past `deployment_max_task_failures` the deployment fails and
    /// is rolled back.
    async fn count_deployment_failure(
        &mut self,
        instance: &Instance,
        message: &str,
    ) -> Result<(), CoreError> {
        let limit = self.ctx.config.deployment_max_task_failures;
        if limit == 0 {
            return Ok(());
        }
        let rolling: Vec<String> = self
            .state()
            .deployments
            .values()
            .filter(|d| {
                d.plan
                    .target
                    .get(&instance.app_id)
                    .is_some_and(|app| app.version_or_epoch() == instance.app_version)
            })
            .map(|d| d.plan.id.clone())
            .collect();
        for id in rolling {
            let count = self.deployment_failures.entry(id.clone()).or_default();
            *count += 1;
            if *count >= limit {
                let reason = format!(
                    "{limit} tasks of {} failed during the deployment (last: {message}); rolled back",
                    instance.app_id
                );
                self.deployment_failures.remove(&id);
                self.fail_deployment(&id, &reason).await?;
            }
        }
        Ok(())
    }

    /// Kills tasks stuck in staging and forgets instances unreachable past
    /// their app's `expungeAfterSeconds`.
    pub(super) async fn expire_instances(&mut self) -> Result<(), CoreError> {
        let now = Timestamp::now();
        let launch_timeout = self.ctx.config.task_launch_timeout.as_millis() as i64;
        let (stuck, expunge): (Vec<Instance>, Vec<Instance>) = {
            let st = self.state();
            let stuck = st
                .instances
                .values()
                .filter(|i| i.state == TaskState::TaskStaging)
                .filter(|i| now.millis() - i.staged_at.millis() > launch_timeout)
                .cloned()
                .collect();
            let expunge = st
                .instances
                .values()
                .filter(|i| i.state == TaskState::TaskUnreachable)
                .filter(|i| {
                    let strategy = st
                        .root
                        .app(&i.app_id)
                        .map(|a| a.unreachable_strategy)
                        .unwrap_or_default();
                    match strategy {
                        UnreachableStrategy::Disabled => false,
                        UnreachableStrategy::Enabled {
                            expunge_after_seconds,
                            ..
                        } => {
                            let since = i.unreachable_since.unwrap_or(i.since);
                            now.millis() - since.millis() >= expunge_after_seconds * 1000
                        }
                    }
                })
                .cloned()
                .collect();
            (stuck, expunge)
        };
        for i in &stuck {
            info!(task = %i.task_id, "task did not start within the launch timeout; killing it");
            self.kill_instance(i).await;
        }
        if expunge.is_empty() {
            return Ok(());
        }
        self.persist(
            expunge
                .iter()
                .map(|i| Write::DeleteInstance(i.instance_id.clone()))
                .collect(),
        )
        .await?;
        for i in &expunge {
            info!(task = %i.task_id, "expunging an instance unreachable for too long");
            self.state_mut().remove_instance(&i.instance_id);
            // If it comes back, it is unknown and gets killed.
            self.kill_instance(i).await;
            self.dirty.insert(i.app_id.clone());
        }
        Ok(())
    }
}

/// Marathon's instance condition names.
fn condition_name(state: TaskState) -> &'static str {
    match state {
        TaskState::TaskStaging => "Staging",
        TaskState::TaskStarting => "Starting",
        TaskState::TaskRunning => "Running",
        TaskState::TaskKilling => "Killing",
        TaskState::TaskFinished => "Finished",
        TaskState::TaskFailed => "Failed",
        TaskState::TaskKilled => "Killed",
        TaskState::TaskError => "Error",
        TaskState::TaskLost => "Unreachable",
        TaskState::TaskUnreachable => "Unreachable",
        TaskState::TaskGone | TaskState::TaskGoneByOperator => "Gone",
        TaskState::TaskDropped => "Dropped",
        TaskState::TaskUnknown => "Unknown",
    }
}
