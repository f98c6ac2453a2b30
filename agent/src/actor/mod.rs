//! The agent actor: the single owner of the agent's mutable state.
//!
//! Everything that changes the agent's state arrives as a message on one of
//! three channels: the master link's [`LinkEvent`]s, HTTP [`StateQuery`]s,
//! and [`Internal`] events from the actor's own workers (a launch finished, a
//! container exited, a kill grace period ran out). The actor never awaits
//! the containerizer or the network itself: slow work runs in workers it
//! owns (a `JoinSet`, aborted when the actor ends) that report back, and
//! messages to the master go through `try_send` (a full queue only delays an
//! update until its retry). No lock exists, so none is held across `.await`.
//!
//! Every change to a task (launch, state, acknowledgement) is checkpointed
//! before anything is sent about it, so that a restarted agent resends what
//! the master may have missed ([`recovery`]). While containers of a previous
//! run are being recovered, the answer to the link's registration request is
//! held back, so that the master hears about the tasks as they are.
//!
//! This file holds the loop, registration and status-update plumbing; the
//! task lifecycle (run, kill, exit) is in [`lifecycle`], the registration
//! message and the `/state` snapshot in [`report`], checkpointing and
//! recovery in [`recovery`].

mod lifecycle;
mod recovery;
mod report;

