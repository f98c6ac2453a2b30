//! From a `DOCKER` task to the engine's create body, with Mesos' semantics.
//! Pure: [`build`] reads the task and the agent's settings and returns the
//! [`DockerRun`] the container's shim carries out, or why the task cannot
//! run as given.
//!
//! * **Name and labels.** `mesos-<agent id>.<container id>`, as Mesos names
//!   its containers, plus labels with the container, agent, framework and
//!   task ids and this agent's work dir, so that a restarted agent finds its
//!   own containers (several agents on one host each find only theirs).
//! * **Command.** `shell` (the default) runs `<value>` through `/bin/sh -c`
//!   (entrypoint `/bin/sh`, arguments `-c <value>`); otherwise `value` (if
//!   any) and `arguments` are the arguments to the image's entrypoint; with
//!   neither, the image's own entrypoint and command run.
//! * **Sandbox.** Bind-mounted at `/mnt/mesos/sandbox` (`MESOS_SANDBOX`
//!   inside). Volumes: relative host paths are in the sandbox, relative
//!   container paths under `/mnt/mesos/sandbox`, no host path makes an
//!   anonymous volume.
//! * **Networks.** `HOST`, `BRIDGE`, `NONE`, or `USER` with the one network
//!   named in `ContainerInfo.network_infos`; port mappings (bridge and user
//!   networks only) bind host ports the task holds as `ports` resources.
//! * **Limits.** `cpu_shares = 1024 × cpus` (at least 2), `memory = mem`
//!   (at least 32 MB, Mesos' minimum) with no swap beyond it, and with
//!   `--cgroups-enable-cfs` a CFS quota of `cpus`, as Mesos does.
//! * **Parameters** last, through [`super::parameters`].

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use agora_proto::container_info::docker_info::Network;
use agora_proto::volume::Mode;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};

use super::parameters::{self, ParameterError};
use crate::containerizer::kind::DockerTask;
use crate::containerizer::ContainerResources;

/// Where the sandbox appears inside a container (Mesos' `--sandbox_directory`).
pub const SANDBOX_IN_CONTAINER: &str = "/mnt/mesos/sandbox";
/// Label: the agent's work dir, telling this agent's containers from others'.
pub const LABEL_WORK_DIR: &str = "agora.work_dir";
/// Label: the container id (the sandbox's `runs/<id>`).
pub const LABEL_CONTAINER_ID: &str = "agora.container_id";
/// Label: the agent id.
pub const LABEL_AGENT_ID: &str = "agora.agent_id";
/// Label: the framework id.
pub const LABEL_FRAMEWORK_ID: &str = "agora.framework_id";
/// Label: the task id.
pub const LABEL_TASK_ID: &str = "agora.task_id";

/// Mesos' floor for a container's memory limit.
const MIN_MEMORY_BYTES: u64 = 32 * 1024 * 1024;
/// Mesos' CPU shares per CPU, and their floor.
const CPU_SHARES_PER_CPU: f64 = 1024.0;
const MIN_CPU_SHARES: i64 = 2;
/// The CFS period, and the smallest quota the kernel takes.
const CFS_PERIOD_US: i64 = 100_000;
const MIN_CFS_QUOTA_US: i64 = 1_000;

/// The engine's API version the shims speak (negotiated once by the agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApiVersion {
    /// Major (1).
    pub major: usize,
    /// Minor (41 for Docker 20.10).
    pub minor: usize,
}

/// What every Docker container of this agent shares.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerSettings {
    /// The engine's socket (`--docker-socket`).
    pub socket: PathBuf,
    /// The API version to speak.
    pub api_version: ApiVersion,
    /// The agent's work dir, as put in [`LABEL_WORK_DIR`].
    pub work_dir: String,
    /// `--cgroups-enable-cfs`.
    pub cfs_quota: bool,
}

/// One container as its shim creates and supervises it (in `shim.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DockerRun {
    /// The engine's socket.
    pub socket: PathBuf,
    /// The API version to speak.
    pub api_version: ApiVersion,
    /// The container's name.
    pub name: String,
    /// The image.
    pub image: String,
    /// Pull the image even when the engine has it.
    pub force_pull: bool,
    /// The engine's create body, complete.
    pub body: ContainerCreateBody,
}

