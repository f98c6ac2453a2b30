//! The shim's side of isolation: the task's cgroup and namespaces, and the
//! watch over its memory and disk limits.
//!
//! [`prepare`] builds the task's command in the order the isolation modules
//! require: the namespace wrapper (`unshare`) first, then the caller sets
//! environment, directory, stdio and process group, then [`Guard::enter`]
//! puts the process in the cgroup between `fork` and `exec`. The cgroup is
//! created here and destroyed by [`Guard::destroy`] once the task's last
//! process is gone, so it lives exactly as long as the shim's task.
//!
//! Limits are enforced as Mesos does: a memory overrun is the kernel's OOM
//! killer striking inside the cgroup (read from the cgroup, not from the
//! wait status: under a pid namespace util-linux 2.38 turns a SIGKILL into
//! exit 1); a disk overrun is found by measuring the sandbox every
//! `disk_watch_ms`. Either way the whole container is killed and the
//! [`Limitation`] travels with the exit status.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use crate::containerizer::{CommandSpec, ContainerResources, Limitation, LimitedResource};
use crate::isolation::cgroups::{Cgroup, CgroupManager, Limits};
use crate::isolation::disk;
use crate::isolation::namespaces::Namespaces;
use crate::isolation::policy::ShimIsolation;

const MB: u64 = 1024 * 1024;

/// The isolation of one running task.
pub(super) struct Guard {
    cgroup: Option<Cgroup>,
    mem_limit: Option<u64>,
    disk_limit: Option<u64>,
    sandbox: PathBuf,
}

/// The task's command (wrapped in namespaces when asked) and its guard (its
/// cgroup created when asked). The error is the launch failure's message.
pub(super) fn prepare(
    container_id: &str,
    sandbox: &Path,
    spec: &CommandSpec,
    isolation: &ShimIsolation,
    resources: &ContainerResources,
) -> Result<(std::process::Command, Guard), String> {
    let command = match (&isolation.unshare, spec) {
        // `unshare` execs the program under its own name: a spec that asks
        // for another argv[0] runs without namespaces rather than wrongly.
        (
            Some(_),
            CommandSpec::Exec {
                program,
                argv0: Some(a),
                ..
            },
        ) if !argv0_matches(program, a) => {
            tracing::info!(argv0 = %a, "an explicit argv[0]: no namespaces for this task");
            spec.to_command()
        }
        (Some(unshare), _) => Namespaces::probed_by_parent(unshare.clone()).wrap(spec),
        (None, _) => spec.to_command(),
    };
    let mem_limit = resources.mem_bytes.filter(|_| isolation.mem);
    let cgroup = if isolation.cgroups {
        let manager = CgroupManager::detect().map_err(|e| e.to_string())?;
        let limits = Limits {
            // Without the cpu isolator every task weighs as one CPU.
            cpus: resources.cpus.filter(|_| isolation.cpu).unwrap_or(1.0),
            mem_bytes: mem_limit,
            cfs_quota: isolation.cpu && isolation.cfs_quota && resources.cpus.is_some(),
        };
        let cgroup = manager
            .create(container_id, &limits)
            .map_err(|e| format!("cannot create the container's cgroup: {e}"))?;
        tracing::info!(?limits, version = manager.version(), "cgroup created");
        Some(cgroup)
    } else {
        None
    };
    let guard = Guard {
        cgroup,
        mem_limit,
        disk_limit: resources
            .disk_bytes
            .filter(|_| isolation.disk_watch_ms.is_some()),
        sandbox: sandbox.to_path_buf(),
    };
    Ok((command, guard))
}

fn argv0_matches(program: &str, argv0: &str) -> bool {
    argv0 == program || Path::new(program).file_name().is_some_and(|n| n == argv0)
}

impl Guard {
    /// Makes `command`'s process join the cgroup before it execs; call last
    /// before spawning.
    pub(super) fn enter(&self, command: &mut std::process::Command) -> Result<(), String> {
        match &self.cgroup {
            Some(cg) => cg
                .enter_on_spawn(command)
                .map_err(|e| format!("cannot enter the container's cgroup: {e}")),
            None => Ok(()),
        }
    }

    /// Whether there is a memory limit to watch.
    pub(super) fn watches_memory(&self) -> bool {
        self.cgroup.is_some() && self.mem_limit.is_some()
    }

    /// Whether there is a disk quota to watch.
    pub(super) fn watches_disk(&self) -> bool {
        self.disk_limit.is_some()
    }

