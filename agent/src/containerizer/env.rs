//! A task's environment.
//!
//! Tasks inherit nothing from the agent but `PATH` (so that shell commands
//! find their tools); the agent's own variables (credentials, `RUST_LOG`...)
//! would otherwise leak into every task. On top come Mesos' variables, the
//! Marathon-style port variables, and last the task's own
//! `command.environment`, which may override any of them. A task in a
//! container of its own image gets no `PATH` from the host (the image's
//! applies) and sees its sandbox where it is mounted, as Mesos does.

use agora_proto::environment::variable::Type as VariableType;
use agora_proto::{value, TaskInfo};

/// `PATH` for tasks when the agent has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the agent knows about a task beyond its `TaskInfo`.
#[derive(Debug, Clone)]
pub struct EnvContext<'a> {
    /// The agent's id.
    pub agent_id: &'a str,
    /// The task's framework.
    pub framework_id: &'a str,
    /// The executor id (the task id for command tasks).
    pub executor_id: &'a str,
    /// The sandbox path.
    pub sandbox: &'a str,
    /// The agent's hostname, as `HOST`.
    pub hostname: &'a str,
    /// The agent's `PATH`, if any.
    pub path: Option<&'a str>,
    /// Where the sandbox is mounted, for a task in a container image of its
    /// own (`/mnt/mesos/sandbox`); `None` for a task on the host.
    pub container_sandbox: Option<&'a str>,
}

/// The ports of a task's `ports` resources, in the order they were given.
pub fn task_ports(task: &TaskInfo) -> Vec<u64> {
    task.resources
        .iter()
        .filter(|r| r.name == "ports" && r.r#type == value::Type::Ranges as i32)
        .flat_map(|r| r.ranges.iter().flat_map(|rs| rs.range.iter()))
        .flat_map(|range| range.begin..=range.end)
        .collect()
}

/// The complete environment of a command task, later entries winning.
pub fn task_environment(ctx: &EnvContext<'_>, task: &TaskInfo) -> Vec<(String, String)> {
    let task_id = task
        .task_id
        .as_ref()
        .map(|t| t.value.as_str())
        .unwrap_or_default();
    let mut env: Vec<(String, String)> = Vec::new();
    if ctx.container_sandbox.is_none() {
        env.push(("PATH".into(), ctx.path.unwrap_or(DEFAULT_PATH).into()));
    }
    env.extend([
        ("HOST".into(), ctx.hostname.into()),
        ("MESOS_TASK_ID".into(), task_id.into()),
        ("MESOS_AGENT_ID".into(), ctx.agent_id.into()),
        ("MESOS_FRAMEWORK_ID".into(), ctx.framework_id.into()),
        ("MESOS_EXECUTOR_ID".into(), ctx.executor_id.into()),
        (
            "MESOS_SANDBOX".into(),
            ctx.container_sandbox.unwrap_or(ctx.sandbox).into(),
        ),
        ("MESOS_DIRECTORY".into(), ctx.sandbox.into()),
    ]);
    let ports = task_ports(task);
    for (i, port) in ports.iter().enumerate() {
        env.push((format!("PORT{i}"), port.to_string()));
    }
    if let Some(first) = ports.first() {
        env.push(("PORT".into(), first.to_string()));
    }
    if !ports.is_empty() {
        let list: Vec<String> = ports.iter().map(u64::to_string).collect();
        env.push(("PORTS".into(), list.join(",")));
    }
    let variables = task
        .command
        .iter()
        .filter_map(|c| c.environment.as_ref())
        .flat_map(|e| e.variables.iter());
    for var in variables {
        // Secrets need a secret resolver, which does not exist yet; an
        // unset type is read as VALUE, as Mesos does for old frameworks.
        let is_value = matches!(
            VariableType::try_from(var.r#type),
            Ok(VariableType::Value | VariableType::Unknown)
        );
        if !is_value {
            tracing::warn!(task_id, name = %var.name, "ignoring a non-VALUE environment variable");
            continue;
        }
        set(
            &mut env,
            &var.name,
            var.value.as_deref().unwrap_or_default(),
        );
    }
    env
}

fn set(env: &mut Vec<(String, String)>, name: &str, value: &str) {
    match env.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = value.to_string(),
        None => env.push((name.to_string(), value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_common::resources::{ranges, scalar};
    use agora_proto::environment::Variable;
    use agora_proto::{CommandInfo, Environment, TaskId};

    fn ctx() -> EnvContext<'static> {
        EnvContext {
            agent_id: "a-S0",
            framework_id: "f-0000",
            executor_id: "t1",
            sandbox: "/sb",
            hostname: "node1",
            path: Some("/bin"),
            container_sandbox: None,
        }
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn ports_in_resource_order() {
        let task = TaskInfo {
            task_id: Some(TaskId { value: "t1".into() }),
            resources: vec![
                scalar("cpus", 1.0),
                ranges("ports", &[(31005, 31006)]),
                ranges("ports", &[(31000, 31000)]),
            ],
            ..Default::default()
        };
        let env = task_environment(&ctx(), &task);
        assert_eq!(get(&env, "PORT0"), Some("31005"));
        assert_eq!(get(&env, "PORT1"), Some("31006"));
        assert_eq!(get(&env, "PORT2"), Some("31000"));
        assert_eq!(get(&env, "PORT"), Some("31005"));
        assert_eq!(get(&env, "PORTS"), Some("31005,31006,31000"));
        assert_eq!(get(&env, "MESOS_TASK_ID"), Some("t1"));
        assert_eq!(get(&env, "MESOS_SANDBOX"), Some("/sb"));
        assert_eq!(get(&env, "HOST"), Some("node1"));
    }

    #[test]
    fn a_container_keeps_its_image_path_and_sees_the_mounted_sandbox() {
        let ctx = EnvContext {
            container_sandbox: Some("/mnt/mesos/sandbox"),
            ..ctx()
        };
        let env = task_environment(&ctx, &TaskInfo::default());
        assert_eq!(get(&env, "PATH"), None);
        assert_eq!(get(&env, "MESOS_SANDBOX"), Some("/mnt/mesos/sandbox"));
        assert_eq!(get(&env, "MESOS_DIRECTORY"), Some("/sb"));
    }

    #[test]
    fn no_port_variables_without_ports() {
        let env = task_environment(&ctx(), &TaskInfo::default());
        assert_eq!(get(&env, "PORT"), None);
        assert_eq!(get(&env, "PORTS"), None);
    }

    #[test]
    fn task_variables_override() {
        let var = |name: &str, value: &str, t: VariableType| Variable {
            name: name.into(),
            value: Some(value.into()),
            r#type: t as i32,
        };
        let task = TaskInfo {
            command: Some(CommandInfo {
                environment: Some(Environment {
                    variables: vec![
                        var("HOST", "override", VariableType::Value),
                        var("FOO", "bar", VariableType::Value),
                        var("SECRET", "x", VariableType::Secret),
                    ],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let env = task_environment(&ctx(), &task);
        assert_eq!(get(&env, "HOST"), Some("override"));
        assert_eq!(get(&env, "FOO"), Some("bar"));
        assert_eq!(get(&env, "SECRET"), None);
        assert_eq!(env.iter().filter(|(n, _)| n == "HOST").count(), 1);
    }
}
