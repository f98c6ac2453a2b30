//! The shim containerizer: each container is an executor shim process (the
//! `agora` binary in `executor` mode, see [`crate::executor`]) that runs and
//! supervises the task and outlives the agent.
//!
//! The Docker containerizer runs its containers under shims too (in the
//! shim's Docker mode) through [`ShimContainerizer::start`] with a config of
//! its own making, and [`ShimContainerizer::respawn`] when a container
//! outlived its shim.
//!
//! `launch` writes the shim's config into the sandbox, starts the shim in a
//! process group of its own, and dials its socket
//! (`<work_dir>/shims/<container_id>.sock`: outside the sandbox because a
//! Unix socket path may not exceed 107 bytes, and sandbox paths do) until it
//! answers `started{pid}`. `recover` dials the same socket after an agent
//! restart; when nobody answers, the shim has ended and its `exit_status`
//! file in the sandbox tells how the task ended.
//!
//! The shim fetches the task's URIs itself (see [`crate::executor`]), so a
//! slow download delays only that task, never the agent; the cache is
//! `<work_dir>/fetch-cache`.
//!
//! Per container one driver task owns the connection: it forwards kill
//! requests to the shim and publishes the termination on a `watch` once the
//! shim reports `exited` or the connection drops (then the exit file, or
//! [`Termination::Unknown`] when there is none). The table of containers
//! sits behind a `std::sync::Mutex` never held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, Instant};

use crate::isolation::cgroups::CgroupManager;
use crate::isolation::policy::ShimIsolation;

use super::{
    Containerizer, ContainerizerKind, LaunchError, LaunchSpec, Launched, RecoverError, Run,
    Termination, UnknownContainer,
};
use crate::executor::protocol::{
    encode, read_json, shim_file, termination, write_json_atomic, ExitRecord, HealthStatus,
    ShimConfig, ShimEvent, ShimRequest, CONFIG_FILE, EXIT_FILE, LOG_FILE, SHIM_DIR,
};

/// The longest Unix socket path (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// How long a new shim may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Between attempts to dial a shim that is starting.
const DIAL_INTERVAL: Duration = Duration::from_millis(1);
/// The dial interval doubles up to this: a thousand shims starting at once,
/// each dialled every millisecond, cost a million failed `connect`s a second
/// on the cores the shims need to start; doubling bounds that and adds at
/// most one interval to a launch.
const MAX_DIAL_INTERVAL: Duration = Duration::from_millis(16);

struct Entry {
    /// Kill requests for the driver; closed once the shim is gone.
    requests: mpsc::UnboundedSender<ShimRequest>,
    /// `Some` once the container ended and nothing of it survives.
    ended: watch::Receiver<Option<Termination>>,
    /// The task's checks as the shim last reported them.
    health: watch::Receiver<HealthStatus>,
}

/// Runs each container under an executor shim.
pub struct ShimContainerizer {
    /// The `agora` binary (or anything answering `executor --config`).
    program: PathBuf,
    /// Where the shims' sockets are.
    socket_dir: PathBuf,
    /// The fetcher's cache, shared by this agent's shims.
    fetch_cache: PathBuf,
    /// What every shim applies (see [`crate::isolation::policy`]).
    isolation: ShimIsolation,
    /// The cgroups of this agent's containers, when it uses cgroups: for
    /// statistics and to destroy those no shim owns any more.
    cgroups: Option<CgroupManager>,
    /// The work dir, to tell this agent's containers from another's.
    work_dir: PathBuf,
    containers: Mutex<HashMap<String, Entry>>,
}

impl ShimContainerizer {
    /// Shims run `program executor --config ...`; sockets go under `work_dir`.
    pub fn new(program: impl Into<PathBuf>, work_dir: &Path) -> Self {
        ShimContainerizer {
            program: program.into(),
            socket_dir: work_dir.join("shims"),
            fetch_cache: work_dir.join("fetch-cache"),
            isolation: ShimIsolation::default(),
            cgroups: None,
            work_dir: work_dir.to_path_buf(),
            containers: Mutex::new(HashMap::new()),
        }
    }

