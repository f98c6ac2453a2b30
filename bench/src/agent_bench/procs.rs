//! What the agent bench reads from `/proc` and runs directly: process
//! memory, the agent's executor shims, leftover task processes, and the
//! bare `fork/exec` baseline.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::target::MemoryReading;

/// `VmRSS`, `VmHWM` and `RssAnon` (KiB) of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcMemory {
    pub rss_kb: u64,
    pub peak_kb: u64,
    pub anon_kb: u64,
}

impl ProcMemory {
    pub fn reading(self) -> MemoryReading {
        MemoryReading {
            rss_kb: self.rss_kb,
            peak_kb: self.peak_kb,
        }
    }
}

/// Reads `pid`'s memory; `None` if it is gone (or not Linux).
pub(crate) fn memory(pid: u32) -> Option<ProcMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(ProcMemory {
        rss_kb: field("VmRSS:")?,
        peak_kb: field("VmHWM:")?,
        // Absent on kernels before 4.5: counted as zero.
        anon_kb: field("RssAnon:").unwrap_or(0),
    })
}

/// Every process id in `/proc`.
fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A process's arguments.
fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The file name of the program `pid` runs (its first argument).
pub(crate) fn program(pid: u32) -> Option<String> {
    let first = cmdline(pid).into_iter().next()?;
    Some(
        Path::new(&first)
            .file_name()
            .map_or(first.clone(), |n| n.to_string_lossy().into_owned()),
    )
}

/// The executor shims whose config lies under `work_dir`: processes run as
/// `... executor --config <work_dir>/.../shim.json` (another agent's shims
/// on the same host are left out).
pub(crate) fn shims(work_dir: &Path) -> Vec<u32> {
    let root = work_dir.display().to_string();
    pids()
        .into_iter()
        .filter(|pid| {
            let args = cmdline(*pid);
            let config = args.iter().position(|a| a == "--config");
            args.iter().any(|a| a == "executor")
                && config
                    .and_then(|i| args.get(i + 1))
                    .is_some_and(|c| c.starts_with(&root))
        })
        .collect()
}

/// Processes running `command` (its exact arguments) whose working directory
/// is under `work_dir`: the bench's task processes (a task runs in its sandbox).
pub(crate) fn tasks_under(work_dir: &Path, command: &[&str]) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|pid| {
            cmdline(*pid) == command
                && std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(work_dir))
        })
        .collect()
}

/// The bare baseline: `sh -c <command>` spawned `n` times in a row, as the
/// shim starts a task; each sample is `Command::spawn`, which returns once
/// the child has exec'd (std waits on a close-on-exec pipe). The children
/// are killed and reaped before returning.
pub(crate) fn bare_spawns(n: usize, command: &str) -> std::io::Result<Vec<Duration>> {
    let mut children: Vec<Child> = Vec::with_capacity(n);
    let mut samples = Vec::with_capacity(n);
    let mut result = Ok(());
    for _ in 0..n {
        let started = Instant::now();
        let spawned = Command::new("/bin/sh")
            .args(["-c", command])
            // Its own group, killed whole below: `sh -c` may fork the
            // command rather than exec it, and the command must not outlive us.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => {
                samples.push(started.elapsed());
                children.push(child);
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    for mut child in children {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }
    result.map(|()| samples)
}

/// The `q` quantile (0.0..=1.0) of `samples` in milliseconds, nearest rank.
pub(crate) fn quantile_ms(samples: &[Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&samples, 0.5), 50.0);
        assert_eq!(quantile_ms(&samples, 0.99), 99.0);
        assert_eq!(quantile_ms(&samples, 1.0), 100.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn bare_spawns_leave_nothing_running() {
        let samples = bare_spawns(3, "sleep 601; true").expect("spawn");
        assert_eq!(samples.len(), 3);
        let left = std::process::Command::new("pgrep")
            .args(["-f", "^sleep 601$"])
            .output()
            .expect("pgrep");
        assert!(left.stdout.is_empty(), "bare spawns left processes behind");
        let me = memory(std::process::id()).expect("self");
        assert!(me.rss_kb > 0 && me.peak_kb >= me.rss_kb);
    }
}
