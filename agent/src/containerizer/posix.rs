//! The POSIX containerizer: a plain child of the agent in its own process group.
//!
//! For agents embedded in a process that is not the `agora` binary (tests,
//! `agora_agent::start` from a library user) and so cannot re-execute itself
//! as an executor shim. No isolation and no recovery: its tasks are children
//! of the agent and end with it. What it does guarantee is that a task is a
//! *process group*: signals go to the whole group, and once the main process
//! has exited the group is SIGKILLed so that nothing a task forked outlives it.
//!
//! A task's health check and general check run in the agent's process
//! (the same loops a shim runs), and a health kill is the group's kill.
//!
//! URIs are fetched in `launch` (a worker of the agent, not its actor), with
//! a cache shared by the process' POSIX containerizers under the temporary
//! directory.
//!
//! The table of containers sits behind a `std::sync::Mutex` that is never
//! held across an `.await`: `kill` signals under the lock so that it cannot
//! race with `wait` forgetting the group (after which its id may be reused).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::{
    Containerizer, ContainerizerKind, LaunchError, LaunchSpec, Launched, RecoverError, Run,
    Termination, UnknownContainer,
};
use crate::executor::health;

struct Entry {
    /// The process group (= the main process' pid).
    pgid: Pid,
    /// Taken by the one `wait` call.
    child: Option<Child>,
    /// The task's checks, running in the agent's process; stopped when
    /// the container is forgotten.
    checks: Option<health::Running>,
    /// Why the health check had the task killed, if it did.
    unhealthy: Option<String>,
}

/// Runs each container as a process group on the host.
#[derive(Default)]
pub struct PosixContainerizer {
    /// Shared with the timers that SIGKILL after a grace period.
    containers: Arc<Mutex<HashMap<String, Entry>>>,
}

impl PosixContainerizer {
    /// An empty containerizer.
    pub fn new() -> Self {
        Self::default()
    }

    fn table(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        lock(&self.containers)
    }
}

fn lock(table: &Mutex<HashMap<String, Entry>>) -> MutexGuard<'_, HashMap<String, Entry>> {
    // A poisoned lock only means another thread panicked mid-update of a
    // plain map; the map itself is still consistent.
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn signal_group(pgid: Pid, signal: Signal) {
    match killpg(pgid, signal) {
        Ok(()) => tracing::debug!(pgid = pgid.as_raw(), %signal, "signalled process group"),
        // The group is already empty: nothing left to signal.
        Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pgid = pgid.as_raw(), %signal, error = %e, "killpg failed"),
    }
}

#[async_trait]
impl Containerizer for PosixContainerizer {
    async fn launch(&self, spec: LaunchSpec) -> Result<Launched, LaunchError> {
        let Run::Command(run) = &spec.run else {
            return Err(LaunchError::Unsupported(
                "the POSIX containerizer runs host commands only".into(),
            ));
        };
        if !spec.uris.is_empty() {
            let cache = std::env::temp_dir().join("agora-fetch-cache");
            crate::fetcher::fetch(&spec.uris, &spec.sandbox, &cache).await?;
        }
        let open = |name: &'static str| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(spec.sandbox.join(name))
                .map_err(|source| LaunchError::Output { name, source })
        };
        let (stdout, stderr) = (open("stdout")?, open("stderr")?);

        let program = run.program().to_string();
        let mut command = Command::from(run.to_command());
        command
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.sandbox)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // A group of its own: signals reach everything the task forks,
            // and a Ctrl-C at the agent's terminal does not reach tasks.
            .process_group(0)
            .kill_on_drop(false);

        let child = command
            .spawn()
            .map_err(|source| LaunchError::Spawn { program, source })?;
        // `id()` is only `None` after the child was reaped, which cannot have
        // happened yet: nobody has waited on it.
        let pid = child.id().map(|p| p as i32).unwrap_or_default();
        tracing::debug!(container_id = %spec.container_id, pid, "spawned container");
        let checks = (!spec.checks.is_empty()).then(|| {
            let target = Arc::new(health::probe::HostTarget {
                sandbox: spec.sandbox.clone(),
                env: spec.env.clone(),
            });
            let mut running = health::start(
                &spec.checks,
                target,
                std::time::Instant::now(),
                Default::default(),
            );
            let kill = running.take_kill();
            let containers = self.containers.clone();
            let container_id = spec.container_id.clone();
            let grace = spec.checks.kill_grace;
            tokio::spawn(async move {
                let Ok(cause) = kill.await else { return };
                let pgid = {
                    let mut table = lock(&containers);
                    let Some(entry) = table.get_mut(&container_id) else {
                        return;
                    };
                    entry.unhealthy = Some(cause);
                    entry.pgid
                };
                kill_group(&containers, &container_id, pgid, grace);
            });
            running
        });
        self.table().insert(
            spec.container_id.clone(),
            Entry {
                pgid: Pid::from_raw(pid),
                child: Some(child),
                checks,
                unhealthy: None,
            },
        );
        Ok(Launched::on_host(pid))
    }

    fn health(
        &self,
        container_id: &str,
    ) -> Option<tokio::sync::watch::Receiver<crate::executor::protocol::HealthStatus>> {
        let table = self.table();
        Some(table.get(container_id)?.checks.as_ref()?.status.clone())
    }

    async fn wait(&self, container_id: &str) -> Result<Termination, UnknownContainer> {
        let (pgid, child) = {
            let mut table = self.table();
            let entry = table
                .get_mut(container_id)
                .ok_or_else(|| UnknownContainer(container_id.to_string()))?;
            (entry.pgid, entry.child.take())
        };
        let mut child = child.ok_or_else(|| UnknownContainer(container_id.to_string()))?;
        let status = child.wait().await;
        let unhealthy = {
            // Forget the group and kill its remaining members under the lock,
            // so that no `kill` can target the group id after this point.
            let mut table = self.table();
            let entry = table.remove(container_id);
            signal_group(pgid, Signal::SIGKILL);
            entry.and_then(|e| e.unhealthy)
        };
        let termination = match (unhealthy, status) {
            (Some(cause), _) => Termination::Unhealthy(cause),
            (None, Ok(status)) => match (status.code(), status.signal()) {
                (Some(code), _) => Termination::Exited(code),
                (None, Some(sig)) => {
                    Termination::Signaled(Signal::try_from(sig).unwrap_or(Signal::SIGKILL))
                }
                (None, None) => Termination::Exited(-1),
            },
            (None, Err(e)) => {
                tracing::warn!(container_id, error = %e, "waiting for the container failed");
                Termination::Exited(-1)
            }
        };
        tracing::debug!(container_id, ?termination, "container ended");
        Ok(termination)
    }

    async fn recover(
        &self,
        container_id: &str,
        _sandbox: &Path,
        _kind: ContainerizerKind,
    ) -> Result<Launched, RecoverError> {
        Err(RecoverError {
            container_id: container_id.to_string(),
            reason: "the POSIX containerizer's tasks end with the agent".into(),
        })
    }

    async fn kill(&self, container_id: &str, grace: Duration) -> Result<(), UnknownContainer> {
        let table = self.table();
        let entry = table
            .get(container_id)
            .ok_or_else(|| UnknownContainer(container_id.to_string()))?;
        let pgid = entry.pgid;
        drop(table);
        kill_group(&self.containers, container_id, pgid, grace);
        Ok(())
    }
}

