//! The agent's book of tasks and each task's lifecycle.
//!
//! A task enters the book with a `RunTask` and leaves it only once its
//! terminal status update has been acknowledged: until then the master must
//! hear about it on reregistration. It then moves to a bounded list of
//! completed tasks kept for `/state`.
//!
//! The lifecycle is an explicit [`Phase`] stepped by [`Phase::step`]; the
//! actor performs the [`Effect`] a step asks for (signal the container,
//! report a state).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use agora_proto::{FrameworkInfo, TaskInfo, TaskState};

use crate::containerizer::ContainerNetwork;

/// Identifies a task on this agent: (framework id, task id).
pub type TaskKey = (String, String);

/// Where a task's container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sandbox and process are being set up; a kill asked for meanwhile is
    /// carried out as soon as the process exists.
    Launching {
        /// A kill arrived during the launch.
        kill_requested: bool,
    },
    /// The process runs.
    Running,
    /// SIGTERM was sent (or SIGKILL, when the kill came during the launch);
    /// SIGKILL follows after the grace period.
    Killing {
        /// The kill was requested before the process existed.
        during_launch: bool,
    },
    /// The container is gone (or never started).
    Terminated,
}

/// What happens to a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseEvent {
    /// The process now runs.
    Launched,
    /// The launch failed.
    LaunchFailed,
    /// A kill was requested.
    Kill,
    /// The main process ended.
    Exited,
}

/// What the actor must do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing (a duplicate or late event).
    None,
    /// Report `TASK_RUNNING`.
    ReportRunning,
    /// Start killing: SIGTERM now, SIGKILL after the grace period.
    StartKill,
    /// Kill at once: the task never ran as far as the framework knows.
    KillNow,
    /// Report the terminal state of the ended container.
    ReportTerminal,
    /// Report that the launch failed.
    ReportLaunchFailed,
}

impl Phase {
    /// The next phase and what to do; events that make no sense in a phase
    /// (a kill of a task already ending) leave it unchanged with no effect.
    pub fn step(self, event: PhaseEvent) -> (Phase, Effect) {
        use Phase::*;
        use PhaseEvent as E;
        match (self, event) {
            (
                Launching {
                    kill_requested: false,
                },
                E::Launched,
            ) => (Running, Effect::ReportRunning),
            (
                Launching {
                    kill_requested: true,
                },
                E::Launched,
            ) => (
                Killing {
                    during_launch: true,
                },
                Effect::KillNow,
            ),
            (Launching { .. }, E::LaunchFailed) => (Terminated, Effect::ReportLaunchFailed),
            (Launching { .. }, E::Kill) => (
                Launching {
                    kill_requested: true,
                },
                Effect::None,
            ),
            (Running, E::Kill) => (
                Killing {
                    during_launch: false,
                },
                Effect::StartKill,
            ),
            (Running | Killing { .. }, E::Exited) => (Terminated, Effect::ReportTerminal),
            (phase, _) => (phase, Effect::None),
        }
    }

    /// Whether a container exists or is being made.
    pub fn is_live(self) -> bool {
        !matches!(self, Phase::Terminated)
    }
}

/// A task the agent runs or ran.
#[derive(Debug, Clone)]
pub struct TaskEntry {
    /// The framework as the master last described it.
    pub framework: FrameworkInfo,
    /// The task as launched.
    pub info: TaskInfo,
    /// The executor id (the task id for command tasks).
    pub executor_id: String,
    /// The container run.
    pub container_id: String,
    /// The latest state reported for it.
    pub state: TaskState,
    /// Its lifecycle.
    pub phase: Phase,
    /// The container's main pid, once launched.
    pub pid: Option<i32>,
    /// The container's own addresses, once launched (empty on the host's
    /// network).
    pub networks: Vec<ContainerNetwork>,
    /// The sandbox, once made.
    pub sandbox: Option<PathBuf>,
    /// The grace period of the kill in progress.
    pub kill_grace: Option<Duration>,
    /// The health last reported (`None` before the first verdict).
    pub healthy: Option<bool>,
    /// The general check's result last reported.
    pub check_status: Option<agora_proto::CheckStatusInfo>,
}

/// Every task the master must still hear about, plus recently completed ones.
#[derive(Debug)]
pub struct TaskBook {
    tasks: BTreeMap<TaskKey, TaskEntry>,
    completed: VecDeque<TaskEntry>,
    max_completed: usize,
}

