//! The Agora agent: registers this machine's resources with the leading
//! master and runs the tasks the master sends it, each in a sandbox.
//!
//! How the parts fit:
//!
//! * [`config`]: [`AgentConfig`], validated before anything is bound;
//! * [`host_resources`]: `--resources` completed by auto-detection;
//! * [`master_link`]: the gRPC stream to the master (register, reregister,
//!   ping/pong, reconnect through the detector);
//! * `actor`: the single owner of the agent's state, fed by the link, the
//!   HTTP endpoint and its own workers;
//! * [`tasks`]: the book of tasks and each task's lifecycle enum;
//! * [`status_update`]: the pure core of at-least-once, in-order status
//!   updates; [`status`]: what a container's end means for its task;
//! * [`containerizer`]: the trait between the agent and the processes it
//!   runs: [`containerizer::shim`] (each task under an executor shim that
//!   survives the agent) and [`containerizer::posix`] (plain children, for
//!   agents embedded in tests);
//! * [`executor`]: the executor shim itself (`agora executor`) and its
//!   socket protocol;
//! * [`checkpoint`]: what the agent keeps under `<work_dir>/meta` to recover
//!   after a restart, and the rule of when it does;
//! * [`sandbox`]: Mesos' sandbox layout under the work dir; [`gc`]: their
//!   removal `--gc-delay` after their task is done (earlier under disk
//!   pressure), in a collector task of its own;
//! * [`http`]: `/state`, `/health`, `/version`, `/metrics/snapshot`,
//!   `/monitor/statistics`, `/files/*`;
//! * [`isolation`] and [`fetcher`]: what the executor shim applies and
//!   fetches before a task starts.
//!
//! [`start`] reads the checkpoint and decides (Mesos' rule, see
//! [`checkpoint::decide`]) whether this is the agent of the previous run
//! (same boot, same flags, `--recover=reconnect`: its id, resources and
//! tasks come back, its live containers are found again and it reregisters)
//! or a new one (whatever the previous run left running is killed). It then
//! binds the HTTP port, spawns the actor, the link and the server, and
//! returns an [`AgentHandle`]; [`run`] is `start` followed by
//! [`AgentHandle::join`]. When the [`Shutdown`] fires, the HTTP endpoint stops
//! at once, every task is killed with its grace period, and the master link
//! closes once the actor is done, so the final updates still get out. Only a
//! crash (SIGKILL) leaves tasks running for the next run to recover. A
//! `Shutdown` from the master kills every task the same way, but the master
//! has refused the agent, so those last updates are not sent.

mod actor;
pub mod checkpoint;
pub mod config;
pub mod containerizer;
pub mod error;
pub mod executor;
pub mod fetcher;
pub mod gc;
pub mod host_resources;
pub mod http;
pub mod isolation;
pub mod master_link;
pub mod sandbox;
pub mod status;
pub mod status_update;
pub mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agora_common::resources::Resources;
use agora_proto::agent::AgentCheckpoint;

use agora_common::shutdown::{self, Shutdown};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use config::{AgentConfig, ConfigError};
pub use containerizer::Containerizer;
pub use error::AgentError;

/// A started agent.
#[derive(Debug)]
pub struct AgentHandle {
    http_addr: SocketAddr,
    agent_id: watch::Receiver<Option<String>>,
    task: JoinHandle<Result<(), AgentError>>,
}

impl AgentHandle {
    /// The address the HTTP endpoint is bound to.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The agent's id, once a master registered it.
    pub fn agent_id(&self) -> Option<String> {
        self.agent_id.borrow().clone()
    }

    /// Waits until the agent is registered and returns its id; `None` if the
    /// agent stopped first.
    pub async fn registered(&self) -> Option<String> {
        let mut rx = self.agent_id.clone();
        let id = rx.wait_for(Option::is_some).await.ok()?.clone();
        id
    }

    /// Waits for the agent to stop (after its [`Shutdown`] fired, or the
    /// master shut it down).
    pub async fn join(self) -> Result<(), AgentError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(AgentError::Crashed(e.to_string())),
        }
    }
}

