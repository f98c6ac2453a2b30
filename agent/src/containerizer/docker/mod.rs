//! The Docker containerizer: `DOCKER` tasks as containers of the Docker
//! engine, talked to through its API (crate `bollard`).
//!
//! Each container is supervised by an executor shim in Docker mode (see
//! [`crate::executor`]), as Mesos supervises each with its docker executor:
//! the shim pulls, creates and starts the container, copies its output into
//! the sandbox, enforces kills with their grace period and records how it
//! ended, all while the agent may be down; the agent reaches it over the
//! same socket protocol as a native task's shim, through the inner
//! [`ShimContainerizer`]. What the agent does itself:
//!
//! * [`spec::build`] turns the task into the engine's create body (pure,
//!   with Mesos' semantics), refusing what cannot run as given;
//! * **recovery**: a container whose shim is gone but which the engine
//!   still has gets a new shim that adopts it;
//! * **orphans**: at start, containers labelled with this agent's work dir
//!   that no checkpointed task owns are removed (`--docker-kill-orphans`);
//!   other agents' containers on the same engine are left alone;
//! * **usage** for `/monitor/statistics`, from the engine's stats.

pub mod engine;
pub mod parameters;
pub mod spec;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions, StatsOptions};
use bollard::Docker;
use futures::StreamExt;

pub use spec::{ApiVersion, DockerRun, DockerSettings};

use super::shim::ShimContainerizer;
use super::{
    ContainerResources, Containerizer, ContainerizerKind, LaunchError, LaunchSpec, Launched,
    RecoverError, Run, Termination, UnknownContainer,
};
use crate::executor::protocol::{read_json, shim_file, Command, ShimConfig, CONFIG_FILE};
use crate::isolation::cgroups::Stats;

/// How long recovery waits for an engine that does not answer.
const ENGINE_PATIENCE: Duration = Duration::from_secs(10);

/// What the agent knows of each of its Docker containers.
struct Known {
    /// The engine's name for it.
    name: String,
    /// Its resources, reported as the limits in its statistics.
    resources: ContainerResources,
}

/// Runs `DOCKER` tasks through the Docker engine.
pub struct DockerContainerizer {
    shims: ShimContainerizer,
    engine: Docker,
    settings: DockerSettings,
    kill_orphans: bool,
    containers: Mutex<HashMap<String, Known>>,
}

