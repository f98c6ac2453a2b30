//! The task-state table: names, terminality and legal transitions.

use agora_proto::TaskState;

/// Whether no further update can follow this state (the task's resources are
/// released). `TASK_LOST` counts as terminal, as in Mesos' books, although a
/// partitioned task may come back when its agent reregisters.
pub fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
    )
}

/// Whether a task may move from `from` to `to`. Terminal states are final,
/// except that an unreachable or lost task may reappear when its agent comes
/// back. Any non-terminal state may go to any state reached by events (a
/// task can fail while staging).
pub fn can_transition(from: TaskState, to: TaskState) -> bool {
    use TaskState::*;
    if from == to {
        return true;
    }
    match from {
        TaskUnreachable | TaskLost => !matches!(to, TaskStaging),
        f if is_terminal(f) => false,
        TaskUnknown => true,
        _ => !matches!(to, TaskStaging | TaskUnknown),
    }
}

/// Mesos' upper-case name, e.g. `TASK_RUNNING`.
pub fn name(state: TaskState) -> &'static str {
    state.as_str_name()
}

/// Parses a Mesos state name.
pub fn parse(name: &str) -> Option<TaskState> {
    TaskState::from_str_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    const ALL: [TaskState; 14] = [
        TaskStaging,
        TaskStarting,
        TaskRunning,
        TaskKilling,
        TaskFinished,
        TaskFailed,
        TaskKilled,
        TaskError,
        TaskLost,
        TaskDropped,
        TaskUnreachable,
        TaskGone,
        TaskGoneByOperator,
        TaskUnknown,
    ];

    #[test]
    fn transition_table() {
        // (from, to, allowed)
        let table = [
            (TaskStaging, TaskRunning, true),
            (TaskStaging, TaskFailed, true),
            (TaskRunning, TaskKilling, true),
            (TaskKilling, TaskKilled, true),
            (TaskRunning, TaskStaging, false),
            (TaskFinished, TaskRunning, false),
            (TaskKilled, TaskRunning, false),
            (TaskUnreachable, TaskRunning, true),
            (TaskLost, TaskRunning, true),
            (TaskRunning, TaskUnreachable, true),
            (TaskError, TaskError, true),
        ];
        for (from, to, allowed) in table {
            assert_eq!(can_transition(from, to), allowed, "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn terminal_states_only_repeat() {
        for from in ALL.iter().copied().filter(|s| is_terminal(*s)) {
            if matches!(from, TaskLost) {
                continue;
            }
            for to in ALL {
                assert_eq!(can_transition(from, to), from == to, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ALL {
            assert_eq!(parse(name(s)), Some(s));
        }
        assert_eq!(name(TaskRunning), "TASK_RUNNING");
    }
}
