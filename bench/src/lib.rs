//! Benchmarks that report figures: the master under emulated agents and
//! frameworks (`agora bench master --agents N --frameworks F --tasks T`),
//! and a leader failover through ZooKeeper (`agora bench failover`).
//!
//! [`run_master_bench`] starts (or finds) a master — as a child process, so
//! that its memory is measured alone, or in-process for smoke tests — and
//! drives it through real gRPC streams in five phases:
//!
//! 1. **registration**: N emulated agents,
//!    each its own `AgentService.Attach` stream, multiplexed over a few
//!    HTTP/2 connections;
//! 2. **subscription**: F frameworks through the SDK, subscribed suppressed;
//! 3. **launch**: the frameworks revive and launch T tasks on their offers;
//!    the agents report each task running at once, the SDK acknowledges it
//!    and the acknowledgement comes back to the agent;
//! 4. **steady state**: every framework revived and declining without a
//!    filter, so each allocation cycle sees every agent's free resources;
//! 5. **memory**: the master's RSS read from `/proc` between phases.
//!
//! What the emulated parties see is counted on our side; what the master
//! believes (agents active, tasks running, allocation latency) is read from
//! its `/metrics/snapshot`, as an operator would. The result is a
//! [`MasterBenchReport`]: JSON through `serde`, and a [`table`](MasterBenchReport::table).
//!
//! [`run_failover_bench`] spawns several masters electing through ZooKeeper
//! (spawned for the run, or given), brings agents, frameworks and tasks up
//! with both fleets following the leader through a ZooKeeper detector,
//! SIGKILLs the leader and times (a) the election of the next one, (b) every
//! agent reregistered with it, (c) every framework resubscribed and offered
//! resources by it; plus its memory and the registry's size in ZooKeeper.
//! The result is a [`FailoverBenchReport`].
//!
//! Modules: `args` (parameters and validation), `target` (the master under
//! test and its memory), `agents` and `agent` (the emulated agents: the
//! fleet and its link to the leader, one agent), `frameworks` (the SDK
//! frameworks), `metrics` (the HTTP snapshot and bounded waits),
//! `master_bench` (the phases), `report` (the figures); for failover,
//! `zookeeper` (spawned or given), `cluster` (the masters and the registry),
//! `failover_args`, `failover_bench`, `failover_report`; for Marathon,
//! `marathon_args`, `marathon_bench`, `marathon_report`.

//!
//! `agora bench marathon` ([`run_marathon_bench`]) drives the bundled
//! Marathon (in this process) against a spawned master and emulated agents
//! through its REST API: an app scaled up, many apps in one group, a read
//! load on `/v2/apps?embed=apps.tasks`, and a failover to a new instance.
//!
//! `agora bench agent --tasks N` ([`run_agent_bench`], in `agent_bench/`)
//! launches N `sleep` tasks on one real agent and times them beside a bare
//! `fork/exec` of the same command.
//!
//! `agora bench health` ([`run_health_bench`], in `health_bench/`) measures
//! health checks at scale: real tasks checked by their shims, `MESOS_HTTP`
//! checks on emulated agents that run the agent's check code
//! (`agent_checks`), and Marathon's own `HTTP` checks; CPU per party and the
//! time from a task turning sick to its TASK_KILLED. `cpu` reads CPU time
//! from `/proc`.
//!
//! `agora bench docker` ([`run_docker_bench`], in `docker_bench/`) starts N
//! Docker containers through Marathon on one real agent, beside `docker run
//! -d` (one at a time and in a loop) and Docker Swarm mode on the same
//! engine and image.

mod agent;
mod agent_bench;
mod agent_checks;
mod agents;
mod args;
mod cluster;
mod cpu;
mod docker_bench;
mod failover_args;
mod failover_bench;
mod failover_report;
mod frameworks;
mod health_bench;
mod marathon_args;
mod marathon_bench;
mod marathon_report;
mod master_bench;
mod metrics;
mod report;
mod spawned;
mod target;
mod zookeeper;

pub use agent_bench::{
    run_agent_bench, AgentBenchArgs, AgentBenchReport, CheckFigures, CpuFigures, LatencyFigures,
    ShimFigures, TASK_COMMAND,
};
pub use args::{
    free_port, MasterBenchArgs, MasterTarget, DEFAULT_AGENTS_PER_CONNECTION,
    DEFAULT_AGENT_RESOURCES, MAX_AGENTS_PER_CONNECTION,
};
pub use cluster::RegistryFigures;
pub use docker_bench::{
    default_work_dir as docker_bench_work_dir, ensure_busybox_image, run_docker_bench,
    BurstFigures, DockerBenchArgs, DockerBenchReport, DockerMemory, SerialFigures,
};
pub use failover_args::{FailoverBenchArgs, REREGISTRATION_TARGET};
pub use failover_bench::run_failover_bench;
pub use failover_report::{FailoverBenchReport, FailoverFigures, FailoverMemory, SetupFigures};
pub use health_bench::{run_health_bench, EmulatedFigures, HealthBenchArgs, HealthBenchReport};
pub use marathon_args::{MarathonBenchArgs, MARATHON_AGENT_RESOURCES};
pub use marathon_bench::run_marathon_bench;
pub use marathon_report::{
    DeployFigures, LatencyMs, MarathonBenchReport, MarathonFailoverFigures, MarathonMemory,
    ReadFigures, TeardownFigures,
};
pub use master_bench::run_master_bench;
pub use metrics::AllocationStats;
pub use report::{
    LaunchFigures, MasterBenchReport, MemoryFigures, RegistrationFigures, SteadyFigures,
    SubscriptionFigures,
};
pub use target::MemoryReading;
