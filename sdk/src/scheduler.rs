//! The framework-facing handle, its configuration and the events it yields.

use std::sync::Arc;
use std::time::Duration;

use agora_common::shutdown::{self, ShutdownTrigger};
use agora_coord::{Detector, StaticDetector};
use agora_proto::scheduler::{call, Call};
use agora_proto::{
    framework_info, AgentId, ExecutorId, Filters, FrameworkId, FrameworkInfo, KillPolicy, Offer,
    OfferId, TaskId, TaskInfo, TaskStatus,
};
use tokio::sync::{mpsc, watch};

use crate::connection;

/// Errors from SDK calls.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The SDK is between connections (or not subscribed yet); the call was not sent.
    #[error("not subscribed to a master: the call was not sent")]
    Disconnected,
    /// The framework was removed by the master, or the SDK was closed.
    #[error("the scheduler is closed")]
    Closed,
    /// A call that cannot be made as given.
    #[error("invalid call: {0}")]
    InvalidCall(String),
}

/// What a framework learns from the master, in order.
// Events are moved once from the connection to the application; boxing the
// larger variants would only add an allocation per update.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum SchedulerEvent {
    /// Subscribed (again, after a reconnection) under this framework id.
    Subscribed {
        /// The framework id to use from now on.
        framework_id: String,
        /// How often the master sends heartbeats.
        heartbeat_interval_seconds: Option<f64>,
    },
    /// New resource offers.
    Offers(Vec<Offer>),
    /// An offer is no longer valid.
    Rescind(OfferId),
    /// A task's status changed.
    Update(TaskStatus),
    /// A message from an executor.
    Message {
        /// The agent the executor runs on.
        agent_id: AgentId,
        /// The executor that sent it.
        executor_id: ExecutorId,
        /// The payload.
        data: Vec<u8>,
    },
    /// An agent or executor failed.
    Failure {
        /// The agent, if the failure concerns one.
        agent_id: Option<AgentId>,
        /// The executor, if the failure concerns one.
        executor_id: Option<ExecutorId>,
        /// The executor's exit status, if known.
        status: Option<i32>,
    },
    /// The master refused or removed the framework; no reconnection follows.
    Error(String),
    /// Another scheduler subscribed as this framework and took it over (a
    /// failover: this one must stop acting for it); no reconnection follows.
    FailedOver(String),
    /// The master is alive.
    Heartbeat,
    /// The connection to the master broke; the SDK is reconnecting.
    Disconnected(String),
}

/// How to connect and who to be.
#[derive(Clone)]
pub struct SchedulerConfig {
    pub(crate) detector: Arc<dyn Detector>,
    pub(crate) framework_info: FrameworkInfo,
    pub(crate) suppressed_roles: Vec<String>,
    pub(crate) auto_acknowledge: bool,
    pub(crate) reconnect_initial: Duration,
    pub(crate) reconnect_max: Duration,
}

impl std::fmt::Debug for SchedulerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerConfig")
            .field("framework_info", &self.framework_info)
            .field("auto_acknowledge", &self.auto_acknowledge)
            .finish_non_exhaustive()
    }
}

impl SchedulerConfig {
    /// A framework named `name` for the master at `master` (`host:port`),
    /// in role `*`, as the current user, with no failover timeout.
    pub fn new(master: impl Into<String>, name: impl Into<String>) -> Self {
        Self::with_detector(Arc::new(StaticDetector::new(master)), name)
    }

