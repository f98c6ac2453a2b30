//! Which containerizer a task needs, and what it asks of it.
//!
//! Mesos' rule: a task without a `ContainerInfo`, or with a `MESOS` one,
//! belongs to the Mesos (native) containerizer; a `DOCKER` one to the
//! Docker containerizer. [`Run::of`] reads a `TaskInfo` that way, once, into
//! a typed [`Run`], and refuses what the chosen containerizer would not
//! carry out (the native one here runs host commands: no image, no volumes,
//! no container networks), so nothing a task asks for is silently dropped.

use std::fmt;
use std::str::FromStr;

use agora_proto::container_info::Type as ContainerType;
use agora_proto::{CommandInfo, ContainerInfo, TaskInfo};

use super::env::task_ports;
use super::CommandSpec;

/// A containerizer, as Mesos' `--containerizers` names them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ContainerizerKind {
    /// The native one: host commands under the executor shim.
    Mesos,
    /// Containers through the Docker engine.
    Docker,
}

impl ContainerizerKind {
    /// The name in `--containerizers`.
    pub fn name(self) -> &'static str {
        match self {
            ContainerizerKind::Mesos => "mesos",
            ContainerizerKind::Docker => "docker",
        }
    }

    /// The `ContainerInfo.Type` this containerizer runs (advertised in the
    /// agent's `AgentInfo.containerizers`).
    pub fn container_type(self) -> ContainerType {
        match self {
            ContainerizerKind::Mesos => ContainerType::Mesos,
            ContainerizerKind::Docker => ContainerType::Docker,
        }
    }

    /// The containerizer a task belongs to.
    pub fn of(task: &TaskInfo) -> Self {
        match &task.container {
            Some(c) if c.r#type == ContainerType::Docker as i32 => ContainerizerKind::Docker,
            _ => ContainerizerKind::Mesos,
        }
    }

    /// `--containerizers`: comma-separated names, each at most once, at
    /// least one.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, ParseKindError> {
        let mut kinds = Vec::new();
        for name in text.split(',').map(str::trim) {
            let kind: ContainerizerKind = name.parse()?;
            if kinds.contains(&kind) {
                return Err(ParseKindError(format!("'{name}' is given twice")));
            }
            kinds.push(kind);
        }
        Ok(kinds)
    }

    /// `mesos,docker` for a list.
    pub fn join(kinds: &[Self]) -> String {
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
    }
}

impl fmt::Display for ContainerizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ContainerizerKind {
    type Err = ParseKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mesos" => Ok(ContainerizerKind::Mesos),
            "docker" => Ok(ContainerizerKind::Docker),
            "" => Err(ParseKindError("an empty name".into())),
            other => Err(ParseKindError(format!(
                "unknown containerizer '{other}' (known: mesos, docker)"
            ))),
        }
    }
}

/// A `--containerizers` value that is not a list of known containerizers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseKindError(pub String);

/// What a container runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Run {
    /// A command on the host (the Mesos containerizer).
    Command(CommandSpec),
    /// A Docker container (the Docker containerizer).
    Docker(Box<DockerTask>),
}

/// A `DOCKER` task as the Docker containerizer reads it: the parts of its
/// `TaskInfo` that shape the container, and whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerTask {
    /// The `ContainerInfo` (type `DOCKER`, with `docker` set).
    pub container: ContainerInfo,
    /// The task's command: Docker reads it as entrypoint and arguments.
    pub command: CommandInfo,
    /// The task's labels, put on the container.
    pub labels: Vec<(String, String)>,
    /// The task's host ports (its `ports` resources, in order): port
    /// mappings may only bind these.
    pub host_ports: Vec<u64>,
    /// The agent, framework and task the container belongs to, for its
    /// name and labels.
    pub agent_id: String,
    /// The framework.
    pub framework_id: String,
    /// The task.
    pub task_id: String,
}

/// A task its containerizer could not carry out as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// Neither a command nor (for Docker) an image to run.
    #[error("only command tasks are supported: the task has no CommandInfo (custom executors are not supported)")]
    NoCommand,
    /// A `DOCKER` container without `docker` or with an empty image.
    #[error("a DOCKER container needs ContainerInfo.docker with an image")]
    NoImage,
    /// A `MESOS` container asking for something only a container runtime does.
    #[error("the Mesos containerizer runs tasks on the host and cannot honour {0}; use a DOCKER container")]
    MesosUnsupported(&'static str),
}

