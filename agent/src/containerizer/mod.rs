//! The boundary between the agent and the processes it runs.
//!
//! The agent actor decides *what* runs and *when* it is killed; a
//! [`Containerizer`] knows *how*. [`composing::ComposingContainerizer`] is
//! the one the actor talks to: it hands each task to the containerizer of
//! its kind ([`ContainerizerKind`], Mesos' `--containerizers`): the
//! **Mesos** (native) one for tasks without a container or with a `MESOS`
//! container, **Docker** ([`docker::DockerContainerizer`]) for `DOCKER`
//! ones, and refuses a task whose containerizer this agent does not run.
//! Native tasks run under [`shim::ShimContainerizer`] (each task under an
//! executor shim process that outlives the agent; what `agora agent` uses)
//! or [`posix::PosixContainerizer`] (forked straight from the agent, for
//! agents embedded in a test binary or a program that is not `agora`: its
//! tasks die with the agent and are not recovered).
//!
//! A container's life through the trait: [`Containerizer::launch`] returns
//! once the process runs (or [`Containerizer::recover`] finds it again after
//! an agent restart); [`Containerizer::wait`] resolves once it has ended
//! *and* nothing it started survives; [`Containerizer::kill`] sends SIGTERM
//! to all of it and SIGKILL after the grace period. The actor calls `wait`
//! exactly once per container.

pub mod composing;
pub mod docker;
pub mod env;
mod kind;
pub mod posix;
pub mod shim;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::Signal;

pub use kind::{on_host_network, ContainerizerKind, ParseKindError, Run, RunError};

/// What to run, fully resolved by the agent (sandbox made, env built).
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The container's id (a UUID), unique on this agent.
    pub container_id: String,
    /// The sandbox: working directory, home of `stdout` and `stderr`.
    pub sandbox: PathBuf,
    /// What runs: a host command, or a Docker container.
    pub run: Run,
    /// The complete environment (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// `CommandInfo.uris`, fetched into the sandbox before the command
    /// starts (a failed fetch is a failed launch).
    pub uris: Vec<agora_proto::command_info::Uri>,
    /// The task's resources, which the isolation turns into limits.
    pub resources: ContainerResources,
    /// The task's health check and general check, run by its supervisor.
    pub checks: crate::executor::health::Checks,
}

/// The resources a container is limited to (from the task's `cpus`, `mem`
/// and `disk`); `None` where the task asked for none.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerResources {
    /// CPUs.
    pub cpus: Option<f64>,
    /// Memory in bytes.
    pub mem_bytes: Option<u64>,
    /// Disk in bytes.
    pub disk_bytes: Option<u64>,
}

impl ContainerResources {
    /// The scalar `cpus`, `mem` (MB) and `disk` (MB) of a task's resources.
    pub fn of(resources: &[agora_proto::Resource]) -> Self {
        let scalar = |name: &str| {
            let values: Vec<f64> = resources
                .iter()
                .filter(|r| r.name == name)
                .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
                .collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>())
        };
        let bytes = |mb: f64| (mb * 1024.0 * 1024.0).round() as u64;
        ContainerResources {
            cpus: scalar("cpus"),
            mem_bytes: scalar("mem").map(bytes),
            disk_bytes: scalar("disk").map(bytes),
        }
    }
}

/// A command as Mesos' `CommandInfo` describes it.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandSpec {
    /// `/bin/sh -c <script>`.
    Shell(String),
    /// `program` exec'd directly; `argv[0]` is `argv0` when given, and
    /// `args` follow it.
    Exec {
        /// Path or name (looked up in `PATH`) of the program.
        program: String,
        /// What the program sees as `argv[0]`.
        argv0: Option<String>,
        /// `argv[1..]`.
        args: Vec<String>,
    },
}

impl CommandSpec {
    /// The process to start, without environment or stdio: `/bin/sh -c
    /// <script>`, or the program with its argv.
    pub fn to_command(&self) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        match self {
            CommandSpec::Shell(script) => {
                let mut c = std::process::Command::new("/bin/sh");
                c.arg("-c").arg(script);
                c
            }
            CommandSpec::Exec {
                program,
                argv0,
                args,
            } => {
                let mut c = std::process::Command::new(program);
                if let Some(argv0) = argv0 {
                    c.arg0(argv0);
                }
                c.args(args);
                c
            }
        }
    }

    /// The program that is executed, for error messages.
    pub fn program(&self) -> &str {
        match self {
            CommandSpec::Shell(_) => "/bin/sh",
            CommandSpec::Exec { program, .. } => program,
        }
    }

    /// Mesos' reading of a `CommandInfo`: shell unless `shell` is false, in
    /// which case `arguments[0]` is argv0 and the rest the arguments.
    pub fn from_command_info(info: &agora_proto::CommandInfo) -> Self {
        let value = info.value.clone().unwrap_or_default();
        if info.shell.unwrap_or(true) {
            return CommandSpec::Shell(value);
        }
        let mut arguments = info.arguments.iter().cloned();
        CommandSpec::Exec {
            program: value,
            argv0: arguments.next(),
            args: arguments.collect(),
        }
    }
}

/// A running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// The pid of the container's main process (reported as `executor_pid`).
    pub pid: i32,
    /// The container's own addresses, for containers on a network of their
    /// own (Docker's bridge or a user network); empty for those on the
    /// host's network, whose address is the agent's.
    pub networks: Vec<ContainerNetwork>,
}

