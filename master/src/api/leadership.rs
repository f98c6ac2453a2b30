//! Which actor the APIs talk to: this master's while it leads, none while it
//! stands by. A standby answers gRPC with UNAVAILABLE naming the leader (in
//! the message and the `agora-leader` metadata) and HTTP with the leader's
//! address, so clients find their way without guessing.

use std::sync::Arc;
use std::time::Duration;

use agora_coord::Detector;
use agora_proto::MasterInfo;
use tokio::sync::watch;
use tonic::metadata::MetadataValue;
use tonic::Status;

use super::MasterClient;

/// How long a standby waits for the detector when naming the leader.
const DETECT_WAIT: Duration = Duration::from_millis(500);

/// The current leadership, shared by every API handler.
#[derive(Clone)]
pub struct Leadership {
    current: watch::Receiver<Option<MasterClient>>,
    detector: Arc<dyn Detector>,
    info: MasterInfo,
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
        let detected = tokio::time::timeout(DETECT_WAIT, self.detector.detect(None)).await;
        match detected {
            Ok(Ok(address)) if address != own => Some(address),
            _ => None,
        }
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
