//! What this machine offers: `--resources` completed by auto-detection.
//!
//! Mesos' rules: whatever `--resources` names is taken as given; `cpus`,
//! `mem`, `disk` and `ports` it leaves out are detected. Memory and disk keep
//! a reserve for the agent and the system (1 GiB of memory when there are at
//! least 2 GiB, else half; 5 GiB of disk when there are at least 10 GiB, else
//! half). The arithmetic is pure ([`memory_for_tasks`], [`disk_for_tasks`]);
//! only [`detect`] reads `/proc` and the file system.

use std::path::Path;

use agora_common::resources::{ranges, scalar, Resources};

/// Ports offered when `--resources` names none (Mesos' default range).
pub const DEFAULT_PORTS: (u64, u64) = (31000, 32000);

const GIB_MB: f64 = 1024.0;

/// The memory (MB) offered to tasks out of `total_mb`.
pub fn memory_for_tasks(total_mb: f64) -> f64 {
    if total_mb >= 2.0 * GIB_MB {
        total_mb - GIB_MB
    } else {
        total_mb / 2.0
    }
}

/// The disk (MB) offered to tasks out of `free_mb`.
pub fn disk_for_tasks(free_mb: f64) -> f64 {
    if free_mb >= 10.0 * GIB_MB {
        free_mb - 5.0 * GIB_MB
    } else {
        free_mb / 2.0
    }
}

/// `configured` completed with the detected cpus, mem, disk and ports it
/// lacks. `work_dir` must exist (its file system is the one measured).
pub fn detect(configured: &Resources, work_dir: &Path) -> Resources {
    let mut out = configured.clone();
    let has = |name: &str| configured.iter().any(|r| r.name == name);
    if !has("cpus") {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        out.add_resource(scalar("cpus", cpus as f64));
    }
    if !has("mem") {
        match total_memory_mb() {
            Some(total) => out.add_resource(scalar("mem", memory_for_tasks(total).floor())),
            None => tracing::warn!("cannot read /proc/meminfo; offering no memory"),
        }
    }
    if !has("disk") {
        match free_disk_mb(work_dir) {
            Ok(free) => out.add_resource(scalar("disk", disk_for_tasks(free).floor())),
            Err(e) => tracing::warn!(work_dir = %work_dir.display(), error = %e,
                "cannot measure the work dir's file system; offering no disk"),
        }
    }
    if !has("ports") {
        out.add_resource(ranges("ports", &[DEFAULT_PORTS]));
    }
    out
}

/// `MemTotal` from `/proc/meminfo`, in MB.
fn total_memory_mb() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo_total_mb(&text)
}

/// Parses the `MemTotal:   16318712 kB` line.
fn parse_meminfo_total_mb(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Space available to unprivileged users on the file system holding `path`, in MB.
fn free_disk_mb(path: &Path) -> nix::Result<f64> {
    let st = nix::sys::statvfs::statvfs(path)?;
    let bytes = st.blocks_available() as f64 * st.fragment_size() as f64;
    Ok(bytes / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_follow_mesos_rules() {
        assert_eq!(memory_for_tasks(8192.0), 7168.0);
        assert_eq!(memory_for_tasks(2048.0), 1024.0);
        assert_eq!(memory_for_tasks(1000.0), 500.0);
        assert_eq!(disk_for_tasks(20480.0), 15360.0);
        assert_eq!(disk_for_tasks(4000.0), 2000.0);
    }

    #[test]
    fn parses_meminfo() {
        let text = "MemTotal:       16318712 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_meminfo_total_mb(text), Some(16318712.0 / 1024.0));
        assert_eq!(parse_meminfo_total_mb("nonsense"), None);
    }

    #[test]
    fn detection_on_this_machine_is_sane() {
        let dir = std::env::temp_dir();
        let r = detect(&Resources::new(), &dir);
        assert!(r.scalar("cpus") >= 1.0);
        assert!(r.scalar("mem") > 0.0);
        assert!(r.scalar("disk") > 0.0);
        let ports = r.ranges("ports");
        assert_eq!((ports[0].begin, ports[0].end), DEFAULT_PORTS);
    }

    #[test]
    fn configured_values_win() {
        let configured = Resources::parse("cpus:3;ports:[1-2]").expect("valid");
        let r = detect(&configured, &std::env::temp_dir());
        assert_eq!(r.scalar("cpus"), 3.0);
        assert_eq!(r.ranges("ports").len(), 1);
        assert_eq!(r.ranges("ports")[0].end, 2);
        assert!(r.scalar("mem") > 0.0);
    }
}
