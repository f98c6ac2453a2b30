//! Checkpointing the actor's state and recovering it after a restart.
//!
//! Writes go through [`crate::checkpoint`] synchronously from the actor: a
//! task's file is a few KiB replaced by one rename (no fsync, see there), far
//! cheaper than a worker round trip, and it keeps the rule simple: what the
//! actor has decided is on disk before anything is sent about it.
//!
//! Recovery (`--recover=reconnect`, same boot, same flags) puts every
//! checkpointed task back in the book with its latest state and its
//! unacknowledged updates, then asks the containerizer, from a worker, to
//! find each live container again. The answers come back as the ordinary
//! [`Internal::Launched`]/[`Internal::Exited`] events, so the lifecycle
//! table needs nothing new: a task that runs on stays `Running` (no update),
//! one that ended while the agent was away gets its terminal update, one
//! whose shim vanished without a trace fails with `REASON_EXECUTOR_TERMINATED`.
//! Once every container has answered, the held registration request is
//! answered with a `Reregister` listing the tasks as they now are.

use std::path::PathBuf;

use agora_proto::agent::TaskCheckpoint;
use agora_proto::{AgentId, AgentInfo, TaskState};
use tokio::time::Instant;

use super::{Actor, Internal};
use crate::containerizer::{ContainerizerKind, Termination};
use crate::status_update::Update;
use crate::tasks::{Phase, TaskEntry, TaskKey};

impl Actor {
    /// Writes a task's checkpoint (its entry and its pending updates).
    pub(super) fn checkpoint_task(&self, key: &TaskKey) {
        let Some(e) = self.tasks.get(key) else { return };
        let record = TaskCheckpoint {
            framework: Some(e.framework.clone()),
            task: Some(e.info.clone()),
            executor_id: e.executor_id.clone(),
            container_id: e.container_id.clone(),
            state: e.state as i32,
            pid: e.pid,
            sandbox: e
                .sandbox
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            // A kill asked for during the launch is carried out once the
            // container runs, by this run or, after a restart, by the next.
            killing: matches!(
                e.phase,
                Phase::Killing { .. }
                    | Phase::Launching {
                        kill_requested: true
                    }
            ),
            pending_updates: self.updates.pending(&key.0, &key.1),
            healthy: e.healthy,
            check_status: e.check_status,
        };
        if let Err(e) = self.checkpoint.write_task(&record) {
            tracing::error!(task_id = %key.1, error = %e, "cannot checkpoint task");
        }
    }

    /// A task's terminal update was acknowledged: it leaves the book and the
    /// checkpoint, and its sandbox is handed to the garbage collector.
    pub(super) fn forget_task(&mut self, key: &TaskKey) {
        if let Some(e) = self.tasks.get(key) {
            if let Err(err) = self.checkpoint.remove_task(&e.container_id) {
                tracing::error!(task_id = %key.1, error = %err, "cannot remove task checkpoint");
            }
            if let Some(sandbox) = &e.sandbox {
                self.gc.schedule(sandbox.clone());
            }
        }
        self.tasks.complete(key);
    }

    /// Records the id the master gave this agent.
    pub(super) fn checkpoint_agent(&self, agent_id: &str) {
        let mut record = self.me.record.clone();
        record.agent_info = Some(AgentInfo {
            hostname: self.me.hostname.clone(),
            port: Some(i32::from(self.me.http_port)),
            resources: self.me.resources.to_vec(),
            attributes: self.me.attributes.clone(),
            id: Some(AgentId {
                value: agent_id.to_string(),
            }),
            containerizers: Vec::new(),
        });
        if let Err(e) = self.checkpoint.write_agent(&record) {
            tracing::error!(error = %e, "cannot checkpoint the agent");
        }
    }

    /// A recovered container answered; once all have, registration may go on.
    pub(super) fn recovered(&mut self, key: &TaskKey) {
        if !self.recovering.remove(key) || !self.recovering.is_empty() {
            return;
        }
        tracing::info!("recovery complete");
        if let Some(reply) = self.pending_registration.take() {
            let _ = reply.send(self.registration_message());
        }
    }