/// How long a new agent waits for the previous run's tasks to die.
const LEFTOVER_KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Validates `config`, recovers or clears the checkpoint, binds the HTTP
/// port and starts the agent with the containerizers it asks for (see
/// [`containerizers`]).
pub async fn start(config: AgentConfig, shutdown: Shutdown) -> Result<AgentHandle, AgentError> {
    config.validate()?;
    let containerizer = containerizers(&config).await?;
    start_with(config, Arc::new(containerizer), shutdown).await
}

/// The containerizers of `--containerizers`, composed: the Mesos one runs
/// tasks under executor shims when `executor_program` is set, else as plain
/// children (POSIX); the Docker one needs the shims and an engine that
/// answers on `--docker-socket`. Without `--containerizers` the agent runs
/// the Mesos one and the Docker one when it can, and says in one log line
/// which, and why not Docker; asked for explicitly, a containerizer that
/// cannot run is an error naming the flag.
pub async fn containerizers(
    config: &AgentConfig,
) -> Result<containerizer::composing::ComposingContainerizer, AgentError> {
    use containerizer::ContainerizerKind as Kind;
    let explicit = config.containerizers.is_some();
    let wanted = config
        .containerizers
        .clone()
        .unwrap_or_else(|| vec![Kind::Mesos, Kind::Docker]);
    let mut members: Vec<(Kind, Arc<dyn Containerizer>)> = Vec::new();
    let mut docker_note = String::new();
    for kind in wanted {
        match kind {
            Kind::Mesos => {
                let native: Arc<dyn Containerizer> = match &config.executor_program {
                    Some(program) => {
                        let (isolation, cgroups) = isolation_setup(config)?;
                        Arc::new(
                            containerizer::shim::ShimContainerizer::new(program, &config.work_dir)
                                .with_isolation(isolation, cgroups),
                        )
                    }
                    None => Arc::new(containerizer::posix::PosixContainerizer::new()),
                };
                members.push((Kind::Mesos, native));
            }
            Kind::Docker => match docker_containerizer(config).await {
                Ok((docker, note)) => {
                    docker_note = note;
                    members.push((Kind::Docker, Arc::new(docker)));
                }
                Err(why) if explicit => return Err(ConfigError::Containerizer(why).into()),
                Err(why) => docker_note = format!(" (no Docker: {why})"),
            },
        }
    }
    let composed = containerizer::composing::ComposingContainerizer::new(members);
    tracing::info!(
        "containerizers: {}{docker_note}",
        Kind::join(&composed.kinds())
    );
    Ok(composed)
}

/// The Docker containerizer, once its engine answered; the text says which
/// engine, for the log line.
async fn docker_containerizer(
    config: &AgentConfig,
) -> Result<(containerizer::docker::DockerContainerizer, String), String> {
    use containerizer::docker::{engine, DockerContainerizer, DockerSettings};
    let Some(program) = &config.executor_program else {
        return Err(
            "Docker containers run under executor shims, and this agent has no executor program"
                .into(),
        );
    };
    let engine = engine::probe(&config.docker_socket)
        .await
        .map_err(|e| format!("{e} (--docker-socket)"))?;
    std::fs::create_dir_all(&config.work_dir).map_err(|e| {
        format!(
            "--work-dir: cannot create {}: {e}",
            config.work_dir.display()
        )
    })?;
    let work_dir =
        std::fs::canonicalize(&config.work_dir).unwrap_or_else(|_| config.work_dir.clone());
    let settings = DockerSettings {
        socket: config.docker_socket.clone(),
        api_version: engine.api_version,
        work_dir: work_dir.display().to_string(),
        cfs_quota: config.cgroups_enable_cfs,
    };
    let note = format!(
        " (Docker {} at {}, API {}.{})",
        engine.version,
        config.docker_socket.display(),
        engine.api_version.major,
        engine.api_version.minor
    );
    Ok((
        DockerContainerizer::new(
            program,
            &config.work_dir,
            engine.client,
            settings,
            config.docker_kill_orphans,
        ),
        note,
    ))
}