impl DockerContainerizer {
    /// Shims run from `program` (sockets under `work_dir`); the engine is
    /// the one `settings.socket` leads to, already probed.
    pub fn new(
        program: impl Into<PathBuf>,
        work_dir: &Path,
        engine: Docker,
        settings: DockerSettings,
        kill_orphans: bool,
    ) -> Self {
        DockerContainerizer {
            shims: ShimContainerizer::new(program, work_dir),
            engine,
            settings,
            kill_orphans,
            containers: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> MutexGuard<'_, HashMap<String, Known>> {
        // A poisoned lock only means another thread panicked mid-update of
        // a plain map; the map itself is still consistent.
        self.containers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the engine has the container `name`, asking again for a while
    /// when the engine does not answer (it may be restarting with the agent).
    async fn exists(&self, name: &str) -> bool {
        let deadline = tokio::time::Instant::now() + ENGINE_PATIENCE;
        loop {
            match self.engine.inspect_container(name, None).await {
                Ok(_) => return true,
                Err(e) if engine::is_not_found(&e) => return false,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(container = %name, error = %engine::message(&e), "the Docker engine does not answer; asking again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    tracing::error!(container = %name, error = %engine::message(&e), "the Docker engine does not answer; giving up on the container");
                    return false;
                }
            }
        }
    }

    /// The container recorded in its `shim.json`: name and resources.
    fn recorded(sandbox: &Path) -> Option<Known> {
        match read_json::<ShimConfig>(&shim_file(sandbox, CONFIG_FILE)) {
            Ok(Some(ShimConfig {
                command: Command::Docker { run },
                resources,
                ..
            })) => Some(Known {
                name: run.name,
                resources,
            }),
            _ => None,
        }
    }
}

#[async_trait]
impl Containerizer for DockerContainerizer {
    async fn launch(&self, spec: LaunchSpec) -> Result<Launched, LaunchError> {
        let Run::Docker(task) = &spec.run else {
            return Err(LaunchError::Unsupported(
                "the docker containerizer runs DOCKER containers only".into(),
            ));
        };
        let run = spec::build(
            task,
            &spec::Launch {
                container_id: &spec.container_id,
                sandbox: &spec.sandbox,
                env: &spec.env,
                resources: &spec.resources,
            },
            &self.settings,
        )
        .map_err(|e| LaunchError::Invalid(e.to_string()))?;
        self.table().insert(
            spec.container_id.clone(),
            Known {
                name: run.name.clone(),
                resources: spec.resources,
            },
        );
        let config = ShimConfig {
            container_id: spec.container_id.clone(),
            sandbox: spec.sandbox.clone(),
            socket: self.shims.socket_path(&spec.container_id),
            command: Command::Docker { run: Box::new(run) },
            // The container's environment is in its create body.
            env: Vec::new(),
            uris: spec.uris.iter().map(Into::into).collect(),
            fetch_cache: Some(self.shims.fetch_cache().to_path_buf()),
            isolation: Default::default(),
            resources: spec.resources,
            checks: spec.checks,
        };
        let launched = self.shims.start(config).await;
        if launched.is_err() {
            self.table().remove(&spec.container_id);
        }
        launched
    }

    async fn recover(
        &self,
        container_id: &str,
        sandbox: &Path,
        kind: ContainerizerKind,
    ) -> Result<Launched, RecoverError> {
        let recorded = Self::recorded(sandbox);
        let name = recorded.as_ref().map(|k| k.name.clone());
        if let Some(known) = recorded {
            self.table().insert(container_id.to_string(), known);
        }
        let found = match self.shims.recover(container_id, sandbox, kind).await {
            Ok(found) => Ok(found),
            Err(no_shim) => match &name {
                // The shim is gone without a record, but the engine may
                // still run the container: a new shim adopts it.
                Some(name) if self.exists(name).await => {
                    tracing::info!(%container_id, container = %name, "the container outlived its shim; adopting it");
                    self.shims
                        .respawn(container_id, sandbox)
                        .await
                        .map_err(|reason| RecoverError {
                            container_id: container_id.to_string(),
                            reason,
                        })
                }
                _ => Err(no_shim),
            },
        };
        if found.is_err() {
            self.table().remove(container_id);
        }
        found
    }

    async fn wait(&self, container_id: &str) -> Result<Termination, UnknownContainer> {
        let ended = self.shims.wait(container_id).await;
        self.table().remove(container_id);
        ended
    }

    async fn kill(&self, container_id: &str, grace: Duration) -> Result<(), UnknownContainer> {
        self.shims.kill(container_id, grace).await
    }

    fn health(
        &self,
        container_id: &str,
    ) -> Option<tokio::sync::watch::Receiver<crate::executor::protocol::HealthStatus>> {
        self.shims.health(container_id)
    }

    async fn clean_up_orphans(&self, known: &[String]) {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!(
                "{}={}",
                spec::LABEL_WORK_DIR,
                self.settings.work_dir
            )],
        )]);
        let listed = self
            .engine
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await;
        let containers = match listed {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %engine::message(&e), "cannot list this agent's Docker containers");
                return;
            }
        };
        let known: HashSet<&str> = known.iter().map(String::as_str).collect();
        for c in containers {
            let labels = c.labels.unwrap_or_default();
            let Some(container_id) = labels.get(spec::LABEL_CONTAINER_ID) else {
                continue;
            };
            if known.contains(container_id.as_str()) {
                continue;
            }
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .unwrap_or_default();
            let name = name.trim_start_matches('/');
            if !self.kill_orphans {
                tracing::warn!(container = %name, "leaving an orphaned Docker container (--docker-kill-orphans=false)");
                continue;
            }
            tracing::info!(container = %name, %container_id, "removing an orphaned Docker container");
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            if let Err(e) = self.engine.remove_container(name, Some(options)).await {
                tracing::warn!(container = %name, error = %engine::message(&e), "cannot remove an orphaned container");
            }
        }
    }

    fn kinds(&self) -> Vec<ContainerizerKind> {
        vec![ContainerizerKind::Docker]
    }

    async fn usage(&self, container_id: &str) -> Option<Stats> {
        let (name, resources) = {
            let table = self.table();
            let known = table.get(container_id)?;
            (known.name.clone(), known.resources)
        };
        let options = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let stats = self.engine.stats(&name, Some(options)).next().await?.ok()?;
        let cpu = stats.cpu_stats.and_then(|c| c.cpu_usage);
        let nanos = |n: Option<u64>| n.unwrap_or(0) as f64 / 1e9;
        let memory = stats.memory_stats.unwrap_or_default();
        let anon = memory.stats.as_ref().and_then(|s| {
            // cgroup v1 calls it `rss`, v2 `anon`.
            s.get("rss").or_else(|| s.get("anon")).copied()
        });
        Some(Stats {
            cpus_user_time_secs: nanos(cpu.as_ref().and_then(|c| c.usage_in_usermode)),
            cpus_system_time_secs: nanos(cpu.as_ref().and_then(|c| c.usage_in_kernelmode)),
            mem_rss_bytes: anon.or(memory.usage).unwrap_or(0),
            mem_limit_bytes: resources.mem_bytes,
            cpus_limit: resources.cpus.unwrap_or(0.0),
        })
    }
}
