//! Agora's shared vocabulary, free of I/O.
//!
//! * [`resources`]: resource arithmetic over the wire `Resource` type (scalars,
//!   ranges, sets, roles) and Mesos' `--resources` / `--attributes` flag syntax;
//! * [`task_state`]: which task states are terminal and which transitions are legal;
//! * [`ids`]: id generation for frameworks, agents, offers;
//! * [`backoff`]: exponential backoff for retries;
//! * [`build`]: the API levels Agora reports and its own version and commit;
//! * [`shutdown`]: a cloneable shutdown signal handed to every component's `run`;
//! * [`telemetry`]: tracing set-up, used only by binaries and tests.

pub mod backoff;
pub mod build;
pub mod ids;
pub mod resources;
pub mod shutdown;
pub mod task_state;
pub mod telemetry;
pub mod time;

/// Agora's own version, purely numeric (also what agents and masters
/// exchange); what Mesos and Marathon clients see is in [`build`].
pub const VERSION: &str = build::AGORA_VERSION;