    /// Isolates every task as `isolation` says; `cgroups` is the manager
    /// the agent detected when `isolation.cgroups` is set.
    pub fn with_isolation(
        mut self,
        isolation: ShimIsolation,
        cgroups: Option<CgroupManager>,
    ) -> Self {
        self.isolation = isolation;
        self.cgroups = cgroups;
        self
    }

    /// The socket of a container's shim.
    pub fn socket_path(&self, container_id: &str) -> PathBuf {
        self.socket_dir.join(format!("{container_id}.sock"))
    }

    fn table(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A poisoned lock only means another thread panicked mid-update of
        // a plain map; the map itself is still consistent.
        self.containers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes over a connection to a shim: reads its `started`, spawns the driver.
    async fn attach(
        &self,
        container_id: &str,
        stream: UnixStream,
        sandbox: &Path,
    ) -> Result<Launched, String> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        // A reset is a shim that closed its listener with our connection
        // still in the backlog: it ended, like an end of stream.
        let first = lines.next_line().await.unwrap_or(None);
        let (pid, networks, health) = match first.as_deref().map(serde_json::from_str::<ShimEvent>)
        {
            Some(Ok(ShimEvent::Started {
                pid,
                networks,
                health,
            })) => (pid, networks, health),
            // The shim was ending as we dialled: its exit file is written.
            None => return self.ended_from_exit_file(container_id, sandbox),
            Some(other) => {
                return Err(format!("unexpected first message from the shim: {other:?}"))
            }
        };
        let (requests, mut requests_rx) = mpsc::unbounded_channel();
        let (ended_tx, ended) = watch::channel(None);
        let (health_tx, health) = watch::channel(health);
        let exit_file = shim_file(sandbox, EXIT_FILE);
        let id = container_id.to_string();
        tokio::spawn(async move {
            let termination = loop {
                tokio::select! {
                    line = lines.next_line() => match line {
                        Ok(Some(line)) => match serde_json::from_str::<ShimEvent>(&line) {
                            Ok(ShimEvent::Exited { status, limitation, unhealthy }) => {
                                break termination(status, limitation, unhealthy)
                            }
                            Ok(ShimEvent::Health { status }) => {
                                health_tx.send_replace(status);
                            }
                            Ok(ShimEvent::Started { .. }) => {}
                            Err(e) => tracing::warn!(container_id = %id, error = %e, %line, "invalid shim message"),
                        },
                        // The shim is gone without a word: its file tells.
                        Ok(None) | Err(_) => break termination_from_file(&exit_file),
                    },
                    request = requests_rx.recv() => match request {
                        Some(request) => {
                            let mut line = encode(&request);
                            line.push('\n');
                            // A failed write shows as the read side's end.
                            let _ = write.write_all(line.as_bytes()).await;
                        }
                        // The container was forgotten: nobody waits any more.
                        None => return,
                    },
                }
            };
            tracing::debug!(container_id = %id, ?termination, "container ended");
            ended_tx.send_replace(Some(termination));
        });
        self.table().insert(
            container_id.to_string(),
            Entry {
                requests,
                ended,
                health,
            },
        );
        Ok(Launched { pid, networks })
    }

    /// Registers a container whose shim has ended, from its exit file.
    fn ended_from_exit_file(&self, container_id: &str, sandbox: &Path) -> Result<Launched, String> {
        match read_json::<ExitRecord>(&shim_file(sandbox, EXIT_FILE)) {
            Ok(Some(ExitRecord::Ended {
                pid,
                status,
                limitation,
                unhealthy,
            })) => {
                let (requests, _) = mpsc::unbounded_channel();
                let (_, ended) = watch::channel(Some(termination(status, limitation, unhealthy)));
                let (_, health) = watch::channel(HealthStatus::default());
                self.table().insert(
                    container_id.to_string(),
                    Entry {
                        requests,
                        ended,
                        health,
                    },
                );
                Ok(Launched::on_host(pid))
            }
            Ok(Some(ExitRecord::LaunchFailed { message })) => Err(message),
            Ok(None) => Err("the shim ended without recording an exit status".into()),
            Err(e) => Err(format!("cannot read the exit status: {e}")),
        }
    }
}

