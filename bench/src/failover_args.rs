//! What `agora bench failover` is asked to do, with defaults and the checks
//! made before ZooKeeper or any master is started.

use std::path::PathBuf;
use std::time::Duration;

use agora_common::resources::Resources;
use anyhow::bail;

use crate::args::{MasterBenchArgs, MasterTarget, DEFAULT_AGENT_RESOURCES};

/// The target of the issue: agents back with the new leader within this
/// long after it was elected.
pub const REREGISTRATION_TARGET: Duration = Duration::from_secs(5);

/// The parameters of a failover bench.
#[derive(Debug, Clone)]
pub struct FailoverBenchArgs {
    /// Emulated agents (one `Attach` stream each).
    pub agents: usize,
    /// Frameworks (one SDK scheduler each).
    pub frameworks: usize,
    /// Tasks in all, split evenly across frameworks.
    pub tasks: usize,
    /// Masters to start (the leader is killed; the others contend).
    pub masters: usize,
    /// The masters' ZooKeeper session timeout (`--zk-session-timeout`):
    /// the dead leader's election node lasts this long.
    pub session_timeout: Duration,
    /// A running ZooKeeper (`zk://host:port[,...][/path]`; the path is not
    /// used, every run takes a fresh group folder); `None` spawns one.
    pub zk: Option<String>,
    /// The `agora` binary the masters are spawned from.
    pub program: PathBuf,
    /// Resources of every agent, in the `--resources` syntax.
    pub agent_resources: String,
    /// CPUs per task.
    pub task_cpus: f64,
    /// Memory (MB) per task.
    pub task_mem: f64,
    /// HTTP/2 connections the agents are spread over; 0 means `ceil(agents / 100)`.
    pub connections: usize,
    /// Upper bound on each phase.
    pub timeout: Duration,
}

impl FailoverBenchArgs {
    /// `agents`, `frameworks` and `tasks` with masters spawned from
    /// `program`, the rest by default: three masters, a 10 s session, a
    /// spawned ZooKeeper, agents and tasks as in `agora bench master`,
    /// 120 s per phase.
    pub fn new(agents: usize, frameworks: usize, tasks: usize, program: PathBuf) -> Self {
        FailoverBenchArgs {
            agents,
            frameworks,
            tasks,
            masters: 3,
            session_timeout: Duration::from_secs(10),
            zk: None,
            program,
            agent_resources: DEFAULT_AGENT_RESOURCES.to_string(),
            task_cpus: 0.01,
            task_mem: 1.0,
            connections: 0,
            timeout: Duration::from_secs(120),
        }
    }

    /// The same sizes as a master bench would take them (for the shared checks).
    fn as_master_bench(&self) -> MasterBenchArgs {
        let mut args = MasterBenchArgs::new(
            self.agents,
            self.frameworks,
            self.tasks,
            MasterTarget::InProcess,
        );
        args.agent_resources = self.agent_resources.clone();
        args.task_cpus = self.task_cpus;
        args.task_mem = self.task_mem;
        args.connections = self.connections;
        args.timeout = self.timeout;
        args
    }

    /// The connection count to use (the default applied).
    pub fn effective_connections(&self) -> usize {
        self.as_master_bench().effective_connections()
    }

    /// Checks the arguments; returns the parsed agent resources.
    pub fn validate(&self) -> anyhow::Result<Resources> {
        if self.masters < 2 {
            bail!("--masters: at least 2, so that one is left to take over");
        }
        if self.session_timeout < Duration::from_millis(400)
            || self.session_timeout > Duration::from_secs(60)
        {
            bail!("--session-timeout: between 400ms and 60secs");
        }
        if self.tasks == 0 {
            bail!("--tasks: must be at least 1");
        }
        self.as_master_bench().validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_flag() {
        let args = FailoverBenchArgs::new(10_000, 50, 100_000, PathBuf::from("agora"));
        args.validate().expect("valid");
        assert_eq!(args.effective_connections(), 100);
        let mut bad = args.clone();
        bad.masters = 1;
        let e = bad.validate().expect_err("one master");
        assert!(e.to_string().starts_with("--masters"), "{e}");
        let mut bad = args;
        bad.session_timeout = Duration::from_millis(100);
        let e = bad.validate().expect_err("short session");
        assert!(e.to_string().starts_with("--session-timeout"), "{e}");
    }
}