impl TaskBook {
    /// An empty book remembering up to `max_completed` completed tasks.
    pub fn new(max_completed: usize) -> Self {
        TaskBook {
            tasks: BTreeMap::new(),
            completed: VecDeque::new(),
            max_completed,
        }
    }

    /// Adds a task; `false` if the key is taken.
    pub fn insert(&mut self, key: TaskKey, entry: TaskEntry) -> bool {
        if self.tasks.contains_key(&key) {
            return false;
        }
        self.tasks.insert(key, entry);
        true
    }

    /// A task by key.
    pub fn get(&self, key: &TaskKey) -> Option<&TaskEntry> {
        self.tasks.get(key)
    }

    /// A task by key, to change it.
    pub fn get_mut(&mut self, key: &TaskKey) -> Option<&mut TaskEntry> {
        self.tasks.get_mut(key)
    }

    /// Moves a task whose terminal update was acknowledged to the completed list.
    pub fn complete(&mut self, key: &TaskKey) {
        if let Some(entry) = self.tasks.remove(key) {
            self.completed.push_back(entry);
            while self.completed.len() > self.max_completed {
                self.completed.pop_front();
            }
        }
    }

    /// Keys of tasks whose container exists or is being made.
    pub fn live_keys(&self) -> Vec<TaskKey> {
        self.tasks
            .iter()
            .filter(|(_, e)| e.phase.is_live())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Keys of the tasks with this task id, whatever their framework.
    pub fn keys_for_task_id(&self, task_id: &str) -> Vec<TaskKey> {
        self.tasks
            .keys()
            .filter(|(_, t)| t == task_id)
            .cloned()
            .collect()
    }

    /// Every task in the book.
    pub fn iter(&self) -> impl Iterator<Item = (&TaskKey, &TaskEntry)> {
        self.tasks.iter()
    }

    /// Completed tasks, oldest first.
    pub fn completed(&self) -> impl Iterator<Item = &TaskEntry> {
        self.completed.iter()
    }

    /// A framework known from any task in the book.
    pub fn framework(&self, framework_id: &str) -> Option<&FrameworkInfo> {
        self.tasks
            .iter()
            .find(|((f, _), _)| f == framework_id)
            .map(|(_, e)| &e.framework)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Effect as F;
    use Phase::*;
    use PhaseEvent as E;

    #[test]
    fn transition_table() {
        let launching = Launching {
            kill_requested: false,
        };
        let launching_killed = Launching {
            kill_requested: true,
        };
        let killing = Killing {
            during_launch: false,
        };
        let killing_early = Killing {
            during_launch: true,
        };
        let table = [
            (launching, E::Launched, Running, F::ReportRunning),
            (
                launching,
                E::LaunchFailed,
                Terminated,
                F::ReportLaunchFailed,
            ),
            (launching, E::Kill, launching_killed, F::None),
            (launching_killed, E::Launched, killing_early, F::KillNow),
            (
                launching_killed,
                E::LaunchFailed,
                Terminated,
                F::ReportLaunchFailed,
            ),
            (Running, E::Kill, killing, F::StartKill),
            (Running, E::Exited, Terminated, F::ReportTerminal),
            (killing, E::Exited, Terminated, F::ReportTerminal),
            (killing_early, E::Exited, Terminated, F::ReportTerminal),
            (killing, E::Kill, killing, F::None),
            (Terminated, E::Kill, Terminated, F::None),
            (Terminated, E::Exited, Terminated, F::None),
            (Running, E::Launched, Running, F::None),
        ];
        for (from, event, to, effect) in table {
            assert_eq!(from.step(event), (to, effect), "{from:?} + {event:?}");
        }
    }

    fn entry(framework: &str) -> TaskEntry {
        TaskEntry {
            framework: FrameworkInfo {
                name: framework.into(),
                ..Default::default()
            },
            info: TaskInfo::default(),
            executor_id: "e".into(),
            container_id: "c".into(),
            state: TaskState::TaskStaging,
            phase: Running,
            pid: None,
            networks: Vec::new(),
            sandbox: None,
            kill_grace: None,
            healthy: None,
            check_status: None,
        }
    }

    #[test]
    fn completed_list_is_bounded() {
        let mut book = TaskBook::new(2);
        for i in 0..3 {
            let key = ("f".to_string(), format!("t{i}"));
            assert!(book.insert(key.clone(), entry("f")));
            assert!(!book.insert(key.clone(), entry("f")), "duplicate refused");
            book.complete(&key);
        }
        assert_eq!(book.completed().count(), 2);
        assert_eq!(book.iter().count(), 0);
    }
}
