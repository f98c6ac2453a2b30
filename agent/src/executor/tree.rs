//! The shim's view of its task's process tree, read from `/proc`.
//!
//! The shim is a child subreaper, so every process its task forks stays its
//! descendant even after a double fork or `setsid` (orphans are reparented
//! to the shim, not to init). "Every process of the task" is therefore the
//! set of the shim's descendants, found by following parent pids in
//! `/proc/<pid>/stat`, whatever process group or session they moved to.
//!
//! The walk reads `/proc/<pid>/task/<tid>/children` (Linux 3.5+,
//! `CONFIG_PROC_CHILDREN`) from the shim down, so it costs the size of the
//! task's tree. Scanning all of `/proc` instead costs the size of the host:
//! with 1,000 tasks on an agent, 1,000 shims each reading 3,000 `stat` files
//! made stopping the agent take a minute. The full scan remains as the
//! fallback where `children` does not exist. `children` may miss a process
//! forked during the read; every caller repeats the walk until nothing is
//! left, so a late child is caught on the next round.

use std::collections::HashMap;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The parent pid of every process, from `/proc/<pid>/stat`.
fn parents() -> HashMap<i32, i32> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A process may end between readdir and read: skip it.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(ppid) = parse_ppid(&stat) {
            out.insert(pid, ppid);
        }
    }
    out
}

/// The ppid field of a `/proc/<pid>/stat` line. The command name in
/// parentheses may itself hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_ppid(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after the name: state, ppid, ...
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The children of every thread of `pid` (none if it ended meanwhile).
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every live descendant of `root`.
pub fn descendants(root: i32) -> Vec<i32> {
    walk_children(root).unwrap_or_else(|| scan_descendants(root))
}

/// Every live descendant of `root`, from a scan of all of `/proc`.
fn scan_descendants(root: i32) -> Vec<i32> {
    let parents = parents();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (&pid, &ppid) in &parents {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            out.push(child);
            stack.push(child);
        }
    }
    out
}

/// The descendants of `root` through `children` files; `None` if the
/// kernel lacks them (then the caller scans `/proc`).
fn walk_children(root: i32) -> Option<Vec<i32>> {
    // The leader's task directory lives as long as the process does.
    if !std::path::Path::new(&format!("/proc/{root}/task/{root}/children")).exists() {
        return None;
    }
    let mut out = Vec::new();
    let mut stack = children_of(root);
    while let Some(pid) = stack.pop() {
        out.push(pid);
        stack.extend(children_of(pid));
    }
    Some(out)
}

/// Sends `signal` to every descendant of `root`; returns how many there were.
pub fn signal_descendants(root: i32, signal: Signal) -> usize {
    let pids = descendants(root);
    for &pid in &pids {
        match kill(Pid::from_raw(pid), signal) {
            // Gone meanwhile, or a zombie waiting to be reaped.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!(pid, %signal, error = %e, "kill failed"),
        }
    }
    pids.len()
}

/// Reaps every child that has ended, without blocking; returns the status
/// of `main` if it was among them.
pub fn reap(main: Pid) -> Option<WaitStatus> {
    let mut main_status = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return main_status,
            Ok(status) => {
                if status.pid() == Some(main) {
                    main_status = Some(status);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_survives_odd_command_names() {
        assert_eq!(parse_ppid("42 (sleep) S 7 42 42 0"), Some(7));
        assert_eq!(parse_ppid("42 (a) b) (c) R 9 1 1"), Some(9));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn the_children_walk_agrees_with_the_proc_scan() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30 & (sleep 30 & wait) & wait"])
            .spawn()
            .expect("spawn");
        let root = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while scan_descendants(root).len() < 3 {
            assert!(std::time::Instant::now() < deadline, "tree not built");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut scanned = scan_descendants(root);
        scanned.sort_unstable();
        if let Some(mut walked) = walk_children(root) {
            walked.sort_unstable();
            assert_eq!(walked, scanned);
        }
        signal_descendants(root, Signal::SIGKILL);
        child.kill().expect("kill");
        child.wait().expect("wait");
    }

    #[test]
    fn finds_grandchildren() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .expect("spawn");
        let me = std::process::id() as i32;
        let child_pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while descendants(child_pid).is_empty() {
            assert!(std::time::Instant::now() < deadline, "grandchild not seen");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let all = descendants(me);
        assert!(all.contains(&child_pid));
        assert!(all.len() >= 2, "{all:?}");
        signal_descendants(child_pid, Signal::SIGKILL);
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
}
