//! ZooKeeper implementations of [`Election`](crate::Election),
//! [`Detector`](crate::Detector) and [`Store`](crate::Store).
//!
//! How the parts fit:
//!
//! * [`ZkUrl`] parses Mesos' `zk://[user:password@]host:port,.../path`;
//! * [`ZkClient`] owns the connection: one live session at a time, replaced
//!   by a new one when it expires, digest credentials sent on each, and the
//!   ACLs of what we create (open without credentials, creator-all with);
//! * [`ZkElection`] and [`ZkDetector`] share the URL's path as the group
//!   folder, laid out as Mesos does (ephemeral sequential `json.info_`
//!   nodes holding MasterInfo JSON, lowest leads), so Mesos tools find our
//!   leader; nothing else is ever created in that folder;
//! * [`ZkStore`] keeps keys as znodes under a root of its own, never the
//!   group folder.
//!
//! [`ZkCoordination`] builds all of them from one URL for the binary
//! (`--zk zk://...`, `--master zk://...`).

mod client;
mod detector;
mod election;
mod store;
mod url;

use std::time::Duration;

pub use client::{Session, ZkClient, ZkError};
pub use detector::{ZkDetector, DEFAULT_DETECT_TIMEOUT};
pub use election::{ZkElection, NODE_PREFIX};
pub use store::{ZkStore, MAX_VALUE_BYTES};
pub use url::{Credentials, UrlError, ZkUrl, DEFAULT_PORT, DEFAULT_SESSION_TIMEOUT};

/// Errors building coordination from a `zk://` URL.
#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    /// The URL is malformed.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// No session could be opened.
    #[error(transparent)]
    Connect(#[from] ZkError),
}

/// Everything a component needs from one `zk://` URL: an election and a
/// detector on the URL's folder, and stores under roots of its choosing.
#[derive(Debug, Clone)]
pub struct ZkCoordination {
    client: ZkClient,
}

impl ZkCoordination {
    /// Parses `url` and opens a session with `session_timeout`
    /// ([`DEFAULT_SESSION_TIMEOUT`] is Mesos' default).
    pub async fn connect(
        url: &str,
        session_timeout: Duration,
    ) -> Result<ZkCoordination, CoordinationError> {
        let url = ZkUrl::parse(url)?;
        let client = ZkClient::connect(&url, session_timeout).await?;
        Ok(ZkCoordination { client })
    }

    /// Wraps an open client.
    pub fn from_client(client: ZkClient) -> Self {
        ZkCoordination { client }
    }

    /// The shared client.
    pub fn client(&self) -> &ZkClient {
        &self.client
    }

    /// The group folder (the URL's path).
    pub fn group(&self) -> &str {
        &self.client.url().path
    }

    /// An election in the URL's folder.
    pub fn election(&self) -> ZkElection {
        ZkElection::new(self.client.clone(), self.group())
    }

    /// A detector of the leader of the URL's folder.
    pub fn detector(&self) -> ZkDetector {
        ZkDetector::new(self.client.clone(), self.group())
    }

    /// A store under `root`, which must lie outside the group folder (only
    /// election nodes may live there: Mesos tools read its lowest child).
    pub fn store(&self, root: &str) -> Result<ZkStore, UrlError> {
        let group = self.group();
        let inside = root == group || root.starts_with(&format!("{group}/"));
        if !root.starts_with('/') || inside {
            return Err(UrlError::Path {
                path: root.to_string(),
                reason: "a store root must be absolute and outside the election folder",
            });
        }
        Ok(ZkStore::new(self.client.clone(), root))
    }
}
