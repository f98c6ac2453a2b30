//! The errors `start` and `run` return.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;

/// Why the agent could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A flag is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The work dir cannot be created.
    #[error("--work_dir: cannot create {}: {source}", path.display())]
    WorkDir {
        /// The work dir.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint under the work dir cannot be read or written.
    #[error("--work_dir: checkpoint: {0}")]
    Checkpoint(#[source] std::io::Error),
    /// The HTTP address cannot be bound.
    #[error("--ip/--port: cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The master told this agent to shut down (e.g. it was marked gone).
    #[error("agent shut down by the master: {message}")]
    ShutdownByMaster {
        /// The master's explanation.
        message: String,
    },
    /// The agent's own task panicked or was cancelled.
    #[error("agent task failed: {0}")]
    Crashed(String),
}
