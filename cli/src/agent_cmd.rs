//! `agora agent`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use agora_agent::config::{ContainerizerKind, RecoverMode};
use agora_agent::AgentConfig;
use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::flags::duration;

/// Flags of `agora agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The master: `HOST:PORT`, or `zk://host:2181/agora` to follow the leader.
    #[arg(long, env = "AGORA_MASTER")]
    pub master: String,
    /// Address the agent's HTTP endpoint binds to.
    #[arg(long, default_value = "0.0.0.0", env = "AGORA_IP")]
    pub ip: IpAddr,
    /// HTTP port.
    #[arg(long, default_value_t = 5051, env = "AGORA_PORT")]
    pub port: u16,
    /// Hostname reported to the master (default: the system hostname).
    #[arg(long, env = "AGORA_HOSTNAME")]
    pub hostname: Option<String>,
    /// Root of the task sandboxes.
    #[arg(long, default_value = "/var/lib/agora/agent", env = "AGORA_WORK_DIR")]
    pub work_dir: PathBuf,
    /// Resources in Mesos syntax, e.g. `cpus:4;mem:8192;disk:20000;ports:[31000-32000]`
    /// (what is left out is auto-detected).
    #[arg(long, env = "AGORA_RESOURCES")]
    pub resources: Option<String>,
    /// Attributes in Mesos syntax, e.g. `rack:r1;zone:a`.
    #[arg(long, env = "AGORA_ATTRIBUTES")]
    pub attributes: Option<String>,
    /// First retry interval of an unacknowledged status update.
    #[arg(long, default_value = "10secs", value_parser = duration, env = "AGORA_STATUS_UPDATE_RETRY_INTERVAL")]
    pub status_update_retry_interval: Duration,
    /// Grace period between SIGTERM and SIGKILL when a task has no kill policy.
    #[arg(long, default_value = "3secs", value_parser = duration, env = "AGORA_EXECUTOR_SHUTDOWN_GRACE_PERIOD")]
    pub executor_shutdown_grace_period: Duration,
    /// Reconnect when the master has not pinged for this long.
    #[arg(long, default_value = "75secs", value_parser = duration, env = "AGORA_MASTER_PING_TIMEOUT")]
    pub master_ping_timeout: Duration,
    /// What a restarted agent does with the tasks of its previous run:
    /// `reconnect` to them, or `cleanup` (kill them and start as a new agent).
    #[arg(long, value_enum, default_value = "reconnect", env = "AGORA_RECOVER")]
    pub recover: Recover,
    /// Isolators, comma-separated: `cgroups/cpu,cgroups/mem,namespaces/pid`
    /// (default: what this host allows), or `posix` for process groups only.
    #[arg(long, env = "AGORA_ISOLATION")]
    pub isolation: Option<String>,
    /// Cap each task's CPU time at its `cpus` with a CFS quota.
    #[arg(long, env = "AGORA_CGROUPS_ENABLE_CFS")]
    pub cgroups_enable_cfs: bool,
    /// Kill a task whose sandbox uses more than its `disk` resource.
    #[arg(long, env = "AGORA_ENFORCE_CONTAINER_DISK_QUOTA")]
    pub enforce_container_disk_quota: bool,
    /// How often sandboxes are measured for the disk quota.
    #[arg(long, default_value = "15secs", value_parser = duration, env = "AGORA_CONTAINER_DISK_WATCH_INTERVAL")]
    pub container_disk_watch_interval: Duration,
    /// How long a finished task's sandbox is kept after its terminal update
    /// is acknowledged (earlier under disk pressure).
    #[arg(long, default_value = "1weeks", value_parser = duration, env = "AGORA_GC_DELAY")]
    pub gc_delay: Duration,
    /// Fraction of the work dir's disk to keep free: sandboxes are removed
    /// sooner the closer usage gets to `1 - headroom`.
    #[arg(long, default_value_t = 0.1, env = "AGORA_GC_DISK_HEADROOM")]
    pub gc_disk_headroom: f64,
    /// How often the work dir's disk usage is checked for sandbox GC.
    #[arg(long, default_value = "1mins", value_parser = duration, env = "AGORA_DISK_WATCH_INTERVAL")]
    pub disk_watch_interval: Duration,
    /// Containerizers to run, comma-separated: `mesos` (host commands) and
    /// `docker` (DOCKER containers through the Docker engine). Default: mesos,
    /// and docker when the engine answers on --docker-socket.
    #[arg(long, env = "AGORA_CONTAINERIZERS")]
    pub containerizers: Option<String>,
    /// Where the small executor shim `agora-executor` is (Mesos'
    /// `--launcher_dir`; default: next to this binary, falling back to
    /// running shims as `agora executor`).
    #[arg(long, env = "AGORA_LAUNCHER_DIR")]
    pub launcher_dir: Option<PathBuf>,
    /// The Docker engine's API socket.
    #[arg(long, default_value = agora_agent::config::DEFAULT_DOCKER_SOCKET, env = "AGORA_DOCKER_SOCKET")]
    pub docker_socket: PathBuf,
    /// At start, remove this agent's Docker containers that no task it
    /// recovered owns (`--docker-kill-orphans=false` leaves them).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "AGORA_DOCKER_KILL_ORPHANS")]
    pub docker_kill_orphans: bool,
    /// Grace period between the stop signal and SIGKILL for Docker tasks
    /// without a kill policy (default: --executor-shutdown-grace-period).
    #[arg(long, value_parser = duration, env = "AGORA_DOCKER_STOP_TIMEOUT")]
    pub docker_stop_timeout: Option<Duration>,
    /// The address reported for tasks on the host's network (default: --ip
    /// when it is a specific address, else the hostname's).
    #[arg(long, env = "AGORA_ADVERTISE_IP")]
    pub advertise_ip: Option<IpAddr>,
}