/// SIGTERM to the group, SIGKILL after `grace` (at once when zero).
fn kill_group(
    containers: &Arc<Mutex<HashMap<String, Entry>>>,
    container_id: &str,
    pgid: Pid,
    grace: Duration,
) {
    if grace.is_zero() {
        signal_group(pgid, Signal::SIGKILL);
        return;
    }
    signal_group(pgid, Signal::SIGTERM);
    let containers = containers.clone();
    let container_id = container_id.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        // Under the lock: once `wait` forgot the group its id may be reused.
        let table = lock(&containers);
        if table.get(&container_id).is_some_and(|e| e.pgid == pgid) {
            signal_group(pgid, Signal::SIGKILL);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerizer::CommandSpec;

    fn spec(dir: &std::path::Path, command: CommandSpec) -> LaunchSpec {
        LaunchSpec {
            container_id: uuid::Uuid::new_v4().to_string(),
            sandbox: dir.to_path_buf(),
            run: Run::Command(command),
            env: vec![("GREETING".into(), "hello".into())],
            uris: Vec::new(),
            resources: Default::default(),
            checks: Default::default(),
        }
    }

    fn temp_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("agora-posix-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[tokio::test]
    async fn runs_a_shell_command_with_only_the_given_env() {
        let dir = temp_dir();
        let c = PosixContainerizer::new();
        let s = spec(
            &dir,
            CommandSpec::Shell("echo $GREETING; echo ${HOME:-nohome}; exit 3".into()),
        );
        let id = s.container_id.clone();
        c.launch(s).await.expect("launch");
        assert_eq!(c.wait(&id).await.expect("known"), Termination::Exited(3));
        let out = std::fs::read_to_string(dir.join("stdout")).expect("stdout");
        assert_eq!(out, "hello\nnohome\n");
        assert!(c.wait(&id).await.is_err(), "forgotten after wait");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[tokio::test]
    async fn exec_with_argv0_and_missing_program() {
        let dir = temp_dir();
        let c = PosixContainerizer::new();
        let s = spec(
            &dir,
            CommandSpec::Exec {
                program: "/bin/sh".into(),
                argv0: Some("sh".into()),
                args: vec!["-c".into(), "echo $0 $1".into(), "x".into()],
            },
        );
        let id = s.container_id.clone();
        c.launch(s).await.expect("launch");
        assert_eq!(c.wait(&id).await.expect("known"), Termination::Exited(0));
        let out = std::fs::read_to_string(dir.join("stdout")).expect("stdout");
        assert_eq!(out, "x\n");

        let missing = spec(
            &dir,
            CommandSpec::Exec {
                program: "/nonexistent/prog".into(),
                argv0: None,
                args: vec![],
            },
        );
        let err = c.launch(missing).await.expect_err("no such program");
        assert!(err.to_string().contains("/nonexistent/prog"), "{err}");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[tokio::test]
    async fn kill_reaches_the_group() {
        let dir = temp_dir();
        let c = PosixContainerizer::new();
        let s = spec(&dir, CommandSpec::Shell("sleep 100 & sleep 100".into()));
        let id = s.container_id.clone();
        c.launch(s).await.expect("launch");
        c.kill(&id, Duration::from_secs(5)).await.expect("known");
        let t = c.wait(&id).await.expect("known");
        assert!(matches!(t, Termination::Signaled(Signal::SIGTERM)), "{t:?}");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
