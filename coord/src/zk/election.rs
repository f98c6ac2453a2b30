//! Leader election over ZooKeeper, laid out as Mesos lays it out.
//!
//! Each contender joins the group folder (the URL's path, e.g. `/agora`) as
//! an ephemeral sequential node `json.info_NNNNNNNNNN` holding its info
//! (MasterInfo JSON); the lowest sequence leads. A contender watches only
//! its predecessor (no herd effect when a node goes) and, while it leads,
//! its own node.
//!
//! Fencing: a contender reports [`LeadershipEvent::NotLeader`] as soon as
//! its connection is lost, not when the session is known to be expired.
//! The client notices silence after 2/5 of the session timeout, while the
//! ensemble expires the session (and lets another contender lead) only
//! after the whole timeout, so two leaders never overlap. A connection that
//! comes back within the session finds the node still there and leads again;
//! an expired session is replaced (see [`ZkClient`]) and the contender joins
//! again with a new node, so a master can lead again without a restart.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tracing::{debug, info, warn};
use zookeeper_client::{Client, CreateMode, Error as ZkErr, SessionState};

use super::client::{is_terminal, Session, ZkClient};
use crate::election::{Election, LeadershipEvent};

/// The name prefix of election nodes; ZooKeeper appends a 10-digit sequence.
pub const NODE_PREFIX: &str = "json.info_";

/// Elects one leader among contenders sharing a ZooKeeper group folder.
#[derive(Debug, Clone)]
pub struct ZkElection {
    client: ZkClient,
    group: String,
}

impl ZkElection {
    /// An election in `group` (an absolute path such as `/agora`).
    pub fn new(client: ZkClient, group: impl Into<String>) -> Self {
        ZkElection {
            client,
            group: group.into(),
        }
    }
}

#[async_trait]
impl Election for ZkElection {
    /// Joins the group with `info`. The contender stays in the group until
    /// every clone of the returned receiver is dropped; then it leaves
    /// (deletes its node) so that another contender leads at once.
    async fn contend(&self, info: Vec<u8>) -> watch::Receiver<LeadershipEvent> {
        let (tx, rx) = watch::channel(LeadershipEvent::NotLeader);
        let contender = Contender {
            client: self.client.clone(),
            group: self.group.clone(),
            info,
            tx,
            node: None,
        };
        tokio::spawn(contender.run());
        rx
    }
}

/// Sorted election nodes (name, sequence) among a folder's children.
pub(crate) fn election_nodes(children: Vec<String>) -> Vec<(String, u64)> {
    let mut nodes: Vec<(String, u64)> = children
        .into_iter()
        .filter_map(|name| {
            let seq = name.strip_prefix(NODE_PREFIX)?.parse().ok()?;
            Some((name, seq))
        })
        .collect();
    nodes.sort_by_key(|(_, seq)| *seq);
    nodes
}

/// How one round of contending in a session ended.
enum Ended {
    /// Every receiver was dropped: the contender left.
    Stopped,
    /// The session ended: wait for the next one.
    SessionLost,
    /// A transient failure (connection loss, node deleted by someone else).
    Retry(String),
}

struct Contender {
    client: ZkClient,
    group: String,
    info: Vec<u8>,
    tx: watch::Sender<LeadershipEvent>,
    /// Our node and the session generation it belongs to.
    node: Option<(u64, String)>,
}

impl Contender {
    async fn run(mut self) {
        self.contend().await;
        self.leave().await;
    }

    /// Contends, session after session, until every receiver is dropped.
    async fn contend(&mut self) {
        let mut sessions = self.client.sessions();
        let mut retry_delay = Duration::from_millis(50);
        loop {
            let session = sessions.borrow_and_update().clone();
            match self.contend_in(&session).await {
                Ended::Stopped => return,
                Ended::SessionLost => {
                    self.set(LeadershipEvent::NotLeader);
                    let next = sessions.wait_for(|s| s.generation != session.generation);
                    tokio::select! {
                        changed = next => if changed.is_err() { return },
                        _ = self.tx.closed() => return,
                    }
                    retry_delay = Duration::from_millis(50);
                }
                Ended::Retry(why) => {
                    self.set(LeadershipEvent::NotLeader);
                    debug!(group = %self.group, %why, "contending again");
                    tokio::select! {
                        _ = tokio::time::sleep(retry_delay) => {}
                        _ = self.tx.closed() => return,
                    }
                    retry_delay = (retry_delay * 2).min(self.client.session_timeout() / 4);
                }
            }
        }
    }

    fn set(&self, event: LeadershipEvent) {
        self.tx.send_if_modified(|current| {
            let changed = *current != event;
            if changed {
                info!(group = %self.group, ?event, "leadership changed");
            }
            *current = event;
            changed
        });
    }

