//! The agent's configuration and its validation.
//!
//! The binary fills an [`AgentConfig`] from flags; [`AgentConfig::validate`]
//! runs before any port is bound or directory created, and every error names
//! the flag it is about so that `agora agent` can exit with one clear line.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agora_common::resources::{parse_attributes, ParseError, Resources};
use agora_coord::{Detector, StaticDetector};
use agora_proto::Attribute;

pub use crate::checkpoint::RecoverMode;
pub use crate::containerizer::ContainerizerKind;

/// Mesos' default agent port.
pub const DEFAULT_PORT: u16 = 5051;
/// Where the Docker engine listens by default.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Everything the agent needs to run.
#[derive(Clone)]
pub struct AgentConfig {
    /// Finds the leading master; asked again on every reconnection so that a
    /// ZooKeeper detector can follow a failover.
    pub master: Arc<dyn Detector>,
    /// Address the HTTP endpoint binds to; also the ip in the agent's `pid`.
    pub ip: IpAddr,
    /// HTTP port (`0` picks an ephemeral one, for tests and `agora local`).
    pub port: u16,
    /// Hostname reported to the master and put in tasks' `HOST`.
    pub hostname: String,
    /// Root of the sandboxes (`<work_dir>/slaves/<agent-id>/...`).
    pub work_dir: PathBuf,
    /// `--resources` in Mesos flag syntax; what it leaves out (cpus, mem, disk,
    /// ports) is auto-detected, as Mesos does.
    pub resources: Option<String>,
    /// `--attributes` in Mesos flag syntax (`rack:r1;zone:a`).
    pub attributes: Option<String>,
    /// First retry interval of an unacknowledged status update; doubles up to
    /// [`MAX_RETRY_INTERVAL`](crate::status_update::MAX_RETRY_INTERVAL) (10 min).
    pub status_update_retry_interval: Duration,
    /// Time between SIGTERM and SIGKILL when neither the kill request nor the
    /// task carries a kill policy (Mesos' command executor default: 3 s).
    pub executor_shutdown_grace_period: Duration,
    /// Without a `Ping` from the master for this long the agent assumes the
    /// link is dead and reconnects (Mesos: 15 s ping interval x 5 misses).
    pub master_ping_timeout: Duration,
    /// How many finished tasks `/state` remembers, oldest dropped first.
    pub max_completed_tasks: usize,
    /// The program run as each task's executor shim (`<program> executor
    /// --config ...`): `agora agent` and `agora local` pass their own binary.
    /// `None` runs tasks as plain children of the agent (the POSIX
    /// containerizer), for agents embedded in test binaries: no isolation,
    /// and tasks do not survive the agent.
    pub executor_program: Option<PathBuf>,
    /// `--recover`: what a restarted agent does with the previous run's tasks.
    pub recover: RecoverMode,
    /// `--isolation`: comma-separated isolators (`cgroups/cpu,cgroups/mem,
    /// namespaces/pid`, or `posix` for none); `None` uses what the host
    /// allows. Checked against the host in [`crate::start`].
    pub isolation: Option<String>,
    /// `--cgroups-enable-cfs`: cap each task's CPU time at its `cpus` with a
    /// CFS quota, not only weigh it with shares.
    pub cgroups_enable_cfs: bool,
    /// `--enforce-container-disk-quota`: kill a task whose sandbox grows past
    /// its `disk`.
    pub enforce_container_disk_quota: bool,
    /// `--container-disk-watch-interval`: how often sandboxes are measured.
    pub container_disk_watch_interval: Duration,
    /// `--gc-delay`: how long a finished task's sandbox is kept after its
    /// terminal update is acknowledged (Mesos: 1 week).
    pub gc_delay: Duration,
    /// `--gc-disk-headroom`: the fraction of the work dir's disk kept free;
    /// sandboxes go earlier as usage nears `1 - headroom` (Mesos: 0.1).
    pub gc_disk_headroom: f64,
    /// `--disk-watch-interval`: how often the work dir's disk usage is read
    /// for GC (Mesos: 1 min).
    pub disk_watch_interval: Duration,
    /// `--containerizers`: the containerizers to run, in order; `None` runs
    /// the Mesos one, and the Docker one when its engine answers at
    /// `docker_socket` (and the agent has an executor program).
    pub containerizers: Option<Vec<ContainerizerKind>>,
    /// `--docker-socket`: the Docker engine's API socket.
    pub docker_socket: PathBuf,
    /// `--docker-kill-orphans`: at start, remove Docker containers of this
    /// agent (labelled with its work dir) that no checkpointed task owns.
    pub docker_kill_orphans: bool,
    /// `--docker-stop-timeout`: the grace period of Docker tasks without a
    /// kill policy; `None` uses `executor_shutdown_grace_period`.
    pub docker_stop_timeout: Option<Duration>,
    /// `--advertise-ip`: the address reported for tasks on the host's
    /// network (`TaskStatus.container_status.network_infos`); `None` uses
    /// `ip` when it is a specific address, else the hostname's first.
    pub advertise_ip: Option<IpAddr>,
}

