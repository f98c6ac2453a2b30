//! The master actor: the one owner of the master's state.
//!
//! gRPC and HTTP handlers turn requests into [`Command`]s and send them here;
//! the actor handles commands one at a time (draining bursts before it
//! allocates), so no lock guards any of the books. Timers drive allocation,
//! agent pings, offer timeouts and framework failover deadlines.
//!
//! The handling is split by concern: [`frameworks`] (subscribe, failover,
//! teardown), [`calls`] (the scheduler calls), [`agents`] (registration,
//! pings, status updates), [`offers`] (allocation into offers, rescinds) and
//! [`views`] (state JSON and metrics).

mod agents;
mod calls;
mod frameworks;
mod offers;
mod views;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agora_common::ids::IdGenerator;
use agora_common::shutdown::Shutdown;
use agora_proto::agent::{AgentMessage, MasterMessage};
use agora_proto::scheduler::{Call, Event};
use agora_proto::{MasterInfo, TaskStatus};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use tracing::info;

use crate::allocator::Allocator;
use crate::books::{Agent, Framework, OfferBook, UnreachableAgent};
use crate::config::MasterConfig;
use crate::metrics::Metrics;
use crate::registry::registrar::RegistrarHandle;
use crate::registry::Operation;

pub use views::MetricsSnapshot;

/// A request to the master actor.
#[derive(Debug)]
pub enum Command {
    /// A framework opened a stream with a SUBSCRIBE call.
    Subscribe {
        /// The SUBSCRIBE call.
        call: Call,
        /// Where its events go.
        events: mpsc::UnboundedSender<Result<Event, Status>>,
        /// The stream's connection id once accepted.
        reply: oneshot::Sender<Result<u64, Status>>,
    },
    /// A later call on a framework's stream.
    Call {
        /// The stream it came on.
        conn_id: u64,
        /// The call.
        call: Call,
    },
    /// A framework's stream ended.
    FrameworkDisconnected {
        /// The stream that ended.
        conn_id: u64,
    },
    /// An agent opened a stream with a Register or Reregister message.
    AgentAttach {
        /// The first message.
        first: AgentMessage,
        /// Where messages to the agent go.
        messages: mpsc::UnboundedSender<Result<MasterMessage, Status>>,
        /// The stream's connection id once accepted.
        reply: oneshot::Sender<Result<u64, Status>>,
    },
    /// A later message on an agent's stream.
    AgentMessage {
        /// The stream it came on.
        conn_id: u64,
        /// The message.
        message: AgentMessage,
    },
    /// An agent's stream ended.
    AgentDisconnected {
        /// The stream that ended.
        conn_id: u64,
    },
    /// `/master/state`.
    State {
        /// The Mesos-shaped JSON.
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// `/metrics/snapshot`.
    Metrics {
        /// The snapshot.
        reply: oneshot::Sender<MetricsSnapshot>,
    },
    /// Operator teardown of a framework.
    Teardown {
        /// The framework to remove.
        framework_id: String,
        /// Whether it existed.
        reply: oneshot::Sender<bool>,
    },
    /// Operator views of frameworks, agents and tasks (typed, for the gRPC operator API).
    Snapshot {
        /// The books, copied.
        reply: oneshot::Sender<views::Snapshot>,
    },
}

/// What the actor owns.
pub struct Master {
    pub(crate) config: MasterConfig,
    pub(crate) info: MasterInfo,
    pub(crate) ids: IdGenerator,
    pub(crate) allocator: Allocator,
    pub(crate) agents: HashMap<String, Agent>,
    pub(crate) unreachable_agents: HashMap<String, UnreachableAgent>,
    pub(crate) frameworks: HashMap<String, Framework>,
    pub(crate) completed_frameworks: std::collections::VecDeque<Framework>,
    pub(crate) offers: OfferBook,
    /// Framework stream id -> framework id.
    pub(crate) framework_conns: HashMap<u64, String>,
    /// Agent stream id -> agent id.
    pub(crate) agent_conns: HashMap<u64, String>,
    pub(crate) next_conn_id: u64,
    pub(crate) metrics: Metrics,
    pub(crate) start_time: f64,
    pub(crate) started: Instant,
    /// Set by events that may make new offers possible; cleared by `allocate`.
    pub(crate) allocation_pending: bool,
    /// Persists admitted and unreachable agents.
    pub(crate) registrar: RegistrarHandle,
    /// Agents the registry lists that have not reregistered with this master yet.
    pub(crate) recovered_agents: HashMap<String, agora_proto::AgentInfo>,
}

impl Master {
    /// A master whose books start from the recovered `registry`.
    pub fn new(
        config: MasterConfig,
        info: MasterInfo,
        registry: agora_proto::Registry,
        registrar: RegistrarHandle,
    ) -> Self {
        // MasterConfig::validate refuses non-positive weights, the allocator's only error.
        let allocator = Allocator::new(config.weights.clone())
            .expect("weights are validated by MasterConfig::validate");
        let mut master = Master {
            ids: IdGenerator::new(info.id.clone()),
            info,
            allocator,
            agents: HashMap::new(),
            unreachable_agents: HashMap::new(),
            frameworks: HashMap::new(),
            completed_frameworks: Default::default(),
            offers: OfferBook::default(),
            framework_conns: HashMap::new(),
            agent_conns: HashMap::new(),
            next_conn_id: 1,
            metrics: Metrics::default(),
            start_time: agora_common::time::now_secs(),
            started: Instant::now(),
            allocation_pending: false,
            registrar,
            recovered_agents: HashMap::new(),
            config,
        };
        for agent in registry.agents {
            if let Some(info) = agent.info {
                let id = info
                    .id
                    .as_ref()
                    .map(|a| a.value.clone())
                    .unwrap_or_default();
                master.recovered_agents.insert(id, info);
            }
        }
        for agent in registry.unreachable {
            let id = agent.id.map(|a| a.value).unwrap_or_default();
            let since = agent
                .timestamp
                .map(|t| t.nanoseconds as f64 / 1e9)
                .unwrap_or(0.0);
            let info = agent.info.unwrap_or_default();
            master
                .unreachable_agents
                .insert(id, UnreachableAgent { info, since });
        }
        for (role, weight) in registry.weights {
            if master.allocator.set_weight(&role, weight).is_err() {
                tracing::warn!(%role, weight, "ignoring an invalid weight from the registry");
            }
        }
        for (role, quota) in master.config.quotas.clone() {
            master.allocator.set_quota(&role, quota);
        }
        master
    }

