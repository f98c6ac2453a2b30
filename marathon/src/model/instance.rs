//! Instances: one launched copy of an app, with its (single) Mesos task.
//!
//! An instance id is `<app safe id>.instance-<uuid>` and its task id
//! `<instance id>._app.1`, as Marathon 1.9+ names them; a task id names its
//! app, so a status update for a task Marathon forgot still says which app it
//! belonged to.

use serde::{Deserialize, Serialize};

use super::path::PathId;
use super::timestamp::Timestamp;

/// Mesos task states as Marathon shows them (`TASK_RUNNING`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    /// Launched, not yet confirmed by the agent (Marathon's "Provisioned").
    TaskStaging,
    /// The agent is starting it.
    TaskStarting,
    /// Running.
    TaskRunning,
    /// Being killed.
    TaskKilling,
    /// Ended with exit status 0.
    TaskFinished,
    /// Ended with a failure.
    TaskFailed,
    /// Killed.
    TaskKilled,
    /// Invalid task.
    TaskError,
    /// Lost (frameworks not partition-aware).
    TaskLost,
    /// On an agent that cannot be reached.
    TaskUnreachable,
    /// Gone with its agent.
    TaskGone,
    /// Never started.
    TaskDropped,
    /// Unknown to the master.
    TaskUnknown,
}

impl TaskState {
    /// Maps a Mesos state number (`agora_proto::TaskState as i32`).
    pub fn from_mesos(state: i32) -> Self {
        use agora_proto::TaskState as M;
        match M::try_from(state).unwrap_or(M::TaskUnknown) {
            M::TaskStaging => TaskState::TaskStaging,
            M::TaskStarting => TaskState::TaskStarting,
            M::TaskRunning => TaskState::TaskRunning,
            M::TaskKilling => TaskState::TaskKilling,
            M::TaskFinished => TaskState::TaskFinished,
            M::TaskFailed => TaskState::TaskFailed,
            M::TaskKilled => TaskState::TaskKilled,
            M::TaskError => TaskState::TaskError,
            M::TaskLost => TaskState::TaskLost,
            M::TaskUnreachable => TaskState::TaskUnreachable,
            M::TaskGone | M::TaskGoneByOperator => TaskState::TaskGone,
            M::TaskDropped => TaskState::TaskDropped,
            M::TaskUnknown => TaskState::TaskUnknown,
        }
    }

    /// Whether the task ended for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskError
                | TaskState::TaskLost
                | TaskState::TaskGone
                | TaskState::TaskDropped
                | TaskState::TaskUnknown
        )
    }

    /// Whether it ended in a way that counts as a failure for backoff.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            TaskState::TaskFailed
                | TaskState::TaskError
                | TaskState::TaskLost
                | TaskState::TaskGone
                | TaskState::TaskDropped
                | TaskState::TaskFinished
        )
    }

    /// Marathon's name (`TASK_RUNNING`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::TaskStaging => "TASK_STAGING",
            TaskState::TaskStarting => "TASK_STARTING",
            TaskState::TaskRunning => "TASK_RUNNING",
            TaskState::TaskKilling => "TASK_KILLING",
            TaskState::TaskFinished => "TASK_FINISHED",
            TaskState::TaskFailed => "TASK_FAILED",
            TaskState::TaskKilled => "TASK_KILLED",
            TaskState::TaskError => "TASK_ERROR",
            TaskState::TaskLost => "TASK_LOST",
            TaskState::TaskUnreachable => "TASK_UNREACHABLE",
            TaskState::TaskGone => "TASK_GONE",
            TaskState::TaskDropped => "TASK_DROPPED",
            TaskState::TaskUnknown => "TASK_UNKNOWN",
        }
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
    /// Latest known task state.
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
    /// Health as reported by the agent's checks (None: no check result yet).
    #[serde(default)]
    pub healthy: Option<bool>,
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

    /// Running and not known unhealthy.
    pub fn is_ready(&self) -> bool {
        self.is_running() && self.healthy != Some(false)
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
        assert!(!TaskState::TaskKilled.is_failure());
        assert_eq!(
            serde_json::to_value(TaskState::TaskRunning).unwrap(),
            "TASK_RUNNING"
        );
    }
}