/// Detects once what the host allows, checks `--isolation` against it, and
/// logs the isolators in use (and one warning for what is missing).
fn isolation_setup(
    config: &AgentConfig,
) -> Result<
    (
        isolation::policy::ShimIsolation,
        Option<isolation::cgroups::CgroupManager>,
    ),
    AgentError,
> {
    use isolation::{cgroups::CgroupManager, namespaces::Namespaces, policy};
    // `posix` alone needs no detection (and no namespace probe).
    let wants_none = config
        .isolation
        .as_deref()
        .is_some_and(|f| f.split(',').all(|n| n.trim().starts_with("posix")));
    let (cgroups, namespaces) = if wants_none {
        let off = "not requested".to_string();
        (Err(off.clone()), Err(off))
    } else {
        (
            CgroupManager::detect().map_err(|e| e.to_string()),
            Namespaces::detect().map_err(|e| e.to_string()),
        )
    };
    let available = policy::Availability {
        cgroups: cgroups.as_ref().map(drop).map_err(Clone::clone),
        namespaces: namespaces.as_ref().map(drop).map_err(Clone::clone),
    };
    let selection =
        policy::select(config.isolation.as_deref(), &available).map_err(ConfigError::Isolation)?;
    if let Some(warning) = &selection.warning {
        tracing::warn!("{warning}");
    }
    tracing::info!(isolators = %selection.isolators.join(","), "isolation");
    let shim = policy::ShimIsolation {
        cgroups: selection.cgroups,
        mem: selection.mem,
        cpu: selection.cpu,
        cfs_quota: config.cgroups_enable_cfs,
        unshare: namespaces
            .ok()
            .filter(|_| selection.namespaces)
            .map(|ns| ns.unshare().to_path_buf()),
        disk_watch_ms: config.enforce_container_disk_quota.then(|| {
            u64::try_from(config.container_disk_watch_interval.as_millis()).unwrap_or(u64::MAX)
        }),
    };
    Ok((shim, cgroups.ok().filter(|_| selection.cgroups)))
}

