//! Agents as the master sees them.

use std::collections::HashSet;
use std::time::Instant;

use agora_common::resources::Resources;
use agora_proto::agent::MasterMessage;
use agora_proto::AgentInfo;
use tokio::sync::mpsc;
use tonic::Status;

/// The live stream to an agent. `id` tells a stale stream's disconnect from
/// the current one's.
#[derive(Debug, Clone)]
pub struct AgentConn {
    /// Unique per stream.
    pub id: u64,
    /// Messages to the agent.
    pub tx: mpsc::UnboundedSender<Result<MasterMessage, Status>>,
}

/// Where an agent is in its life with this master.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AgentState {
    /// Connected and answering pings: its resources are offered.
    Active,
    /// Its stream broke at `since`; it is marked unreachable if it does not
    /// come back within the ping window.
    Disconnected {
        /// When the stream broke.
        since: Instant,
    },
}

/// A registered agent.
#[derive(Debug)]
pub struct Agent {
    /// The agent id.
    pub id: String,
    /// What the agent said about itself (with its id filled in).
    pub info: AgentInfo,
    /// Its total resources.
    pub total: Resources,
    /// Resources of its non-terminal tasks.
    pub used: Resources,
    /// Resources in outstanding offers.
    pub offered: Resources,
    /// The agent's version string.
    pub version: String,
    /// Connection state.
    pub state: AgentState,
    /// The current stream, if connected.
    pub conn: Option<AgentConn>,
    /// (framework id, task id) of the tasks the master believes run there.
    pub tasks: HashSet<(String, String)>,
    /// Outstanding offers on this agent.
    pub offers: HashSet<String>,
    /// Seconds since the epoch of the first registration with this master.
    pub registered_time: f64,
    /// Seconds since the epoch of the last reregistration, if any.
    pub reregistered_time: Option<f64>,
    /// The sequence of the last ping sent.
    pub ping_sequence: u64,
    /// Whether the last ping is still unanswered.
    pub ping_outstanding: bool,
    /// Consecutive unanswered pings.
    pub missed_pings: u32,
}

impl Agent {
    /// Sends a message if connected; a closed stream is noticed by its reader.
    pub fn send(&self, message: MasterMessage) {
        if let Some(conn) = &self.conn {
            let _ = conn.tx.send(Ok(message));
        }
    }

    /// Whether its resources may be offered.
    pub fn is_active(&self) -> bool {
        self.state == AgentState::Active
    }

    /// `slave(1)@ip:port`, the agent's pid in Mesos' state JSON.
    pub fn pid(&self) -> String {
        format!(
            "slave(1)@{}:{}",
            self.info.hostname,
            self.info.port.unwrap_or(5051)
        )
    }
}

/// An agent the master lost contact with; its tasks are unreachable.
#[derive(Debug, Clone)]
pub struct UnreachableAgent {
    /// What the agent last said about itself.
    pub info: AgentInfo,
    /// Seconds since the epoch when it was marked unreachable.
    pub since: f64,
}
