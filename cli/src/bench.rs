//! `agora bench ...`: benchmarks that report figures (JSON, then a table).

use std::time::Duration;

use agora_bench::{FailoverBenchArgs, MarathonBenchArgs, MasterBenchArgs, MasterTarget};
use clap::{Args, Subcommand};

use crate::flags::duration;

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The master under emulated agents (real gRPC streams) and SDK frameworks.
    Master(MasterBench),
    /// Kill the leading master of three (ZooKeeper election) and time the way back.
    Failover(FailoverBench),
    /// N `sleep 600` tasks on one real agent, beside bare fork/exec.
    Agent(AgentBench),
    /// The bundled Marathon (in-process) under emulated agents: scale,
    /// group deployment, `GET /v2/apps?embed=apps.tasks` load, failover.
    Marathon(MarathonBench),
    /// Health checks at scale: real tasks checked by their shims, Mesos
    /// checks on emulated agents, Marathon's own checks; CPU per party and
    /// the time from a task turning sick to TASK_KILLED.
    Health(HealthBench),
    /// N Docker containers through Marathon on one real agent, beside
    /// `docker run -d` and Docker Swarm mode on the same engine and image.
    Docker(DockerBench),
}

/// Flags of `agora bench health`.
#[derive(Debug, Args)]
pub struct HealthBench {
    /// Tasks on one real agent, checked by their shims (0 skips the phase).
    #[arg(long, default_value_t = 1000)]
    pub real_tasks: usize,
    /// Tasks with MESOS_HTTP checks on emulated agents (0 skips the phase).
    #[arg(long, default_value_t = 5000)]
    pub mesos_tasks: usize,
    /// Tasks with Marathon's own HTTP checks on emulated agents (0 skips the phase).
    #[arg(long, default_value_t = 2000)]
    pub marathon_tasks: usize,
    /// Tasks per emulated agent (the size of its port range).
    #[arg(long, default_value_t = 100)]
    pub tasks_per_agent: usize,
    /// The checks' interval and timeout (whole seconds).
    #[arg(long, default_value = "1secs", value_parser = duration)]
    pub interval: Duration,
    /// Consecutive failures before a task is killed.
    #[arg(long, default_value_t = 3)]
    pub consecutive_failures: u32,
    /// Tasks turned sick at once in each phase.
    #[arg(long, default_value_t = 50)]
    pub sick: usize,
    /// How long CPU is measured in each phase.
    #[arg(long, default_value = "10secs", value_parser = duration)]
    pub cpu_window: Duration,
    /// Give up on a wait after this long.
    #[arg(long, default_value = "5mins", value_parser = duration)]
    pub timeout: Duration,
}

/// Flags of `agora bench docker`.
#[derive(Debug, Args)]
pub struct DockerBench {
    /// Containers started at once, each way.
    #[arg(long, default_value_t = 100)]
    pub containers: usize,
    /// Containers then started one at a time, each way.
    #[arg(long, default_value_t = 20)]
    pub serial: usize,
    /// Skip the Docker Swarm mode phase.
    #[arg(long)]
    pub no_swarm: bool,
    /// The Docker engine's socket.
    #[arg(long, default_value = "/var/run/docker.sock")]
    pub docker_socket: std::path::PathBuf,
    /// Give up on a phase after this long.
    #[arg(long, default_value = "5mins", value_parser = duration)]
    pub timeout: Duration,
}

/// Flags of `agora bench marathon`.
#[derive(Debug, Args)]
pub struct MarathonBench {
    /// Emulated agents (`cpus:32;mem:65536;disk:100000;ports:[31000-32000]` each).
    #[arg(long, default_value_t = 200)]
    pub agents: usize,
    /// Instances the one app of phase 1 is scaled to.
    #[arg(long, default_value_t = 1000)]
    pub instances: usize,
    /// Apps (one instance each) in the one `POST /v2/groups` of phase 2.
    #[arg(long, default_value_t = 500)]
    pub group_apps: usize,
    /// Apps deployed for the read load and the failover.
    #[arg(long, default_value_t = 1000)]
    pub apps: usize,
    /// Instances of each of those apps.
    #[arg(long, default_value_t = 10)]
    pub tasks_per_app: usize,
    /// Concurrent clients of the read load.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// How long the read load runs.
    #[arg(long, default_value = "10secs", value_parser = duration)]
    pub duration: Duration,
    /// Read load clients ask for gzip answers and decompress them.
    #[arg(long)]
    pub gzip: bool,
    /// Use a running master at HOST:PORT instead of spawning one.
    #[arg(long)]
    pub master: Option<String>,
    /// Give up on a phase after this long.
    #[arg(long, default_value = "2mins", value_parser = duration)]
    pub timeout: Duration,
    /// Print the JSON report only (no table).
    #[arg(long)]
    pub json: bool,
}

/// Flags of `agora bench failover`.
#[derive(Debug, Args)]
pub struct FailoverBench {
    /// Emulated agents.
    #[arg(long, default_value_t = 10_000)]
    pub agents: usize,
    /// Frameworks.
    #[arg(long, default_value_t = 50)]
    pub frameworks: usize,
    /// Tasks running when the leader is killed.
    #[arg(long, default_value_t = 100_000)]
    pub tasks: usize,
    /// Masters to start (one leads; the others contend).
    #[arg(long, default_value_t = 3)]
    pub masters: usize,
    /// The masters' ZooKeeper session timeout.
    #[arg(long, default_value = "10secs", value_parser = duration)]
    pub session_timeout: Duration,
    /// A running ZooKeeper, `zk://host:port[,...]` (default: spawn one from
    /// the Debian package; needs `java`).
    #[arg(long)]
    pub zk: Option<String>,
    /// Give up on a phase after this long.
    #[arg(long, default_value = "2mins", value_parser = duration)]
    pub timeout: Duration,
}

