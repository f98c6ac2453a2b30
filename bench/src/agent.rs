//! One emulated agent: a real `AgentService.Attach` stream that registers,
//! answers pings, reports every task it is given as running at once, and
//! (in a failover bench) reregisters with the new leader.
//!
//! Like the real agent (`agent/src/master_link.rs`, `agent/src/actor/`), a
//! session opens with `Register` until the agent has an id, and with
//! `Reregister` afterwards: its `AgentInfo` with the id, every task it runs
//! (framework, task and agent ids, state, resources) and the `FrameworkInfo`
//! of each framework it runs tasks for. Unlike the real agent it does not
//! ask a detector itself: the fleet follows the leader once for all of its
//! agents (see `agents.rs`), and an agent whose stream ends waits for the
//! fleet's next link or a backoff (100 ms doubling to 2 s), whichever comes
//! first. In the health bench an agent also runs its tasks' health checks
//! (`agent_checks.rs`) and reports their verdicts and kills.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use agora_common::backoff::Backoff;
use agora_common::shutdown::Shutdown;
use agora_proto::agent::agent_service_client::AgentServiceClient;
use agora_proto::agent::{agent_message, master_message, AgentMessage, MasterMessage};
use agora_proto::{
    task_status, AgentId, AgentInfo, ExecutorId, FrameworkInfo, Resource, Task, TaskId, TaskState,
    TaskStatus,
};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;

use crate::agent_checks::{AgentChecks, CheckEvent};
use crate::agents::{AgentCounters, Link, MAX_MESSAGE_BYTES};

/// Messages an agent may queue towards the master.
const OUTBOUND_QUEUE: usize = 256;
/// Reconnection backoff bounds.
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How a session ended.
enum Ended {
    /// The bench is stopping.
    Stop,
    /// The stream failed or was refused; `heard` if the master had answered.
    Lost { why: String, heard: bool },
    /// The master shut the agent down: no retry.
    Fatal(String),
}

/// One emulated agent and what it runs.
pub(crate) struct Agent {
    pub index: usize,
    pub counters: Arc<AgentCounters>,
    pub stop: Shutdown,
    pub resources: Vec<Resource>,
    /// Reconnect after a lost stream (failover bench), or count it as a
    /// failure and stop (master bench).
    pub reconnect: bool,
    /// The fleet's current link to the leader.
    pub links: tokio::sync::watch::Receiver<Arc<Link>>,
    /// Tells the fleet's follower that a stream was lost.
    pub lost: Arc<Notify>,
    /// The id the master gave, once registered.
    pub id: Option<String>,
    /// Running tasks by task id.
    pub tasks: HashMap<String, Task>,
    /// The frameworks of those tasks, by framework id.
    pub frameworks: HashMap<String, FrameworkInfo>,
    /// Whether `Reregistered` was seen (counted once per agent).
    pub reregistered: bool,
    /// The tasks' health checks, when the agent runs them.
    pub checks: Option<AgentChecks>,
}