    /// Like [`SchedulerConfig::new`], finding the master through `detector`.
    pub fn with_detector(detector: Arc<dyn Detector>, name: impl Into<String>) -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_string());
        SchedulerConfig {
            detector,
            framework_info: FrameworkInfo {
                user,
                name: name.into(),
                ..Default::default()
            },
            suppressed_roles: Vec::new(),
            auto_acknowledge: false,
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
        }
    }

    /// Replaces the whole `FrameworkInfo`.
    pub fn framework_info(mut self, info: FrameworkInfo) -> Self {
        self.framework_info = info;
        self
    }

    /// Subscribes in these roles (MULTI_ROLE).
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.framework_info.roles = roles.iter().map(|r| r.to_string()).collect();
        let multi = framework_info::capability::Type::MultiRole;
        self.capability(multi)
    }

    /// Adds a capability.
    pub fn capability(mut self, kind: framework_info::capability::Type) -> Self {
        if !self
            .framework_info
            .capabilities
            .iter()
            .any(|c| c.r#type == kind as i32)
        {
            self.framework_info
                .capabilities
                .push(framework_info::Capability {
                    r#type: kind as i32,
                });
        }
        self
    }

    /// Seconds the master keeps the framework (and its tasks) after a disconnect.
    pub fn failover_timeout(mut self, seconds: f64) -> Self {
        self.framework_info.failover_timeout = Some(seconds);
        self
    }

    /// Resubscribes as an existing framework (after a scheduler restart).
    pub fn framework_id(mut self, id: impl Into<String>) -> Self {
        self.framework_info.id = Some(FrameworkId { value: id.into() });
        self
    }

    /// Whether the SDK acknowledges status updates itself after yielding them.
    pub fn auto_acknowledge(mut self, on: bool) -> Self {
        self.auto_acknowledge = on;
        self
    }

    /// Roles that start suppressed (no offers until revived).
    pub fn suppressed_roles(mut self, roles: &[&str]) -> Self {
        self.suppressed_roles = roles.iter().map(|r| r.to_string()).collect();
        self
    }

    /// Reconnection backoff bounds.
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_initial = initial;
        self.reconnect_max = max;
        self
    }
}

/// State shared by the handle and the connection task.
pub(crate) struct Shared {
    /// The sender of the current subscription's call stream; `None` while disconnected.
    pub(crate) calls: watch::Sender<Option<mpsc::Sender<Call>>>,
    /// The framework id, once subscribed.
    pub(crate) framework_id: watch::Sender<Option<String>>,
    /// Dropped with the last handle, which stops the connection task.
    _stop: ShutdownTrigger,
}

/// A cloneable handle for making calls. The connection closes when every
/// handle and the event receiver are dropped.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

impl Scheduler {
    /// Starts connecting and subscribing in the background; events (starting
    /// with [`SchedulerEvent::Subscribed`]) arrive on the returned receiver.
    pub async fn subscribe(
        config: SchedulerConfig,
    ) -> Result<(Scheduler, mpsc::Receiver<SchedulerEvent>), SdkError> {
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (stop, stopped) = shutdown::channel();
        let initial_id = config.framework_info.id.as_ref().map(|i| i.value.clone());
        let shared = Arc::new(Shared {
            calls: watch::channel(None).0,
            framework_id: watch::channel(initial_id).0,
            _stop: stop,
        });
        tokio::spawn(connection::run(
            config,
            Arc::downgrade(&shared),
            events_tx,
            stopped,
        ));
        Ok((Scheduler { shared }, events_rx))
    }

    /// The framework id, once subscribed.
    pub fn framework_id(&self) -> Option<String> {
        self.shared.framework_id.borrow().clone()
    }

    /// Sends a call, filling in the framework id.
    pub async fn call(&self, mut call: Call) -> Result<(), SdkError> {
        let id = self.framework_id().ok_or(SdkError::Disconnected)?;
        call.framework_id = Some(FrameworkId { value: id });
        let sender = self
            .shared
            .calls
            .borrow()
            .clone()
            .ok_or(SdkError::Disconnected)?;
        sender.send(call).await.map_err(|_| SdkError::Disconnected)
    }

    /// Accepts offers (all on one agent) with operations.
    pub async fn accept(
        &self,
        offer_ids: Vec<OfferId>,
        operations: Vec<agora_proto::offer::Operation>,
        refuse_seconds: Option<f64>,
    ) -> Result<(), SdkError> {
        self.call(Call {
            r#type: call::Type::Accept as i32,
            accept: Some(call::Accept {
                offer_ids,
                operations,
                filters: refuse_seconds.map(|s| Filters {
                    refuse_seconds: Some(s),
                }),
            }),
            ..Default::default()
        })
        .await
    }

    /// Launches tasks on one offer.
    pub async fn launch(&self, offer: &Offer, tasks: Vec<TaskInfo>) -> Result<(), SdkError> {
        let id = offer
            .id
            .clone()
            .ok_or_else(|| SdkError::InvalidCall("offer without id".into()))?;
        self.accept(vec![id], vec![launch_operation(tasks)], None)
            .await
    }