/// Like [`start`] with a given containerizer.
pub async fn start_with(
    config: AgentConfig,
    containerizer: Arc<dyn Containerizer>,
    shutdown: Shutdown,
) -> Result<AgentHandle, AgentError> {
    config.validate()?;
    let configured = config.parsed_resources()?;
    let attributes = config.parsed_attributes()?;
    std::fs::create_dir_all(&config.work_dir).map_err(|source| AgentError::WorkDir {
        path: config.work_dir.clone(),
        source,
    })?;
    let store = checkpoint::Checkpoint::open(&config.work_dir).map_err(AgentError::Checkpoint)?;
    let record = AgentCheckpoint {
        agent_info: None,
        boot_id: checkpoint::boot_id(),
        resources_flag: config.resources.clone().unwrap_or_default(),
        attributes_flag: config.attributes.clone().unwrap_or_default(),
    };
    let previous = store.read_agent().map_err(AgentError::Checkpoint)?;
    let old_tasks = store.read_tasks().map_err(AgentError::Checkpoint)?;
    let decision = checkpoint::decide(
        previous.as_ref(),
        &record.boot_id,
        &record.resources_flag,
        &record.attributes_flag,
        config.recover,
    );
    let recovered = previous
        .and_then(|p| p.agent_info)
        .filter(|_| decision == checkpoint::Decision::Reconnect)
        .and_then(|info| Some((info.id.clone()?.value, info)));
    let (recovered_id, resources, attributes, tasks) = match recovered {
        Some((id, info)) => {
            tracing::info!(agent_id = %id, tasks = old_tasks.len(), "recovering the previous agent");
            // The resources it registered with, not a new detection (free
            // disk changes): the master must see the same agent.
            let resources = Resources::from_vec(info.resources.iter().cloned());
            (Some(id), resources, info.attributes, old_tasks)
        }
        None => {
            if let checkpoint::Decision::Fresh(why) = decision {
                tracing::warn!(%why, "starting as a new agent; the previous one's tasks are killed");
            }
            actor::kill_leftovers(&*containerizer, &old_tasks, LEFTOVER_KILL_TIMEOUT).await;
            store.clear().map_err(AgentError::Checkpoint)?;
            let resources = host_resources::detect(&configured, &config.work_dir);
            (None, resources, attributes, Vec::new())
        }
    };

    // Cgroups of this agent's containers that no live task owns any more
    // (their shim died with the machine's agent, or a cleanup start).
    let known: Vec<String> = tasks.iter().map(|t| t.container_id.clone()).collect();
    containerizer.clean_up_orphans(&known).await;

    let bind = SocketAddr::new(config.ip, config.port);
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|source| AgentError::Bind { addr: bind, source })?;
    let http_addr = listener
        .local_addr()
        .map_err(|source| AgentError::Bind { addr: bind, source })?;
    tracing::info!(%http_addr, %resources, "agent starting");

    // May ask the resolver for the hostname: off the runtime's threads.
    let task_ip = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || config.task_ip())
            .await
            .ok()
            .flatten()
    };
    let (id_tx, id_rx) = watch::channel(recovered_id);
    let (link_tx, link_rx) = mpsc::channel(1024);
    let (query_tx, query_rx) = mpsc::channel(64);
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    // Fired when the actor is done: the link and the server follow it.
    let (stop_trigger, stop) = shutdown::channel();

    let identity = actor::Identity {
        hostname: config.hostname.clone(),
        http_port: http_addr.port(),
        pid: format!("slave(1)@{http_addr}"),
        resources,
        attributes,
        default_grace: config.executor_shutdown_grace_period,
        docker_grace: config.docker_stop_timeout,
        ip: task_ip,
        containerizers: containerizer.kinds(),
        task_path: std::env::var("PATH").ok(),
        record,
    };
    let (gc, collector) = gc::spawn(
        gc::GcConfig {
            policy: gc::GcPolicy {
                delay: config.gc_delay,
                headroom: config.gc_disk_headroom,
            },
            disk_watch_interval: config.disk_watch_interval,
            work_dir: config.work_dir.clone(),
        },
        stop.clone(),
    );
    // Sandboxes of the previous runs that no checkpointed task owns: their
    // tasks are done, so they are collected as if acknowledged at their mtime.
    let owned: std::collections::HashSet<String> = known.into_iter().collect();
    for (path, mtime) in gc::fs::finished_sandboxes(&config.work_dir, &owned) {
        gc.schedule_from_mtime(path, mtime, config.gc_delay);
    }
    let usage = containerizer.clone();
    let mut agent = actor::Actor::new(
        identity,
        id_tx,
        containerizer,
        actor::WorkDir {
            sandboxes: sandbox::SandboxLayout::new(&config.work_dir),
            checkpoint: store,
            gc,
        },
        config.status_update_retry_interval,
        config.max_completed_tasks,
        internal_tx,
    );
    agent.recover(tasks);
    let link = tokio::spawn(master_link::run(
        config.master.clone(),
        config.master_ping_timeout,
        link_tx,
        stop.clone(),
    ));
    let files = http::files::FilesRoot::new(config.work_dir.join("slaves")).map_err(|source| {
        AgentError::WorkDir {
            path: config.work_dir.join("slaves"),
            source,
        }
    })?;
    let server = tokio::spawn(http::serve(
        listener,
        query_tx,
        usage,
        files,
        shutdown.clone(),
        stop,
    ));
    let task = tokio::spawn(async move {
        let result = agent.run(link_rx, query_rx, internal_rx, shutdown).await;
        stop_trigger.fire();
        for (name, task) in [
            ("master link", link),
            ("http server", server),
            ("sandbox gc", collector),
        ] {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "{name} task failed");
            }
        }
        tracing::info!(?result, "agent stopped");
        result
    });
    Ok(AgentHandle {
        http_addr,
        agent_id: id_rx,
        task,
    })
}

/// Runs the agent until `shutdown` fires (then `Ok`) or the master shuts it
/// down (then [`AgentError::ShutdownByMaster`]).
pub async fn run(config: AgentConfig, shutdown: Shutdown) -> Result<(), AgentError> {
    start(config, shutdown).await?.join().await
}
