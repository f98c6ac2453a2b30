//! An election group in memory, with the semantics of ZooKeeper's: each
//! contender joins with its info and gets a sequence number; the lowest live
//! sequence leads; a contender leaves when it drops its leadership watch (as
//! an ephemeral node goes with its session). [`MemoryElection`] contends in a
//! group and [`MemoryDetector`] follows its leader, so several masters in
//! one process (tests, benchmarks) fail over exactly as they do through
//! ZooKeeper.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::detector::{Detector, DetectorError};
use crate::election::{Election, LeadershipEvent};
use crate::master_info::MasterInfoJson;

#[derive(Debug, Default)]
struct Members {
    next: u64,
    infos: BTreeMap<u64, Vec<u8>>,
}

/// The shared group.
#[derive(Debug)]
pub struct MemoryGroup {
    members: Mutex<Members>,
    /// Bumped on every join and leave.
    changes: watch::Sender<u64>,
}

impl MemoryGroup {
    /// An empty group.
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryGroup {
            members: Mutex::new(Members::default()),
            changes: watch::channel(0).0,
        })
    }

    fn members(&self) -> std::sync::MutexGuard<'_, Members> {
        // Every critical section leaves the map consistent; a panic elsewhere
        // while holding the lock does not make it unusable.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn join(&self, info: Vec<u8>) -> u64 {
        let seq = {
            let mut m = self.members();
            let seq = m.next;
            m.next += 1;
            m.infos.insert(seq, info);
            seq
        };
        self.changes.send_modify(|c| *c += 1);
        seq
    }

    fn leave(&self, seq: u64) {
        self.members().infos.remove(&seq);
        self.changes.send_modify(|c| *c += 1);
    }

    fn leader(&self) -> Option<(u64, Vec<u8>)> {
        self.members()
            .infos
            .iter()
            .next()
            .map(|(s, i)| (*s, i.clone()))
    }

    /// The leader's info, if anybody leads.
    pub fn leader_info(&self) -> Option<Vec<u8>> {
        self.leader().map(|(_, info)| info)
    }
}

/// Contends in a [`MemoryGroup`].
#[derive(Debug, Clone)]
pub struct MemoryElection {
    group: Arc<MemoryGroup>,
}

impl MemoryElection {
    /// Contends in `group`.
    pub fn new(group: Arc<MemoryGroup>) -> Self {
        MemoryElection { group }
    }
}

#[async_trait]
impl Election for MemoryElection {
    async fn contend(&self, info: Vec<u8>) -> watch::Receiver<LeadershipEvent> {
        let seq = self.group.join(info);
        let (tx, rx) = watch::channel(LeadershipEvent::NotLeader);
        let group = self.group.clone();
        let mut changes = group.changes.subscribe();
        tokio::spawn(async move {
            loop {
                let leads = group.leader().map(|(s, _)| s) == Some(seq);
                tx.send_if_modified(|current| {
                    let next = if leads {
                        LeadershipEvent::Elected
                    } else {
                        LeadershipEvent::NotLeader
                    };
                    std::mem::replace(current, next) != next
                });
                tokio::select! {
                    // The contender is gone: leave, as an ephemeral node would.
                    _ = tx.closed() => break,
                    changed = changes.changed() => if changed.is_err() { break },
                }
            }
            group.leave(seq);
        });
        rx
    }
}

/// Follows the leader of a [`MemoryGroup`].
#[derive(Debug, Clone)]
pub struct MemoryDetector {
    group: Arc<MemoryGroup>,
    wait: Duration,
}

impl MemoryDetector {
    /// Follows `group`'s leader; waits up to `wait` for a (new) leader.
    pub fn new(group: Arc<MemoryGroup>, wait: Duration) -> Self {
        MemoryDetector { group, wait }
    }
}

#[async_trait]
impl Detector for MemoryDetector {
    async fn detect(&self, previous: Option<&str>) -> Result<String, DetectorError> {
        let mut changes = self.group.changes.subscribe();
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut fallback = None;
        loop {
            if let Some(info) = self.group.leader_info() {
                let address = MasterInfoJson::parse(&info)
                    .map_err(|e| DetectorError::NoLeader(e.to_string()))?
                    .host_port()
                    .ok_or_else(|| DetectorError::NoLeader("leader without an address".into()))?;
                if previous != Some(address.as_str()) {
                    return Ok(address);
                }
                fallback = Some(address);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                changed = changes.changed() => if changed.is_err() { break },
            }
        }
        // The same leader after all (its connection failed for another reason).
        fallback.ok_or_else(|| DetectorError::NoLeader("no master has been elected".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(port: u16) -> Vec<u8> {
        MasterInfoJson::new("id", "h", "127.0.0.1", port).to_bytes()
    }

    #[tokio::test]
    async fn lowest_contender_leads_and_the_next_takes_over() {
        let group = MemoryGroup::new();
        let election = MemoryElection::new(group.clone());
        let mut first = election.contend(info(1)).await;
        let mut second = election.contend(info(2)).await;
        first
            .wait_for(|e| *e == LeadershipEvent::Elected)
            .await
            .expect("first leads");
        assert_eq!(*second.borrow_and_update(), LeadershipEvent::NotLeader);
        let detector = MemoryDetector::new(group.clone(), Duration::from_secs(5));
        assert_eq!(detector.detect(None).await.expect("leader"), "127.0.0.1:1");
        drop(first);
        second
            .wait_for(|e| *e == LeadershipEvent::Elected)
            .await
            .expect("second leads");
        assert_eq!(
            detector
                .detect(Some("127.0.0.1:1"))
                .await
                .expect("new leader"),
            "127.0.0.1:2"
        );
    }

    #[tokio::test]
    async fn detecting_without_a_leader_times_out() {
        let detector = MemoryDetector::new(MemoryGroup::new(), Duration::from_millis(50));
        assert!(detector.detect(None).await.is_err());
    }
}