    /// Puts the tasks of a previous run back and starts finding their containers.
    pub fn recover(&mut self, tasks: Vec<TaskCheckpoint>) {
        let now = Instant::now().into_std();
        for record in tasks {
            let (Some(framework), Some(info)) = (record.framework, record.task) else {
                continue;
            };
            let framework_id = framework.id.clone().map(|f| f.value).unwrap_or_default();
            let task_id = info.task_id.clone().map(|t| t.value).unwrap_or_default();
            let key: TaskKey = (framework_id.clone(), task_id.clone());
            let state = TaskState::try_from(record.state).unwrap_or(TaskState::TaskStaging);
            let phase = if agora_common::task_state::is_terminal(state) {
                Phase::Terminated
            } else if record.pid.is_none() {
                Phase::Launching {
                    kill_requested: record.killing,
                }
            } else if record.killing {
                Phase::Killing {
                    during_launch: false,
                }
            } else {
                Phase::Running
            };
            let sandbox =
                Some(PathBuf::from(&record.sandbox)).filter(|_| !record.sandbox.is_empty());
            let kind = ContainerizerKind::of(&info);
            self.tasks.insert(
                key.clone(),
                TaskEntry {
                    framework,
                    info,
                    executor_id: record.executor_id,
                    container_id: record.container_id.clone(),
                    state,
                    phase,
                    pid: record.pid,
                    networks: Vec::new(),
                    sandbox: sandbox.clone(),
                    kill_grace: None,
                    healthy: record.healthy,
                    check_status: record.check_status,
                },
            );
            for status in record.pending_updates {
                // Not sent now: `flush` resends every head once reregistered.
                self.updates.enqueue(
                    Update {
                        framework_id: framework_id.clone(),
                        status,
                    },
                    now,
                );
            }
            tracing::info!(%framework_id, %task_id, ?state, ?phase, "recovered task");
            if phase.is_live() {
                self.recovering.insert(key.clone());
                self.find_container(
                    key,
                    record.container_id,
                    sandbox,
                    kind,
                    record.pid.is_some(),
                );
            }
        }
    }

    fn find_container(
        &mut self,
        key: TaskKey,
        container_id: String,
        sandbox: Option<PathBuf>,
        kind: ContainerizerKind,
        launched: bool,
    ) {
        let containerizer = self.containerizer.clone();
        let internal = self.internal.clone();
        self.workers.spawn(async move {
            let found = match &sandbox {
                Some(dir) => containerizer
                    .recover(&container_id, dir, kind)
                    .await
                    .map(|l| (l, dir.clone()))
                    .map_err(|e| e.to_string()),
                None => Err("the container had no sandbox yet".to_string()),
            };
            match found {
                Ok(found) => {
                    let _ = internal.send(Internal::Launched {
                        key: key.clone(),
                        container_id: container_id.clone(),
                        result: Ok(found),
                    });
                    super::lifecycle::watch_container(
                        &*containerizer,
                        key,
                        container_id,
                        &internal,
                    )
                    .await;
                }
                // It ran: it ended, nobody knows how.
                Err(reason) if launched => {
                    tracing::warn!(task_id = %key.1, %reason, "container not recovered");
                    let _ = internal.send(Internal::Exited {
                        key,
                        container_id,
                        termination: Termination::Unknown,
                    });
                }
                // It was being launched: the launch failed.
                Err(reason) => {
                    let _ = internal.send(Internal::Launched {
                        key,
                        container_id,
                        result: Err(reason),
                    });
                }
            }
        });
    }
}

/// Kills whatever still runs of a previous run's tasks (`--recover=cleanup`,
/// or a fresh start after changed flags): each container is found again and
/// SIGKILLed, and waited for up to `timeout` in all.
pub async fn kill_leftovers(
    containerizer: &dyn crate::Containerizer,
    tasks: &[TaskCheckpoint],
    timeout: std::time::Duration,
) {
    let deadline = Instant::now() + timeout;
    for task in tasks {
        let live =
            !TaskState::try_from(task.state).is_ok_and(agora_common::task_state::is_terminal);
        if !live || task.sandbox.is_empty() {
            continue;
        }
        let sandbox = PathBuf::from(&task.sandbox);
        let kind = task
            .task
            .as_ref()
            .map_or(ContainerizerKind::Mesos, ContainerizerKind::of);
        // Bounded too: a shim still fetching or pulling answers only once
        // its task starts.
        let recovered = tokio::time::timeout_at(
            deadline,
            containerizer.recover(&task.container_id, &sandbox, kind),
        )
        .await;
        let found = match recovered {
            Ok(Ok(found)) => found,
            // Gone already.
            Ok(Err(_)) => continue,
            Err(_) => {
                tracing::warn!(container_id = %task.container_id, "a task of the previous run did not answer in time");
                continue;
            }
        };
        tracing::info!(container_id = %task.container_id, pid = found.pid, "killing a task of the previous run");
        let _ = containerizer
            .kill(&task.container_id, std::time::Duration::ZERO)
            .await;
        let waited =
            tokio::time::timeout_at(deadline, containerizer.wait(&task.container_id)).await;
        if waited.is_err() {
            tracing::warn!(container_id = %task.container_id, "a task of the previous run did not end in time");
        }
    }
}
