//! `agora bench ...`: benchmarks that report figures (JSON, then a table).

use std::time::Duration;

use agora_bench::{FailoverBenchArgs, MasterBenchArgs, MasterTarget};
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
            let master = match b.master {
                Some(address) => MasterTarget::Address(address),
                None => {
                    // The master runs as a child process so that its memory
                    // is measured apart from the emulated agents and frameworks.
                    let work_dir =
                        std::env::temp_dir().join(format!("agora-bench-{}", std::process::id()));
                    let port = agora_bench::free_port()?;
                    MasterTarget::spawn_agora(std::env::current_exe()?, port, &work_dir)
                }
            };
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
            args.timeout = b.timeout;
            let report = agora_bench::run_agent_bench(args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            println!("{}", report.table());
        }
    }
    Ok(())
}
