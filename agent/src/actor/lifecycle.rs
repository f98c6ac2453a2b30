//! Running, killing and reaping tasks: the actor's side of a task's life.
//!
//! Each step goes through [`Phase::step`](crate::tasks::Phase::step), which
//! says what to do; this file does it. A launch runs in a worker (sandbox,
//! environment, containerizer) that reports [`Internal::Launched`] and then
//! waits for the container, reporting [`Internal::Exited`].
//!
//! A kill is SIGTERM to the container, then SIGKILL once the grace period
//! (the kill request's policy, else the task's, else the agent default) runs
//! out; the containerizer enforces the grace period (the shim does, so it
//! holds even while the agent is down). A kill of a task the agent does not know is answered, as Mesos'
//! agent does, with `TASK_DROPPED` for partition-aware frameworks and
//! `TASK_LOST` for others (older frameworks know no `TASK_DROPPED`), reason
//! `REASON_TASK_UNKNOWN`; the framework is looked up among the agent's tasks,
//! and one the agent never ran a task for counts as not partition-aware.

use std::time::Duration;

use agora_proto::framework_info::capability::Type as Capability;
use agora_proto::task_status::Reason;
use agora_proto::{FrameworkInfo, KillPolicy, TaskInfo, TaskState};

use tokio::sync::mpsc::UnboundedSender;

use super::{Actor, Internal};
use crate::containerizer::docker::spec::SANDBOX_IN_CONTAINER;
use crate::containerizer::env::{task_environment, EnvContext};
use crate::containerizer::{
    on_host_network, ContainerResources, Containerizer, ContainerizerKind, LaunchSpec, Run,
    Termination,
};
use crate::executor::health;
use crate::executor::protocol::HealthStatus;
use crate::sandbox::SandboxIds;
use crate::status::{
    network_infos, new_status, termination_outcome, Outcome, RunningContainer, StatusTarget,
};
use crate::tasks::{Effect, Phase, PhaseEvent, TaskEntry, TaskKey};