impl Agent {
    /// Runs sessions until the bench stops (or, without `reconnect`, until
    /// the first session ends). The first registration holds a place in `window`.
    pub async fn run(mut self, window: Arc<Semaphore>) {
        let permit = tokio::select! {
            _ = self.stop.fired() => return,
            p = window.acquire_owned() => p,
        };
        // The semaphore is never closed, so acquiring cannot fail.
        let Ok(permit) = permit else { return };
        let mut permit = Some(permit);
        let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX, 2.0);
        loop {
            let link = self.links.borrow_and_update().clone();
            let (why, heard) = match self.session(&link, &mut permit).await {
                Ended::Stop => return,
                Ended::Fatal(why) => return self.fail(why),
                Ended::Lost { why, heard } => (why, heard),
            };
            if !self.reconnect {
                return self.fail(why);
            }
            self.counters.disconnections.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(agent = self.index, %why, "emulated agent reconnecting");
            if heard {
                backoff.reset();
            }
            self.lost.notify_one();
            tokio::select! {
                biased;
                _ = self.stop.fired() => return,
                changed = self.links.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    backoff.reset();
                }
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    /// One stream with the master at `link`.
    async fn session(&mut self, link: &Link, permit: &mut Option<OwnedSemaphorePermit>) -> Ended {
        let channel = link.channels[self.index % link.channels.len()].clone();
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        // The receiver is alive in `rx` and the queue is empty: this cannot fail.
        let _ = tx.try_send(self.registration_message());
        let mut client = AgentServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let attached = tokio::select! {
            _ = self.stop.fired() => return Ended::Stop,
            r = client.attach(ReceiverStream::new(rx)) => r,
        };
        let mut inbound = match attached {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let why = format!("attach refused by {}: {}", link.addr, status.message());
                return Ended::Lost { why, heard: false };
            }
        };
        let mut heard = false;
        loop {
            let message = tokio::select! {
                _ = self.stop.fired() => return Ended::Stop,
                m = inbound.message() => m,
                Some(event) = next_check(&mut self.checks) => {
                    if let Some(update) = self.on_check(event) {
                        let message = AgentMessage { message: Some(update) };
                        if tx.send(message).await.is_err() {
                            let why = "outbound stream closed".to_string();
                            return Ended::Lost { why, heard };
                        }
                    }
                    continue;
                }
            };
            let message = match message {
                Ok(Some(MasterMessage { message: Some(m) })) => m,
                Ok(Some(MasterMessage { message: None })) => continue,
                Ok(None) => {
                    let why = format!("{} closed the stream", link.addr);
                    return Ended::Lost { why, heard };
                }
                Err(status) => {
                    let why = format!("stream error from {}: {}", link.addr, status.message());
                    return Ended::Lost { why, heard };
                }
            };
            heard = true;
            let reply = match self.handle(message, permit) {
                Ok(reply) => reply,
                Err(why) => return Ended::Fatal(why),
            };
            if let Some(reply) = reply {
                let message = AgentMessage {
                    message: Some(reply),
                };
                if tx.send(message).await.is_err() {
                    let why = "outbound stream closed".to_string();
                    return Ended::Lost { why, heard };
                }
            }
        }
    }

