//! Leader detection: where is the leading master now?

use async_trait::async_trait;

/// Errors from a [`Detector`].
#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    /// No leader could be found (yet).
    #[error("no leading master: {0}")]
    NoLeader(String),
    /// The coordination service could not be reached.
    #[error("leader detection unavailable: {0}")]
    Unavailable(String),
    /// The leader announced itself with data that cannot be read.
    #[error("unreadable leader info in '{node}': {reason}")]
    BadLeaderInfo {
        /// The node holding the info.
        node: String,
        /// Why it cannot be read.
        reason: String,
    },
}

/// Follows the leading master. Clients call [`Detector::detect`] when they
/// (re)connect; a ZooKeeper detector waits for a leader different from
/// `previous` when `previous` is known to be gone.
#[async_trait]
pub trait Detector: Send + Sync + 'static {
    /// The `host:port` of the leading master.
    async fn detect(&self, previous: Option<&str>) -> Result<String, DetectorError>;
}

/// A detector for a master at a fixed address (`--master HOST:PORT`).
#[derive(Debug, Clone)]
pub struct StaticDetector {
    address: String,
}

impl StaticDetector {
    /// Always answers `address`.
    pub fn new(address: impl Into<String>) -> Self {
        StaticDetector {
            address: address.into(),
        }
    }
}

#[async_trait]
impl Detector for StaticDetector {
    async fn detect(&self, _previous: Option<&str>) -> Result<String, DetectorError> {
        Ok(self.address.clone())
    }
}
