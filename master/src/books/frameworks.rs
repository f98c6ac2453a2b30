//! Frameworks as the master sees them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use agora_common::resources::Resources;
use agora_proto::framework_info::capability::Type as Capability;
use agora_proto::scheduler::Event;
use agora_proto::{FrameworkInfo, Task};
use tokio::sync::mpsc;
use tonic::Status;

/// The live stream to a framework.
#[derive(Debug, Clone)]
pub struct FrameworkConn {
    /// Unique per stream, to tell a stale stream's disconnect from the current one's.
    pub id: u64,
    /// Events to the framework.
    pub tx: mpsc::UnboundedSender<Result<Event, Status>>,
}

/// Where a framework is in its life with this master.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FrameworkState {
    /// Subscribed with a live stream.
    Connected,
    /// Its stream broke; torn down at `deadline` unless it resubscribes.
    Disconnected {
        /// When the stream broke.
        since: Instant,
        /// since + failover_timeout.
        deadline: Instant,
    },
    /// Known only from agents' reregistrations (after a master restart);
    /// waiting for the framework to resubscribe.
    Recovered,
}

/// A framework known to the master.
#[derive(Debug)]
pub struct Framework {
    /// The framework id.
    pub id: String,
    /// What the framework said about itself (with its id).
    pub info: FrameworkInfo,
    /// The roles it is subscribed in.
    pub roles: Vec<String>,
    /// Connection state.
    pub state: FrameworkState,
    /// The current stream, if connected.
    pub conn: Option<FrameworkConn>,
    /// Tasks that are not yet terminal, or terminal but not yet acknowledged.
    pub tasks: HashMap<String, Task>,
    /// Tasks on agents that became unreachable.
    pub unreachable_tasks: HashMap<String, Task>,
    /// Terminal, acknowledged tasks (bounded).
    pub completed_tasks: VecDeque<Task>,
    /// Outstanding offers.
    pub offers: HashSet<String>,
    /// Resources of its non-terminal tasks.
    pub used: Resources,
    /// Resources in its outstanding offers.
    pub offered: Resources,
    /// Seconds since the epoch when it first subscribed to this master.
    pub registered_time: f64,
    /// Seconds since the epoch of its last resubscription.
    pub reregistered_time: Option<f64>,
    /// Seconds since the epoch when it disconnected or was removed.
    pub unregistered_time: Option<f64>,
}

impl Framework {
    /// A framework with empty books.
    pub fn new(
        info: FrameworkInfo,
        roles: Vec<String>,
        state: FrameworkState,
        conn: Option<FrameworkConn>,
    ) -> Self {
        Framework {
            id: info
                .id
                .as_ref()
                .map(|i| i.value.clone())
                .unwrap_or_default(),
            info,
            roles,
            state,
            conn,
            tasks: HashMap::new(),
            unreachable_tasks: HashMap::new(),
            completed_tasks: VecDeque::new(),
            offers: HashSet::new(),
            used: Resources::new(),
            offered: Resources::new(),
            registered_time: agora_common::time::now_secs(),
            reregistered_time: None,
            unregistered_time: None,
        }
    }

    /// Sends an event if connected.
    pub fn send(&self, event: Event) {
        if let Some(conn) = &self.conn {
            let _ = conn.tx.send(Ok(event));
        }
    }

    /// Whether the framework declared a capability.
    pub fn has_capability(&self, capability: Capability) -> bool {
        self.info
            .capabilities
            .iter()
            .any(|c| c.r#type == capability as i32)
    }

    /// PARTITION_AWARE frameworks get TASK_UNREACHABLE/DROPPED/GONE; others TASK_LOST.
    pub fn partition_aware(&self) -> bool {
        self.has_capability(Capability::PartitionAware)
    }

    /// Whether the framework is connected.
    pub fn is_connected(&self) -> bool {
        self.state == FrameworkState::Connected
    }

    /// The role used when a task does not say: the first subscribed role.
    pub fn default_role(&self) -> &str {
        self.roles.first().map(String::as_str).unwrap_or("*")
    }

    /// Keeps a terminal task for the books, dropping the oldest beyond `max`.
    pub fn complete_task(&mut self, task: Task, max: usize) {
        self.completed_tasks.push_back(task);
        while self.completed_tasks.len() > max {
            self.completed_tasks.pop_front();
        }
    }
}

/// The roles a `FrameworkInfo` subscribes in: `roles` (MULTI_ROLE), else the
/// legacy `role`, else `*`.
pub fn roles_of(info: &FrameworkInfo) -> Vec<String> {
    if !info.roles.is_empty() {
        return info.roles.clone();
    }
    match info.role.as_deref() {
        Some(role) if !role.is_empty() => vec![role.to_string()],
        _ => vec!["*".to_string()],
    }
}