/// The per-launch facts beyond the task.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The container id.
    pub container_id: &'a str,
    /// The sandbox on the host.
    pub sandbox: &'a Path,
    /// The task's environment (built for a container: no host `PATH`).
    pub env: &'a [(String, String)],
    /// The task's resources.
    pub resources: &'a ContainerResources,
}

/// Why a `DOCKER` task cannot run as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The network settings do not fit together.
    #[error("{0}")]
    Network(String),
    /// A port mapping is unusable.
    #[error("{0}")]
    PortMapping(String),
    /// A volume is unusable.
    #[error("volume '{container_path}': {problem}")]
    Volume {
        /// The volume's container path.
        container_path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A `docker run` parameter.
    #[error(transparent)]
    Parameter(#[from] ParameterError),
}

/// `mesos-<agent id>.<container id>`.
pub fn container_name(agent_id: &str, container_id: &str) -> String {
    format!("mesos-{agent_id}.{container_id}")
}

/// The container of `task` (see the module docs).
pub fn build(
    task: &DockerTask,
    launch: &Launch<'_>,
    settings: &DockerSettings,
) -> Result<DockerRun, SpecError> {
    let docker = task.container.docker.clone().unwrap_or_default();
    let name = container_name(&task.agent_id, launch.container_id);
    let mut body = ContainerCreateBody {
        image: Some(docker.image.clone()),
        ..Default::default()
    };

    let mut env: Vec<String> = launch.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("MESOS_CONTAINER_NAME={name}"));
    body.env = Some(env);

    let command = &task.command;
    if command.shell.unwrap_or(true) {
        // As Mesos runs it (`--entrypoint /bin/sh ... -c <value>`), so that
        // an `entrypoint` parameter replaces the shell and keeps `-c`.
        body.entrypoint = Some(vec!["/bin/sh".into()]);
        body.cmd = Some(vec!["-c".into(), command.value.clone().unwrap_or_default()]);
    } else {
        let args: Vec<String> = command
            .value
            .iter()
            .filter(|v| !v.is_empty())
            .chain(command.arguments.iter())
            .cloned()
            .collect();
        if !args.is_empty() {
            body.cmd = Some(args);
        }
    }
    body.user = command.user.clone().filter(|u| !u.is_empty());

    let mut labels: HashMap<String, String> = task.labels.iter().cloned().collect();
    for (key, value) in [
        (LABEL_WORK_DIR, settings.work_dir.as_str()),
        (LABEL_CONTAINER_ID, launch.container_id),
        (LABEL_AGENT_ID, task.agent_id.as_str()),
        (LABEL_FRAMEWORK_ID, task.framework_id.as_str()),
        (LABEL_TASK_ID, task.task_id.as_str()),
    ] {
        labels.insert(key.to_string(), value.to_string());
    }
    body.labels = Some(labels);

    let mut host = HostConfig {
        privileged: docker.privileged,
        ..Default::default()
    };
    let mut binds = vec![format!(
        "{}:{SANDBOX_IN_CONTAINER}:rw",
        checked_path(launch.sandbox, "the sandbox")?
    )];
    let mut anonymous = Vec::new();
    for volume in &task.container.volumes {
        match bind(volume, launch.sandbox)? {
            Some(b) => binds.push(b),
            None => anonymous.push(container_path(&volume.container_path)),
        }
    }
    host.binds = Some(binds);
    if !anonymous.is_empty() {
        body.volumes = Some(anonymous);
    }

    let network = Network::try_from(docker.network).unwrap_or(Network::Host);
    host.network_mode = Some(match network {
        Network::Host => "host".to_string(),
        Network::Bridge => "bridge".to_string(),
        Network::None => "none".to_string(),
        Network::User => user_network(task)?,
    });
    if let Some(hostname) = task.container.hostname.clone().filter(|h| !h.is_empty()) {
        if network == Network::Host {
            return Err(SpecError::Network(
                "ContainerInfo.hostname cannot be set on the HOST network (the container has the agent's)".into(),
            ));
        }
        body.hostname = Some(hostname);
    }
    if !docker.port_mappings.is_empty() {
        if matches!(network, Network::Host | Network::None) {
            return Err(SpecError::PortMapping(format!(
                "port mappings need the BRIDGE or a USER network, not {}",
                network.as_str_name()
            )));
        }
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for pm in &docker.port_mappings {
            if !task.host_ports.contains(&u64::from(pm.host_port)) {
                return Err(SpecError::PortMapping(format!(
                    "host port {} is not among the task's port resources",
                    pm.host_port
                )));
            }
            if pm.container_port == 0 || pm.container_port > u32::from(u16::MAX) {
                return Err(SpecError::PortMapping(format!(
                    "container port {} is not a port",
                    pm.container_port
                )));
            }
            let protocol = pm.protocol.as_deref().unwrap_or("tcp").to_ascii_lowercase();
            if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
                return Err(SpecError::PortMapping(format!(
                    "protocol '{protocol}' of container port {} is not tcp, udp or sctp",
                    pm.container_port
                )));
            }
            bindings
                .entry(format!("{}/{protocol}", pm.container_port))
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: None,
                    host_port: Some(pm.host_port.to_string()),
                });
        }
        let mut exposed: Vec<String> = bindings.keys().cloned().collect();
        exposed.sort();
        body.exposed_ports = Some(exposed);
        host.port_bindings = Some(bindings);
    }

    let resources = launch.resources;
    if let Some(cpus) = resources.cpus {
        host.cpu_shares = Some(((cpus * CPU_SHARES_PER_CPU) as i64).max(MIN_CPU_SHARES));
        if settings.cfs_quota {
            host.cpu_period = Some(CFS_PERIOD_US);
            host.cpu_quota = Some(((cpus * CFS_PERIOD_US as f64) as i64).max(MIN_CFS_QUOTA_US));
        }
    }
    if let Some(mem) = resources.mem_bytes {
        let limit = i64::try_from(mem.max(MIN_MEMORY_BYTES)).unwrap_or(i64::MAX);
        host.memory = Some(limit);
        // No swap beyond the limit: the limit is the task's `mem`, as the
        // native containerizer's memory cgroup enforces it.
        host.memory_swap = Some(limit);
    }
    body.host_config = Some(host);

    let params: Vec<(String, String)> = docker
        .parameters
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    parameters::apply(&params, &mut body)?;

    Ok(DockerRun {
        socket: settings.socket.clone(),
        api_version: settings.api_version,
        name,
        image: docker.image,
        force_pull: docker.force_pull_image.unwrap_or(false),
        body,
    })
}

