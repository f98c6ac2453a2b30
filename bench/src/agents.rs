//! The fleet of emulated agents (each one is in `agent.rs`) and the link
//! they share to the leading master.
//!
//! Each agent is one tokio task owning one bidirectional gRPC stream, as a
//! real agent would, but the streams are multiplexed over a few HTTP/2
//! connections (tonic `Channel`s) so that ten thousand agents cost a hundred
//! file descriptors, not ten thousand. For the same reason the fleet follows
//! the leader once for all its agents: one detector (a ZooKeeper session,
//! not ten thousand), asked again whenever an agent reports its stream
//! lost, and a new set of connections published in a `watch` when the
//! leader changes. A semaphore bounds the registrations
//! in flight, so the master sees a steady stream of Register messages rather
//! than ten thousand at the same instant, and the bench never holds more
//! half-open streams than it can track.
//!
//! What the agents see is counted in [`AgentCounters`] (atomics shared with
//! the bench), which the phases poll: registrations and reregistrations,
//! RunTask messages and the acknowledgements the master forwards from the
//! frameworks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_common::resources::Resources;
use agora_common::shutdown::{self, Shutdown, ShutdownTrigger};
use agora_coord::Detector;
use anyhow::Context;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use crate::agent::Agent;
use crate::agent_checks::AgentChecks;
use crate::health_bench::server::Health;

/// First registrations in flight at once.
const REGISTRATION_WINDOW: usize = 1000;
/// Largest gRPC message accepted or sent (matches the master's limit).
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// How long opening the connections to a master may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the emulated agents have seen, in all.
#[derive(Debug, Default)]
pub(crate) struct AgentCounters {
    /// Agents that received `Registered`.
    pub registered: AtomicU64,
    /// Agents that received `Reregistered` (each counted once).
    pub reregistered: AtomicU64,
    /// Tasks the master told an agent to kill when it reregistered.
    pub killed_on_reregistration: AtomicU64,
    /// Streams lost and retried (failover bench only).
    pub disconnections: AtomicU64,
    /// `RunTask` messages received.
    pub run_tasks: AtomicU64,
    /// `Acknowledgement`s received (forwarded framework ACKNOWLEDGE calls).
    pub acks: AtomicU64,
    /// Agents that gave up: shut down by the master, or (master bench) a
    /// stream that failed or was closed.
    pub failures: AtomicU64,
    /// The latest failure, for the error message.
    last_failure: Mutex<Option<String>>,
}

impl AgentCounters {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn fail(&self, agent: usize, why: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(agent, %why, "emulated agent failed");
        if let Ok(mut last) = self.last_failure.lock() {
            *last = Some(format!("bench-agent-{agent}: {why}"));
        }
    }

    /// Fails if any agent stream failed.
    pub fn check(&self) -> anyhow::Result<()> {
        let failures = Self::get(&self.failures);
        if failures == 0 {
            return Ok(());
        }
        let last = self
            .last_failure
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or_default();
        anyhow::bail!("{failures} emulated agent stream(s) failed; latest: {last}")
    }
}

/// The connections to one master, shared by every agent of the fleet.
#[derive(Debug)]
pub(crate) struct Link {
    /// The master's `host:port`.
    pub addr: String,
    /// HTTP/2 connections to it; agent `i` uses `channels[i % len]`.
    pub channels: Vec<Channel>,
}

impl Link {
    /// Opens `connections` HTTP/2 connections to `addr`.
    async fn open(addr: &str, connections: usize) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .with_context(|| format!("master address '{addr}'"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(60));
        let mut channels = Vec::with_capacity(connections);
        for i in 0..connections.max(1) {
            let channel = endpoint
                .connect()
                .await
                .with_context(|| format!("opening agent connection {i} to {addr}"))?;
            channels.push(channel);
        }
        Ok(Link {
            addr: addr.to_string(),
            channels,
        })
    }
}

/// The running emulated agents.
pub(crate) struct AgentFleet {
    /// What they have seen.
    pub counters: Arc<AgentCounters>,
    stop: ShutdownTrigger,
    tasks: JoinSet<()>,
}