fn termination_from_file(path: &Path) -> Termination {
    match read_json::<ExitRecord>(path) {
        Ok(Some(ExitRecord::Ended {
            status,
            limitation,
            unhealthy,
            ..
        })) => termination(status, limitation, unhealthy),
        _ => Termination::Unknown,
    }
}

impl ShimContainerizer {
    /// The shim configuration of a host command.
    fn command_config(&self, spec: LaunchSpec) -> Result<ShimConfig, LaunchError> {
        let Run::Command(command) = &spec.run else {
            return Err(LaunchError::Unsupported(
                "the native executor shim runs host commands only".into(),
            ));
        };
        Ok(ShimConfig {
            container_id: spec.container_id.clone(),
            sandbox: spec.sandbox.clone(),
            socket: self.socket_path(&spec.container_id),
            command: command.into(),
            env: spec.env,
            uris: spec.uris.iter().map(Into::into).collect(),
            fetch_cache: Some(self.fetch_cache.clone()),
            isolation: self.isolation.clone(),
            resources: spec.resources,
            checks: spec.checks,
        })
    }

    /// The fetcher cache shims of this containerizer share.
    pub fn fetch_cache(&self) -> &Path {
        &self.fetch_cache
    }

    /// Writes `config` into its sandbox and starts its shim; returns once
    /// the shim says the task runs.
    pub async fn start(&self, config: ShimConfig) -> Result<Launched, LaunchError> {
        if config.socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(LaunchError::Shim(format!(
                "the shim socket path {} is longer than {MAX_SOCKET_PATH} bytes; use a shorter --work-dir",
                config.socket.display()
            )));
        }
        let shim_error =
            |what: &str, e: std::io::Error| LaunchError::Shim(format!("cannot {what}: {e}"));
        std::fs::create_dir_all(&self.socket_dir)
            .map_err(|e| shim_error("create the shims directory", e))?;
        std::fs::create_dir_all(config.sandbox.join(SHIM_DIR))
            .map_err(|e| shim_error("create the shim directory", e))?;
        let config_path = shim_file(&config.sandbox, CONFIG_FILE);
        write_json_atomic(&config_path, &config)
            .map_err(|e| shim_error("write the shim config", e))?;
        self.spawn_and_dial(&config.container_id, &config.sandbox)
            .await
    }

    /// Starts a new shim for a container whose shim died, from the
    /// `shim.json` still in its sandbox (a Docker container runs on without
    /// its shim; the new one adopts it).
    pub async fn respawn(&self, container_id: &str, sandbox: &Path) -> Result<Launched, String> {
        self.spawn_and_dial(container_id, sandbox)
            .await
            .map_err(|e| e.to_string())
    }

    async fn spawn_and_dial(
        &self,
        container_id: &str,
        sandbox: &Path,
    ) -> Result<Launched, LaunchError> {
        let shim_error =
            |what: &str, e: std::io::Error| LaunchError::Shim(format!("cannot {what}: {e}"));
        let socket = self.socket_path(container_id);
        let config_path = shim_file(sandbox, CONFIG_FILE);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(shim_file(sandbox, LOG_FILE))
            .map_err(|e| shim_error("open the shim log", e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| shim_error("open the shim log", e))?;
        let mut child = tokio::process::Command::new(&self.program)
            .arg("executor")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Not in the agent's group: a signal to the agent's group (a
            // terminal's Ctrl-C) must not reach the shims.
            .process_group(0)
            // Dropping the handle neither kills nor leaks it: tokio reaps
            // dropped children in the background.
            .kill_on_drop(false)
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                program: self.program.display().to_string(),
                source,
            })?;

        let deadline = Instant::now() + START_TIMEOUT;
        let mut interval = DIAL_INTERVAL;
        loop {
            match UnixStream::connect(&socket).await {
                Ok(stream) => {
                    return self
                        .attach(container_id, stream, sandbox)
                        .await
                        .map_err(LaunchError::Shim)
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        // Ended before we could dial: the task failed to
                        // start, or already ran to its end.
                        return self
                            .ended_from_exit_file(container_id, sandbox)
                            .map_err(|e| {
                                LaunchError::Shim(format!(
                                    "{e} (shim {status}; see {SHIM_DIR}/{LOG_FILE})"
                                ))
                            });
                    }
                    if Instant::now() > deadline {
                        let _ = child.start_kill();
                        return Err(LaunchError::Shim(format!(
                            "the shim did not listen within {START_TIMEOUT:?}"
                        )));
                    }
                    sleep(interval).await;
                    interval = (interval * 2).min(MAX_DIAL_INTERVAL);
                }
            }
        }
    }
}

