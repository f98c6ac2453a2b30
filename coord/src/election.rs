//! Leader election: contending for leadership and learning when it is lost.

use async_trait::async_trait;
use tokio::sync::watch;

/// What a contender learns about its own leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadershipEvent {
    /// This contender leads; it may act as leader.
    Elected,
    /// This contender does not lead (or lost its session): stop acting as leader at once.
    NotLeader,
}

/// Contending for leadership. `contend` announces `info` (the MasterInfo
/// JSON for masters) and returns a watch of this contender's leadership.
#[async_trait]
pub trait Election: Send + Sync + 'static {
    /// Joins the election with `info`, returning a watch that follows leadership.
    async fn contend(&self, info: Vec<u8>) -> watch::Receiver<LeadershipEvent>;
}

/// Election for a single process (`agora local`, a master without
/// ZooKeeper): the one contender leads at once.
#[derive(Debug, Default)]
pub struct LocalElection;

#[async_trait]
impl Election for LocalElection {
    async fn contend(&self, _info: Vec<u8>) -> watch::Receiver<LeadershipEvent> {
        let (tx, rx) = watch::channel(LeadershipEvent::Elected);
        // The sole contender leads forever; keep the sender alive with the receiver.
        std::mem::forget(tx);
        rx
    }
}
