//! Leader detection over ZooKeeper: the lowest `json.info_` child of the
//! group folder is the leader, and its data is MasterInfo JSON.
//!
//! This is what Mesos-DNS and pymesos read too, so the JSON shape is
//! Mesos': `{"id","pid","hostname","port","version","address":{...},"ip"}`.
//! Waiting uses a child watch on the folder (or an existence watch while
//! the folder is missing), bounded by the detector's timeout.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use zookeeper_client::{Error as ZkErr, OneshotWatcher};

use super::client::ZkClient;
use super::election::{election_nodes, NODE_PREFIX};
use crate::detector::{Detector, DetectorError};
use crate::master_info::MasterInfoJson;

/// Follows the leader of a ZooKeeper election group.
#[derive(Debug, Clone)]
pub struct ZkDetector {
    client: ZkClient,
    group: String,
    timeout: Duration,
}

/// How long `detect(previous)` waits for a leader other than `previous`
/// before handing `previous` back because it still leads.
pub const SAME_LEADER_WAIT: Duration = Duration::from_secs(2);

/// How long [`Detector::detect`] waits for a (new) leader by default.
pub const DEFAULT_DETECT_TIMEOUT: Duration = Duration::from_secs(30);

impl ZkDetector {
    /// A detector of the leader of `group` (an absolute path such as `/agora`).
    pub fn new(client: ZkClient, group: impl Into<String>) -> Self {
        ZkDetector {
            client,
            group: group.into(),
            timeout: DEFAULT_DETECT_TIMEOUT,
        }
    }

    /// Bounds how long `detect` waits for a (new) leader.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The current leader's info, without waiting (`None`: no leader).
    pub async fn leader_info(&self) -> Result<Option<MasterInfoJson>, DetectorError> {
        Ok(self.read_leader(false).await?.0.map(|(_, info)| info))
    }

    /// The lowest election node and its parsed data, and a watch on the
    /// folder's children when `watch` is asked.
    async fn read_leader(
        &self,
        watch: bool,
    ) -> Result<(Option<(String, MasterInfoJson)>, Option<OneshotWatcher>), DetectorError> {
        let zk = self.client.session().client;
        let unavailable = |e: ZkErr| DetectorError::Unavailable(format!("{}: {e}", self.group));
        loop {
            let (children, watcher) = if watch {
                match zk.list_and_watch_children(&self.group).await {
                    Ok((children, w)) => (children, Some(w)),
                    // No folder yet: wait for it to appear.
                    Err(ZkErr::NoNode) => match zk.check_and_watch_stat(&self.group).await {
                        Ok((None, w)) => (Vec::new(), Some(w)),
                        Ok((Some(_), _)) => continue,
                        Err(e) => return Err(unavailable(e)),
                    },
                    Err(e) => return Err(unavailable(e)),
                }
            } else {
                match zk.list_children(&self.group).await {
                    Ok(children) => (children, None),
                    Err(ZkErr::NoNode) => (Vec::new(), None),
                    Err(e) => return Err(unavailable(e)),
                }
            };
            let Some((lowest, _)) = election_nodes(children).into_iter().next() else {
                return Ok((None, watcher));
            };
            let path = format!("{}/{lowest}", self.group);
            let data = match zk.get_data(&path).await {
                Ok((data, _)) => data,
                Err(ZkErr::NoNode) => continue, // the leader left meanwhile
                Err(e) => return Err(unavailable(e)),
            };
            let info = serde_json::from_slice::<MasterInfoJson>(&data).map_err(|e| {
                DetectorError::BadLeaderInfo {
                    node: path.clone(),
                    reason: e.to_string(),
                }
            })?;
            return Ok((Some((lowest, info)), watcher));
        }
    }
}

#[async_trait]
impl Detector for ZkDetector {
    /// The leader's `host:port`. With `previous` (an address that just
    /// failed), waits a little for a leader at another address: if the same
    /// master still leads after [`SAME_LEADER_WAIT`], it is returned anyway
    /// (its connection failed for another reason, e.g. it was not serving
    /// yet), so a caller never sticks to waiting for a change that is not coming.
    async fn detect(&self, previous: Option<&str>) -> Result<String, DetectorError> {
        let deadline = Instant::now() + self.timeout;
        let same_deadline = Instant::now() + SAME_LEADER_WAIT.min(self.timeout);
        loop {
            let (leader, watcher) = match self.read_leader(true).await {
                Ok(found) => found,
                Err(DetectorError::Unavailable(why)) => {
                    // Connection loss or a session being replaced: retry soon.
                    if Instant::now() + Duration::from_millis(100) >= deadline {
                        return Err(DetectorError::Unavailable(why));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let seen = match leader {
                Some((node, info)) => {
                    let address = info
                        .host_port()
                        .ok_or_else(|| DetectorError::BadLeaderInfo {
                            node: format!("{}/{node}", self.group),
                            reason: "neither address.ip nor hostname".to_string(),
                        })?;
                    if previous != Some(address.as_str()) || Instant::now() >= same_deadline {
                        return Ok(address);
                    }
                    format!("leader still at {address}")
                }
                None => format!("no {NODE_PREFIX} node in {}", self.group),
            };
            let Some(watcher) = watcher else {
                return Err(DetectorError::NoLeader(seen));
            };
            // While the old leader's node is still there, wake up in time to
            // hand it back; otherwise wait for any change up to the timeout.
            let still_there = seen.starts_with("leader still at");
            let until = if still_there { same_deadline } else { deadline };
            if tokio::time::timeout_at(until, watcher.changed())
                .await
                .is_err()
                && !still_there
            {
                return Err(DetectorError::NoLeader(format!(
                    "{seen} after {:?}",
                    self.timeout
                )));
            }
        }
    }
}