#[async_trait]
impl Containerizer for ShimContainerizer {
    async fn launch(&self, spec: LaunchSpec) -> Result<Launched, LaunchError> {
        let config = self.command_config(spec)?;
        self.start(config).await
    }

    async fn recover(
        &self,
        container_id: &str,
        sandbox: &Path,
        _kind: ContainerizerKind,
    ) -> Result<Launched, RecoverError> {
        let result = match UnixStream::connect(self.socket_path(container_id)).await {
            Ok(stream) => self.attach(container_id, stream, sandbox).await,
            Err(_) => {
                // No shim: whatever of the task survived it is in its cgroup.
                self.destroy_cgroups(vec![container_id.to_string()]).await;
                self.ended_from_exit_file(container_id, sandbox)
            }
        };
        result.map_err(|reason| RecoverError {
            container_id: container_id.to_string(),
            reason,
        })
    }

    async fn wait(&self, container_id: &str) -> Result<Termination, UnknownContainer> {
        let mut ended = self
            .table()
            .get(container_id)
            .map(|e| e.ended.clone())
            .ok_or_else(|| UnknownContainer(container_id.to_string()))?;
        let termination = match ended.wait_for(Option::is_some).await {
            Ok(t) => t.clone().unwrap_or(Termination::Unknown),
            Err(_) => Termination::Unknown,
        };
        self.table().remove(container_id);
        Ok(termination)
    }

    async fn kill(&self, container_id: &str, grace: Duration) -> Result<(), UnknownContainer> {
        let table = self.table();
        let entry = table
            .get(container_id)
            .ok_or_else(|| UnknownContainer(container_id.to_string()))?;
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        entry
            .requests
            .send(ShimRequest::Kill { grace_ms })
            .map_err(|_| UnknownContainer(container_id.to_string()))
    }

    fn health(&self, container_id: &str) -> Option<watch::Receiver<HealthStatus>> {
        self.table().get(container_id).map(|e| e.health.clone())
    }

    async fn usage(&self, container_id: &str) -> Option<crate::isolation::cgroups::Stats> {
        let manager = self.cgroups.clone()?;
        let id = container_id.to_string();
        // Re-opened by id: the shim owns the cgroup, the agent only reads it.
        tokio::task::spawn_blocking(move || manager.recover(&id).ok()?.stats().ok())
            .await
            .ok()
            .flatten()
    }

    async fn clean_up_orphans(&self, known: &[String]) {
        let Some(manager) = self.cgroups.clone() else {
            return;
        };
        let work_dir = self.work_dir.clone();
        let known: HashSet<String> = known.iter().cloned().collect();
        // Only cgroups of containers with a sandbox in *this* work dir: other
        // agents on the host (tests run several) share the cgroup parent.
        let orphans = tokio::task::spawn_blocking(move || {
            let ours = crate::sandbox::container_ids(&work_dir);
            manager
                .containers()
                .unwrap_or_default()
                .into_iter()
                .filter(|id| !known.contains(id) && ours.contains(id))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        self.destroy_cgroups(orphans).await;
    }
}

impl ShimContainerizer {
    /// Kills whatever is in these containers' cgroups and removes them.
    async fn destroy_cgroups(&self, ids: Vec<String>) {
        let Some(manager) = self.cgroups.clone() else {
            return;
        };
        if ids.is_empty() {
            return;
        }
        let done = tokio::task::spawn_blocking(move || {
            for id in ids {
                if let Ok(cgroup) = manager.recover(&id) {
                    tracing::info!(container_id = %id, "destroying the cgroup of an orphaned container");
                    if let Err(e) = cgroup.destroy() {
                        tracing::warn!(container_id = %id, error = %e, "cannot destroy an orphaned cgroup");
                    }
                }
            }
        });
        let _ = done.await;
    }
}