/// Whether `task` runs on the host's network (a host command, or a Docker
/// container on the `HOST` network), whose address is the agent's.
pub fn on_host_network(task: &TaskInfo) -> bool {
    use agora_proto::container_info::docker_info::Network;
    match ContainerizerKind::of(task) {
        ContainerizerKind::Mesos => true,
        ContainerizerKind::Docker => task
            .container
            .as_ref()
            .and_then(|c| c.docker.as_ref())
            .is_some_and(|d| d.network == Network::Host as i32),
    }
}

impl Run {
    /// Reads `task` for its containerizer (see the module docs);
    /// `agent_id` and `framework_id` say whose the container is.
    pub fn of(task: &TaskInfo, agent_id: &str, framework_id: &str) -> Result<Run, RunError> {
        let command = task.command.clone().ok_or(RunError::NoCommand)?;
        match ContainerizerKind::of(task) {
            ContainerizerKind::Mesos => {
                if let Some(c) = &task.container {
                    if c.mesos.as_ref().is_some_and(|m| m.image.is_some()) {
                        return Err(RunError::MesosUnsupported(
                            "an image (ContainerInfo.mesos.image)",
                        ));
                    }
                    if !c.volumes.is_empty() {
                        return Err(RunError::MesosUnsupported(
                            "volumes (ContainerInfo.volumes)",
                        ));
                    }
                    if !c.network_infos.is_empty() {
                        return Err(RunError::MesosUnsupported(
                            "container networks (ContainerInfo.network_infos)",
                        ));
                    }
                    if c.docker.is_some() {
                        return Err(RunError::MesosUnsupported("ContainerInfo.docker"));
                    }
                }
                Ok(Run::Command(CommandSpec::from_command_info(&command)))
            }
            ContainerizerKind::Docker => {
                let container = task.container.clone().unwrap_or_default();
                if container.docker.as_ref().is_none_or(|d| d.image.is_empty()) {
                    return Err(RunError::NoImage);
                }
                let labels = task
                    .labels
                    .iter()
                    .flat_map(|l| l.labels.iter())
                    .map(|l| (l.key.clone(), l.value.clone().unwrap_or_default()))
                    .collect();
                Ok(Run::Docker(Box::new(DockerTask {
                    container,
                    command,
                    labels,
                    host_ports: task_ports(task),
                    agent_id: agent_id.to_string(),
                    framework_id: framework_id.to_string(),
                    task_id: task
                        .task_id
                        .as_ref()
                        .map(|t| t.value.clone())
                        .unwrap_or_default(),
                })))
            }
        }
    }