impl AgentConfig {
    /// A configuration with Mesos-like defaults, the master found by `master`
    /// and sandboxes under `work_dir`.
    pub fn new(master: Arc<dyn Detector>, work_dir: impl Into<PathBuf>) -> Self {
        AgentConfig {
            master,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            hostname: default_hostname(),
            work_dir: work_dir.into(),
            resources: None,
            attributes: None,
            status_update_retry_interval: Duration::from_secs(10),
            executor_shutdown_grace_period: Duration::from_secs(3),
            master_ping_timeout: Duration::from_secs(75),
            max_completed_tasks: 1000,
            executor_program: None,
            recover: RecoverMode::Reconnect,
            isolation: None,
            cgroups_enable_cfs: false,
            enforce_container_disk_quota: false,
            // Mesos' default.
            container_disk_watch_interval: Duration::from_secs(15),
            gc_delay: Duration::from_secs(7 * 86_400),
            gc_disk_headroom: 0.1,
            disk_watch_interval: Duration::from_secs(60),
            containerizers: None,
            docker_socket: PathBuf::from(DEFAULT_DOCKER_SOCKET),
            docker_kill_orphans: true,
            docker_stop_timeout: None,
            advertise_ip: None,
        }
    }

    /// The address reported for tasks on the host's network: `--advertise-ip`,
    /// else `--ip` when specific, else the first address the hostname
    /// resolves to (IPv4 first); `None` when nothing says.
    pub fn task_ip(&self) -> Option<IpAddr> {
        if let Some(ip) = self.advertise_ip {
            return Some(ip);
        }
        if !self.ip.is_unspecified() {
            return Some(self.ip);
        }
        let mut found: Vec<IpAddr> =
            std::net::ToSocketAddrs::to_socket_addrs(&(self.hostname.as_str(), 0))
                .ok()?
                .map(|a| a.ip())
                .collect();
        found.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6()));
        found.into_iter().next()
    }

    /// Like [`AgentConfig::new`] for a master at a fixed `host:port` (`--master`).
    pub fn with_master_address(address: impl Into<String>, work_dir: impl Into<PathBuf>) -> Self {
        Self::new(Arc::new(StaticDetector::new(address)), work_dir)
    }

    /// Checks every flag without touching the network or the disk.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.hostname.trim().is_empty() {
            return Err(ConfigError::Empty("--hostname"));
        }
        if self.work_dir.as_os_str().is_empty() {
            return Err(ConfigError::Empty("--work-dir"));
        }
        for (flag, d) in [
            (
                "--status-update-retry-interval",
                self.status_update_retry_interval,
            ),
            ("--master-ping-timeout", self.master_ping_timeout),
            (
                "--container-disk-watch-interval",
                self.container_disk_watch_interval,
            ),
            ("--disk-watch-interval", self.disk_watch_interval),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(flag));
            }
        }
        if !(0.0..=1.0).contains(&self.gc_disk_headroom) {
            return Err(ConfigError::OutOfRange {
                flag: "--gc-disk-headroom",
                range: "0.0 to 1.0",
            });
        }
        if self.containerizers.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::Empty("--containerizers"));
        }
        if self.docker_socket.as_os_str().is_empty() {
            return Err(ConfigError::Empty("--docker-socket"));
        }
        self.parsed_resources()?;
        self.parsed_attributes()?;
        Ok(())
    }

    /// The `--resources` flag parsed (empty when absent).
    pub fn parsed_resources(&self) -> Result<Resources, ConfigError> {
        match &self.resources {
            None => Ok(Resources::new()),
            Some(text) => Resources::parse(text).map_err(ConfigError::Resources),
        }
    }

    /// The `--attributes` flag parsed (empty when absent).
    pub fn parsed_attributes(&self) -> Result<Vec<Attribute>, ConfigError> {
        match &self.attributes {
            None => Ok(Vec::new()),
            Some(text) => parse_attributes(text).map_err(ConfigError::Attributes),
        }
    }
}

