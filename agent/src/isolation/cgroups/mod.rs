//! Control groups for containers: cpu shares and quota, a memory limit with
//! OOM reporting, usage statistics, and a reliable kill of a whole process
//! tree.
//!
//! As in youki's `libcgroups`, the two kernel interfaces sit behind one
//! manager enum: [`CgroupManager::detect`] reads the host's hierarchy once
//! (v1 controllers under `/sys/fs/cgroup/<controller>`, or the v2 unified
//! tree) and the agent then works with [`CgroupManager`] and [`Cgroup`]
//! without caring which it is. Every file access goes through `fs`, which
//! logs each kernel write at debug level.
//!
//! Layout: `<agent's own cgroup>/agora/<container_id>` in each hierarchy (see
//! `detect` for why it nests under the agent's own cgroup). The directory
//! names are the container ids, so [`CgroupManager::recover`] re-opens a
//! container's cgroup after an agent restart from the id alone.
//!
//! All calls are synchronous file I/O on a pseudo file system (microseconds)
//! except [`Cgroup::kill_all`] and [`Cgroup::destroy`], which wait up to
//! [`KILL_TIMEOUT`] for the kernel; async callers use `spawn_blocking`.

mod detect;
mod fs;
mod spawn;
mod v1;
mod v2;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use detect::Layout;

/// How long [`Cgroup::kill_all`] and [`Cgroup::destroy`] wait for the kernel
/// to empty a cgroup.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// The name of the parent cgroup of every container.
pub const PARENT: &str = "agora";

/// A container's resource limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// CPUs (`cpus` resource): the relative share, and the hard cap when
    /// `cfs_quota` is set.
    pub cpus: f64,
    /// Memory limit in bytes (`mem` resource); `None` for no limit.
    pub mem_bytes: Option<u64>,
    /// Also cap CPU time at `cpus` with a CFS quota (Mesos'
    /// `--cgroups_enable_cfs`), instead of shares alone.
    pub cfs_quota: bool,
}

/// The CFS period the quota is expressed in (the kernel's default, 100 ms).
pub const CFS_PERIOD_US: u64 = 100_000;

impl Limits {
    /// v1 `cpu.shares`: 1024 per CPU, at least the kernel's minimum of 2.
    pub fn cpu_shares(&self) -> u64 {
        ((self.cpus * 1024.0).round() as u64).max(2)
    }

    /// v2 `cpu.weight` for the same shares, by the kernel's (and systemd's)
    /// mapping of `[2, 262144]` onto `[1, 10000]`.
    pub fn cpu_weight(&self) -> u64 {
        let shares = self.cpu_shares().min(262_144);
        1 + ((shares - 2) * 9999) / 262_142
    }

    /// The CFS quota per [`CFS_PERIOD_US`], at least the kernel's 1 ms.
    pub fn cfs_quota_us(&self) -> u64 {
        ((self.cpus * CFS_PERIOD_US as f64).round() as u64).max(1000)
    }
}

/// Resource usage of a container, as Mesos' `ResourceStatistics` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    /// CPU time spent in user mode, seconds.
    pub cpus_user_time_secs: f64,
    /// CPU time spent in the kernel, seconds.
    pub cpus_system_time_secs: f64,
    /// Anonymous (resident, non-cache) memory, bytes.
    pub mem_rss_bytes: u64,
    /// The memory limit, bytes; `None` when unlimited.
    pub mem_limit_bytes: Option<u64>,
    /// The CPU limit: the CFS quota in CPUs when set, otherwise the shares
    /// in CPUs.
    pub cpus_limit: f64,
}