/// Flags of `agora bench agent`.
#[derive(Debug, Args)]
pub struct AgentBench {
    /// Tasks to launch at once on the one agent.
    #[arg(long, default_value_t = 1000)]
    pub tasks: usize,
    /// Tasks then launched one at a time (the per-task overhead).
    #[arg(long, default_value_t = 20)]
    pub serial: usize,
    /// The agent's `--isolation` (default: what the host allows).
    #[arg(long)]
    pub isolation: Option<String>,
    /// Launch the tasks without their HTTP health check.
    #[arg(long)]
    pub no_health_checks: bool,
    /// Tasks turned sick at once to time their kills (with checks).
    #[arg(long, default_value_t = 20)]
    pub sick: usize,
    /// How long CPU is measured with every check running.
    #[arg(long, default_value = "10secs", value_parser = duration)]
    pub cpu_window: Duration,
    /// Give up on a phase after this long.
    #[arg(long, default_value = "2mins", value_parser = duration)]
    pub timeout: Duration,
}

/// Flags of `agora bench master`.
#[derive(Debug, Args)]
pub struct MasterBench {
    /// Emulated agents.
    #[arg(long, default_value_t = 1000)]
    pub agents: usize,
    /// Frameworks.
    #[arg(long, default_value_t = 100)]
    pub frameworks: usize,
    /// Tasks to launch in all.
    #[arg(long, default_value_t = 10_000)]
    pub tasks: usize,
    /// Benchmark a running master at HOST:PORT instead of spawning one.
    #[arg(long)]
    pub master: Option<String>,
    /// Give up on a phase after this long.
    #[arg(long, default_value = "2mins", value_parser = duration)]
    pub timeout: Duration,
}

/// Runs a benchmark and prints its report.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Master(b) => {
            if b.agents == 0 || b.frameworks == 0 || b.tasks == 0 {
                anyhow::bail!("--agents, --frameworks and --tasks must be at least 1");
            }
            let master = master_target(b.master)?;
            let mut args = MasterBenchArgs::new(b.agents, b.frameworks, b.tasks, master);
            args.timeout = b.timeout;
            let report = agora_bench::run_master_bench(args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            println!("{}", report.table());
        }
        BenchCommand::Failover(b) => {
            let program = std::env::current_exe()?;
            let mut args = FailoverBenchArgs::new(b.agents, b.frameworks, b.tasks, program);
            args.masters = b.masters;
            args.session_timeout = b.session_timeout;
            args.zk = b.zk;
            args.timeout = b.timeout;
            let report = agora_bench::run_failover_bench(args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            println!("{}", report.table());
        }
        BenchCommand::Agent(b) => {
            let work_dir =
                std::env::temp_dir().join(format!("agora-bench-agent-{}", std::process::id()));
            let program = std::env::current_exe()?;
            let port = agora_bench::free_port()?;
            let mut args = agora_bench::AgentBenchArgs::new(b.tasks, program, port, work_dir);
            args.serial = b.serial;
            args.isolation = b.isolation;
            args.health_checks = !b.no_health_checks;
            args.sick = b.sick;
            args.cpu_window = b.cpu_window;
            args.timeout = b.timeout;
            let report = agora_bench::run_agent_bench(args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            println!("{}", report.table());
        }
        BenchCommand::Health(b) => {
            let work_dir =
                std::env::temp_dir().join(format!("agora-bench-health-{}", std::process::id()));
            let mut args = agora_bench::HealthBenchArgs::new(std::env::current_exe()?, work_dir);
            args.real_tasks = b.real_tasks;
            args.mesos_tasks = b.mesos_tasks;
            args.marathon_tasks = b.marathon_tasks;
            args.tasks_per_agent = b.tasks_per_agent;
            args.interval = b.interval;
            args.consecutive_failures = b.consecutive_failures;
            args.sick = b.sick;
            args.cpu_window = b.cpu_window;
            args.timeout = b.timeout;
            let report = agora_bench::run_health_bench(args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            println!("{}", report.table());
        }
        BenchCommand::Docker(b) => {
            let mut args = agora_bench::DockerBenchArgs::new(
                b.containers,
                std::env::current_exe()?,
                agora_bench::docker_bench_work_dir(),
            );
            args.serial = b.serial;
            args.swarm = !b.no_swarm;
            args.socket = b.docker_socket;
            args.timeout = b.timeout;
            let report = agora_bench::run_docker_bench(args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            println!("{}", report.table());
        }
        BenchCommand::Marathon(b) => {
            let mut args = MarathonBenchArgs::new(master_target(b.master)?);
            args.agents = b.agents;
            args.instances = b.instances;
            args.group_apps = b.group_apps;
            args.apps = b.apps;
            args.tasks_per_app = b.tasks_per_app;
            args.clients = b.clients;
            args.gzip = b.gzip;
            args.duration = b.duration;
            args.timeout = b.timeout;
            let report = agora_bench::run_marathon_bench(args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !b.json {
                println!("{}", report.table());
            }
        }
    }
    Ok(())
}

/// The master to measure against: the one at `address`, or a child process
/// (so that its memory is measured apart from the bench).
fn master_target(address: Option<String>) -> anyhow::Result<MasterTarget> {
    Ok(match address {
        Some(address) => MasterTarget::Address(address),
        None => {
            let work_dir = std::env::temp_dir().join(format!("agora-bench-{}", std::process::id()));
            let port = agora_bench::free_port()?;
            MasterTarget::spawn_agora(std::env::current_exe()?, port, &work_dir)
        }
    })
}