    /// Reacts to one master message; `Err` when the master shut us down.
    fn handle(
        &mut self,
        message: master_message::Message,
        permit: &mut Option<OwnedSemaphorePermit>,
    ) -> Result<Option<agent_message::Message>, String> {
        use master_message::Message as M;
        let reply = match message {
            M::Registered(r) => {
                self.id = r.agent_id.map(|a| a.value);
                self.counters.registered.fetch_add(1, Ordering::Relaxed);
                permit.take();
                None
            }
            M::Reregistered(r) => {
                for task in r.kill_tasks {
                    self.tasks.remove(&task.value);
                    self.counters
                        .killed_on_reregistration
                        .fetch_add(1, Ordering::Relaxed);
                }
                if !self.reregistered {
                    self.reregistered = true;
                    self.counters.reregistered.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
            M::Ping(p) => Some(agent_message::Message::Pong(agent_message::Pong {
                sequence: p.sequence,
            })),
            M::RunTask(run) => {
                self.counters.run_tasks.fetch_add(1, Ordering::Relaxed);
                let framework = run.framework.unwrap_or_default();
                let task = run.task.unwrap_or_default();
                let framework_id = framework.id.clone();
                let task_id = task.task_id.clone().unwrap_or_default();
                if let Some(id) = &framework_id {
                    self.frameworks.entry(id.value.clone()).or_insert(framework);
                }
                if let Some(checks) = &mut self.checks {
                    checks.launch(&task);
                }
                let running = Task {
                    name: task.name,
                    executor_id: Some(ExecutorId {
                        value: task_id.value.clone(),
                    }),
                    task_id: Some(task_id.clone()),
                    framework_id: framework_id.clone(),
                    agent_id: self.id.clone().map(|value| AgentId { value }),
                    state: TaskState::TaskRunning as i32,
                    resources: task.resources,
                    ..Default::default()
                };
                self.tasks.insert(task_id.value.clone(), running);
                Some(self.update(framework_id, task_id, TaskState::TaskRunning))
            }
            M::KillTask(kill) => {
                let task_id = kill.task_id.unwrap_or_default();
                self.tasks.remove(&task_id.value);
                if let Some(checks) = &mut self.checks {
                    checks.ended(&task_id.value);
                }
                Some(self.update(kill.framework_id, task_id, TaskState::TaskKilled))
            }
            M::Acknowledgement(_) => {
                self.counters.acks.fetch_add(1, Ordering::Relaxed);
                None
            }
            M::Shutdown(s) => return Err(format!("shut down by the master: {}", s.message)),
            _ => None,
        };
        Ok(reply)
    }

    /// `Register` without an id; `Reregister` with everything we run after.
    fn registration_message(&self) -> AgentMessage {
        let hostname = match &self.checks {
            Some(checks) => checks.ip().to_string(),
            None => format!("bench-agent-{}", self.index),
        };
        let agent_info = AgentInfo {
            hostname,
            port: Some(5051),
            resources: self.resources.clone(),
            id: self.id.clone().map(|value| AgentId { value }),
            ..Default::default()
        };
        let version = agora_common::build::MESOS_API_VERSION.to_string();
        let message = match self.id {
            None => agent_message::Message::Register(agent_message::Register {
                agent_info: Some(agent_info),
                version,
            }),
            Some(_) => agent_message::Message::Reregister(agent_message::Reregister {
                agent_info: Some(agent_info),
                tasks: self.tasks.values().cloned().collect(),
                frameworks: self.frameworks.values().cloned().collect(),
                version,
            }),
        };
        AgentMessage {
            message: Some(message),
        }
    }

    /// What a task's check asks for: an update saying its new verdict, or
    /// its end (`TASK_KILLED`, unhealthy, naming the cause), as the real
    /// agent reports them.
    fn on_check(&mut self, event: CheckEvent) -> Option<agent_message::Message> {
        let (task_id, state, healthy, message) = match event {
            CheckEvent::Changed {
                task_id,
                healthy,
                cause,
            } => {
                let message = if healthy {
                    "The task is healthy".to_string()
                } else {
                    cause.unwrap_or_else(|| "The task is unhealthy".into())
                };
                (task_id, TaskState::TaskRunning, healthy, message)
            }
            CheckEvent::Killed { task_id, cause } => {
                if let Some(checks) = &mut self.checks {
                    checks.ended(&task_id);
                }
                (task_id, TaskState::TaskKilled, false, cause)
            }
        };
        let task = if state == TaskState::TaskKilled {
            self.tasks.remove(&task_id)?
        } else {
            self.tasks.get(&task_id)?.clone()
        };
        let mut update = self.update(task.framework_id, TaskId { value: task_id }, state);
        if let agent_message::Message::StatusUpdate(u) = &mut update {
            if let Some(status) = &mut u.status {
                status.healthy = Some(healthy);
                status.message = Some(message);
                status.reason = Some(task_status::Reason::TaskHealthCheckStatusUpdated as i32);
            }
        }
        Some(update)
    }

    /// A status update as an executor would send it, with a fresh uuid so
    /// the master forwards it for acknowledgement.
    fn update(
        &self,
        framework_id: Option<agora_proto::FrameworkId>,
        task_id: TaskId,
        state: TaskState,
    ) -> agent_message::Message {
        agent_message::Message::StatusUpdate(agent_message::StatusUpdate {
            framework_id,
            status: Some(TaskStatus {
                task_id: Some(task_id),
                state: state as i32,
                source: Some(task_status::Source::Executor as i32),
                agent_id: self.id.clone().map(|value| AgentId { value }),
                timestamp: Some(agora_common::time::now_secs()),
                uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
                ..Default::default()
            }),
            latest_state: None,
        })
    }

    fn fail(&self, why: String) {
        self.counters.fail(self.index, why);
    }
}

/// The next event of an agent's checks; never, for an agent without.
async fn next_check(checks: &mut Option<AgentChecks>) -> Option<CheckEvent> {
    match checks {
        Some(checks) => checks.next().await,
        None => std::future::pending().await,
    }
}