    /// Our node in this session: the one made earlier in it if it is still
    /// there, else a new one.
    async fn ensure_node(&mut self, zk: &Client, generation: u64) -> Result<String, ZkErr> {
        if let Some((g, name)) = &self.node {
            if *g == generation && zk.check_stat(&self.path(name)).await?.is_some() {
                return Ok(name.clone());
            }
        }
        // A create whose answer was lost may have left a node of ours behind:
        // remove it, or it would lead (or wait in line) as a ghost.
        let prefix = format!("{}/{NODE_PREFIX}", self.group);
        for orphan in zk.list_ephemerals(&self.group).await? {
            if orphan.starts_with(&prefix) {
                match zk.get_data(&orphan).await {
                    Ok((data, _)) if data == self.info => {
                        warn!(node = %orphan, "removing our orphaned election node");
                        match zk.delete(&orphan, None).await {
                            Ok(()) | Err(ZkErr::NoNode) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(_) | Err(ZkErr::NoNode) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let folder = CreateMode::Persistent.with_acls(self.client.acls(true));
        match zk.mkdir(&self.group, &folder).await {
            Ok(()) | Err(ZkErr::NodeExists) => {}
            Err(e) => return Err(e),
        }
        let mode = CreateMode::EphemeralSequential.with_acls(self.client.acls(true));
        let (_, seq) = zk.create(&prefix, &self.info, &mode).await?;
        let name = format!("{NODE_PREFIX}{seq}");
        info!(group = %self.group, node = %name, "joined the election");
        self.node = Some((generation, name.clone()));
        Ok(name)
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.group)
    }

    /// Contends in one session until it ends, the contender stops, or a
    /// transient error asks for a fresh start.
    async fn contend_in(&mut self, session: &Session) -> Ended {
        let zk = &session.client;
        let mut states = zk.state_watcher();
        let failed = |e: ZkErr| {
            if is_terminal(zk.state()) || matches!(e, ZkErr::SessionExpired | ZkErr::ClientClosed) {
                Ended::SessionLost
            } else {
                Ended::Retry(e.to_string())
            }
        };
        // Fencing comes first: never lead while disconnected.
        match states.peek_state() {
            s if is_terminal(s) => return Ended::SessionLost,
            SessionState::Disconnected => {
                self.set(LeadershipEvent::NotLeader);
                if let Some(ended) = self.await_reconnect(&mut states).await {
                    return ended;
                }
            }
            _ => {}
        }
        let ours = match self.ensure_node(zk, session.generation).await {
            Ok(name) => name,
            Err(e) => return failed(e),
        };
        loop {
            let children = match zk.list_children(&self.group).await {
                Ok(children) => children,
                Err(e) => return failed(e),
            };
            let nodes = election_nodes(children);
            let Some(i) = nodes.iter().position(|(name, _)| *name == ours) else {
                return match zk.state() {
                    s if is_terminal(s) => Ended::SessionLost,
                    _ => Ended::Retry(format!("our node {ours} is gone")),
                };
            };
            // The leader watches its own node (deleted by an operator: step
            // down); the others watch their predecessor only.
            let watched = if i == 0 {
                ours.clone()
            } else {
                nodes[i - 1].0.clone()
            };
            let watcher = match zk.check_and_watch_stat(&self.path(&watched)).await {
                Ok((Some(_), watcher)) => watcher,
                Ok((None, _)) => continue, // the predecessor left meanwhile
                Err(e) => return failed(e),
            };
            if states.peek_state() == SessionState::SyncConnected {
                self.set(if i == 0 {
                    LeadershipEvent::Elected
                } else {
                    LeadershipEvent::NotLeader
                });
            }
            tokio::select! {
                _ = watcher.changed() => {}
                _ = self.tx.closed() => return Ended::Stopped,
                state = states.changed() => match state {
                    s if is_terminal(s) => return Ended::SessionLost,
                    SessionState::Disconnected => {
                        self.set(LeadershipEvent::NotLeader);
                        if let Some(ended) = self.await_reconnect(&mut states).await {
                            return ended;
                        }
                    }
                    _ => {}
                },
            }
        }
    }

    /// Waits for the connection to come back (`None`), the session to end,
    /// or the contender to stop.
    async fn await_reconnect(&self, states: &mut zookeeper_client::StateWatcher) -> Option<Ended> {
        warn!(group = %self.group, "zookeeper connection lost; not leading until it is back");
        loop {
            tokio::select! {
                state = states.changed() => match state {
                    s if is_terminal(s) => return Some(Ended::SessionLost),
                    SessionState::Disconnected => {}
                    _ => return None,
                },
                _ = self.tx.closed() => return Some(Ended::Stopped),
            }
        }
    }

    /// Leaves the group: deleting our node lets the next contender lead now
    /// rather than when our session ends (it may be shared and live on).
    async fn leave(&self) {
        let Some((generation, ours)) = &self.node else {
            return;
        };
        let session = self.client.session();
        if session.generation != *generation {
            return; // the node died with its session
        }
        let delete = session.client.delete(&self.path(ours), None);
        match tokio::time::timeout(self.client.session_timeout(), delete).await {
            Ok(Ok(())) | Ok(Err(ZkErr::NoNode)) => info!(node = %ours, "left the election"),
            Ok(Err(e)) => warn!(node = %ours, error = %e, "could not leave the election"),
            Err(_) => warn!(node = %ours, "timed out leaving the election"),
        }
    }
}
