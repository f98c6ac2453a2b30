//! What `agora bench marathon` is asked to do, with defaults and the checks
//! made before any master, agent or Marathon is started.

use std::time::Duration;

use agora_common::resources::Resources;
use anyhow::{bail, Context};

use crate::args::{tasks_fitting, MasterTarget, MAX_AGENTS_PER_CONNECTION};

/// Resources each emulated agent registers with in a Marathon bench.
pub const MARATHON_AGENT_RESOURCES: &str = "cpus:32;mem:65536;disk:100000;ports:[31000-32000]";

/// Targets of the issue, reported beside the figures (never asserted).
pub mod targets {
    use std::time::Duration;

    /// One app scaled to 1,000 instances, all running.
    pub const SCALE: Duration = Duration::from_secs(5);
    /// 500 apps in one `POST /v2/groups`, all running.
    pub const GROUP: Duration = Duration::from_secs(5);
    /// p99 of `GET /v2/apps?embed=apps.tasks` under concurrent clients.
    pub const READ_P99: Duration = Duration::from_millis(50);
    /// A new Marathon serving every app and resubscribed, after its election.
    pub const FAILOVER: Duration = Duration::from_secs(3);
}

/// The parameters of a Marathon bench.
#[derive(Debug, Clone)]
pub struct MarathonBenchArgs {
    /// Emulated agents (one `Attach` stream each).
    pub agents: usize,
    /// Resources of every agent, in the `--resources` syntax.
    pub agent_resources: String,
    /// Phase 1: instances the one app is scaled to.
    pub instances: usize,
    /// Phase 2: apps in the one `POST /v2/groups` (one instance each).
    pub group_apps: usize,
    /// Phases 3 and 4: apps deployed for the read load and the failover.
    pub apps: usize,
    /// Phases 3 and 4: instances of each of those apps.
    pub tasks_per_app: usize,
    /// Phase 3: concurrent HTTP clients, each its own connection.
    pub clients: usize,
    /// Phase 3: how long the clients read.
    pub duration: Duration,
    /// Phase 3: clients ask for gzip answers (as curl --compressed and
    /// python-requests do) and decompress them. Off by default: on one
    /// machine the clients' decompression competes with Marathon for the cores.
    pub gzip: bool,
    /// CPUs per instance.
    pub task_cpus: f64,
    /// Memory (MB) per instance.
    pub task_mem: f64,
    /// The master the agents and Marathon use.
    pub master: MasterTarget,
    /// Upper bound on each phase; a phase that takes longer fails the bench
    /// with what it had reached.
    pub timeout: Duration,
}

impl MarathonBenchArgs {
    /// The sizes against `master`: 200 agents of
    /// [`MARATHON_AGENT_RESOURCES`], one app scaled to 1,000 instances, 500
    /// apps in one group, 1,000 apps × 10 instances read by 32 clients for
    /// 10 s, instances of 0.1 CPU and 32 MB, 120 s per phase.
    pub fn new(master: MasterTarget) -> Self {
        MarathonBenchArgs {
            agents: 200,
            agent_resources: MARATHON_AGENT_RESOURCES.to_string(),
            instances: 1000,
            group_apps: 500,
            apps: 1000,
            tasks_per_app: 10,
            clients: 32,
            duration: Duration::from_secs(10),
            gzip: false,
            task_cpus: 0.1,
            task_mem: 32.0,
            master,
            timeout: Duration::from_secs(120),
        }
    }

    /// HTTP/2 connections the agents are spread over (100 agents each).
    pub fn connections(&self) -> usize {
        self.agents.div_ceil(100).max(1)
    }

    /// Checks the arguments; returns the parsed agent resources.
    pub fn validate(&self) -> anyhow::Result<Resources> {
        if self.agents == 0 {
            bail!("--agents: must be at least 1");
        }
        if self.instances == 0 {
            bail!("--instances: must be at least 1");
        }
        if self.group_apps == 0 {
            bail!("--group-apps: must be at least 1");
        }
        if self.apps == 0 {
            bail!("--apps: must be at least 1");
        }
        if self.tasks_per_app == 0 {
            bail!("--tasks-per-app: must be at least 1");
        }
        if self.clients == 0 {
            bail!("--clients: must be at least 1");
        }
        if self.duration.is_zero() {
            bail!("--duration: must be > 0");
        }
        if self.timeout.is_zero() {
            bail!("--timeout: must be > 0");
        }
        if !(self.task_cpus.is_finite() && self.task_cpus > 0.0) {
            bail!("task cpus: must be > 0");
        }
        if !(self.task_mem.is_finite() && self.task_mem > 0.0) {
            bail!("task mem: must be > 0");
        }
        let resources = Resources::parse(&self.agent_resources)
            .with_context(|| format!("agent resources: '{}'", self.agent_resources))?;
        // Each instance takes one host port too.
        let ports: usize = resources
            .to_vec()
            .iter()
            .filter(|r| r.name == "ports")
            .filter_map(|r| r.ranges.as_ref())
            .flat_map(|r| r.range.iter())
            .map(|r| (r.end.saturating_sub(r.begin) + 1) as usize)
            .sum();
        let per_agent = tasks_fitting(&resources, self.task_cpus, self.task_mem).min(ports);
        let capacity = per_agent.saturating_mul(self.agents);
        let largest = [
            self.instances + self.group_apps,
            self.apps.saturating_mul(self.tasks_per_app),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        if capacity < largest {
            bail!(
                "--agents: {largest} instances do not fit on {} agents ({per_agent} per agent)",
                self.agents
            );
        }
        if self.agents.div_ceil(self.connections()) > MAX_AGENTS_PER_CONNECTION {
            bail!("--agents: too many agents per connection");
        }
        if let MasterTarget::Spawn { args, .. } = &self.master {
            crate::target::spawn_address(args)?;
        }
        Ok(resources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_flag() {
        let args = MarathonBenchArgs::new(MasterTarget::InProcess);
        args.validate().expect("valid");
        assert_eq!(args.connections(), 2);
        let mut bad = args.clone();
        bad.clients = 0;
        let e = bad.validate().expect_err("no clients");
        assert!(e.to_string().starts_with("--clients"), "{e}");
        let mut bad = args;
        bad.agents = 2;
        let e = bad.validate().expect_err("does not fit");
        assert!(e.to_string().starts_with("--agents"), "{e}");
    }
}