/// `--recover` values, as Mesos spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Recover {
    /// Reconnect to the running tasks and reregister with the old id.
    Reconnect,
    /// Kill the old tasks and register as a new agent.
    Cleanup,
}

impl AgentArgs {
    /// The validated agent configuration.
    pub async fn into_config(self) -> anyhow::Result<AgentConfig> {
        let detector =
            crate::flags::master_detector(&self.master, agora_coord::zk::DEFAULT_SESSION_TIMEOUT)
                .await?;
        let mut config = AgentConfig::new(detector, self.work_dir);
        config.ip = self.ip;
        config.port = self.port;
        if let Some(hostname) = self.hostname {
            config.hostname = hostname;
        }
        config.resources = self.resources;
        config.attributes = self.attributes;
        config.status_update_retry_interval = self.status_update_retry_interval;
        config.executor_shutdown_grace_period = self.executor_shutdown_grace_period;
        config.master_ping_timeout = self.master_ping_timeout;
        config.recover = match self.recover {
            Recover::Reconnect => RecoverMode::Reconnect,
            Recover::Cleanup => RecoverMode::Cleanup,
        };
        config.isolation = self.isolation;
        config.cgroups_enable_cfs = self.cgroups_enable_cfs;
        config.enforce_container_disk_quota = self.enforce_container_disk_quota;
        config.container_disk_watch_interval = self.container_disk_watch_interval;
        config.gc_delay = self.gc_delay;
        config.gc_disk_headroom = self.gc_disk_headroom;
        config.disk_watch_interval = self.disk_watch_interval;
        config.containerizers = self
            .containerizers
            .as_deref()
            .map(ContainerizerKind::parse_list)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--containerizers: {e}"))?;
        config.docker_socket = self.docker_socket;
        config.docker_kill_orphans = self.docker_kill_orphans;
        config.docker_stop_timeout = self.docker_stop_timeout;
        config.advertise_ip = self.advertise_ip;
        config.executor_program = Some(executor_program(self.launcher_dir.as_deref())?);
        config.validate()?;
        Ok(config)
    }
}

/// The program the agent runs as each task's executor shim: the small
/// `agora-executor` in `launcher_dir` (default: next to this binary), else
/// this binary itself (`agora executor`: the same shim, mapping more of the
/// larger binary). [`log_executor_program`] says which, once the whole
/// configuration is valid.
pub fn executor_program(launcher_dir: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    let own =
        std::env::current_exe().context("cannot find the agora binary to run executor shims")?;
    let dir = match launcher_dir {
        Some(dir) => dir.to_path_buf(),
        None => own.parent().map(PathBuf::from).unwrap_or_default(),
    };
    let small = dir.join(agora_agent::executor::EXECUTOR_BINARY);
    if small.is_file() {
        return Ok(small);
    }
    if launcher_dir.is_some() {
        anyhow::bail!(
            "--launcher-dir: no {} in {}",
            agora_agent::executor::EXECUTOR_BINARY,
            dir.display()
        );
    }
    Ok(own)
}

/// One log line saying which program runs the executor shims.
pub fn log_executor_program(program: &std::path::Path) {
    let small = program
        .file_name()
        .is_some_and(|n| n == agora_agent::executor::EXECUTOR_BINARY);
    if small {
        tracing::info!(shim = %program.display(), "executor shims run as agora-executor");
    } else {
        tracing::info!(
            shim = %program.display(),
            "executor shims run as `agora executor`: no agora-executor next to agora \
             (`cargo build --release` builds both; each shim is then a few MiB smaller)"
        );
    }
}
