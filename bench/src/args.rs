//! What `agora bench master` is asked to do, with defaults and the checks
//! made before any master is started or any connection opened.

use std::path::PathBuf;
use std::time::Duration;

use agora_common::resources::Resources;
use anyhow::{bail, Context};

/// Resources each emulated agent registers with, unless told otherwise.
pub const DEFAULT_AGENT_RESOURCES: &str = "cpus:16;mem:65536;disk:100000;ports:[31000-32000]";

/// Agents multiplexed on one HTTP/2 connection by default.
pub const DEFAULT_AGENTS_PER_CONNECTION: usize = 100;

/// The master's HTTP/2 server (hyper) accepts at most this many concurrent
/// streams per connection; agent streams live for the whole bench, so more
/// agents than this on one connection would wait forever for a stream.
pub const MAX_AGENTS_PER_CONNECTION: usize = 200;

/// Which master to measure.
#[derive(Debug, Clone)]
pub enum MasterTarget {
    /// Spawn the master as a child process, so that its memory is measured
    /// alone (from `/proc/<pid>/status`). The address is read from `args`:
    /// `--ip` (default `127.0.0.1`) and `--port` (required, not 0).
    Spawn {
        /// The program, e.g. `std::env::current_exe()` of the `agora` binary.
        program: PathBuf,
        /// Its arguments, e.g. `["master", "--ip", "127.0.0.1", "--port", "5050", ...]`.
        args: Vec<String>,
    },
    /// An already running master at `host:port`; its memory is not reported.
    Address(String),
    /// A master started inside this process with `agora_master::start`, for
    /// smoke tests: memory figures are then those of the whole bench process.
    InProcess,
}