/// A cgroup operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The container id cannot be a directory name.
    #[error("invalid container id '{0}' for a cgroup")]
    InvalidId(String),
    /// `create` for a container whose cgroup already exists.
    #[error("cgroup of container '{0}' already exists")]
    AlreadyExists(String),
    /// `recover` for a container without a cgroup.
    #[error("no cgroup for container '{container_id}' at {}", path.display())]
    NotFound {
        /// The container.
        container_id: String,
        /// Where its cgroup was looked for.
        path: PathBuf,
    },
    /// The kernel refused a read or write.
    #[error("cgroup file {}: {source}", path.display())]
    Io {
        /// The control file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A control file held something this code does not understand.
    #[error("unexpected content in {}: '{content}'", path.display())]
    Parse {
        /// The control file.
        path: PathBuf,
        /// The offending content.
        content: String,
    },
    /// Processes survived [`Cgroup::kill_all`] for [`KILL_TIMEOUT`].
    #[error("processes {pids:?} of container '{container_id}' survived the kill")]
    StillAlive {
        /// The container.
        container_id: String,
        /// The survivors.
        pids: Vec<i32>,
    },
}

impl CgroupError {
    fn io(path: &Path, source: io::Error) -> Self {
        CgroupError::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn parse(path: &Path, content: &str) -> Self {
        CgroupError::Parse {
            path: path.to_owned(),
            content: content.trim().to_string(),
        }
    }
}

/// Why cgroups cannot be used on this host: the agent logs it as a warning
/// and runs tasks with plain process isolation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cgroup isolation disabled: {0}")]
pub struct Unavailable(pub String);

/// Creates and re-opens container cgroups in the host's hierarchy.
#[derive(Debug, Clone)]
pub enum CgroupManager {
    /// Per-controller hierarchies.
    V1(v1::V1Manager),
    /// The unified hierarchy.
    V2(v2::V2Manager),
}

/// One container's cgroup.
#[derive(Debug, Clone)]
pub enum Cgroup {
    /// In the per-controller hierarchies.
    V1(v1::V1Cgroup),
    /// In the unified hierarchy.
    V2(v2::V2Cgroup),
}

impl CgroupManager {
    /// Detects the host's hierarchy and checks that the agent may create
    /// cgroups in it (root, read-write, the controllers present).
    pub fn detect() -> Result<Self, Unavailable> {
        let read =
            |p: &str| std::fs::read_to_string(p).map_err(|e| Unavailable(format!("{p}: {e}")));
        let layout = detect::layout(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?);
        match layout {
            Layout::V1(dirs) => v1::V1Manager::new(dirs).map(CgroupManager::V1),
            Layout::V2(dir) => v2::V2Manager::new(dir).map(CgroupManager::V2),
            Layout::None(why) => Err(Unavailable(why)),
        }
    }

    /// `1` or `2`.
    pub fn version(&self) -> u8 {
        match self {
            CgroupManager::V1(_) => 1,
            CgroupManager::V2(_) => 2,
        }
    }

    /// Creates the cgroup of `container_id` with `limits`.
    pub fn create(&self, container_id: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        check_id(container_id)?;
        match self {
            CgroupManager::V1(m) => m.create(container_id, limits).map(Cgroup::V1),
            CgroupManager::V2(m) => m.create(container_id, limits).map(Cgroup::V2),
        }
    }

    /// Re-opens the existing cgroup of `container_id` (after an agent
    /// restart); [`CgroupError::NotFound`] if there is none.
    pub fn recover(&self, container_id: &str) -> Result<Cgroup, CgroupError> {
        check_id(container_id)?;
        match self {
            CgroupManager::V1(m) => m.recover(container_id).map(Cgroup::V1),
            CgroupManager::V2(m) => m.recover(container_id).map(Cgroup::V2),
        }
    }

    /// The ids of every container cgroup present, so that a recovering agent
    /// can destroy those of containers it no longer knows.
    pub fn containers(&self) -> Result<Vec<String>, CgroupError> {
        let parent = match self {
            CgroupManager::V1(m) => m.parent(),
            CgroupManager::V2(m) => m.parent(),
        };
        let entries = match std::fs::read_dir(parent) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CgroupError::io(parent, e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| CgroupError::io(parent, e))?;
            if entry.path().is_dir() {
                ids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }
}

impl Cgroup {
    /// The container this cgroup belongs to.
    pub fn container_id(&self) -> &str {
        match self {
            Cgroup::V1(c) => &c.container_id,
            Cgroup::V2(c) => &c.container_id,
        }
    }

