//! Disk usage of a sandbox, for `--enforce-container-disk-quota` (Mesos'
//! `disk/du` isolator): what `du -sx` would report, computed in-process.
//!
//! Allocated blocks are counted, not file lengths, so sparse files cost what
//! they really occupy; symbolic links are not followed (a link to `/` must
//! not make a task look huge), each hard-linked inode counts once, and other
//! file systems mounted inside the sandbox are not entered. The walk is
//! iterative and capped at [`MAX_ENTRIES`] so a task creating millions of
//! files cannot make the agent spin: the partial sum is still a lower bound,
//! which is enough to decide an overrun.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tracing::debug;

/// Entries visited at most per measurement.
pub const MAX_ENTRIES: usize = 1_000_000;

/// The outcome of one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated on disk.
    pub bytes: u64,
    /// Entries (files, directories, links) counted.
    pub entries: usize,
    /// Whether the walk stopped at the entry cap (`bytes` is a lower bound).
    pub truncated: bool,
}

/// Bytes allocated under `path` (0 if it does not exist). Entries that vanish
/// or cannot be read while the task runs are skipped, not errors.
pub fn usage(path: &Path) -> u64 {
    measure(path, MAX_ENTRIES).bytes
}

/// As [`usage`], visiting at most `max_entries` entries.
pub fn measure(path: &Path, max_entries: usize) -> Usage {
    let mut usage = Usage {
        bytes: 0,
        entries: 0,
        truncated: false,
    };
    let Ok(root) = path.symlink_metadata() else {
        return usage;
    };
    let device = root.dev();
    let mut seen_links = HashSet::new();
    let mut pending: Vec<(PathBuf, std::fs::Metadata)> = vec![(path.to_owned(), root)];
    while let Some((path, meta)) = pending.pop() {
        if usage.entries >= max_entries {
            usage.truncated = true;
            break;
        }
        usage.entries += 1;
        // A file with several names is counted under the first one met.
        if meta.nlink() > 1 && !meta.is_dir() && !seen_links.insert((meta.dev(), meta.ino())) {
            continue;
        }
        usage.bytes += meta.blocks() * 512;
        if !meta.is_dir() || meta.dev() != device {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            // DirEntry::metadata does not follow symlinks.
            if let Ok(meta) = entry.metadata() {
                pending.push((entry.path(), meta));
            }
        }
    }
    debug!(path = %path.display(), ?usage, "disk usage");
    usage
}

/// Whether `usage` is over `limit` (both in bytes): Mesos kills a task only
/// once it uses more than its `disk` resource, not when it reaches it.
pub fn exceeds(usage: u64, limit: u64) -> bool {
    usage > limit
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn a_one_mib_file_counts_at_least_one_mib() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/data"), vec![7u8; MIB as usize]).unwrap();
        let bytes = usage(dir.path());
        assert!(bytes >= MIB, "{bytes}");
        assert!(bytes < 2 * MIB, "{bytes}");
    }

    #[test]
    fn links_do_not_inflate_usage() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, vec![1u8; MIB as usize]).unwrap();
        let before = usage(dir.path());
        std::fs::hard_link(&data, dir.path().join("again")).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("root")).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        // The symlinks themselves take at most a block each.
        assert!(usage(dir.path()) <= before + 2 * 4096, "{before}");
    }

    #[test]
    fn sparse_files_count_what_they_occupy_and_missing_paths_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("sparse")).unwrap();
        f.set_len(100 * MIB).unwrap();
        assert!(usage(dir.path()) < MIB);
        assert_eq!(usage(&dir.path().join("nope")), 0);
    }

    #[test]
    fn the_walk_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..20 {
            std::fs::write(dir.path().join(i.to_string()), b"x").unwrap();
        }
        let u = measure(dir.path(), 5);
        assert!(u.truncated);
        assert_eq!(u.entries, 5);
        assert!(!measure(dir.path(), 100).truncated);
    }

    #[test]
    fn exceeding_means_strictly_more() {
        assert!(!exceeds(MIB, MIB));
        assert!(exceeds(MIB + 1, MIB));
    }
}
