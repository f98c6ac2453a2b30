//! A small builder for command tasks, so a framework does not have to
//! assemble `TaskInfo` field by field; [`TaskBuilder::container`] runs one in
//! a container (a `DOCKER` one needs an agent that advertises the Docker
//! containerizer in `Offer.containerizers`).

use agora_common::resources::{self, Resources};
use agora_proto::command_info;
use agora_proto::environment::{variable, Variable};
use agora_proto::{
    CommandInfo, ContainerInfo, DurationInfo, Environment, KillPolicy, Labels, Offer, TaskId,
    TaskInfo,
};

/// Builds a `TaskInfo` running a shell command.
#[derive(Debug, Clone)]
pub struct TaskBuilder {
    task_id: String,
    name: String,
    command: String,
    resources: Resources,
    env: Vec<(String, String)>,
    grace_period: Option<std::time::Duration>,
    labels: Option<Labels>,
    uris: Vec<command_info::Uri>,
    container: Option<ContainerInfo>,
}

impl TaskBuilder {
    /// A task with id `task_id` (also its name) running `command` through `/bin/sh -c`.
    pub fn new(task_id: impl Into<String>, command: impl Into<String>) -> Self {
        let task_id = task_id.into();
        TaskBuilder {
            name: task_id.clone(),
            task_id,
            command: command.into(),
            resources: Resources::new(),
            env: Vec::new(),
            grace_period: None,
            labels: None,
            uris: Vec::new(),
            container: None,
        }
    }

    /// The task's name (defaults to its id).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// CPUs to use.
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.resources.add_resource(resources::scalar("cpus", cpus));
        self
    }

    /// Memory in MB.
    pub fn mem(mut self, mem: f64) -> Self {
        self.resources.add_resource(resources::scalar("mem", mem));
        self
    }

    /// Disk in MB.
    pub fn disk(mut self, disk: f64) -> Self {
        self.resources.add_resource(resources::scalar("disk", disk));
        self
    }

    /// Any resources, e.g. ports taken from the offer.
    pub fn resources(mut self, extra: &Resources) -> Self {
        self.resources.add(extra);
        self
    }

    /// An environment variable for the command.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// How long the agent waits between SIGTERM and SIGKILL when killing.
    pub fn grace_period(mut self, grace: std::time::Duration) -> Self {
        self.grace_period = Some(grace);
        self
    }

    /// Labels attached to the task.
    pub fn labels(mut self, labels: Labels) -> Self {
        self.labels = Some(labels);
        self
    }

    /// A URI the agent fetches into the sandbox before starting the command.
    pub fn uri(mut self, uri: command_info::Uri) -> Self {
        self.uris.push(uri);
        self
    }

    /// Runs the command in `container` (e.g. `DOCKER` with an image: the
    /// command then runs through the image's `/bin/sh -c`).
    pub fn container(mut self, container: ContainerInfo) -> Self {
        self.container = Some(container);
        self
    }

    /// Runs the command in a `DOCKER` container of `image` on the host's
    /// network: [`TaskBuilder::container`] with the simplest Docker
    /// `ContainerInfo`.
    pub fn docker_image(self, image: impl Into<String>) -> Self {
        use agora_proto::container_info::{DockerInfo, Type};
        self.container(ContainerInfo {
            r#type: Type::Docker as i32,
            docker: Some(DockerInfo {
                image: image.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// The `TaskInfo` for launching on `offer`'s agent, its resources
    /// allocated to the offer's role.
    pub fn build(self, offer: &Offer) -> TaskInfo {
        let role = offer
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.clone())
            .unwrap_or_else(|| resources::UNRESERVED.to_string());
        let environment = (!self.env.is_empty()).then(|| Environment {
            variables: self
                .env
                .into_iter()
                .map(|(name, value)| Variable {
                    name,
                    r#type: variable::Type::Value as i32,
                    value: Some(value),
                })
                .collect(),
        });
        TaskInfo {
            name: self.name,
            task_id: Some(TaskId {
                value: self.task_id,
            }),
            agent_id: offer.agent_id.clone(),
            resources: self.resources.allocated_to(&role),
            command: Some(CommandInfo {
                shell: Some(true),
                value: Some(self.command),
                environment,
                uris: self.uris,
                ..Default::default()
            }),
            kill_policy: self.grace_period.map(|g| KillPolicy {
                grace_period: Some(DurationInfo {
                    nanoseconds: g.as_nanos() as i64,
                }),
            }),
            labels: self.labels,
            container: self.container,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::resource::AllocationInfo;
    use agora_proto::AgentId;

    #[test]
    fn builds_a_shell_task_on_the_offers_agent_and_role() {
        let offer = Offer {
            agent_id: Some(AgentId { value: "a1".into() }),
            allocation_info: Some(AllocationInfo {
                role: Some("web".into()),
            }),
            ..Default::default()
        };
        let task = TaskBuilder::new("t1", "echo hi")
            .cpus(0.5)
            .mem(64.0)
            .env("K", "V")
            .build(&offer);
        assert_eq!(task.agent_id.as_ref().map(|a| a.value.as_str()), Some("a1"));
        assert_eq!(task.name, "t1");
        let res = Resources::from_vec(task.resources.clone());
        assert_eq!((res.scalar("cpus"), res.scalar("mem")), (0.5, 64.0));
        assert!(task.resources.iter().all(|r| r
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.as_deref())
            == Some("web")));
        let cmd = task.command.expect("command");
        assert_eq!(cmd.value.as_deref(), Some("echo hi"));
        assert_eq!(cmd.environment.map(|e| e.variables.len()), Some(1));
    }
}
