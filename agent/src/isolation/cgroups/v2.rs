//! cgroup v2: one directory in the unified hierarchy. Controllers must be
//! enabled top-down through `cgroup.subtree_control`, and a cgroup that
//! enables them may hold no processes itself ("no internal processes"): the
//! agent's own cgroup therefore must be delegated to it with the agent's
//! process in a leaf (systemd `Delegate=yes`), which is where
//! [`V2Manager::new`] checks it may write.

use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::debug;

use super::{fs, writable, CgroupError, Limits, Stats, Unavailable, KILL_TIMEOUT, PARENT};

/// The controllers a container cgroup needs.
const CONTROLLERS: [&str; 2] = ["cpu", "memory"];

/// Creates container cgroups in the unified hierarchy.
#[derive(Debug, Clone)]
pub struct V2Manager {
    /// The agent's own cgroup.
    own: PathBuf,
    /// `<own>/agora`.
    parent: PathBuf,
}

/// A container's cgroup in the unified hierarchy.
#[derive(Debug, Clone)]
pub struct V2Cgroup {
    pub(super) container_id: String,
    pub(super) path: PathBuf,
}

impl V2Manager {
    pub(super) fn new(own: PathBuf) -> Result<Self, Unavailable> {
        writable(&own)?;
        let available = std::fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
        let missing: Vec<_> = CONTROLLERS
            .iter()
            .filter(|c| !available.split_whitespace().any(|a| a == **c))
            .collect();
        if !missing.is_empty() {
            return Err(Unavailable(format!(
                "the cgroup2 hierarchy at {} lacks the {missing:?} controllers",
                own.display()
            )));
        }
        let parent = own.join(PARENT);
        Ok(V2Manager { own, parent })
    }

    pub(super) fn parent(&self) -> &Path {
        &self.parent
    }

    /// Makes `<own>/agora` with cpu and memory enabled for its children.
    fn ensure_parent(&self) -> Result<(), CgroupError> {
        let enable = CONTROLLERS.map(|c| format!("+{c}")).join(" ");
        fs::write(&self.own.join("cgroup.subtree_control"), &enable)?;
        fs::mkdir_all(&self.parent)?;
        fs::write(&self.parent.join("cgroup.subtree_control"), &enable)
    }

    pub(super) fn create(
        &self,
        container_id: &str,
        limits: &Limits,
    ) -> Result<V2Cgroup, CgroupError> {
        let cgroup = V2Cgroup {
            container_id: container_id.to_string(),
            path: self.parent.join(container_id),
        };
        if cgroup.path.exists() {
            return Err(CgroupError::AlreadyExists(container_id.to_string()));
        }
        self.ensure_parent()?;
        fs::mkdir(&cgroup.path)?;
        if let Err(e) = cgroup.update(limits) {
            let _ = fs::rmdir(&cgroup.path, Instant::now() + KILL_TIMEOUT);
            return Err(e);
        }
        Ok(cgroup)
    }

    pub(super) fn recover(&self, container_id: &str) -> Result<V2Cgroup, CgroupError> {
        let path = self.parent.join(container_id);
        if !path.is_dir() {
            return Err(CgroupError::NotFound {
                container_id: container_id.to_string(),
                path,
            });
        }
        Ok(V2Cgroup {
            container_id: container_id.to_string(),
            path,
        })
    }
}

impl V2Cgroup {
    pub(super) fn update(&self, limits: &Limits) -> Result<(), CgroupError> {
        fs::write(
            &self.path.join("cpu.weight"),
            &limits.cpu_weight().to_string(),
        )?;
        let max = if limits.cfs_quota {
            format!("{} {}", limits.cfs_quota_us(), super::CFS_PERIOD_US)
        } else {
            format!("max {}", super::CFS_PERIOD_US)
        };
        fs::write(&self.path.join("cpu.max"), &max)?;
        let limit = limits
            .mem_bytes
            .map_or("max".to_string(), |b| b.to_string());
        fs::write(&self.path.join("memory.max"), &limit)?;
        // As memsw on v1: no swapping past the limit, so an overrun ends in
        // an OOM kill the agent can report. Absent without swap accounting.
        let swap = self.path.join("memory.swap.max");
        if swap.exists() {
            fs::write(
                &swap,
                if limits.mem_bytes.is_some() {
                    "0"
                } else {
                    "max"
                },
            )?;
        }
        Ok(())
    }

