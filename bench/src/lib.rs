//! Benchmarks that report figures: the master under emulated agents and
//! frameworks (`agora bench master --agents N --frameworks F --tasks T`).
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
//! Modules: `args` (parameters and validation), `target` (the master under
//! test and its memory), `agents` and `frameworks` (the emulated parties),
//! `metrics` (the HTTP snapshot and bounded waits), `master_bench` (the
//! phases), `report` (the figures).
//!
//! `agora bench agent --tasks N` ([`run_agent_bench`], in `agent_bench/`)
//! launches N `sleep` tasks on one real agent and times them beside a bare
//! `fork/exec` of the same command.

mod agent_bench;
mod agents;
mod args;
mod frameworks;
mod master_bench;
mod metrics;
mod report;
mod target;

pub use agent_bench::{
    run_agent_bench, AgentBenchArgs, AgentBenchReport, LatencyFigures, ShimFigures, TASK_COMMAND,
};
pub use args::{
    free_port, MasterBenchArgs, MasterTarget, DEFAULT_AGENTS_PER_CONNECTION,
    DEFAULT_AGENT_RESOURCES, MAX_AGENTS_PER_CONNECTION,
};
pub use master_bench::run_master_bench;
pub use metrics::AllocationStats;
pub use report::{
    LaunchFigures, MasterBenchReport, MemoryFigures, RegistrationFigures, SteadyFigures,
    SubscriptionFigures,
};
pub use target::MemoryReading;