/// Forwards a running container's health changes to the actor until it
/// ends, then its end.
pub(super) async fn watch_container(
    containerizer: &dyn Containerizer,
    key: TaskKey,
    container_id: String,
    internal: &UnboundedSender<Internal>,
) {
    let mut health = containerizer.health(&container_id);
    let id = container_id.clone();
    let ended = containerizer.wait(&id);
    tokio::pin!(ended);
    loop {
        let changed = async {
            match health.as_mut() {
                Some(rx) => rx.changed().await.map(|()| rx.borrow_and_update().clone()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            termination = &mut ended => {
                match termination {
                    Ok(termination) => {
                        let _ = internal.send(Internal::Exited {
                            key,
                            container_id,
                            termination,
                        });
                    }
                    Err(e) => tracing::error!(error = %e, "cannot wait for a launched container"),
                }
                return;
            }
            status = changed => match status {
                Ok(status) => {
                    let _ = internal.send(Internal::Health {
                        key: key.clone(),
                        container_id: container_id.clone(),
                        status,
                    });
                }
                // The checks are over: only the end is left to wait for.
                Err(_) => health = None,
            },
        }
    }
}

fn has_capability(framework: &FrameworkInfo, capability: Capability) -> bool {
    framework
        .capabilities
        .iter()
        .any(|c| c.r#type == capability as i32)
}

fn grace_of(policy: Option<&KillPolicy>) -> Option<Duration> {
    let nanos = policy?.grace_period.as_ref()?.nanoseconds;
    Some(Duration::from_nanos(nanos.max(0) as u64))
}

impl Actor {
    /// Handles `RunTask`: books the task and starts its launch.
    pub(super) fn run_task(&mut self, framework: Option<FrameworkInfo>, task: Option<TaskInfo>) {
        let (Some(framework), Some(task)) = (framework, task) else {
            tracing::warn!("ignoring RunTask without framework or task");
            return;
        };
        let framework_id = framework.id.as_ref().map(|f| f.value.clone());
        let task_id = task.task_id.as_ref().map(|t| t.value.clone());
        let (Some(framework_id), Some(task_id)) = (framework_id, task_id) else {
            tracing::warn!("ignoring RunTask without framework id or task id");
            return;
        };
        let key: TaskKey = (framework_id.clone(), task_id.clone());
        if self.tasks.get(&key).is_some() {
            tracing::warn!(%framework_id, %task_id, "ignoring RunTask for a task this agent already has");
            return;
        }
        tracing::info!(%framework_id, %task_id, "launching task");
        let container_id = uuid::Uuid::new_v4().to_string();
        self.tasks.insert(
            key.clone(),
            TaskEntry {
                framework,
                info: task.clone(),
                // A command task is its own executor, as in Mesos.
                executor_id: task_id.clone(),
                container_id: container_id.clone(),
                state: TaskState::TaskStaging,
                phase: Phase::Launching {
                    kill_requested: false,
                },
                pid: None,
                networks: Vec::new(),
                sandbox: None,
                kill_grace: None,
                healthy: None,
                check_status: None,
            },
        );
        self.checkpoint_task(&key);
        if self.stop.is_some() {
            self.launch_failed(&key, "the agent is shutting down".into());
            return;
        }
        let agent_id = self.current_agent_id();
        let run = match Run::of(&task, &agent_id, &framework_id) {
            Ok(run) => run,
            Err(e) => {
                self.launch_failed(&key, e.to_string());
                return;
            }
        };
        let checks = match health::of_task(&task, self.task_grace(&task)) {
            Ok(checks) => checks,
            Err(e) => {
                self.launch_failed(&key, e.to_string());
                return;
            }
        };
        let in_container = run.kind() == ContainerizerKind::Docker;
        let uris = task
            .command
            .as_ref()
            .map(|c| c.uris.clone())
            .unwrap_or_default();

        let sandboxes = self.sandboxes.clone();
        let containerizer = self.containerizer.clone();
        let internal = self.internal.clone();
        let hostname = self.me.hostname.clone();
        let path = self.me.task_path.clone();
        self.workers.spawn(async move {
            let ids = SandboxIds {
                agent_id: &agent_id,
                framework_id: &framework_id,
                executor_id: &task_id,
                container_id: &container_id,
            };
            let sandbox = match sandboxes.create(&ids) {
                Ok(dir) => dir,
                Err(e) => {
                    let _ = internal.send(Internal::Launched {
                        key,
                        container_id,
                        result: Err(e.to_string()),
                    });
                    return;
                }
            };
            let sandbox_text = sandbox.display().to_string();
            let env = task_environment(
                &EnvContext {
                    agent_id: &agent_id,
                    framework_id: &framework_id,
                    executor_id: &task_id,
                    sandbox: &sandbox_text,
                    hostname: &hostname,
                    path: path.as_deref(),
                    container_sandbox: in_container.then_some(SANDBOX_IN_CONTAINER),
                },
                &task,
            );
            let spec = LaunchSpec {
                container_id: container_id.clone(),
                sandbox: sandbox.clone(),
                run,
                env,
                uris,
                resources: ContainerResources::of(&task.resources),
                checks,
            };
            let launched = containerizer.launch(spec).await;
            let ok = launched.is_ok();
            // A send error means the actor is gone; nothing is left to tell.
            let _ = internal.send(Internal::Launched {
                key: key.clone(),
                container_id: container_id.clone(),
                result: launched.map(|l| (l, sandbox)).map_err(|e| e.to_string()),
            });
            if ok {
                watch_container(&*containerizer, key, container_id, &internal).await;
            }
        });
    }

    /// Starts killing a task; returns the grace period it gets.
    pub(super) fn kill_task(
        &mut self,
        framework_id: &str,
        task_id: &str,
        policy: Option<KillPolicy>,
    ) -> Duration {
        let key: TaskKey = (framework_id.to_string(), task_id.to_string());
        let Some(entry) = self.tasks.get(&key) else {
            return Duration::ZERO;
        };
        let grace = grace_of(policy.as_ref()).unwrap_or_else(|| self.task_grace(&entry.info));
        let Some(entry) = self.tasks.get_mut(&key) else {
            return Duration::ZERO;
        };
        let (phase, effect) = entry.phase.step(PhaseEvent::Kill);
        entry.phase = phase;
        if effect != Effect::StartKill {
            if phase.is_live() {
                entry.kill_grace = Some(grace);
            }
            return entry.kill_grace.unwrap_or(Duration::ZERO);
        }
        entry.kill_grace = Some(grace);
        let container_id = entry.container_id.clone();
        let announce_killing = has_capability(&entry.framework, Capability::TaskKillingState);
        tracing::info!(%framework_id, %task_id, ?grace, "killing task");
        if announce_killing {
            self.report(&key, Outcome::state(TaskState::TaskKilling));
        } else {
            self.checkpoint_task(&key);
        }
        self.kill_container(&container_id, grace);
        grace
    }

    /// The grace period of a task's kill when the kill request has no
    /// policy: the task's kill policy, else `--docker-stop-timeout` for a
    /// Docker task when given, else the agent's default.
    fn task_grace(&self, task: &TaskInfo) -> Duration {
        let fallback = match ContainerizerKind::of(task) {
            ContainerizerKind::Docker => self.me.docker_grace.unwrap_or(self.me.default_grace),
            ContainerizerKind::Mesos => self.me.default_grace,
        };
        grace_of(task.kill_policy.as_ref()).unwrap_or(fallback)
    }

    /// A task's health or general check changed: a `TASK_RUNNING` update
    /// says so, with Mesos' reason, only when the verdict differs from the
    /// one last reported (a recovered task's checkpoint holds that one).
    fn on_health(&mut self, key: &TaskKey, container_id: &str, status: HealthStatus) {
        let Some(entry) = self.tasks.get_mut(key) else {
            return;
        };
        if entry.container_id != container_id || entry.phase != Phase::Running {
            return;
        }
        if status.healthy.is_some() && status.healthy != entry.healthy {
            entry.healthy = status.healthy;
            let message = if status.healthy == Some(true) {
                "The task is healthy".to_string()
            } else {
                status
                    .cause
                    .clone()
                    .unwrap_or_else(|| "The task is unhealthy".into())
            };
            tracing::info!(task_id = %key.1, healthy = ?status.healthy, %message, "health changed");
            self.report(
                key,
                Outcome::with(
                    TaskState::TaskRunning,
                    Reason::TaskHealthCheckStatusUpdated,
                    message,
                ),
            );
        }
        let Some(entry) = self.tasks.get_mut(key) else {
            return;
        };
        let check = status.check.map(|c| c.to_proto());
        if check.is_some() && check != entry.check_status {
            entry.check_status = check;
            self.report(
                key,
                Outcome::with(
                    TaskState::TaskRunning,
                    Reason::TaskCheckStatusUpdated,
                    "The task's check result changed",
                ),
            );
        }
    }

    /// Answers a kill of a task this agent does not have.
    pub(super) fn report_unknown_task(&mut self, key: &TaskKey) {
        let partition_aware = self
            .tasks
            .framework(&key.0)
            .is_some_and(|f| has_capability(f, Capability::PartitionAware));
        let state = if partition_aware {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        tracing::warn!(framework_id = %key.0, task_id = %key.1, ?state, "kill of an unknown task");
        let agent_id = self.current_agent_id();
        let status = new_status(
            &StatusTarget {
                task_id: &key.1,
                executor_id: &key.1,
                agent_id: &agent_id,
                container: None,
                healthy: None,
                check_status: None,
            },
            Outcome::with(state, Reason::TaskUnknown, "Task unknown to the agent"),
        );
        self.counters.lost += 1;
        self.enqueue_update(key.0.clone(), status);
    }

    pub(super) fn on_internal(&mut self, event: Internal) {
        match event {
            Internal::Launched {
                key,
                container_id,
                result,
            } => {
                self.recovered(&key);
                let Some(entry) = self.tasks.get_mut(&key) else {
                    return;
                };
                if entry.container_id != container_id {
                    return;
                }
                match result {
                    Err(message) => self.launch_failed(&key, message),
                    Ok((launched, sandbox)) => {
                        entry.pid = Some(launched.pid);
                        entry.networks = launched.networks;
                        entry.sandbox = Some(sandbox);
                        let (phase, effect) = entry.phase.step(PhaseEvent::Launched);
                        entry.phase = phase;
                        match effect {
                            Effect::ReportRunning => {
                                self.report(&key, Outcome::state(TaskState::TaskRunning))
                            }
                            // Killed before it ran: no grace, the framework
                            // never saw it running.
                            Effect::KillNow => {
                                self.checkpoint_task(&key);
                                self.kill_container(&container_id, Duration::ZERO)
                            }
                            _ => self.checkpoint_task(&key),
                        }
                    }
                }
            }
            Internal::Health {
                key,
                container_id,
                status,
            } => self.on_health(&key, &container_id, status),
            Internal::Exited {
                key,
                container_id,
                termination,
            } => {
                self.recovered(&key);
                let Some(entry) = self.tasks.get_mut(&key) else {
                    return;
                };
                if entry.container_id != container_id {
                    return;
                }
                let before = entry.phase;
                let (phase, effect) = before.step(PhaseEvent::Exited);
                entry.phase = phase;
                if effect != Effect::ReportTerminal {
                    return;
                }
                let killing = matches!(before, Phase::Killing { .. });
                if matches!(termination, Termination::Unhealthy(_)) {
                    entry.healthy = Some(false);
                }
                let mut outcome = termination_outcome(termination.clone(), killing);
                if before
                    == (Phase::Killing {
                        during_launch: true,
                    })
                {
                    outcome.reason = Some(Reason::TaskKilledDuringLaunch);
                }
                tracing::info!(task_id = %key.1, ?termination, state = ?outcome.state, "task ended");
                self.report(&key, outcome);
            }
        }
    }

    fn launch_failed(&mut self, key: &TaskKey, message: String) {
        let Some(entry) = self.tasks.get_mut(key) else {
            return;
        };
        let (phase, effect) = entry.phase.step(PhaseEvent::LaunchFailed);
        entry.phase = phase;
        if effect == Effect::ReportLaunchFailed {
            tracing::warn!(task_id = %key.1, %message, "task launch failed");
            self.report(
                key,
                Outcome::with(
                    TaskState::TaskFailed,
                    Reason::ContainerLaunchFailed,
                    format!("Failed to launch container: {message}"),
                ),
            );
        }
    }

    /// Records a task's new state and queues its update.
    fn report(&mut self, key: &TaskKey, outcome: Outcome) {
        let agent_id = self.current_agent_id();
        let Some(entry) = self.tasks.get_mut(key) else {
            return;
        };
        entry.state = outcome.state;
        match outcome.state {
            TaskState::TaskFinished => self.counters.finished += 1,
            TaskState::TaskFailed => self.counters.failed += 1,
            TaskState::TaskKilled => self.counters.killed += 1,
            _ => {}
        }
        let status = new_status(
            &StatusTarget {
                task_id: &key.1,
                executor_id: &entry.executor_id,
                agent_id: &agent_id,
                container: entry.pid.map(|pid| RunningContainer {
                    id: &entry.container_id,
                    pid,
                    network_infos: network_infos(
                        &entry.networks,
                        self.me.ip.filter(|_| on_host_network(&entry.info)),
                    ),
                }),
                healthy: entry.healthy,
                check_status: entry.check_status,
            },
            outcome,
        );
        self.enqueue_update(key.0.clone(), status);
    }
}
