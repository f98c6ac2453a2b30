//! Which actor the APIs talk to: this master's while it leads, none while it
//! stands by. A standby answers gRPC with UNAVAILABLE naming the leader (in
//! the message and the `agora-leader` metadata) and HTTP with the leader's
//! address, so clients find their way without guessing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agora_coord::Detector;
use agora_proto::MasterInfo;
use tokio::sync::watch;
use tonic::metadata::MetadataValue;
use tonic::Status;

use super::MasterClient;

/// How long a standby waits for the detector when naming the leader.
const DETECT_WAIT: Duration = Duration::from_millis(500);

/// How long a detected leader address is reused. After a failover thousands
/// of agents and frameworks knock at once; asking ZooKeeper for each
/// refusal would load it and this master exactly when both are busiest.
const LEADER_CACHE: Duration = Duration::from_millis(250);

/// When the leader was last detected, and where it was (`None`: unknown).
type Detection = (Instant, Option<String>);

/// The current leadership, shared by every API handler.
#[derive(Clone)]
pub struct Leadership {
    current: watch::Receiver<Option<MasterClient>>,
    detector: Arc<dyn Detector>,
    info: MasterInfo,
    /// The last detection: when, and what it found.
    cached: Arc<Mutex<Option<Detection>>>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("leading", &self.is_leading())
            .finish_non_exhaustive()
    }
}

impl Leadership {
    /// Follows `current` (set while this master leads); `detector` names the
    /// leader otherwise.
    pub fn new(
        current: watch::Receiver<Option<MasterClient>>,
        detector: Arc<dyn Detector>,
        info: MasterInfo,
    ) -> Self {
        Leadership {
            current,
            detector,
            info,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// This master's own info.
    pub fn info(&self) -> &MasterInfo {
        &self.info
    }

    /// Whether this master leads now.
    pub fn is_leading(&self) -> bool {
        self.current.borrow().is_some()
    }

    /// This master's actor while it leads.
    pub fn client(&self) -> Option<MasterClient> {
        self.current.borrow().clone()
    }

    /// The leader's `host:port`, if known (this master's own while it leads).
    pub async fn leader_address(&self) -> Option<String> {
        let own = self.own_address();
        if self.is_leading() {
            return Some(own);
        }
        let fresh = |cache: &Option<Detection>| match cache {
            Some((at, found)) if at.elapsed() < LEADER_CACHE => Some(found.clone()),
            _ => None,
        };
        // A poisoned lock only means a panic elsewhere mid-update of a plain value.
        if let Some(found) = fresh(&self.cached.lock().unwrap_or_else(|e| e.into_inner())) {
            return found;
        }
        let detected = tokio::time::timeout(DETECT_WAIT, self.detector.detect(None)).await;
        let found = match detected {
            // Our own address while not serving: elected, still recovering.
            Ok(Ok(address)) if address != own => Some(address),
            _ => None,
        };
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), found.clone()));
        found
    }

    /// `ip:port` of this master.
    pub fn own_address(&self) -> String {
        let ip = self
            .info
            .address
            .as_ref()
            .and_then(|a| a.ip.clone())
            .unwrap_or_else(|| "127.0.0.1".into());
        format!("{ip}:{}", self.info.port)
    }

    /// The actor, or the UNAVAILABLE status a standby answers with.
    pub async fn client_or_redirect(&self) -> Result<MasterClient, Status> {
        if let Some(client) = self.client() {
            return Ok(client);
        }
        let leader = self.leader_address().await;
        let message = match &leader {
            Some(l) => format!("this master is not the leader; the leading master is at {l}"),
            None => "this master is not the leader and no leader is known".to_string(),
        };
        let mut status = Status::unavailable(message);
        if let Some(value) = leader.and_then(|l| MetadataValue::try_from(l).ok()) {
            status.metadata_mut().insert("agora-leader", value);
        }
        Err(status)
    }
}
