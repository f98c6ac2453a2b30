//! The agent's state as the actor hands it out, and its Mesos-shaped JSON.
//!
//! The actor copies what `/state` and `/metrics/snapshot` need into a
//! [`Snapshot`] (plain data, no references into its books); the rendering
//! below is pure so the JSON shape is tested without a server.

use std::path::PathBuf;
use std::time::Duration;

use agora_common::resources::{attribute_text, format_ranges, Resources};
use agora_common::task_state;
use agora_proto::{Attribute, FrameworkInfo, Resource, TaskState};
use serde_json::{json, Map, Value};

use crate::isolation::cgroups::Stats;

/// The agent's state at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The id, once registered.
    pub agent_id: Option<String>,
    /// The agent's hostname.
    pub hostname: String,
    /// `slave(1)@ip:port`, as Mesos tools expect.
    pub pid: String,
    /// Total resources.
    pub resources: Resources,
    /// Attributes.
    pub attributes: Vec<Attribute>,
    /// The master it is (or was last) linked to.
    pub master_hostname: Option<String>,
    /// Whether the current master link is registered.
    pub registered: bool,
    /// Tasks the master must still hear about.
    pub tasks: Vec<TaskView>,
    /// Completed tasks, oldest first.
    pub completed: Vec<TaskView>,
    /// Terminal states reached since start.
    pub counters: Counters,
    /// Time since the agent started.
    pub uptime: Duration,
}

/// One task as `/state` shows it.
#[derive(Debug, Clone)]
pub struct TaskView {
    /// Its framework.
    pub framework: FrameworkInfo,
    /// Its framework's id.
    pub framework_id: String,
    /// The task id.
    pub task_id: String,
    /// The task name.
    pub name: String,
    /// The executor id.
    pub executor_id: String,
    /// The latest state.
    pub state: TaskState,
    /// The task's resources.
    pub resources: Vec<Resource>,
    /// Whether its container still exists.
    pub live: bool,
    /// Its sandbox, once made.
    pub sandbox: Option<PathBuf>,
    /// Its container.
    pub container_id: String,
}

/// Counts of terminal states reached, for `/metrics/snapshot`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// `TASK_FINISHED`.
    pub finished: u64,
    /// `TASK_FAILED`.
    pub failed: u64,
    /// `TASK_KILLED`.
    pub killed: u64,
    /// `TASK_LOST` and `TASK_DROPPED`.
    pub lost: u64,
}

/// One entry of `/monitor/statistics` (Mesos' `ResourceUsage` JSON) for a
/// live task whose container has statistics.
pub fn statistics_json(t: &TaskView, stats: &Stats, timestamp: f64) -> Value {
    let mut statistics = json!({
        "timestamp": timestamp,
        "cpus_user_time_secs": stats.cpus_user_time_secs,
        "cpus_system_time_secs": stats.cpus_system_time_secs,
        "cpus_limit": stats.cpus_limit,
        "mem_rss_bytes": stats.mem_rss_bytes,
    });
    if let Some(limit) = stats.mem_limit_bytes {
        statistics["mem_limit_bytes"] = json!(limit);
    }
    json!({
        "executor_id": t.executor_id,
        "executor_name": format!("Command Executor (Task: {}) (Command: sh -c '...')", t.task_id),
        "framework_id": t.framework_id,
        "source": t.task_id,
        "statistics": statistics,
    })
}

/// Mesos' resources object: scalars by name and ranges as text.
pub fn resources_json(resources: &Resources) -> Value {
    let mut out = Map::new();
    for name in ["cpus", "mem", "disk", "gpus"] {
        out.insert(name.into(), json!(resources.scalar(name)));
    }
    for (name, value) in resources.scalars() {
        out.entry(name).or_insert(json!(value));
    }
    let ports = resources.ranges("ports");
    if !ports.is_empty() {
        out.insert("ports".into(), json!(format_ranges(&ports)));
    }
    Value::Object(out)
}

fn task_json(t: &TaskView, agent_id: &str) -> Value {
    json!({
        "id": t.task_id,
        "name": t.name,
        "framework_id": t.framework_id,
        "executor_id": t.executor_id,
        "slave_id": agent_id,
        "state": task_state::name(t.state),
        "resources": resources_json(&Resources::from_vec(t.resources.clone())),
    })
}

fn executor_json(t: &TaskView, agent_id: &str, completed: bool) -> Value {
    let task = task_json(t, agent_id);
    let (tasks, completed_tasks) = if completed {
        (vec![], vec![task])
    } else {
        (vec![task], vec![])
    };
    json!({
        "id": t.executor_id,
        "name": format!("Command Executor (Task: {})", t.task_id),
        "source": t.task_id,
        "framework_id": t.framework_id,
        "directory": t.sandbox.as_ref().map(|p| p.display().to_string()),
        "resources": resources_json(&Resources::from_vec(t.resources.clone())),
        "tasks": tasks,
        "queued_tasks": [],
        "completed_tasks": completed_tasks,
    })
}