    /// Declines offers; `refuse_seconds` defaults to five on the master.
    pub async fn decline(
        &self,
        offer_ids: Vec<OfferId>,
        refuse_seconds: Option<f64>,
    ) -> Result<(), SdkError> {
        self.call(Call {
            r#type: call::Type::Decline as i32,
            decline: Some(call::Decline {
                offer_ids,
                filters: refuse_seconds.map(|s| Filters {
                    refuse_seconds: Some(s),
                }),
            }),
            ..Default::default()
        })
        .await
    }

    /// Asks for offers again (clears filters); empty roles means all.
    pub async fn revive(&self, roles: &[&str]) -> Result<(), SdkError> {
        self.call(Call {
            r#type: call::Type::Revive as i32,
            revive: Some(call::Revive {
                roles: roles.iter().map(|r| r.to_string()).collect(),
            }),
            ..Default::default()
        })
        .await
    }

    /// Stops offers; empty roles means all.
    pub async fn suppress(&self, roles: &[&str]) -> Result<(), SdkError> {
        self.call(Call {
            r#type: call::Type::Suppress as i32,
            suppress: Some(call::Suppress {
                roles: roles.iter().map(|r| r.to_string()).collect(),
            }),
            ..Default::default()
        })
        .await
    }

    /// Kills a task.
    pub async fn kill(
        &self,
        task_id: &str,
        agent_id: Option<AgentId>,
        kill_policy: Option<KillPolicy>,
    ) -> Result<(), SdkError> {
        self.call(Call {
            r#type: call::Type::Kill as i32,
            kill: Some(call::Kill {
                task_id: Some(TaskId {
                    value: task_id.to_string(),
                }),
                agent_id,
                kill_policy,
            }),
            ..Default::default()
        })
        .await
    }

    /// Acknowledges a status update (no-op for updates without a uuid).
    pub async fn acknowledge(&self, status: &TaskStatus) -> Result<(), SdkError> {
        match acknowledge_call(status) {
            Some(call) => self.call(call).await,
            None => Ok(()),
        }
    }

    /// Asks for the latest state of tasks; an empty list reconciles every task (implicit).
    pub async fn reconcile(&self, tasks: Vec<(TaskId, Option<AgentId>)>) -> Result<(), SdkError> {
        self.call(Call {
            r#type: call::Type::Reconcile as i32,
            reconcile: Some(call::Reconcile {
                tasks: tasks
                    .into_iter()
                    .map(|(task_id, agent_id)| call::reconcile::Task {
                        task_id: Some(task_id),
                        agent_id,
                    })
                    .collect(),
            }),
            ..Default::default()
        })
        .await
    }

    /// Sends a message to an executor.
    pub async fn message(
        &self,
        agent_id: AgentId,
        executor_id: ExecutorId,
        data: Vec<u8>,
    ) -> Result<(), SdkError> {
        self.call(Call {
            r#type: call::Type::Message as i32,
            message: Some(call::Message {
                agent_id: Some(agent_id),
                executor_id: Some(executor_id),
                data,
            }),
            ..Default::default()
        })
        .await
    }

    /// Removes the framework: the master kills its tasks and forgets it.
    pub async fn teardown(&self) -> Result<(), SdkError> {
        self.call(Call {
            r#type: call::Type::Teardown as i32,
            ..Default::default()
        })
        .await
    }
}

/// A LAUNCH operation for `tasks`.
pub fn launch_operation(tasks: Vec<TaskInfo>) -> agora_proto::offer::Operation {
    use agora_proto::offer::operation;
    agora_proto::offer::Operation {
        r#type: operation::Type::Launch as i32,
        launch: Some(operation::Launch { task_infos: tasks }),
        ..Default::default()
    }
}

/// The ACKNOWLEDGE call for an update, if it needs one (it carries a uuid).
pub(crate) fn acknowledge_call(status: &TaskStatus) -> Option<Call> {
    let uuid = status.uuid.clone().filter(|u| !u.is_empty())?;
    Some(Call {
        r#type: call::Type::Acknowledge as i32,
        acknowledge: Some(call::Acknowledge {
            agent_id: status.agent_id.clone(),
            task_id: status.task_id.clone(),
            uuid,
        }),
        ..Default::default()
    })
}
