//! The shim's view of its task's process tree, read from `/proc`.
//!
//! The shim is a child subreaper, so every process its task forks stays its
//! descendant even after a double fork or `setsid` (orphans are reparented
//! to the shim, not to init). "Every process of the task" is therefore the
//! set of the shim's descendants, found by following parent pids in
//! `/proc/<pid>/stat`, whatever process group or session they moved to.

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

/// Every live descendant of `root`.
pub fn descendants(root: i32) -> Vec<i32> {
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
