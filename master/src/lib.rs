//! The Agora master.
//!
//! The master keeps the books of agents, frameworks, tasks and offers, runs
//! the hierarchical DRF [`allocator`], and turns its allocations into
//! resource offers for framework schedulers, which answer with operations
//! (launch tasks) or decline. It speaks:
//!
//! * gRPC: the Scheduler API (a stream per framework), the Agent API (a
//!   stream per agent) and the Operator API;
//! * HTTP: Mesos-shaped `/master/state`, `/metrics/snapshot`, Prometheus
//!   `/metrics`, `/health`, `/version`, `POST /master/teardown`;
//!
//! both on one port. All state lives in one actor ([`actor`]); the APIs
//! ([`api`]) translate requests into its commands. The allocator and launch
//! [`validation`] are pure cores without I/O.

pub mod actor;
pub mod allocator;
pub mod api;
pub mod books;
pub mod config;
pub mod leader;
pub mod metrics;
pub mod registry;
pub mod validation;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use agora_common::shutdown::Shutdown;
use agora_coord::{
    Detector, Election, LocalElection, MemoryStore, StaticDetector, Store, StoreError,
};
use agora_proto::agent::agent_service_server::AgentServiceServer;
use agora_proto::master::operator_server::OperatorServer;
use agora_proto::scheduler::scheduler_server::SchedulerServer;
use agora_proto::{Address, MasterInfo};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use config::{ConfigError, MasterConfig};

