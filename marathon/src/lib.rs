//! Agora's bundled Marathon: apps and groups, deployments, the launch queue,
//! and the Marathon REST API v2. It is an ordinary framework: it talks to the
//! master only through `agora-sdk`.
//!
//! [`start`] serves the API at once and contends for leadership; while it
//! leads, the core (see [`core`]) claims the store, loads the stored state,
//! subscribes to the master with the stored framework id and carries out
//! changes. A standby forwards API calls to the leader it detects, and
//! answers 503 while it knows none.
//!
//! A term ends when the election says so (the core is dropped at once, mid
//! write if need be), when the master reports that another instance
//! subscribed as the framework, when a store write fails (a newer leader
//! claimed the store: see [`storage`]), or on `DELETE /v2/leader`. Then the
//! instance forgets the term's state, ends its event streams, leaves the
//! election and contends again.

pub mod api;
pub mod config;
pub mod core;
pub mod deploy;
pub mod error;
pub mod events;
pub mod health;
pub mod model;
pub mod scheduler;
pub mod storage;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use agora_common::shutdown::Shutdown;
use agora_coord::{Detector, Election, LeadershipEvent, MasterInfoJson, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use config::MarathonConfig;

use crate::core::{CoreContext, CoreHandle, SharedState};
use crate::events::EventBus;
use crate::model::AppDefaults;
use crate::storage::Storage;

/// Where Marathon keeps its state under the store's root.
pub const STATE_ROOT: &str = "/state";

/// How Marathon finds the master, elects its leader and stores its state.
#[derive(Clone)]
pub struct Coordination {
    /// Leader election among Marathon instances.
    pub election: Arc<dyn Election>,
    /// Finds the leading Marathon (for standbys to forward to).
    pub leader: Arc<dyn Detector>,
    /// Where state is stored.
    pub store: Arc<dyn Store>,
    /// Finds the leading master.
    pub master: Arc<dyn Detector>,
}

/// A running Marathon.
pub struct MarathonHandle {
    addr: SocketAddr,
    state: SharedState,
    tasks: Vec<JoinHandle<()>>,
}

impl MarathonHandle {
    /// Where the API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether this instance leads and has loaded its state.
    pub fn is_leading(&self) -> bool {
        let st = core::read(&self.state);
        st.leadership.elected && st.ready
    }

    /// Waits until this instance leads and serves.
    pub async fn wait_until_leading(&self) {
        while !self.is_leading() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the API and the leadership loop to stop.
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts Marathon: the API at once, the scheduler whenever elected.
pub async fn start(
    mut config: MarathonConfig,
    coordination: Coordination,
    shutdown: Shutdown,
) -> anyhow::Result<MarathonHandle> {
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|e| anyhow::anyhow!("--http-port: cannot listen on {}: {e}", config.http_addr))?;
    let addr = listener.local_addr()?;
    config.http_addr = addr;
    let state: SharedState = Arc::new(RwLock::new(core::State::default()));
    let storage = Arc::new(Storage::new(
        coordination.store.clone(),
        STATE_ROOT,
        config.zk_max_versions,
    ));
    let events = EventBus::new();
    let defaults = AppDefaults {
        role: config.mesos_role.clone(),
    };
    let (core_handle, commands) = CoreHandle::channel();
    let (abdicate_tx, abdicate_rx) = mpsc::channel(1);
    let probe_stats = Arc::<health::ProbeStats>::default();
    let api_ctx = api::ApiContext {
        config: config.clone(),
        defaults: defaults.clone(),
        state: state.clone(),
        core: core_handle,
        storage: storage.clone(),
        events: events.clone(),
        abdicate: abdicate_tx,
        proxy: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()?,
        shutdown: shutdown.clone(),
        renders: Arc::default(),
        probe_stats: probe_stats.clone(),
    };
    let mut api_shutdown = shutdown.clone();
    let api = tokio::spawn(api::serve(api_ctx, listener, async move {
        api_shutdown.wait().await
    }));
    let core_ctx = CoreContext {
        config: config.clone(),
        defaults,
        storage,
        state: state.clone(),
        events,
        master: coordination.master.clone(),
        probe_stats,
    };
    let leadership = tokio::spawn(lead(
        core_ctx,
        coordination,
        commands,
        abdicate_rx,
        shutdown,
    ));
    info!(%addr, "Marathon API listening");
    Ok(MarathonHandle {
        addr,
        state,
        tasks: vec![api, leadership],
    })
}

/// The info Marathon announces in its election group: Mesos' MasterInfo
/// JSON shape, so the same detectors find the leading Marathon. The address
/// is `--hostname` (what `/v2/leader` shows and standbys connect to).
fn election_info(config: &MarathonConfig) -> Vec<u8> {
    MarathonInfo::new(
        &uuid::Uuid::new_v4().to_string(),
        &config.hostname,
        &config.hostname,
        config.http_addr.port(),
    )
    .to_bytes()
}

type MarathonInfo = MasterInfoJson;

/// Contends for leadership, runs the core while elected, follows the leader otherwise.
///
/// Losing leadership drops the core at once: whatever it was doing (a store
/// write, a call to the master) is cancelled at its next await, so nothing
/// is written after this instance learns it no longer leads (and what is
/// already on its way is fenced off by the store, see [`storage`]). Shutdown
/// and abdication stop it gracefully instead: it still leads meanwhile.
async fn lead(
    ctx: CoreContext,
    coordination: Coordination,
    mut commands: mpsc::Receiver<Command>,
    mut abdicate: mpsc::Receiver<()>,
    mut shutdown: Shutdown,
) {
    let own = format!("{}:{}", ctx.config.hostname, ctx.config.http_addr.port());
    let _follower = AbortOnDrop(tokio::spawn(follow_leader(
        coordination.leader.clone(),
        ctx.state.clone(),
        own.clone(),
    )));
    loop {
        let mut leadership = coordination
            .election
            .contend(election_info(&ctx.config))
            .await;
        // Wait to be elected.
        loop {
            if *leadership.borrow_and_update() == LeadershipEvent::Elected {
                break;
            }
            tokio::select! {
                _ = shutdown.wait() => return,
                changed = leadership.changed() => if changed.is_err() {
                    warn!("the election ended; contending again");
                    break;
                },
                // Not leading: nothing to abdicate; drop the request.
                Some(()) = abdicate.recv() => {}
                // Commands reach only a leader; answer them as unavailable.
                Some(command) = commands.recv() => drop(command),
            }
        }
        if *leadership.borrow() != LeadershipEvent::Elected {
            continue;
        }
        info!("elected as the leading Marathon");
        {
            let mut st = core::write_state(&ctx.state);
            st.leadership.elected = true;
            st.leadership.leader = Some(own.clone());
        }
        let (stop_trigger, stop) = agora_common::shutdown::channel();
        let mut run = Box::pin(core::run(ctx.clone(), &mut commands, stop));
        let mut abdicated = false;
        let mut stopping = false;
        let result = loop {
            tokio::select! {
                result = &mut run => break result,
                changed = leadership.changed() => {
                    if changed.is_err() || *leadership.borrow_and_update() != LeadershipEvent::Elected {
                        warn!("lost leadership; stopping at once");
                        break Ok(());
                    }
                }
                _ = shutdown.wait(), if !stopping => {
                    stopping = true;
                    stop_trigger.fire();
                }
                Some(()) = abdicate.recv(), if !stopping => {
                    info!("abdicating");
                    abdicated = true;
                    stopping = true;
                    stop_trigger.fire();
                }
            }
        };
        // Cancels the core if it still runs (leadership lost).
        drop(run);
        {
            let mut st = core::write_state(&ctx.state);
            core::reset(&mut st);
            st.leadership.elected = false;
            if st.leadership.leader.as_deref() == Some(own.as_str()) {
                st.leadership.leader = None;
            }
        }
        // Clients of this term's streams reconnect and find the next leader.
        ctx.events.end_streams();
        if let Err(e) = result {
            warn!(error = %e, "the scheduler stopped; stepping down");
        }
        // Leave the election (dropping the watch withdraws the candidacy).
        drop(leadership);
        if shutdown.is_fired() {
            return;
        }
        // After abdicating, give another instance time to take over.
        let pause = if abdicated {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(500)
        };
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

use crate::core::Command;

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often an instance looks up the leader.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// How long one look-up may take; past it, no leader is known.
const DETECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Keeps `leadership.leader` current while this instance does not lead:
/// the leader the detector finds now, or `None` while there is none (a
/// standby then answers 503 rather than forwarding to a leader that is gone).
async fn follow_leader(detector: Arc<dyn Detector>, state: SharedState, own: String) {
    let mut previous: Option<String> = None;
    loop {
        // `detect(None)` answers at once whenever somebody leads; it waits
        // only while nobody does, which the timeout turns into "unknown".
        let detected = match tokio::time::timeout(DETECT_TIMEOUT, detector.detect(None)).await {
            Ok(Ok(leader)) => Some(leader),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "no leading Marathon known");
                None
            }
            Err(_) => None,
        };
        // Our own address while not leading is our node of a term that has
        // not started yet or has ended: nobody else to forward to.
        let detected = detected.filter(|l| *l != own);
        let following = {
            let mut st = core::write_state(&state);
            let following = !st.leadership.elected;
            if following {
                st.leadership.leader = detected.clone();
            }
            following
        };
        if following && detected != previous {
            match &detected {
                Some(leader) => info!(%leader, "following the leading Marathon"),
                None => info!("no leading Marathon known"),
            }
            previous = detected;
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}