    /// Changes the limits (a task's resources were updated).
    pub fn update(&self, limits: &Limits) -> Result<(), CgroupError> {
        match self {
            Cgroup::V1(c) => c.update(limits),
            Cgroup::V2(c) => c.update(limits),
        }
    }

    /// Moves a running process (and its future children) into the cgroup.
    /// Children it already forked stay where they are: prefer
    /// [`Cgroup::enter_on_spawn`], which has no such window.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        match self {
            Cgroup::V1(c) => c.add_process(pid),
            Cgroup::V2(c) => c.add_process(pid),
        }
    }

    /// Arranges for a command's process to join the cgroup between `fork`
    /// and `exec`, so the task and everything it starts are inside from
    /// their first instruction.
    pub fn enter_on_spawn(&self, command: &mut std::process::Command) -> Result<(), CgroupError> {
        let procs = match self {
            Cgroup::V1(c) => c.procs_files(),
            Cgroup::V2(c) => vec![c.path.join("cgroup.procs")],
        };
        spawn::enter_on_spawn(command, &procs)
    }

    /// The pids in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        match self {
            Cgroup::V1(c) => c.pids(),
            Cgroup::V2(c) => c.pids(),
        }
    }

    /// Kills every process in the cgroup, including children that escaped
    /// their process group, and waits (up to [`KILL_TIMEOUT`]) until the
    /// cgroup is empty.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        match self {
            Cgroup::V1(c) => c.kill_all(),
            Cgroup::V2(c) => c.kill_all(),
        }
    }

    /// Current usage and limits.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match self {
            Cgroup::V1(c) => c.stats(),
            Cgroup::V2(c) => c.stats(),
        }
    }

    /// Whether the kernel's OOM killer has killed a process of this cgroup.
    pub fn oom_killed(&self) -> Result<bool, CgroupError> {
        match self {
            Cgroup::V1(c) => c.oom_killed(),
            Cgroup::V2(c) => c.oom_killed(),
        }
    }

    /// A descriptor that turns readable when the OOM killer may have struck
    /// in this cgroup, so that [`oom_killed`](Self::oom_killed) need not be
    /// polled. v1: an eventfd registered for `memory.oom_control` through
    /// `cgroup.event_control`, signalled as the cgroup runs out of memory,
    /// before the kill is counted (read `oom_killed` again shortly after);
    /// v2: inotify on `memory.events`, modified as its counters grow.
    pub fn oom_events(&self) -> Result<std::os::fd::OwnedFd, CgroupError> {
        match self {
            Cgroup::V1(c) => c.oom_events(),
            Cgroup::V2(c) => c.oom_events(),
        }
    }

    /// Kills whatever is left and removes the cgroup's directories.
    /// Idempotent: destroying a destroyed cgroup succeeds.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        match self {
            Cgroup::V1(c) => c.destroy(),
            Cgroup::V2(c) => c.destroy(),
        }
    }
}

/// A container id becomes a directory name: one plain path component.
fn check_id(id: &str) -> Result<(), CgroupError> {
    let bad = id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0');
    if bad {
        return Err(CgroupError::InvalidId(id.to_string()));
    }
    Ok(())
}

/// Whether `dir` is a directory the agent may create cgroups in.
fn writable(dir: &Path) -> Result<(), Unavailable> {
    use nix::unistd::{access, AccessFlags};
    access(dir, AccessFlags::W_OK).map_err(|e| {
        Unavailable(format!(
            "cannot create cgroups in {} ({e}); the agent needs root and a writable cgroup file system",
            dir.display()
        ))
    })
}
