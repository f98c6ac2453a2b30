//! The one place that touches cgroupfs files: every read and write goes
//! through here, so each kernel interaction is logged at debug level with its
//! path and value, and every failure becomes a [`CgroupError`] naming the file.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::debug;

use super::CgroupError;

/// Writes `value` to a control file. cgroupfs takes one value per `write(2)`,
/// so the value goes out in a single call (no buffering, no truncation).
pub(super) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    debug!(path = %path.display(), value, "cgroup write");
    let result = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    if let Err(e) = &result {
        debug!(path = %path.display(), value, error = %e, "cgroup write failed");
    }
    result.map_err(|source| CgroupError::io(path, source))
}

/// Reads a control file.
pub(super) fn read(path: &Path) -> Result<String, CgroupError> {
    let content = std::fs::read_to_string(path).map_err(|source| CgroupError::io(path, source))?;
    debug!(path = %path.display(), bytes = content.len(), "cgroup read");
    Ok(content)
}

/// Reads a file of one number per line (`cgroup.procs`).
pub(super) fn read_pids(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let content = read(path)?;
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse().map_err(|_| CgroupError::parse(path, l)))
        .collect()
}

/// The value of `key` in a flat-keyed file (`key value` per line), as found
/// in `memory.stat`, `cpu.stat`, `cpuacct.stat`, `memory.events`.
pub(crate) fn keyed(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(key))
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

/// Creates a cgroup directory (the kernel fills it with control files).
pub(super) fn mkdir(path: &Path) -> Result<(), CgroupError> {
    debug!(path = %path.display(), "cgroup mkdir");
    std::fs::create_dir(path).map_err(|source| CgroupError::io(path, source))
}

/// Creates a parent cgroup if missing (shared by every container).
pub(super) fn mkdir_all(path: &Path) -> Result<(), CgroupError> {
    if path.is_dir() {
        return Ok(());
    }
    debug!(path = %path.display(), "cgroup mkdir -p");
    std::fs::create_dir_all(path).map_err(|source| CgroupError::io(path, source))
}

/// Removes a cgroup directory. The kernel answers `EBUSY` while a dying task
/// is still being torn down, so this retries until `deadline`; a directory
/// already gone counts as removed (destroy is idempotent).
pub(super) fn rmdir(path: &Path, deadline: Instant) -> Result<(), CgroupError> {
    loop {
        debug!(path = %path.display(), "cgroup rmdir");
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => return Err(CgroupError::io(path, source)),
        }
    }
}

/// Polls `cgroup.procs` until it is empty or `deadline` passes; returns the
/// pids still there.
pub(super) fn wait_empty(procs: &Path, deadline: Instant) -> Result<Vec<i32>, CgroupError> {
    loop {
        let pids = read_pids(procs)?;
        if pids.is_empty() || Instant::now() >= deadline {
            return Ok(pids);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::keyed;

    #[test]
    fn keyed_reads_flat_keyed_files() {
        let stat = "cache 4096\nrss 1048576\ntotal_rss 2097152\n";
        assert_eq!(keyed(stat, "rss"), Some(1_048_576));
        assert_eq!(keyed(stat, "total_rss"), Some(2_097_152));
        assert_eq!(keyed(stat, "swap"), None);
        assert_eq!(
            keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"),
            Some(3)
        );
    }
}
