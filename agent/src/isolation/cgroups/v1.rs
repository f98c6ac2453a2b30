//! cgroup v1: one directory per controller hierarchy (`cpu`, `cpuacct`,
//! `memory`, and `freezer` when mounted), possibly shared when controllers
//! are co-mounted (`cpu,cpuacct`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::debug;

use super::{fs, writable, CgroupError, Limits, Stats, Unavailable, KILL_TIMEOUT, PARENT};

/// Creates container cgroups in the v1 hierarchies.
#[derive(Debug, Clone)]
pub struct V1Manager {
    /// Controller name → `<own cgroup>/agora` in its hierarchy.
    parents: BTreeMap<String, PathBuf>,
}

/// A container's cgroup in each v1 hierarchy.
#[derive(Debug, Clone)]
pub struct V1Cgroup {
    pub(super) container_id: String,
    cpu: PathBuf,
    cpuacct: PathBuf,
    memory: PathBuf,
    freezer: Option<PathBuf>,
}

impl V1Manager {
    pub(super) fn new(own: BTreeMap<String, PathBuf>) -> Result<Self, Unavailable> {
        for dir in own.values() {
            writable(dir)?;
        }
        let parents = own
            .into_iter()
            .map(|(c, dir)| (c, dir.join(PARENT)))
            .collect();
        Ok(V1Manager { parents })
    }

    /// The parent of every container cgroup in the memory hierarchy.
    pub(super) fn parent(&self) -> &Path {
        &self.parents["memory"]
    }

    fn cgroup(&self, container_id: &str) -> V1Cgroup {
        let dir = |c: &str| self.parents[c].join(container_id);
        V1Cgroup {
            container_id: container_id.to_string(),
            cpu: dir("cpu"),
            cpuacct: dir("cpuacct"),
            memory: dir("memory"),
            freezer: self.parents.get("freezer").map(|p| p.join(container_id)),
        }
    }

    pub(super) fn create(
        &self,
        container_id: &str,
        limits: &Limits,
    ) -> Result<V1Cgroup, CgroupError> {
        let cgroup = self.cgroup(container_id);
        if cgroup.memory.exists() {
            return Err(CgroupError::AlreadyExists(container_id.to_string()));
        }
        let mut made = Vec::new();
        let result = cgroup.dirs().into_iter().try_for_each(|dir| {
            fs::mkdir_all(dir.parent().unwrap_or(dir))?;
            fs::mkdir(dir)?;
            made.push(dir.to_owned());
            Ok(())
        });
        let result = result.and_then(|()| cgroup.update(limits));
        if let Err(e) = result {
            // Half a cgroup is worse than none: undo what was made.
            let deadline = Instant::now() + KILL_TIMEOUT;
            for dir in made.iter().rev() {
                let _ = fs::rmdir(dir, deadline);
            }
            return Err(e);
        }
        Ok(cgroup)
    }

    pub(super) fn recover(&self, container_id: &str) -> Result<V1Cgroup, CgroupError> {
        let cgroup = self.cgroup(container_id);
        if let Some(missing) = cgroup.dirs().into_iter().find(|d| !d.is_dir()) {
            return Err(CgroupError::NotFound {
                container_id: container_id.to_string(),
                path: missing.to_owned(),
            });
        }
        Ok(cgroup)
    }
}

impl V1Cgroup {
    /// Each distinct directory (co-mounted controllers share one).
    fn dirs(&self) -> Vec<&Path> {
        let mut dirs: Vec<&Path> = vec![&self.cpu, &self.cpuacct, &self.memory];
        dirs.extend(self.freezer.as_deref());
        dirs.sort();
        dirs.dedup();
        dirs
    }