    /// What wakes the shim when the OOM killer may have struck in the
    /// cgroup (no polling), when there is a memory limit and the cgroup can
    /// tell; `None`: poll [`MEMORY_WATCH`] instead.
    pub(super) fn oom_events(&self) -> Option<AsyncFd<OwnedFd>> {
        if !self.watches_memory() {
            return None;
        }
        let events = self
            .cgroup
            .as_ref()?
            .oom_events()
            .map_err(|e| e.to_string());
        let registered = events.and_then(|fd| {
            // SAFETY: the descriptor is owned by the `AsyncFd` from here on
            // and never closed or replaced while registered.
            #[allow(unsafe_code)]
            let registered = unsafe { AsyncFd::register(fd) };
            registered.map_err(|e| e.to_string())
        });
        match registered {
            Ok(events) => Some(events),
            Err(e) => {
                tracing::info!(error = %e, "no OOM events: polling the cgroup's OOM state");
                None
            }
        }
    }

    /// The memory limitation, if the OOM killer struck in the cgroup.
    pub(super) fn memory_exceeded(&self) -> Option<Limitation> {
        let (cg, limit) = (self.cgroup.as_ref()?, self.mem_limit?);
        match cg.oom_killed() {
            Ok(true) => Some(Limitation {
                resource: LimitedResource::Memory,
                message: format!("Memory limit exceeded: {} MB", limit.div_ceil(MB)),
            }),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the OOM state");
                None
            }
        }
    }

    /// The disk limitation, if the sandbox uses more than the quota.
    pub(super) async fn disk_exceeded(&self) -> Option<Limitation> {
        let limit = self.disk_limit?;
        let sandbox = self.sandbox.clone();
        // A walk of the sandbox may take a while; the shim keeps answering.
        let used = tokio::task::spawn_blocking(move || disk::usage(&sandbox))
            .await
            .ok()?;
        disk::exceeds(used, limit).then(|| Limitation {
            resource: LimitedResource::Disk,
            message: format!(
                "Disk usage ({} MB) exceeds quota ({} MB)",
                used.div_ceil(MB),
                limit.div_ceil(MB)
            ),
        })
    }

    /// SIGKILLs every process in the cgroup, those that left the task's
    /// process tree included.
    pub(super) async fn kill_all(&self) {
        if let Some(cg) = self.cgroup.clone() {
            match tokio::task::spawn_blocking(move || cg.kill_all()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cgroup kill failed"),
                Err(e) => tracing::warn!(error = %e, "cgroup kill panicked"),
            }
        }
    }

    /// [`Guard::destroy`] for a task that never started (nothing to wait for).
    pub(super) fn destroy_now(self) {
        if let Some(cg) = self.cgroup {
            if let Err(e) = cg.destroy() {
                tracing::warn!(error = %e, "cannot destroy the cgroup");
            }
        }
    }

    /// Removes the cgroup (killing anything left in it).
    pub(super) async fn destroy(self) {
        if let Some(cg) = self.cgroup {
            match tokio::task::spawn_blocking(move || cg.destroy()).await {
                Ok(Ok(())) => tracing::debug!("cgroup destroyed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot destroy the cgroup"),
                Err(e) => tracing::warn!(error = %e, "cgroup destroy panicked"),
            }
        }
    }
}

/// How often the shim reads its cgroup's OOM state without OOM events.
pub(super) const MEMORY_WATCH: Duration = Duration::from_millis(250);
/// After an OOM event the state is read this often, for [`OOM_RECHECK_FOR`]:
/// a cgroup v1 event comes as the cgroup runs out of memory, before the
/// kill is counted.
pub(super) const OOM_RECHECK_EVERY: Duration = Duration::from_millis(50);
pub(super) const OOM_RECHECK_FOR: Duration = Duration::from_secs(2);

/// Waits for the next OOM event and drains it: `false` if the events
/// failed (the caller polls from then on).
pub(super) async fn oom_event(events: &mut Option<AsyncFd<OwnedFd>>) -> bool {
    let Some(fd) = events else {
        return std::future::pending().await;
    };
    match fd.readable().await {
        Ok(mut ready) => {
            // An eventfd gives its 8-byte count, inotify its events.
            let mut buf = [0u8; 4096];
            while nix::unistd::read(fd.get_ref(), &mut buf).is_ok_and(|n| n > 0) {}
            ready.clear_ready();
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "OOM events failed: polling the cgroup's OOM state");
            false
        }
    }
}