/// Largest gRPC message accepted or sent (large ACCEPTs, big offer batches).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Errors starting the master.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The registry could not be read.
    #[error("cannot recover the registry: {0}")]
    Registry(#[from] StoreError),
    /// The port could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A running master.
#[derive(Debug)]
pub struct MasterHandle {
    addr: SocketAddr,
    info: MasterInfo,
    leading: watch::Receiver<Option<api::MasterClient>>,
    join: JoinHandle<()>,
}

impl MasterHandle {
    /// The bound address (gRPC and HTTP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the master advertises about itself.
    pub fn info(&self) -> &MasterInfo {
        &self.info
    }

    /// Whether this master leads now.
    pub fn is_leading(&self) -> bool {
        self.leading.borrow().is_some()
    }

    /// Waits until this master leads.
    pub async fn wait_until_leading(&self) {
        let mut leading = self.leading.clone();
        let _ = leading.wait_for(|l| l.is_some()).await;
    }

    /// Waits until the master has stopped (after shutdown).
    pub async fn join(self) {
        let _ = self.join.await;
    }
}

/// How many connections may wait to be accepted: a thousand frameworks or
/// agents reconnecting at once (after a failover) must not be reset.
const LISTEN_BACKLOG: u32 = 8192;

/// Binds with a deep accept backlog (tokio's `bind` uses 1024).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The IP others should use to reach us.
async fn advertised_ip(config: &MasterConfig, bound: IpAddr) -> IpAddr {
    if let Some(ip) = config.advertise_ip {
        return ip;
    }
    if !bound.is_unspecified() {
        return bound;
    }
    match tokio::net::lookup_host((config.hostname.as_str(), 0)).await {
        Ok(mut addrs) => addrs
            .find(|a| a.is_ipv4())
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Err(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// How a master coordinates with its peers.
#[derive(Clone)]
pub struct Coordination {
    /// Contending for leadership.
    pub election: Arc<dyn Election>,
    /// Where the registry lives.
    pub store: Arc<dyn Store>,
    /// Names the leader while this master stands by.
    pub detector: Arc<dyn Detector>,
}

impl Coordination {
    /// A lone master: it leads at once and keeps its registry in `store`.
    pub fn standalone(store: Arc<dyn Store>) -> Self {
        Coordination {
            election: Arc::new(LocalElection),
            store,
            // A lone master never stands by, so nobody asks it for the leader.
            detector: Arc::new(StaticDetector::new("")),
        }
    }
}

/// Validates the configuration, binds the port and starts serving as a lone
/// master with the registry kept in memory.
pub async fn start(config: MasterConfig, shutdown: Shutdown) -> Result<MasterHandle, MasterError> {
    start_with_store(config, Arc::new(MemoryStore::new()), shutdown).await
}

/// Like [`start`], persisting the registry in `store` and recovering from it.
pub async fn start_with_store(
    config: MasterConfig,
    store: Arc<dyn Store>,
    shutdown: Shutdown,
) -> Result<MasterHandle, MasterError> {
    start_with(config, Coordination::standalone(store), shutdown).await
}

/// Starts a master that contends for leadership through `coordination`,
/// serving as the leader while elected and as a standby otherwise.
pub async fn start_with(
    config: MasterConfig,
    coordination: Coordination,
    shutdown: Shutdown,
) -> Result<MasterHandle, MasterError> {
    config.validate()?;
    std::fs::create_dir_all(&config.work_dir).map_err(|e| ConfigError {
        flag: "--work-dir",
        message: format!("cannot create {}: {e}", config.work_dir.display()),
    })?;
    let bind = SocketAddr::new(config.ip, config.port);
    let listener = listen(bind).map_err(|source| MasterError::Bind { addr: bind, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| MasterError::Bind { addr: bind, source })?;
    let ip = advertised_ip(&config, addr.ip()).await;
    let packed = match ip {
        // Mesos packs the IPv4 address in network byte order into a uint32.
        IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
        IpAddr::V6(_) => 0,
    };
    let pid = format!("master@{ip}:{}", addr.port());
    let info = MasterInfo {
        id: agora_common::ids::new_master_id(),
        ip: packed,
        port: u32::from(addr.port()),
        pid: Some(pid.clone()),
        hostname: Some(config.hostname.clone()),
        version: Some(agora_common::build::MESOS_API_VERSION.to_string()),
        address: Some(Address {
            hostname: Some(config.hostname.clone()),
            ip: Some(ip.to_string()),
            port: i32::from(addr.port()),
        }),
    };
    let (current, leading) = watch::channel(None);
    let leadership = api::Leadership::new(leading.clone(), coordination.detector, info.clone());
    let contender = tokio::spawn(leader::run(
        config,
        info.clone(),
        coordination.election,
        coordination.store,
        current,
        shutdown.clone(),
    ));

    let grpc = tonic::service::Routes::new(
        SchedulerServer::new(api::scheduler::SchedulerService::new(leadership.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
    .add_service(
        AgentServiceServer::new(api::agent::AgentApi::new(leadership.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
    .add_service(OperatorServer::new(api::operator::OperatorService::new(
        leadership.clone(),
    )))
    .into_axum_router();
    let app = grpc.merge(api::http::router(leadership));
    info!(%addr, %pid, "master listening (gRPC and HTTP)");

    let join = tokio::spawn(async move {
        let stop = shutdown.clone();
        // Without TCP_NODELAY, a small message written on a stream whose
        // previous one is not yet acknowledged (a RunTask to an agent, an
        // update to a framework) waits for the peer's delayed ACK: 40 ms
        // per task launch. axum leaves Nagle on unless asked.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            stop.fired().await;
        });
        let server = tokio::spawn(async move { server.await });
        shutdown.fired().await;
        let _ = contender.await;
        // Streams of schedulers and agents stay open from their side; give
        // in-flight requests a moment, then stop serving regardless.
        if tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .is_err()
        {
            warn!("master connections still open at shutdown; closing them");
        }
        info!("master stopped");
    });
    Ok(MasterHandle {
        addr,
        info,
        leading,
        join,
    })
}

/// Runs a master until `shutdown` fires.
pub async fn run(config: MasterConfig, shutdown: Shutdown) -> Result<(), MasterError> {
    let handle = start(config, shutdown).await?;
    handle.join().await;
    Ok(())
}