pub use recovery::kill_leftovers;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agora_common::resources::Resources;
use agora_common::shutdown::Shutdown;
use agora_proto::agent::{
    agent_message, master_message, AgentCheckpoint, AgentMessage, MasterMessage,
};
use agora_proto::{AgentId, Attribute, FrameworkId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use crate::checkpoint::Checkpoint;
use crate::containerizer::{Containerizer, ContainerizerKind, Launched, Termination};
use crate::error::AgentError;
use crate::gc::GcHandle;
use crate::http::state::Counters;
use crate::http::StateQuery;
use crate::master_link::LinkEvent;
use crate::sandbox::SandboxLayout;
use crate::status_update::{Acked, StatusUpdateManager, Update};
use crate::tasks::{TaskBook, TaskKey};

/// How long a stopping agent waits beyond the longest kill grace period for
/// its containers to end before giving up on them.
const DRAIN_SLACK: Duration = Duration::from_secs(5);

/// Reports from the actor's workers.
#[derive(Debug)]
pub enum Internal {
    /// A launch attempt ended: the container runs in `sandbox`, or an error.
    Launched {
        key: TaskKey,
        container_id: String,
        result: Result<(Launched, PathBuf), String>,
    },
    /// A running container's health or general check changed.
    Health {
        key: TaskKey,
        container_id: String,
        status: crate::executor::protocol::HealthStatus,
    },
    /// A container's main process ended and its group is gone.
    Exited {
        key: TaskKey,
        container_id: String,
        termination: Termination,
    },
}

/// Why the actor is stopping.
#[derive(Debug, Clone)]
enum StopReason {
    Requested,
    Master(String),
}

/// The fixed facts about this agent.
pub struct Identity {
    /// Hostname reported to the master.
    pub hostname: String,
    /// The HTTP port.
    pub http_port: u16,
    /// `slave(1)@ip:port`.
    pub pid: String,
    /// Total resources.
    pub resources: Resources,
    /// Attributes.
    pub attributes: Vec<Attribute>,
    /// The kill grace period when no kill policy says otherwise.
    pub default_grace: Duration,
    /// The same for Docker tasks, when `--docker-stop-timeout` is given.
    pub docker_grace: Option<Duration>,
    /// The agent's own address, reported as the address of tasks on the
    /// host's network.
    pub ip: Option<IpAddr>,
    /// The containerizers this agent runs, advertised in its `AgentInfo`.
    pub containerizers: Vec<ContainerizerKind>,
    /// `PATH` handed to tasks.
    pub task_path: Option<String>,
    /// The boot id and flags checkpointed with the agent's id (its
    /// `agent_info` is filled in at registration).
    pub record: AgentCheckpoint,
}

/// What the actor keeps under the work dir.
pub struct WorkDir {
    /// Where sandboxes are made.
    pub sandboxes: SandboxLayout,
    /// Where the state is checkpointed.
    pub checkpoint: Checkpoint,
    /// Where finished sandboxes are sent to be garbage-collected.
    pub gc: GcHandle,
}

/// The agent actor's state.
pub struct Actor {
    me: Identity,
    agent_id: watch::Sender<Option<String>>,
    containerizer: Arc<dyn Containerizer>,
    sandboxes: SandboxLayout,
    checkpoint: Checkpoint,
    gc: GcHandle,
    /// Tasks of a previous run whose containers are being looked for.
    recovering: HashSet<TaskKey>,
    /// The link's registration request, held while `recovering` is not empty.
    pending_registration: Option<oneshot::Sender<AgentMessage>>,
    tasks: TaskBook,
    updates: StatusUpdateManager,
    /// The current session's outbound queue, while a session exists.
    link: Option<mpsc::Sender<AgentMessage>>,
    /// Whether the current session is (re)registered: updates are sent only
    /// then, and all unacknowledged ones are resent when it becomes true.
    registered: bool,
    master_hostname: Option<String>,
    internal: mpsc::UnboundedSender<Internal>,
    workers: JoinSet<()>,
    counters: Counters,
    started: Instant,
    stop: Option<StopReason>,
    drain_deadline: Option<Instant>,
}

/// What woke the loop.
enum Step {
    Shutdown,
    Internal(Internal),
    Link(LinkEvent),
    Query(StateQuery),
    Retry,
    DrainTimeout,
    Idle,
}

impl Actor {
    /// A fresh actor; `internal` must be the sender of the receiver later
    /// passed to [`Actor::run`].
    pub fn new(
        me: Identity,
        agent_id: watch::Sender<Option<String>>,
        containerizer: Arc<dyn Containerizer>,
        disk: WorkDir,
        retry_interval: Duration,
        max_completed: usize,
        internal: mpsc::UnboundedSender<Internal>,
    ) -> Self {
        Actor {
            me,
            agent_id,
            containerizer,
            sandboxes: disk.sandboxes,
            checkpoint: disk.checkpoint,
            gc: disk.gc,
            recovering: HashSet::new(),
            pending_registration: None,
            tasks: TaskBook::new(max_completed),
            updates: StatusUpdateManager::new(retry_interval),
            link: None,
            registered: false,
            master_hostname: None,
            internal,
            workers: JoinSet::new(),
            counters: Counters::default(),
            started: Instant::now(),
            stop: None,
            drain_deadline: None,
        }
    }

    /// Runs until `shutdown` fires or the master shuts the agent down, then
    /// kills every task (with its grace period) and returns.
    pub async fn run(
        mut self,
        mut link: mpsc::Receiver<LinkEvent>,
        mut queries: mpsc::Receiver<StateQuery>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
        shutdown: Shutdown,
    ) -> Result<(), AgentError> {
        loop {
            if self.stop.is_some() && self.tasks.live_keys().is_empty() {
                break;
            }
            let retry_at = self.updates.next_deadline().map(Instant::from_std);
            let far = Instant::now() + Duration::from_secs(86_400);
            let step = tokio::select! {
                _ = shutdown.fired(), if self.stop.is_none() => Step::Shutdown,
                Some(ev) = internal.recv() => Step::Internal(ev),
                Some(ev) = link.recv() => Step::Link(ev),
                Some(q) = queries.recv() => Step::Query(q),
                _ = sleep_until(retry_at.unwrap_or(far)), if retry_at.is_some() => Step::Retry,
                _ = sleep_until(self.drain_deadline.unwrap_or(far)), if self.drain_deadline.is_some() => Step::DrainTimeout,
                Some(done) = self.workers.join_next(), if !self.workers.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "agent worker failed");
                    }
                    Step::Idle
                }
            };
            match step {
                Step::Shutdown => self.begin_stop(StopReason::Requested),
                Step::Internal(ev) => self.on_internal(ev),
                Step::Link(ev) => self.on_link(ev),
                Step::Query(q) => {
                    // The requester may have gone (HTTP client hung up).
                    let _ = q.reply.send(self.snapshot());
                }
                Step::Retry => self.resend_due(),
                Step::DrainTimeout => {
                    tracing::warn!(
                        tasks = self.tasks.live_keys().len(),
                        "containers did not end in time; stopping anyway"
                    );
                    break;
                }
                Step::Idle => {}
            }
        }
        match self.stop {
            Some(StopReason::Master(message)) => Err(AgentError::ShutdownByMaster { message }),
            _ => Ok(()),
        }
    }

    fn begin_stop(&mut self, reason: StopReason) {
        if self.stop.is_some() {
            return;
        }
        tracing::info!(?reason, "agent stopping; killing all tasks");
        self.stop = Some(reason);
        let mut longest = Duration::ZERO;
        for key in self.tasks.live_keys() {
            longest = longest.max(self.kill_task(&key.0, &key.1, None));
        }
        self.drain_deadline = Some(Instant::now() + longest + DRAIN_SLACK);
    }

    fn on_link(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Connecting { master, out, reply } => {
                self.link = Some(out);
                self.registered = false;
                let host = master.rsplit_once(':').map_or(master.as_str(), |(h, _)| h);
                self.master_hostname = Some(host.to_string());
                if self.recovering.is_empty() {
                    // The link gave up on this session if it dropped the reply.
                    let _ = reply.send(self.registration_message());
                } else {
                    self.pending_registration = Some(reply);
                }
            }
            LinkEvent::Disconnected => {
                self.link = None;
                self.registered = false;
                self.pending_registration = None;
            }
            LinkEvent::Message(m) => self.on_master(*m),
        }
    }

    fn on_master(&mut self, message: MasterMessage) {
        use master_message::Message as M;
        match message.message {
            Some(M::Registered(r)) => {
                self.on_registered(r.agent_id, r.master_info.and_then(|m| m.hostname))
            }
            Some(M::Reregistered(r)) => {
                self.on_registered(r.agent_id, r.master_info.and_then(|m| m.hostname));
                for task_id in r.kill_tasks {
                    for key in self.tasks.keys_for_task_id(&task_id.value) {
                        tracing::info!(task_id = %key.1, "master asked to kill a reregistered task");
                        self.kill_task(&key.0, &key.1, None);
                    }
                }
            }
            Some(M::RunTask(r)) => self.run_task(r.framework, r.task),
            Some(M::KillTask(k)) => {
                let framework_id = k.framework_id.map(|f| f.value).unwrap_or_default();
                let task_id = k.task_id.map(|t| t.value).unwrap_or_default();
                let key = (framework_id, task_id);
                if self.tasks.get(&key).is_some() {
                    self.kill_task(&key.0, &key.1, k.kill_policy);
                } else {
                    self.report_unknown_task(&key);
                }
            }
            Some(M::Acknowledgement(a)) => {
                let framework_id = a.framework_id.map(|f| f.value).unwrap_or_default();
                let task_id = a.task_id.map(|t| t.value).unwrap_or_default();
                self.on_acknowledgement((framework_id, task_id), &a.uuid);
            }
            Some(M::ShutdownFramework(s)) => {
                let framework_id = s.framework_id.map(|f| f.value).unwrap_or_default();
                tracing::info!(%framework_id, "shutting down framework");
                for key in self.tasks.live_keys() {
                    if key.0 == framework_id {
                        self.kill_task(&key.0, &key.1, None);
                    }
                }
            }
            Some(M::FrameworkMessage(m)) => {
                tracing::warn!(executor_id = ?m.executor_id, "no executor to deliver a framework message to");
            }
            Some(M::Shutdown(s)) => self.begin_stop(StopReason::Master(s.message)),
            // Pings are answered by the link.
            Some(M::Ping(_)) | None => {}
        }
    }

    fn on_registered(&mut self, agent_id: Option<AgentId>, master_hostname: Option<String>) {
        let Some(id) = agent_id.map(|a| a.value).filter(|v| !v.is_empty()) else {
            tracing::error!("registration answer without an agent id; ignored");
            return;
        };
        let previous = self.agent_id.borrow().clone();
        if previous.as_deref() != Some(id.as_str()) {
            if let Some(previous) = previous {
                tracing::warn!(%previous, new = %id, "the master gave this agent a new id");
            }
            tracing::info!(agent_id = %id, "registered with master");
            self.checkpoint_agent(&id);
            self.agent_id.send_replace(Some(id));
        }
        if master_hostname.is_some() {
            self.master_hostname = master_hostname;
        }
        self.registered = true;
        let now = Instant::now().into_std();
        for update in self.updates.flush(now) {
            self.send_update(update);
        }
    }

    fn current_agent_id(&self) -> String {
        self.agent_id.borrow().clone().unwrap_or_default()
    }

    /// Queues a status update for delivery; sends it now if it is its
    /// task's only unacknowledged one.
    fn enqueue_update(&mut self, framework_id: String, status: agora_proto::TaskStatus) {
        let now = Instant::now().into_std();
        let key = (
            framework_id.clone(),
            status
                .task_id
                .as_ref()
                .map(|t| t.value.clone())
                .unwrap_or_default(),
        );
        let head = self.updates.enqueue(
            Update {
                framework_id,
                status,
            },
            now,
        );
        // On disk before it is on the wire: a restarted agent resends it.
        self.checkpoint_task(&key);
        if let Some(head) = head {
            self.send_update(head);
        }
    }

    fn send_update(&self, update: Update) {
        if !self.registered {
            // Resent by `flush` once (re)registered.
            return;
        }
        let key = (update.framework_id.clone(), update.task_id().to_string());
        let latest = self
            .tasks
            .get(&key)
            .map_or(update.status.state, |e| e.state as i32);
        tracing::debug!(task_id = %key.1, state = update.status.state, "sending status update");
        self.send(agent_message::Message::StatusUpdate(
            agent_message::StatusUpdate {
                framework_id: Some(FrameworkId {
                    value: update.framework_id,
                }),
                status: Some(update.status),
                latest_state: Some(latest),
            },
        ));
    }

    fn send(&self, message: agent_message::Message) {
        let Some(link) = &self.link else { return };
        if link
            .try_send(AgentMessage {
                message: Some(message),
            })
            .is_err()
        {
            tracing::warn!(
                "master link queue full or closed; message dropped (updates are retried)"
            );
        }
    }

    fn resend_due(&mut self) {
        let now = Instant::now().into_std();
        for update in self.updates.due(now) {
            self.send_update(update);
        }
    }

    fn on_acknowledgement(&mut self, key: TaskKey, uuid: &[u8]) {
        let now = Instant::now().into_std();
        match self.updates.acknowledge(&key.0, &key.1, uuid, now) {
            Acked::Ignored => {
                tracing::debug!(task_id = %key.1, "ignoring acknowledgement of an update not in flight")
            }
            Acked::Popped { terminal, next } => {
                if terminal {
                    self.forget_task(&key);
                } else {
                    self.checkpoint_task(&key);
                }
                if let Some(next) = next {
                    self.send_update(*next);
                }
            }
        }
    }

    /// Has the containerizer kill a container (SIGTERM, SIGKILL after
    /// `grace`) from a worker: the containerizer may do I/O.
    fn kill_container(&mut self, container_id: &str, grace: Duration) {
        let containerizer = self.containerizer.clone();
        let container_id = container_id.to_string();
        self.workers.spawn(async move {
            if let Err(e) = containerizer.kill(&container_id, grace).await {
                // It ended meanwhile; its exit is on its way.
                tracing::debug!(error = %e, "kill not delivered");
            }
        });
    }
}