    /// The containerizer this runs under.
    pub fn kind(&self) -> ContainerizerKind {
        match self {
            Run::Command(_) => ContainerizerKind::Mesos,
            Run::Docker(_) => ContainerizerKind::Docker,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::container_info::{DockerInfo, MesosInfo};
    use agora_proto::{Image, Label, Labels, NetworkInfo, TaskId, Volume};

    fn task(container: Option<ContainerInfo>) -> TaskInfo {
        TaskInfo {
            task_id: Some(TaskId { value: "t1".into() }),
            command: Some(CommandInfo {
                value: Some("echo hi".into()),
                ..Default::default()
            }),
            container,
            labels: Some(Labels {
                labels: vec![Label {
                    key: "team".into(),
                    value: Some("web".into()),
                }],
            }),
            ..Default::default()
        }
    }

    fn docker(image: &str) -> ContainerInfo {
        ContainerInfo {
            r#type: ContainerType::Docker as i32,
            docker: Some(DockerInfo {
                image: image.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn mesos(edit: impl FnOnce(&mut ContainerInfo)) -> ContainerInfo {
        let mut c = ContainerInfo {
            r#type: ContainerType::Mesos as i32,
            ..Default::default()
        };
        edit(&mut c);
        c
    }

    #[test]
    fn the_list_flag_takes_known_names_once() {
        use ContainerizerKind::*;
        let table: &[(&str, Result<Vec<ContainerizerKind>, &str>)] = &[
            ("mesos", Ok(vec![Mesos])),
            ("mesos,docker", Ok(vec![Mesos, Docker])),
            ("docker, mesos", Ok(vec![Docker, Mesos])),
            ("docker", Ok(vec![Docker])),
            ("mesos,mesos", Err("'mesos' is given twice")),
            ("", Err("an empty name")),
            ("mesos,", Err("an empty name")),
            (
                "appc",
                Err("unknown containerizer 'appc' (known: mesos, docker)"),
            ),
        ];
        for (text, want) in table {
            let got = ContainerizerKind::parse_list(text).map_err(|e| e.0);
            assert_eq!(got, want.clone().map_err(String::from), "{text:?}");
        }
        assert_eq!(ContainerizerKind::join(&[Mesos, Docker]), "mesos,docker");
    }

    #[test]
    fn each_task_goes_to_the_containerizer_of_its_type() {
        let table: Vec<(
            &str,
            Option<ContainerInfo>,
            Result<ContainerizerKind, RunError>,
        )> = vec![
            ("no container", None, Ok(ContainerizerKind::Mesos)),
            (
                "plain MESOS",
                Some(mesos(|_| {})),
                Ok(ContainerizerKind::Mesos),
            ),
            (
                "DOCKER",
                Some(docker("busybox")),
                Ok(ContainerizerKind::Docker),
            ),
            (
                "DOCKER without image",
                Some(docker("")),
                Err(RunError::NoImage),
            ),
            (
                "DOCKER without docker info",
                Some(ContainerInfo {
                    r#type: ContainerType::Docker as i32,
                    ..Default::default()
                }),
                Err(RunError::NoImage),
            ),
            (
                "MESOS with an image",
                Some(mesos(|c| {
                    c.mesos = Some(MesosInfo {
                        image: Some(Image::default()),
                    })
                })),
                Err(RunError::MesosUnsupported(
                    "an image (ContainerInfo.mesos.image)",
                )),
            ),
            (
                "MESOS with volumes",
                Some(mesos(|c| c.volumes.push(Volume::default()))),
                Err(RunError::MesosUnsupported(
                    "volumes (ContainerInfo.volumes)",
                )),
            ),
            (
                "MESOS on a container network",
                Some(mesos(|c| c.network_infos.push(NetworkInfo::default()))),
                Err(RunError::MesosUnsupported(
                    "container networks (ContainerInfo.network_infos)",
                )),
            ),
        ];
        for (what, container, want) in table {
            let got = Run::of(&task(container), "a1", "f1").map(|r| r.kind());
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn a_docker_task_keeps_what_names_and_shapes_its_container() {
        let mut t = task(Some(docker("busybox")));
        t.resources = vec![agora_common::resources::ranges("ports", &[(31000, 31001)])];
        let Ok(Run::Docker(d)) = Run::of(&t, "a1", "f1") else {
            panic!("a docker run");
        };
        assert_eq!(d.agent_id, "a1");
        assert_eq!(d.framework_id, "f1");
        assert_eq!(d.task_id, "t1");
        assert_eq!(d.labels, vec![("team".to_string(), "web".to_string())]);
        assert_eq!(d.host_ports, vec![31000, 31001]);
        assert_eq!(d.command.value.as_deref(), Some("echo hi"));
    }

    #[test]
    fn host_commands_and_host_networked_containers_are_on_the_hosts_network() {
        use agora_proto::container_info::docker_info::Network;
        let networked = |network: Network| {
            let mut c = docker("busybox");
            c.docker.as_mut().expect("docker").network = network as i32;
            on_host_network(&task(Some(c)))
        };
        assert!(on_host_network(&task(None)));
        assert!(on_host_network(&task(Some(mesos(|_| {})))));
        assert!(networked(Network::Host));
        assert!(!networked(Network::Bridge));
        assert!(!networked(Network::User));
        assert!(!networked(Network::None));
    }

    #[test]
    fn a_task_without_a_command_is_refused() {
        let mut t = task(None);
        t.command = None;
        assert_eq!(Run::of(&t, "a", "f"), Err(RunError::NoCommand));
    }
}