    /// Persists a registry change (asynchronously, batched).
    pub(crate) fn persist(&self, op: Operation) {
        self.registrar.apply(op);
    }

    pub(crate) fn next_conn(&mut self) -> u64 {
        let id = self.next_conn_id;
        self.next_conn_id += 1;
        id
    }

    /// Handles one command.
    pub fn handle(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Subscribe {
                call,
                events,
                reply,
            } => {
                let result = self.subscribe(call, events, now);
                let _ = reply.send(result);
            }
            Command::Call { conn_id, call } => self.call(conn_id, call, now),
            Command::FrameworkDisconnected { conn_id } => self.framework_disconnected(conn_id, now),
            Command::AgentAttach {
                first,
                messages,
                reply,
            } => {
                let result = self.agent_attach(first, messages, now);
                let _ = reply.send(result);
            }
            Command::AgentMessage { conn_id, message } => self.agent_message(conn_id, message),
            Command::AgentDisconnected { conn_id } => self.agent_disconnected(conn_id, now),
            Command::State { reply } => {
                let _ = reply.send(self.state_json());
            }
            Command::Metrics { reply } => {
                let _ = reply.send(self.metrics_snapshot());
            }
            Command::Teardown {
                framework_id,
                reply,
            } => {
                let existed = self.frameworks.contains_key(&framework_id);
                if existed {
                    self.teardown(&framework_id, "Framework has been removed by an operator");
                }
                let _ = reply.send(existed);
            }
            Command::Snapshot { reply } => {
                let _ = reply.send(self.snapshot());
            }
        }
    }

    /// Periodic duties: failover deadlines, offer timeouts, agent reachability.
    pub fn tick(&mut self, now: Instant) {
        self.expire_frameworks(now);
        self.expire_offers(now);
        self.expire_disconnected_agents(now);
        self.expire_recovered_agents(now);
    }

    /// Agents the registry listed that did not reregister in time become unreachable.
    fn expire_recovered_agents(&mut self, now: Instant) {
        if self.recovered_agents.is_empty()
            || now.duration_since(self.started) < self.config.agent_reregister_timeout
        {
            return;
        }
        let since = agora_common::time::now_secs();
        for (id, info) in std::mem::take(&mut self.recovered_agents) {
            tracing::warn!(agent_id = %id, "agent did not reregister after failover; marking it unreachable");
            self.persist(Operation::MarkUnreachable {
                id: id.clone(),
                nanos: agora_common::time::now_nanos(),
            });
            self.unreachable_agents
                .insert(id, UnreachableAgent { info, since });
            self.metrics.agent_removals += 1;
        }
    }

    /// Sends a status update to a framework that does not need acknowledging
    /// (master-generated: validation errors, reconciliation, unreachability).
    pub(crate) fn send_master_update(&mut self, framework_id: &str, status: TaskStatus) {
        if let Some(framework) = self.frameworks.get(framework_id) {
            framework.send(offers::update_event(status));
        }
    }
}

/// Runs the actor until shutdown.
pub async fn run(mut master: Master, mut commands: mpsc::Receiver<Command>, shutdown: Shutdown) {
    let mut allocation = tokio::time::interval(master.config.allocation_interval);
    allocation.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pings = tokio::time::interval(master.config.agent_ping_timeout);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heartbeats = tokio::time::interval(master.config.heartbeat_interval);
    heartbeats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let tick_every = master
        .config
        .agent_ping_timeout
        .min(Duration::from_millis(100));
    let mut maintenance = tokio::time::interval(tick_every);
    maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(master_id = %master.info.id, "master actor started");
    loop {
        tokio::select! {
            _ = shutdown.fired() => break,
            command = commands.recv() => {
                let Some(command) = command else { break };
                master.handle(command);
                // Drain a burst before allocating, so one allocation serves many events.
                for _ in 0..4096 {
                    match commands.try_recv() {
                        Ok(command) => master.handle(command),
                        Err(_) => break,
                    }
                }
            }
            _ = allocation.tick() => master.allocation_pending = true,
            _ = pings.tick() => master.ping_agents(),
            _ = heartbeats.tick() => master.heartbeat_frameworks(),
            _ = maintenance.tick() => master.tick(Instant::now()),
        }
        if master.allocation_pending {
            master.allocate(Instant::now());
        }
    }
    info!("master actor stopped");
}