impl Launched {
    /// A container on the host's network.
    pub fn on_host(pid: i32) -> Self {
        Launched {
            pid,
            networks: Vec::new(),
        }
    }
}

/// A container's address on one network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerNetwork {
    /// The network's name (`bridge`, or a user network's).
    pub name: String,
    /// The container's address on it.
    pub ip: IpAddr,
}

/// How a container's main process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it.
    Signaled(Signal),
    /// The isolation killed it for exceeding a limit.
    Limited(Limitation),
    /// Its supervisor killed it for failing its health checks (the cause).
    Unhealthy(String),
    /// Nobody knows: the container's supervisor vanished without recording
    /// the outcome (e.g. the shim was SIGKILLed while the agent was down).
    Unknown,
}

/// A resource limit a container was killed for exceeding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limitation {
    /// Which resource.
    pub resource: LimitedResource,
    /// What happened, naming the limit ("Memory limit exceeded: 32 MB").
    pub message: String,
}

/// The resources whose limits are enforced by killing the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitedResource {
    /// `mem`: the cgroup's OOM killer struck.
    Memory,
    /// `disk`: the sandbox grew past the task's `disk`.
    Disk,
}

/// A container that could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The sandbox's `stdout`/`stderr` could not be opened.
    #[error("cannot open {name} in the sandbox: {source}")]
    Output {
        /// `stdout` or `stderr`.
        name: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The process could not be spawned (e.g. the program does not exist).
    #[error("cannot execute '{program}': {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The executor shim could not be started or could not start the task.
    #[error("{0}")]
    Shim(String),
    /// A URI could not be fetched into the sandbox.
    #[error(transparent)]
    Fetch(#[from] crate::fetcher::FetchError),
    /// The task needs a containerizer this agent does not run.
    #[error("{0}")]
    Unsupported(String),
    /// The task's container cannot be made as it is described.
    #[error("{0}")]
    Invalid(String),
}

/// A container of a previous agent run that cannot be found again.
#[derive(Debug, thiserror::Error)]
#[error("cannot recover container '{container_id}': {reason}")]
pub struct RecoverError {
    /// The container.
    pub container_id: String,
    /// Why.
    pub reason: String,
}

/// A container the containerizer does not know (any more).
#[derive(Debug, thiserror::Error)]
#[error("unknown container '{0}'")]
pub struct UnknownContainer(pub String);

/// Runs, signals and reaps containers.
#[async_trait]
pub trait Containerizer: Send + Sync + 'static {
    /// Starts the container; returns once its main process runs.
    async fn launch(&self, spec: LaunchSpec) -> Result<Launched, LaunchError>;

    /// Finds again a container of `kind` that a previous run of the agent
    /// launched in `sandbox`; afterwards it is known as if just launched
    /// (its `wait` may resolve at once, when it ended while the agent was
    /// away).
    async fn recover(
        &self,
        container_id: &str,
        sandbox: &Path,
        kind: ContainerizerKind,
    ) -> Result<Launched, RecoverError>;

    /// Resolves once the container's main process has ended and every process
    /// it started is gone; forgets the container afterwards.
    async fn wait(&self, container_id: &str) -> Result<Termination, UnknownContainer>;

    /// Sends SIGTERM to every process of the container, and SIGKILL to
    /// every one left after `grace` (at once when `grace` is zero). The
    /// containerizer enforces the grace period itself, so a kill completes
    /// even if the agent dies meanwhile (with the shim).
    async fn kill(&self, container_id: &str, grace: Duration) -> Result<(), UnknownContainer>;

    /// Destroys what is left of this agent's containers other than `known`
    /// (e.g. cgroups whose shim is gone). Called once at start, after the
    /// recovery decision; nothing to do by default.
    async fn clean_up_orphans(&self, known: &[String]) {
        let _ = known;
    }

    /// The container's health and general check as they change, when its
    /// task has any and this containerizer runs them (`None` otherwise).
    fn health(
        &self,
        container_id: &str,
    ) -> Option<tokio::sync::watch::Receiver<crate::executor::protocol::HealthStatus>> {
        let _ = container_id;
        None
    }

    /// The kinds of task this containerizer runs (the agent advertises
    /// them in its `AgentInfo.containerizers`).
    fn kinds(&self) -> Vec<ContainerizerKind> {
        vec![ContainerizerKind::Mesos]
    }

    /// The container's resource usage, where its isolation measures it
    /// (cgroups); `None` otherwise.
    async fn usage(&self, container_id: &str) -> Option<crate::isolation::cgroups::Stats> {
        let _ = container_id;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::CommandInfo;

    #[test]
    fn command_info_follows_mesos() {
        let shell = CommandInfo {
            value: Some("echo hi".into()),
            ..Default::default()
        };
        assert_eq!(
            CommandSpec::from_command_info(&shell),
            CommandSpec::Shell("echo hi".into())
        );
        let exec = CommandInfo {
            value: Some("/bin/echo".into()),
            shell: Some(false),
            arguments: vec!["echo".into(), "a".into(), "b".into()],
            ..Default::default()
        };
        assert_eq!(
            CommandSpec::from_command_info(&exec),
            CommandSpec::Exec {
                program: "/bin/echo".into(),
                argv0: Some("echo".into()),
                args: vec!["a".into(), "b".into()],
            }
        );
    }
}