impl fmt::Debug for AgentConfig {
    // `dyn Detector` is not `Debug`; everything else is printed as is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("hostname", &self.hostname)
            .field("work_dir", &self.work_dir)
            .field("resources", &self.resources)
            .field("attributes", &self.attributes)
            .field(
                "status_update_retry_interval",
                &self.status_update_retry_interval,
            )
            .field(
                "executor_shutdown_grace_period",
                &self.executor_shutdown_grace_period,
            )
            .field("master_ping_timeout", &self.master_ping_timeout)
            .field("max_completed_tasks", &self.max_completed_tasks)
            .field("executor_program", &self.executor_program)
            .field("recover", &self.recover)
            .field("isolation", &self.isolation)
            .field("cgroups_enable_cfs", &self.cgroups_enable_cfs)
            .field(
                "enforce_container_disk_quota",
                &self.enforce_container_disk_quota,
            )
            .field(
                "container_disk_watch_interval",
                &self.container_disk_watch_interval,
            )
            .field("gc_delay", &self.gc_delay)
            .field("gc_disk_headroom", &self.gc_disk_headroom)
            .field("disk_watch_interval", &self.disk_watch_interval)
            .field("containerizers", &self.containerizers)
            .field("docker_socket", &self.docker_socket)
            .field("docker_kill_orphans", &self.docker_kill_orphans)
            .field("docker_stop_timeout", &self.docker_stop_timeout)
            .field("advertise_ip", &self.advertise_ip)
            .finish_non_exhaustive()
    }
}

/// The machine's hostname, or `localhost` when it cannot be read.
fn default_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// A configuration error, naming the flag.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// `--resources` does not parse.
    #[error("--resources: {0}")]
    Resources(#[source] ParseError),
    /// `--attributes` does not parse.
    #[error("--attributes: {0}")]
    Attributes(#[source] ParseError),
    /// A flag that must not be empty.
    #[error("{0}: must not be empty")]
    Empty(&'static str),
    /// A duration flag that must be positive.
    #[error("{0}: must be greater than zero")]
    ZeroDuration(&'static str),
    /// A number outside the range the flag allows.
    #[error("{flag}: must be within {range}")]
    OutOfRange {
        /// The flag.
        flag: &'static str,
        /// What it allows.
        range: &'static str,
    },
    /// `--isolation` names an unknown isolator or one the host lacks.
    #[error(transparent)]
    Isolation(#[from] crate::isolation::policy::IsolationError),
    /// `--containerizers` asks for one this agent cannot run here.
    #[error("--containerizers: {0}")]
    Containerizer(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AgentConfig {
        AgentConfig::with_master_address("127.0.0.1:5050", "/tmp/agora-test")
    }

    #[test]
    fn defaults_are_valid_and_mesos_like() {
        let c = config();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.port, 5051);
        assert_eq!(c.master_ping_timeout, Duration::from_secs(75));
        assert_eq!(c.status_update_retry_interval, Duration::from_secs(10));
        assert_eq!(c.gc_delay, Duration::from_secs(604_800));
        assert_eq!(c.gc_disk_headroom, 0.1);
        assert_eq!(c.disk_watch_interval, Duration::from_secs(60));
    }

    #[test]
    fn errors_name_the_flag() {
        let mut c = config();
        c.resources = Some("cpus".into());
        let err = c.validate().expect_err("invalid resources");
        assert!(
            err.to_string()
                .starts_with("--resources: invalid entry 'cpus'"),
            "{err}"
        );

        let mut c = config();
        c.attributes = Some("rack".into());
        assert!(c
            .validate()
            .expect_err("invalid attributes")
            .to_string()
            .starts_with("--attributes: "));

        let mut c = config();
        c.master_ping_timeout = Duration::ZERO;
        assert_eq!(
            c.validate(),
            Err(ConfigError::ZeroDuration("--master-ping-timeout"))
        );

        let mut c = config();
        c.gc_disk_headroom = 1.5;
        assert_eq!(
            c.validate().expect_err("headroom > 1").to_string(),
            "--gc-disk-headroom: must be within 0.0 to 1.0"
        );

        let mut c = config();
        c.hostname = " ".into();
        assert_eq!(c.validate(), Err(ConfigError::Empty("--hostname")));

        let mut c = config();
        c.containerizers = Some(Vec::new());
        assert_eq!(c.validate(), Err(ConfigError::Empty("--containerizers")));
    }

    #[test]
    fn tasks_on_the_host_network_get_the_agents_address() {
        let mut c = config();
        assert_eq!(c.task_ip(), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        c.advertise_ip = Some("10.1.2.3".parse().expect("ip"));
        assert_eq!(c.task_ip(), c.advertise_ip);
        let mut c = config();
        c.ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        c.hostname = "localhost".into();
        assert!(c.task_ip().is_some_and(|ip| ip.is_loopback()));
    }
}
