//! Instances: one launched copy of an app, with its (single) Mesos task.
//!
//! An instance id is `<app safe id>.instance-<uuid>` and its task id
//! `<instance id>._app.1`, as Marathon 1.9+ names them; a task id names its
//! app, so a status update for a task Marathon forgot still says which app it
//! belonged to.

use serde::{Deserialize, Serialize};

use super::path::PathId;
use super::timestamp::Timestamp;

/// Mesos task states (Marathon shows their Mesos names, `TASK_RUNNING`).
pub use agora_proto::TaskState;

/// How Marathon reads a task state.
pub trait TaskStateExt: Sized {
    /// Maps a Mesos state number (unknown numbers are `TASK_UNKNOWN`).
    fn from_mesos(state: i32) -> Self;
    /// Whether the task ended for good: Mesos' terminal states, and
    /// `TASK_UNKNOWN` (the master has no such task).
    fn is_terminal(&self) -> bool;
    /// Whether it ended in a way that counts as a failure for backoff.
    fn is_failure(&self) -> bool;
    /// Mesos' name (`TASK_RUNNING`).
    fn as_str(&self) -> &'static str;
}

impl TaskStateExt for TaskState {
    fn from_mesos(state: i32) -> Self {
        TaskState::try_from(state).unwrap_or(TaskState::TaskUnknown)
    }

    fn is_terminal(&self) -> bool {
        agora_common::task_state::is_terminal(*self) || *self == TaskState::TaskUnknown
    }

    fn is_failure(&self) -> bool {
        self.is_terminal() && !matches!(self, TaskState::TaskKilled | TaskState::TaskUnknown)
    }

    fn as_str(&self) -> &'static str {
        agora_common::task_state::name(*self)
    }
}

/// Serializes a task state as its Mesos name.
mod state_name {
    use super::{TaskState, TaskStateExt};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(state: &TaskState, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(state.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TaskState, D::Error> {
        let name = String::deserialize(deserializer)?;
        agora_common::task_state::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown task state {name}")))
    }
}

/// What Marathon wants of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Goal {
    /// Keep it running.
    Running,
    /// Kill it and forget it once it is terminal.
    Decommissioned,
}

/// One launched copy of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// `<app safe id>.instance-<uuid>`.
    pub instance_id: String,
    /// The app.
    pub app_id: PathId,
    /// The app version the instance runs.
    pub app_version: Timestamp,
    /// The Mesos task id.
    pub task_id: String,
    /// The agent the task was launched on.
    pub agent_id: String,
    /// The agent's hostname.
    pub host: String,
    /// The agent's attributes, for constraints (`name` → text value).
    #[serde(default)]
    pub attributes: Vec<(String, String)>,
    /// Host ports the task got.
    #[serde(default)]
    pub ports: Vec<u32>,
    /// The task's addresses as the agent reported them
    /// (`container_status.network_infos`): the container's own on a bridge
    /// or user network, the agent's otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<std::net::IpAddr>,
    /// Latest known task state.
    #[serde(with = "state_name")]
    pub state: TaskState,
    /// What Marathon wants of it.
    pub goal: Goal,
    /// When it was launched.
    pub staged_at: Timestamp,
    /// When it first reported RUNNING.
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    /// Since when it is unreachable.
    #[serde(default)]
    pub unreachable_since: Option<Timestamp>,
    /// The result of each of the app's health checks so far (Mesos checks
    /// as the agent reports them, Marathon's own as its probes find them).
    /// Not stored: a new leader learns it again from reconciliation and
    /// from its own probes.
    #[serde(skip)]
    pub health: Vec<super::health::HealthRecord>,
    /// When the state last changed.
    pub since: Timestamp,
}

impl Instance {
    /// A fresh instance id for `app`.
    pub fn new_id(app: &PathId) -> String {
        format!("{}.instance-{}", app.safe(), uuid::Uuid::new_v4())
    }

    /// The task id of the first incarnation of `instance_id`.
    pub fn task_id_for(instance_id: &str) -> String {
        format!("{instance_id}._app.1")
    }

    /// The instance id a task id belongs to (`None` if not a Marathon task id).
    pub fn instance_id_of(task_id: &str) -> Option<&str> {
        task_id
            .rfind("._app.")
            .map(|i| &task_id[..i])
            .or_else(|| task_id.contains(".instance-").then_some(task_id))
    }

    /// Whether the task is (being) started or running: it counts toward `instances`.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            TaskState::TaskStaging
                | TaskState::TaskStarting
                | TaskState::TaskRunning
                | TaskState::TaskUnreachable
        )
    }

    /// Whether it runs.
    pub fn is_running(&self) -> bool {
        self.state == TaskState::TaskRunning
    }

    /// Running and no health check failing (what a scale check counts).
    pub fn is_ready(&self) -> bool {
        self.is_running() && self.health.iter().all(|r| r.alive || !r.has_result())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let app = PathId::parse("/prod/web");
        let id = Instance::new_id(&app);
        assert!(id.starts_with("prod_web.instance-"));
        let task = Instance::task_id_for(&id);
        assert_eq!(Instance::instance_id_of(&task), Some(id.as_str()));
        assert_eq!(Instance::instance_id_of("other"), None);
    }

    #[test]
    fn states() {
        assert_eq!(
            TaskState::from_mesos(agora_proto::TaskState::TaskRunning as i32),
            TaskState::TaskRunning
        );
        assert!(TaskState::TaskKilled.is_terminal());
        assert!(TaskState::TaskUnknown.is_terminal());
        assert!(!TaskState::TaskKilled.is_failure());
        assert!(TaskState::TaskFailed.is_failure());
        assert!(!TaskState::TaskUnreachable.is_terminal());
        assert_eq!(TaskState::TaskRunning.as_str(), "TASK_RUNNING");
        assert_eq!(TaskState::from_mesos(999), TaskState::TaskUnknown);
    }
}
