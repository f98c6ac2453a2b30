//! The file-system side of sandbox GC: removing a run directory with what
//! it leaves empty, finding finished sandboxes after a restart, and the
//! work dir's disk usage. Every function here blocks: the collector calls
//! them through `spawn_blocking`.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Removes a sandbox (`.../executors/<ex>/runs/<container>`), the `latest`
/// link when it points at it, and then the `runs`, executor, `executors` and
/// framework directories that are left empty.
///
/// Parents go with `remove_dir`, which refuses a non-empty directory: a
/// launch that just made a new run under the same executor keeps it. A
/// sandbox already gone is not an error (removed by hand, or twice).
pub fn remove_sandbox(sandbox: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(sandbox) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let Some(runs) = sandbox.parent() else {
        return Ok(());
    };
    let latest = runs.join("latest");
    if let (Ok(target), Some(name)) = (std::fs::read_link(&latest), sandbox.file_name()) {
        // The link is relative (`latest -> <container>`); an absolute one
        // written by another tool is compared as is.
        if target.as_os_str() == name || target == sandbox {
            let _ = std::fs::remove_file(&latest);
        }
    }
    // runs/ → <executor>/ → executors/ → <framework>/ ; each only if empty.
    let mut dir = Some(runs);
    for _ in 0..4 {
        let Some(d) = dir else { break };
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// Every run directory under `work_dir/slaves/*/frameworks/*/executors/*/runs/`
/// whose container is not in `live`, with its directory's mtime: the
/// sandboxes a restarted agent schedules for GC.
pub fn finished_sandboxes(work_dir: &Path, live: &HashSet<String>) -> Vec<(PathBuf, SystemTime)> {
    crate::sandbox::run_dirs(work_dir)
        .into_iter()
        .filter(|run| {
            let container = run.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !live.contains(container)
        })
        .map(|run| {
            let mtime = std::fs::metadata(&run)
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| SystemTime::now());
            (run, mtime)
        })
        .collect()
}

/// The fraction of the file system holding `path` that is in use, as
/// Mesos' `fs::usage` counts it: `(blocks − free) / blocks`.
pub fn disk_usage(path: &Path) -> io::Result<f64> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let blocks = stat.blocks() as f64;
    if blocks <= 0.0 {
        return Ok(0.0);
    }
    let free = stat.blocks_free() as f64;
    Ok(((blocks - free) / blocks).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir(root: &Path, fw: &str, ex: &str, container: &str) -> PathBuf {
        let dir = root
            .join("slaves/a-S0/frameworks")
            .join(fw)
            .join("executors")
            .join(ex)
            .join("runs")
            .join(container);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("stdout"), "out").expect("write");
        dir
    }

    #[test]
    fn removing_the_last_run_removes_latest_and_the_empty_parents() {
        let root = tempfile::tempdir().expect("tempdir");
        let run = run_dir(root.path(), "f1", "t1", "c1");
        std::os::unix::fs::symlink("c1", run.parent().expect("runs").join("latest")).expect("link");
        let other = run_dir(root.path(), "f1", "t2", "c2");

        remove_sandbox(&run).expect("removed");
        let framework = root.path().join("slaves/a-S0/frameworks/f1");
        assert!(!framework.join("executors/t1").exists());
        assert!(other.is_dir(), "the sibling executor stays");
        remove_sandbox(&other).expect("removed");
        assert!(!framework.exists(), "the empty framework dir goes too");
        assert!(root.path().join("slaves/a-S0/frameworks").is_dir());
        // Twice is fine.
        remove_sandbox(&other).expect("already gone");
    }

    #[test]
    fn latest_pointing_at_a_newer_run_stays() {
        let root = tempfile::tempdir().expect("tempdir");
        let old = run_dir(root.path(), "f1", "t1", "c1");
        let new = run_dir(root.path(), "f1", "t1", "c2");
        let latest = old.parent().expect("runs").join("latest");
        std::os::unix::fs::symlink("c2", &latest).expect("link");
        remove_sandbox(&old).expect("removed");
        assert!(!old.exists() && new.is_dir());
        assert_eq!(std::fs::read_link(&latest).expect("kept"), Path::new("c2"));
    }

    #[test]
    fn finished_sandboxes_leave_out_live_containers_and_links() {
        let root = tempfile::tempdir().expect("tempdir");
        let done = run_dir(root.path(), "f1", "t1", "c1");
        run_dir(root.path(), "f1", "t2", "live");
        std::os::unix::fs::symlink("c1", done.parent().expect("runs").join("latest"))
            .expect("link");
        let live = HashSet::from(["live".to_string()]);
        let found = finished_sandboxes(root.path(), &live);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, done);
    }

    #[test]
    fn disk_usage_is_a_fraction() {
        let usage = disk_usage(&std::env::temp_dir()).expect("statvfs");
        assert!((0.0..=1.0).contains(&usage), "{usage}");
    }
}
