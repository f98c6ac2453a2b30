//! Launch validation, as Mesos' master does it: every problem with a task
//! becomes a TASK_ERROR (bad definition) for that task alone, never a crash.

use agora_common::resources::Resources;
use agora_proto::{value, Resource, TaskInfo};

/// What a task is checked against.
pub struct LaunchContext<'a> {
    /// The agent the accepted offers are on.
    pub agent_id: &'a str,
    /// What is left of the offered resources.
    pub available: &'a Resources,
    /// Whether the framework already has a task with this id.
    pub is_duplicate: &'a dyn Fn(&str) -> bool,
}

/// Mesos' rules for ids: not empty, not `.`/`..`, no `/`, no whitespace or control characters.
pub fn validate_id(kind: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{kind} ID must not be empty"));
    }
    if id == "." || id == ".." {
        return Err(format!("{kind} ID '{id}' is disallowed"));
    }
    if id
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{kind} ID '{id}' contains invalid characters ('/', '\\', whitespace or control)"
        ));
    }
    Ok(())
}

fn validate_resource(r: &Resource) -> Result<(), String> {
    if r.name.is_empty() {
        return Err("Resource name must not be empty".into());
    }
    match value::Type::try_from(r.r#type) {
        Ok(value::Type::Scalar) => match r.scalar {
            Some(s) if s.value.is_finite() && s.value >= 0.0 => Ok(()),
            _ => Err(format!(
                "Resource '{}' must have a finite, non-negative scalar value",
                r.name
            )),
        },
        Ok(value::Type::Ranges) => match &r.ranges {
            Some(rs) if rs.range.iter().all(|x| x.begin <= x.end) => Ok(()),
            _ => Err(format!("Resource '{}' has invalid ranges", r.name)),
        },
        Ok(value::Type::Set) if r.set.is_some() => Ok(()),
        _ => Err(format!("Resource '{}' has an invalid type", r.name)),
    }
}

/// Checks one task of a LAUNCH operation. The message says what is wrong,
/// in Mesos' words where Mesos has them.
pub fn validate_task(task: &TaskInfo, ctx: &LaunchContext<'_>) -> Result<(), String> {
    let task_id = task
        .task_id
        .as_ref()
        .map(|t| t.value.as_str())
        .unwrap_or("");
    validate_id("Task", task_id)?;
    if (ctx.is_duplicate)(task_id) {
        return Err(format!("Task has duplicate ID: {task_id}"));
    }
    let agent = task
        .agent_id
        .as_ref()
        .map(|a| a.value.as_str())
        .unwrap_or("");
    if agent != ctx.agent_id {
        return Err(format!(
            "Task uses agent ID '{agent}' which does not match '{}' in the offers",
            ctx.agent_id
        ));
    }
    match (&task.command, &task.executor) {
        (Some(_), Some(_)) | (None, None) => return Err(
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
                .into(),
        ),
        _ => {}
    }
    if let Some(command) = &task.command {
        let shell = command.shell.unwrap_or(true);
        if shell && command.value.as_deref().is_none_or(str::is_empty) {
            return Err("Shell command of task is empty".into());
        }
        // A Docker container without a program runs its image's entrypoint.
        let runs_image = task.container.as_ref().is_some_and(|c| {
            c.r#type == agora_proto::container_info::Type::Docker as i32 && c.docker.is_some()
        });
        if !shell && !runs_image && command.value.as_deref().is_none_or(str::is_empty) {
            return Err(
                "'CommandInfo.value' (the program) must be set when 'shell' is false".into(),
            );
        }
    }
    for r in &task.resources {
        validate_resource(r)?;
    }
    let resources = Resources::from_vec(task.resources.iter().cloned());
    if resources.is_empty() {
        return Err("Task uses no resources".into());
    }
    if !ctx.available.contains(&resources) {
        return Err(format!(
            "Task uses more resources {resources} than available {}",
            ctx.available
        ));
    }
    if let Some(grace) = task
        .kill_policy
        .as_ref()
        .and_then(|k| k.grace_period.as_ref())
    {
        if grace.nanoseconds < 0 {
            return Err("Task's 'kill_policy.grace_period' must be non-negative".into());
        }
    }
    if let Some(check) = &task.health_check {
        for (name, v) in [
            ("delay_seconds", check.delay_seconds),
            ("interval_seconds", check.interval_seconds),
            ("timeout_seconds", check.timeout_seconds),
            ("grace_period_seconds", check.grace_period_seconds),
        ] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(format!("Task's health check '{name}' must be non-negative"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{AgentId, CommandInfo, DurationInfo, ExecutorInfo, KillPolicy, TaskId};

    fn task(id: &str) -> TaskInfo {
        TaskInfo {
            name: id.into(),
            task_id: Some(TaskId { value: id.into() }),
            agent_id: Some(AgentId { value: "a1".into() }),
            resources: Resources::parse("cpus:1;mem:32").expect("valid").into_vec(),
            command: Some(CommandInfo {
                value: Some("true".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn check(t: &TaskInfo) -> Result<(), String> {
        let available = Resources::parse("cpus:2;mem:64").expect("valid");
        let dup = |id: &str| id == "taken";
        validate_task(
            t,
            &LaunchContext {
                agent_id: "a1",
                available: &available,
                is_duplicate: &dup,
            },
        )
    }

    #[test]
    fn accepts_a_good_task() {
        assert_eq!(check(&task("t1")), Ok(()));
    }

    #[test]
    fn a_docker_task_may_run_its_image_entrypoint() {
        let mut t = task("t1");
        t.command = Some(CommandInfo {
            shell: Some(false),
            ..Default::default()
        });
        assert!(check(&t).is_err(), "no program and no image");
        t.container = Some(agora_proto::ContainerInfo {
            r#type: agora_proto::container_info::Type::Docker as i32,
            docker: Some(agora_proto::container_info::DockerInfo {
                image: "busybox".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(check(&t), Ok(()));
    }

    #[test]
    fn each_bad_definition_is_named() {
        let cases: Vec<(TaskInfo, &str)> = vec![
            (task(""), "must not be empty"),
            (task("a/b"), "invalid characters"),
            (task("taken"), "duplicate ID"),
            (
                TaskInfo {
                    agent_id: Some(AgentId {
                        value: "other".into(),
                    }),
                    ..task("t")
                },
                "does not match",
            ),
            (
                TaskInfo {
                    command: None,
                    ..task("t")
                },
                "at least one",
            ),
            (
                TaskInfo {
                    executor: Some(ExecutorInfo::default()),
                    ..task("t")
                },
                "but not both",
            ),
            (
                TaskInfo {
                    resources: Resources::parse("cpus:3").expect("valid").into_vec(),
                    ..task("t")
                },
                "more resources",
            ),
            (
                TaskInfo {
                    resources: vec![],
                    ..task("t")
                },
                "no resources",
            ),
            (
                TaskInfo {
                    command: Some(CommandInfo::default()),
                    ..task("t")
                },
                "empty",
            ),
            (
                TaskInfo {
                    kill_policy: Some(KillPolicy {
                        grace_period: Some(DurationInfo { nanoseconds: -1 }),
                    }),
                    ..task("t")
                },
                "grace_period",
            ),
        ];
        for (t, expected) in cases {
            let err = check(&t).expect_err(expected);
            assert!(
                err.contains(expected),
                "'{err}' should contain '{expected}'"
            );
        }
    }

    #[test]
    fn negative_scalars_are_refused() {
        let mut t = task("t");
        t.resources[0].scalar = Some(agora_proto::value::Scalar { value: -1.0 });
        assert!(check(&t).expect_err("negative").contains("non-negative"));
    }
}