/// The one network of a `USER`-networked container.
fn user_network(task: &DockerTask) -> Result<String, SpecError> {
    let names: Vec<&str> = task
        .container
        .network_infos
        .iter()
        .filter_map(|n| n.name.as_deref())
        .filter(|n| !n.is_empty())
        .collect();
    match names.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(SpecError::Network(
            "the USER network needs a network name in ContainerInfo.network_infos".into(),
        )),
        many => Err(SpecError::Network(format!(
            "a Docker container joins one USER network, not {} ({})",
            many.len(),
            many.join(", ")
        ))),
    }
}

/// A path as `Binds` can carry it (`:` separates its fields).
fn checked_path(path: &Path, what: &str) -> Result<String, SpecError> {
    let text = path.display().to_string();
    if text.contains(':') || text.contains(',') {
        return Err(SpecError::Volume {
            container_path: what.to_string(),
            problem: format!("'{text}' contains ':' or ','"),
        });
    }
    Ok(text)
}

/// A container path: relative ones are under the sandbox's mount point.
fn container_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{SANDBOX_IN_CONTAINER}/{path}")
    }
}

/// `host:container:mode` for a host volume, `None` for an anonymous one.
fn bind(volume: &agora_proto::Volume, sandbox: &Path) -> Result<Option<String>, SpecError> {
    let problem = |problem: String| SpecError::Volume {
        container_path: volume.container_path.clone(),
        problem,
    };
    if volume.container_path.is_empty() {
        return Err(problem("the container path is empty".into()));
    }
    let target = container_path(&volume.container_path);
    if target.contains(':') || target.contains(',') {
        return Err(problem("the container path contains ':' or ','".into()));
    }
    let Some(host_path) = volume.host_path.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let source = Path::new(host_path);
    let source = if source.is_absolute() {
        source.to_path_buf()
    } else {
        if source
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(problem(format!(
                "the relative host path '{host_path}' leaves the sandbox"
            )));
        }
        sandbox.join(source)
    };
    let source = checked_path(&source, &volume.container_path)?;
    let mode = match Mode::try_from(volume.mode) {
        Ok(Mode::Ro) => "ro",
        _ => "rw",
    };
    Ok(Some(format!("{source}:{target}:{mode}")))
}

#[cfg(test)]
mod tests;