    pub(super) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs().iter().map(|d| d.join("cgroup.procs")).collect()
    }

    pub(super) fn update(&self, limits: &Limits) -> Result<(), CgroupError> {
        fs::write(
            &self.cpu.join("cpu.shares"),
            &limits.cpu_shares().to_string(),
        )?;
        let (period, quota) = (
            self.cpu.join("cpu.cfs_period_us"),
            self.cpu.join("cpu.cfs_quota_us"),
        );
        if limits.cfs_quota {
            fs::write(&period, &super::CFS_PERIOD_US.to_string())?;
            fs::write(&quota, &limits.cfs_quota_us().to_string())?;
        } else {
            fs::write(&quota, "-1")?;
        }
        let limit = limits.mem_bytes.map_or("-1".to_string(), |b| b.to_string());
        let memsw = self.memory.join("memory.memsw.limit_in_bytes");
        // memsw must stay >= the memory limit, so it moves first when the
        // limit grows and second when it shrinks; setting it equal to the
        // limit keeps swap from hiding an overrun the task should be OOM
        // killed for. Hosts without swap accounting lack the file.
        let has_memsw = memsw.exists();
        let raise_memsw_first = has_memsw && {
            let current = fs::read(&self.memory.join("memory.limit_in_bytes"))?;
            limits
                .mem_bytes
                .is_none_or(|b| current.trim().parse::<u64>().is_ok_and(|c| b > c))
        };
        if raise_memsw_first {
            fs::write(&memsw, &limit)?;
        }
        fs::write(&self.memory.join("memory.limit_in_bytes"), &limit)?;
        if has_memsw && !raise_memsw_first {
            fs::write(&memsw, &limit)?;
        }
        Ok(())
    }

    pub(super) fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for procs in self.procs_files() {
            fs::write(&procs, &pid.to_string())?;
        }
        Ok(())
    }

    pub(super) fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        fs::read_pids(&self.memory.join("cgroup.procs"))
    }

    /// Freezes the cgroup so nothing can fork while the pids are read,
    /// SIGKILLs every pid, thaws (the kills land on thaw), and waits until
    /// the cgroup is empty. Without the freezer, kill rounds repeat until
    /// no new pid appears.
    pub(super) fn kill_all(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + KILL_TIMEOUT;
        let state = self.freezer.as_ref().map(|f| f.join("freezer.state"));
        if let Some(state) = &state {
            fs::write(state, "FROZEN")?;
            while fs::read(state)?.trim() != "FROZEN" && Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        let procs = self.memory.join("cgroup.procs");
        let result = loop {
            let pids = fs::read_pids(&procs)?;
            for pid in &pids {
                debug!(container_id = %self.container_id, pid, "SIGKILL");
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
            if state.is_some() || pids.is_empty() || Instant::now() >= deadline {
                break Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        if let Some(state) = &state {
            fs::write(state, "THAWED")?;
        }
        result?;
        let left = fs::wait_empty(&procs, deadline)?;
        if !left.is_empty() {
            return Err(CgroupError::StillAlive {
                container_id: self.container_id.clone(),
                pids: left,
            });
        }
        Ok(())
    }

    pub(super) fn stats(&self) -> Result<Stats, CgroupError> {
        let ticks = clock_ticks();
        let cpuacct = fs::read(&self.cpuacct.join("cpuacct.stat"))?;
        let memory = fs::read(&self.memory.join("memory.stat"))?;
        let limit = fs::read(&self.memory.join("memory.limit_in_bytes"))?;
        let limit: u64 = limit
            .trim()
            .parse()
            .map_err(|_| CgroupError::parse(&self.memory, &limit))?;
        let quota = fs::read(&self.cpu.join("cpu.cfs_quota_us"))?;
        let period = fs::read(&self.cpu.join("cpu.cfs_period_us"))?;
        let cpus_limit = match (quota.trim().parse::<i64>(), period.trim().parse::<i64>()) {
            (Ok(q), Ok(p)) if q > 0 && p > 0 => q as f64 / p as f64,
            _ => {
                let shares = fs::read(&self.cpu.join("cpu.shares"))?;
                shares.trim().parse::<f64>().unwrap_or(0.0) / 1024.0
            }
        };
        Ok(Stats {
            cpus_user_time_secs: fs::keyed(&cpuacct, "user").unwrap_or(0) as f64 / ticks,
            cpus_system_time_secs: fs::keyed(&cpuacct, "system").unwrap_or(0) as f64 / ticks,
            // total_rss includes descendants; this leaf has none, but it is
            // the field Mesos reads.
            mem_rss_bytes: fs::keyed(&memory, "total_rss")
                .or(fs::keyed(&memory, "rss"))
                .unwrap_or(0),
            // "Unlimited" reads as the largest page-aligned i64.
            mem_limit_bytes: (limit < (i64::MAX as u64 & !0xfff)).then_some(limit),
            cpus_limit,
        })
    }

    pub(super) fn oom_killed(&self) -> Result<bool, CgroupError> {
        let control = fs::read(&self.memory.join("memory.oom_control"))?;
        Ok(fs::keyed(&control, "oom_kill").unwrap_or(0) > 0)
    }

    pub(super) fn oom_events(&self) -> Result<std::os::fd::OwnedFd, CgroupError> {
        use nix::sys::eventfd::{EfdFlags, EventFd};
        use std::os::fd::AsRawFd;
        let control_path = self.memory.join("memory.oom_control");
        let register = self.memory.join("cgroup.event_control");
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |source: std::io::Error| CgroupError::Io { path, source }
        };
        let events = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| failed(&register)(e.into()))?;
        // The kernel keeps its own reference to the control file.
        let control = std::fs::File::open(&control_path).map_err(failed(&control_path))?;
        let line = format!("{} {}", events.as_raw_fd(), control.as_raw_fd());
        std::fs::write(&register, line).map_err(failed(&register))?;
        Ok(events.into())
    }

    pub(super) fn destroy(&self) -> Result<(), CgroupError> {
        if self.memory.exists() && !self.pids()?.is_empty() {
            self.kill_all()?;
        }
        let deadline = Instant::now() + KILL_TIMEOUT;
        for dir in self.dirs() {
            fs::rmdir(dir, deadline)?;
        }
        Ok(())
    }
}

/// `cpuacct.stat` counts in `USER_HZ`, which `sysconf` reports.
fn clock_ticks() -> f64 {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        // 100 on every Linux architecture the agent runs on.
        _ => 100.0,
    }
}
