//! The leadership loop: contend, and while elected run the master actor.
//!
//! Like Nomad's `establishLeadership`/`revokeLeadership`: on election the
//! master recovers the registry from the store and starts a fresh actor; on
//! losing leadership (its ZooKeeper session gone) it stops the actor at once
//! — no more offers, launches or registry writes — drops every scheduler and
//! agent stream so clients go and find the new leader, and contends again.

use std::sync::Arc;
use std::time::Duration;

use agora_common::shutdown::{self, Shutdown};
use agora_coord::{Election, LeadershipEvent, MasterInfoJson, Store};
use agora_proto::MasterInfo;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::api::MasterClient;
use crate::config::MasterConfig;
use crate::{actor, registry};

/// How long a finished term waits for its registrar to store what is queued.
const REGISTRAR_DRAIN: Duration = Duration::from_secs(5);

/// What the master announces in the election group.
pub fn announcement(info: &MasterInfo) -> Vec<u8> {
    let address = info.address.clone().unwrap_or_default();
    let mut json = MasterInfoJson::new(
        &info.id,
        info.hostname.as_deref().unwrap_or(""),
        address.ip.as_deref().unwrap_or(""),
        info.port as u16,
    );
    json.version = info.version.clone();
    json.to_bytes()
}

/// Contends until `shutdown`, running the actor while elected and
/// publishing it in `current`.
pub async fn run(
    config: MasterConfig,
    info: MasterInfo,
    election: Arc<dyn Election>,
    store: Arc<dyn Store>,
    current: watch::Sender<Option<MasterClient>>,
    shutdown: Shutdown,
) {
    let mut elected = election.contend(announcement(&info)).await;
    loop {
        tokio::select! {
            _ = shutdown.fired() => return,
            r = elected.wait_for(|e| *e == LeadershipEvent::Elected) => if r.is_err() {
                error!("the election ended; this master can no longer lead");
                return;
            }
        }
        let (registry, versions) = match registry::registrar::recover(store.as_ref()).await {
            Ok(r) => r,
            Err(e) => {
                // Without the registry the master cannot lead correctly; retry
                // while still elected.
                error!(error = %e, "cannot recover the registry; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        info!(master_id = %info.id, "elected leading master");
        let (registrar, registrar_task) =
            registry::registrar::spawn(store.clone(), registry.clone(), versions);
        let (revoke, revoked) = shutdown::channel();
        let (tx, rx) = mpsc::channel(65_536);
        let master = actor::Master::new(config.clone(), info.clone(), registry, registrar);
        let actor = tokio::spawn(actor::run(master, rx, revoked));
        current.send_replace(Some(MasterClient::new(tx)));
        let stopping = tokio::select! {
            _ = shutdown.fired() => true,
            r = elected.wait_for(|e| *e == LeadershipEvent::NotLeader) => {
                warn!("lost leadership; stopping at once");
                r.is_err()
            }
        };
        current.send_replace(None);
        revoke.fire();
        let _ = actor.await;
        // The actor held the registrar's handles; let it store what was
        // queued and end before another term starts its own registrar.
        let abort = registrar_task.abort_handle();
        if tokio::time::timeout(REGISTRAR_DRAIN, registrar_task)
            .await
            .is_err()
        {
            warn!("the registrar did not finish in time; stopping it");
            abort.abort();
        }
        if stopping {
            return;
        }
    }
}