impl AgentFleet {
    /// Finds the leader through `detector` (within `timeout`), opens
    /// `connections` HTTP/2 connections to it and starts `agents` agents
    /// over them (round robin), each registering with `resources`. With
    /// `reconnect`, agents follow the leader when their stream is lost
    /// (reregistering with what they run); without, a lost stream is a failure.
    pub async fn start(
        detector: Arc<dyn Detector>,
        agents: usize,
        connections: usize,
        resources: &Resources,
        reconnect: bool,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Self::launch(
            detector,
            agents,
            connections,
            resources,
            reconnect,
            timeout,
            None,
        )
        .await
    }

    /// Like [`start`](Self::start) (without reconnection), with agents that
    /// run their tasks' health checks against the check server that knows
    /// `health`, each at an address of its own (`agent_checks.rs`).
    pub async fn start_checking(
        detector: Arc<dyn Detector>,
        agents: usize,
        connections: usize,
        resources: &Resources,
        timeout: Duration,
        health: Arc<Health>,
    ) -> anyhow::Result<Self> {
        Self::launch(
            detector,
            agents,
            connections,
            resources,
            false,
            timeout,
            Some(health),
        )
        .await
    }

    async fn launch(
        detector: Arc<dyn Detector>,
        agents: usize,
        connections: usize,
        resources: &Resources,
        reconnect: bool,
        timeout: Duration,
        health: Option<Arc<Health>>,
    ) -> anyhow::Result<Self> {
        let addr = tokio::time::timeout(timeout, detector.detect(None))
            .await
            .map_err(|_| anyhow::anyhow!("no leading master detected within {timeout:?}"))?
            .context("detecting the leading master")?;
        let link = Arc::new(Link::open(&addr, connections).await?);
        let (publish, links) = watch::channel(link.clone());
        let counters = Arc::new(AgentCounters::default());
        let (stop, stopped) = shutdown::channel();
        let lost = Arc::new(Notify::new());
        let mut tasks = JoinSet::new();
        tasks.spawn(follow(
            detector,
            connections,
            link,
            publish,
            lost.clone(),
            stopped.clone(),
        ));
        let window = Arc::new(Semaphore::new(REGISTRATION_WINDOW));
        let resources = resources.to_vec();
        for index in 0..agents {
            let agent = Agent {
                index,
                counters: counters.clone(),
                stop: stopped.clone(),
                resources: resources.clone(),
                reconnect,
                links: links.clone(),
                lost: lost.clone(),
                id: None,
                tasks: HashMap::new(),
                frameworks: HashMap::new(),
                reregistered: false,
                checks: health.as_ref().map(|h| AgentChecks::new(index, h.clone())),
            };
            tasks.spawn(agent.run(window.clone()));
        }
        Ok(AgentFleet {
            counters,
            stop,
            tasks,
        })
    }

    /// Closes every agent stream and waits (briefly) for the tasks to end.
    pub async fn stop(mut self) {
        self.stop.fire();
        let drained = tokio::time::timeout(Duration::from_secs(5), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
    }
}

/// Follows the leader for the fleet: each time an agent reports its stream
/// lost, asks the detector for a leader other than the current one (a
/// ZooKeeper detector waits a little for a change) and, if there is one,
/// opens connections to it and publishes them.
async fn follow(
    detector: Arc<dyn Detector>,
    connections: usize,
    mut current: Arc<Link>,
    publish: watch::Sender<Arc<Link>>,
    lost: Arc<Notify>,
    stop: Shutdown,
) {
    loop {
        tokio::select! {
            _ = stop.fired() => return,
            _ = lost.notified() => {}
        }
        let found = tokio::select! {
            _ = stop.fired() => return,
            found = detector.detect(Some(&current.addr)) => found,
        };
        let addr = match found {
            Ok(addr) if addr != current.addr => addr,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "no leader detected yet");
                continue;
            }
        };
        match Link::open(&addr, connections).await {
            Ok(link) => {
                tracing::info!(master = %addr, "emulated agents follow the new leader");
                current = Arc::new(link);
                publish.send_replace(current.clone());
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect to the new leader yet"),
        }
    }
}