impl MasterTarget {
    /// The arguments `agora` needs to run a master on `127.0.0.1:port` with
    /// `work_dir`: `["master", "--ip", "127.0.0.1", "--port", port, "--work-dir", dir]`.
    pub fn spawn_agora(program: PathBuf, port: u16, work_dir: &std::path::Path) -> Self {
        MasterTarget::Spawn {
            program,
            args: vec![
                "master".into(),
                "--ip".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                "--work-dir".into(),
                work_dir.display().to_string(),
            ],
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1 (for a spawned master).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// The parameters of a master bench.
#[derive(Debug, Clone)]
pub struct MasterBenchArgs {
    /// Emulated agents (one `Attach` stream each).
    pub agents: usize,
    /// Frameworks (one SDK scheduler, and so one connection, each).
    pub frameworks: usize,
    /// Tasks in all, split evenly across frameworks.
    pub tasks: usize,
    /// The master to measure.
    pub master: MasterTarget,
    /// Resources of every agent, in the `--resources` syntax.
    pub agent_resources: String,
    /// CPUs per task.
    pub task_cpus: f64,
    /// Memory (MB) per task.
    pub task_mem: f64,
    /// HTTP/2 connections the agents are spread over; 0 means
    /// `ceil(agents / 100)`. Few connections keep file descriptors modest.
    pub connections: usize,
    /// Upper bound on each phase; a phase that takes longer fails the bench
    /// with what it had reached.
    pub timeout: Duration,
    /// How long the steady-state phase (every framework revived, declining
    /// without filters) runs at most; it ends early once the master's window
    /// of 1000 allocation runs is filled by it.
    pub steady_duration: Duration,
}

impl MasterBenchArgs {
    /// `agents`, `frameworks` and `tasks` against `master`, the rest by default:
    /// agents of [`DEFAULT_AGENT_RESOURCES`], tasks of 0.01 CPU and 1 MB (so
    /// that thousands fit on an agent), 120 s per phase, 10 s of steady state.
    pub fn new(agents: usize, frameworks: usize, tasks: usize, master: MasterTarget) -> Self {
        MasterBenchArgs {
            agents,
            frameworks,
            tasks,
            master,
            agent_resources: DEFAULT_AGENT_RESOURCES.to_string(),
            task_cpus: 0.01,
            task_mem: 1.0,
            connections: 0,
            timeout: Duration::from_secs(120),
            steady_duration: Duration::from_secs(10),
        }
    }

    /// The connection count to use (the default applied).
    pub fn effective_connections(&self) -> usize {
        match self.connections {
            0 => self.agents.div_ceil(DEFAULT_AGENTS_PER_CONNECTION).max(1),
            n => n.min(self.agents.max(1)),
        }
    }

    /// Checks the arguments; returns the parsed agent resources.
    pub fn validate(&self) -> anyhow::Result<Resources> {
        if self.agents == 0 {
            bail!("--agents: must be at least 1");
        }
        if self.frameworks == 0 {
            bail!("--frameworks: must be at least 1");
        }
        if !(self.task_cpus.is_finite() && self.task_cpus > 0.0) {
            bail!("--task-cpus: must be > 0");
        }
        if !(self.task_mem.is_finite() && self.task_mem > 0.0) {
            bail!("--task-mem: must be > 0");
        }
        if self.timeout.is_zero() {
            bail!("--timeout: must be > 0");
        }
        let resources = Resources::parse(&self.agent_resources)
            .with_context(|| format!("--agent-resources: '{}'", self.agent_resources))?;
        let per_agent = tasks_fitting(&resources, self.task_cpus, self.task_mem);
        if per_agent == 0 {
            bail!(
                "--agent-resources: not even one task (cpus:{};mem:{}) fits on an agent",
                self.task_cpus,
                self.task_mem
            );
        }
        let capacity = per_agent.saturating_mul(self.agents);
        if capacity < self.tasks {
            bail!(
                "--tasks: {} tasks do not fit on {} agents ({per_agent} per agent)",
                self.tasks,
                self.agents
            );
        }
        let per_connection = self.agents.div_ceil(self.effective_connections());
        if per_connection > MAX_AGENTS_PER_CONNECTION {
            bail!(
                "--connections: {per_connection} agents per connection exceeds the master's \
                 {MAX_AGENTS_PER_CONNECTION} concurrent HTTP/2 streams per connection"
            );
        }
        if let MasterTarget::Spawn { args, .. } = &self.master {
            crate::target::spawn_address(args)?;
        }
        Ok(resources)
    }
}

/// How many tasks of `cpus` and `mem` fit in `resources` (by CPU and memory).
pub(crate) fn tasks_fitting(resources: &Resources, cpus: f64, mem: f64) -> usize {
    // Resources are fixed-point with three decimals; the epsilon keeps
    // 0.03 / 0.01 from flooring to 2.
    let by_cpus = (resources.scalar("cpus") / cpus + 1e-6).floor();
    let by_mem = (resources.scalar("mem") / mem + 1e-6).floor();
    by_cpus.min(by_mem).max(0.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_ten_thousand_tasks_on_a_thousand_agents() {
        let args = MasterBenchArgs::new(1000, 100, 10_000, MasterTarget::InProcess);
        args.validate().expect("valid");
        assert_eq!(args.effective_connections(), 10);
    }

    #[test]
    fn refuses_what_cannot_work() {
        let mut args = MasterBenchArgs::new(2, 1, 10, MasterTarget::InProcess);
        args.task_cpus = 8.0;
        let e = args.validate().expect_err("does not fit");
        assert!(e.to_string().starts_with("--tasks:"), "{e}");
        let mut args = MasterBenchArgs::new(1000, 1, 1, MasterTarget::InProcess);
        args.connections = 2;
        assert!(args.validate().is_err());
    }

    #[test]
    fn counts_tasks_fitting_with_fixed_point_resources() {
        let r = Resources::parse("cpus:0.03;mem:10").expect("valid");
        assert_eq!(tasks_fitting(&r, 0.01, 1.0), 3);
    }
}