/// The body of `GET /state`.
pub fn state_json(s: &Snapshot) -> Value {
    let agent_id = s.agent_id.clone().unwrap_or_default();
    // Frameworks in first-seen order; a framework with a task still in the
    // book is current, one with only completed tasks is completed.
    let mut frameworks: Vec<(String, FrameworkInfo, Vec<Value>, Vec<Value>)> = Vec::new();
    let all = s
        .tasks
        .iter()
        .map(|t| (t, false))
        .chain(s.completed.iter().map(|t| (t, true)));
    for (t, completed) in all {
        let index = match frameworks.iter().position(|(id, ..)| *id == t.framework_id) {
            Some(i) => i,
            None => {
                frameworks.push((t.framework_id.clone(), t.framework.clone(), vec![], vec![]));
                frameworks.len() - 1
            }
        };
        let executor = executor_json(t, &agent_id, completed || !t.live);
        if completed || !t.live {
            frameworks[index].3.push(executor);
        } else {
            frameworks[index].2.push(executor);
        }
    }
    let mut current = Vec::new();
    let mut done = Vec::new();
    for (id, info, executors, completed_executors) in frameworks {
        let is_current = s.tasks.iter().any(|t| t.framework_id == id);
        let value = json!({
            "id": id,
            "name": info.name,
            "user": info.user,
            "role": info.role.clone().unwrap_or_else(|| "*".into()),
            "hostname": info.hostname,
            "executors": executors,
            "completed_executors": completed_executors,
        });
        if is_current {
            current.push(value);
        } else {
            done.push(value);
        }
    }
    let attributes: Map<String, Value> = s
        .attributes
        .iter()
        .map(|a| (a.name.clone(), json!(attribute_text(a))))
        .collect();
    json!({
        "version": agora_common::build::MESOS_API_VERSION,
        "git_sha": agora_common::build::git_sha(),
        "git_tag": agora_common::build::git_tag(),
        "id": agent_id,
        "pid": s.pid,
        "hostname": s.hostname,
        "resources": resources_json(&s.resources),
        "attributes": attributes,
        "master_hostname": s.master_hostname,
        "frameworks": current,
        "completed_frameworks": done,
    })
}

/// The body of `GET /metrics/snapshot`.
pub fn metrics_json(s: &Snapshot) -> Value {
    let count = |state: TaskState| s.tasks.iter().filter(|t| t.state == state).count();
    let mut used = Resources::new();
    for t in s.tasks.iter().filter(|t| t.live) {
        used.add(&Resources::from_vec(t.resources.clone()));
    }
    json!({
        "slave/tasks_staging": count(TaskState::TaskStaging),
        "slave/tasks_running": count(TaskState::TaskRunning),
        "slave/tasks_killing": count(TaskState::TaskKilling),
        // A command task is its own executor.
        "slave/executors_running": s.tasks.iter().filter(|t| t.live).count(),
        "slave/tasks_finished": s.counters.finished,
        "slave/tasks_failed": s.counters.failed,
        "slave/tasks_killed": s.counters.killed,
        "slave/tasks_lost": s.counters.lost,
        "slave/registered": u8::from(s.registered),
        "slave/cpus_total": s.resources.scalar("cpus"),
        "slave/cpus_used": used.scalar("cpus"),
        "slave/mem_total": s.resources.scalar("mem"),
        "slave/mem_used": used.scalar("mem"),
        "slave/disk_total": s.resources.scalar("disk"),
        "slave/disk_used": used.scalar("disk"),
        "slave/uptime_secs": s.uptime.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_common::resources::{parse_attributes, scalar};

    fn view(framework: &str, task: &str, state: TaskState, live: bool) -> TaskView {
        TaskView {
            framework: FrameworkInfo {
                name: format!("{framework}-name"),
                ..Default::default()
            },
            framework_id: framework.into(),
            task_id: task.into(),
            name: task.into(),
            executor_id: task.into(),
            state,
            resources: vec![scalar("cpus", 0.5), scalar("mem", 32.0)],
            live,
            sandbox: None,
            container_id: format!("c-{task}"),
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            agent_id: Some("a-S0".into()),
            hostname: "node1".into(),
            pid: "slave(1)@127.0.0.1:5051".into(),
            resources: Resources::parse("cpus:2;mem:1024;disk:100;ports:[31000-32000]")
                .expect("valid"),
            attributes: parse_attributes("rack:r1").expect("valid"),
            master_hostname: Some("m1".into()),
            registered: true,
            tasks: vec![view("f1", "t1", TaskState::TaskRunning, true)],
            completed: vec![view("f2", "t2", TaskState::TaskFinished, false)],
            counters: Counters {
                finished: 1,
                ..Default::default()
            },
            uptime: Duration::from_secs(3),
        }
    }

    #[test]
    fn state_has_the_mesos_shape() {
        let v = state_json(&snapshot());
        assert_eq!(v["id"], "a-S0");
        assert_eq!(v["pid"], "slave(1)@127.0.0.1:5051");
        assert_eq!(v["resources"]["ports"], "[31000-32000]");
        assert_eq!(v["resources"]["gpus"], 0.0);
        assert_eq!(v["attributes"]["rack"], "r1");
        let task = &v["frameworks"][0]["executors"][0]["tasks"][0];
        assert_eq!(task["id"], "t1");
        assert_eq!(task["state"], "TASK_RUNNING");
        assert_eq!(task["slave_id"], "a-S0");
        assert_eq!(task["resources"]["cpus"], 0.5);
        let done = &v["completed_frameworks"][0];
        assert_eq!(done["id"], "f2");
        assert_eq!(
            done["completed_executors"][0]["completed_tasks"][0]["id"],
            "t2"
        );
    }

    #[test]
    fn metrics_count_and_sum() {
        let v = metrics_json(&snapshot());
        assert_eq!(v["slave/tasks_running"], 1);
        assert_eq!(v["slave/tasks_finished"], 1);
        assert_eq!(v["slave/registered"], 1);
        assert_eq!(v["slave/cpus_used"], 0.5);
        assert_eq!(v["slave/mem_total"], 1024.0);
    }
}