    pub(super) fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        fs::write(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    pub(super) fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        fs::read_pids(&self.path.join("cgroup.procs"))
    }

    /// `cgroup.kill` (Linux 5.14+) kills the whole tree atomically; older
    /// kernels get freeze, SIGKILL each pid, thaw.
    pub(super) fn kill_all(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + KILL_TIMEOUT;
        let kill_file = self.path.join("cgroup.kill");
        if kill_file.exists() {
            fs::write(&kill_file, "1")?;
        } else {
            let freeze = self.path.join("cgroup.freeze");
            fs::write(&freeze, "1")?;
            while fs::keyed(&fs::read(&self.path.join("cgroup.events"))?, "frozen") != Some(1)
                && Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            for pid in self.pids()? {
                debug!(container_id = %self.container_id, pid, "SIGKILL");
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            fs::write(&freeze, "0")?;
        }
        let left = fs::wait_empty(&self.path.join("cgroup.procs"), deadline)?;
        if !left.is_empty() {
            return Err(CgroupError::StillAlive {
                container_id: self.container_id.clone(),
                pids: left,
            });
        }
        Ok(())
    }

    pub(super) fn stats(&self) -> Result<Stats, CgroupError> {
        let cpu = fs::read(&self.path.join("cpu.stat"))?;
        let memory = fs::read(&self.path.join("memory.stat"))?;
        let max = fs::read(&self.path.join("memory.max"))?;
        let cpu_max = fs::read(&self.path.join("cpu.max"))?;
        let mut quota = cpu_max.split_whitespace();
        let cpus_limit = match (
            quota.next().map(str::parse::<f64>),
            quota.next().map(str::parse::<f64>),
        ) {
            (Some(Ok(q)), Some(Ok(p))) if p > 0.0 => q / p,
            _ => {
                let weight = fs::read(&self.path.join("cpu.weight"))?;
                // Inverse of Limits::cpu_weight.
                let w = weight.trim().parse::<f64>().unwrap_or(1.0);
                (2.0 + (w - 1.0) * 262_142.0 / 9999.0) / 1024.0
            }
        };
        Ok(Stats {
            cpus_user_time_secs: fs::keyed(&cpu, "user_usec").unwrap_or(0) as f64 / 1e6,
            cpus_system_time_secs: fs::keyed(&cpu, "system_usec").unwrap_or(0) as f64 / 1e6,
            mem_rss_bytes: fs::keyed(&memory, "anon").unwrap_or(0),
            mem_limit_bytes: max.trim().parse().ok(),
            cpus_limit,
        })
    }

    pub(super) fn oom_killed(&self) -> Result<bool, CgroupError> {
        let events = fs::read(&self.path.join("memory.events"))?;
        Ok(fs::keyed(&events, "oom_kill").unwrap_or(0) > 0)
    }

    pub(super) fn oom_events(&self) -> Result<std::os::fd::OwnedFd, CgroupError> {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let events = self.path.join("memory.events");
        let failed = |source: nix::Error| CgroupError::Io {
            path: events.clone(),
            source: source.into(),
        };
        let inotify =
            Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(failed)?;
        inotify
            .add_watch(&events, AddWatchFlags::IN_MODIFY)
            .map_err(failed)?;
        Ok(inotify.into())
    }

    pub(super) fn destroy(&self) -> Result<(), CgroupError> {
        if self.path.exists() && !self.pids()?.is_empty() {
            self.kill_all()?;
        }
        fs::rmdir(&self.path, Instant::now() + KILL_TIMEOUT)
    }
}
