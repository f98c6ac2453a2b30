//! Tests against the real kernel: each creates its own uniquely named
//! cgroup under the agent's (here: the test process') own cgroup and
//! destroys it. Where the host has no usable cgroups they check that
//! detection said so for the reason `/proc/self/mountinfo` gives, and stop.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

const MIB: u64 = 1024 * 1024;

fn id() -> String {
    format!("test-{}", uuid::Uuid::new_v4())
}

/// The manager, or `None` (with a note) on a host where cgroups are not
/// usable, which `detection_agrees_with_mountinfo` checks is right.
fn manager() -> Option<CgroupManager> {
    match CgroupManager::detect() {
        Ok(m) => Some(m),
        Err(why) => {
            crate::isolation::skip_unavailable(&why);
            None
        }
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn detection_agrees_with_mountinfo() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let root = nix::unistd::geteuid().is_root();
    match (detect::layout(&mountinfo, &own), CgroupManager::detect()) {
        (detect::Layout::V1(_), Ok(m)) => assert_eq!(m.version(), 1),
        (detect::Layout::V1(_), Err(why)) => {
            assert!(!root, "v1 is mounted rw and we are root: {why}")
        }
        (detect::Layout::V2(_), Ok(m)) => assert_eq!(m.version(), 2),
        (detect::Layout::V2(_), Err(why)) => eprintln!("v2 mounted but unusable: {why}"),
        (detect::Layout::None(a), Err(b)) => assert_eq!(b, Unavailable(a)),
        (detect::Layout::None(why), Ok(_)) => {
            panic!("detected cgroups where mountinfo has none: {why}")
        }
    }
}

#[test]
fn limits_are_written_and_read_back() {
    let Some(m) = manager() else { return };
    let id = id();
    let limits = Limits {
        cpus: 0.5,
        mem_bytes: Some(64 * MIB),
        cfs_quota: true,
    };
    let cg = m.create(&id, &limits).unwrap();
    assert!(matches!(
        m.create(&id, &limits),
        Err(CgroupError::AlreadyExists(_))
    ));
    if let Cgroup::V1(v1) = &cg {
        let shares = v1.procs_files()[0].with_file_name("cpu.shares");
        let shares = std::fs::read_to_string(shares);
        // procs_files is sorted: the cpu dir comes first.
        assert_eq!(shares.unwrap().trim(), "512");
    }
    let stats = cg.stats().unwrap();
    assert_eq!(stats.mem_limit_bytes, Some(64 * MIB));
    assert!((stats.cpus_limit - 0.5).abs() < 1e-9, "{stats:?}");

    // Shares only, no memory limit.
    cg.update(&Limits {
        cpus: 2.0,
        mem_bytes: None,
        cfs_quota: false,
    })
    .unwrap();
    let stats = cg.stats().unwrap();
    assert_eq!(stats.mem_limit_bytes, None);
    assert!((stats.cpus_limit - 2.0).abs() < 0.01, "{stats:?}");

    cg.destroy().unwrap();
    cg.destroy().unwrap();
    assert!(matches!(m.recover(&id), Err(CgroupError::NotFound { .. })));
    assert!(!m.containers().unwrap().contains(&id));
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let Some(m) = manager() else { return };
    let limits = Limits {
        cpus: 1.0,
        mem_bytes: Some(32 * MIB),
        cfs_quota: false,
    };
    let cg = m.create(&id(), &limits).unwrap();
    assert!(!cg.oom_killed().unwrap());
    let events = cg.oom_events().expect("OOM events");
    assert!(!readable(&events), "no OOM event before the hog");
    // `tail` buffers a "line" of /dev/zero that never ends: it allocates
    // until something stops it.
    let mut cmd = Command::new("tail");
    cmd.arg("/dev/zero").stdout(Stdio::null());
    cg.enter_on_spawn(&mut cmd).unwrap();
    let status = cmd.spawn().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert!(cg.oom_killed().unwrap());
    assert!(readable(&events), "the OOM killer's work was signalled");
    cg.destroy().unwrap();
}

/// Whether `fd` has something to read, without waiting.
fn readable(fd: &std::os::fd::OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).unwrap() == 1
}

#[test]
fn kill_all_kills_forked_children() {
    let Some(m) = manager() else { return };
    let cg = m
        .create(
            &id(),
            &Limits {
                cpus: 0.1,
                mem_bytes: None,
                cfs_quota: false,
            },
        )
        .unwrap();
    // Children in their own sessions: out of reach of a process-group kill.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "setsid sleep 1000 & setsid sleep 1000 & wait"]);
    cg.enter_on_spawn(&mut cmd).unwrap();
    let mut child = cmd.spawn().unwrap();
    wait_until("sh and two sleeps run", || cg.pids().unwrap().len() == 3);
    assert!(cg.pids().unwrap().contains(&(child.id() as i32)));
    // Reap sh as it dies, as the shim would, so no zombie lingers.
    let reaper = std::thread::spawn(move || child.wait().unwrap());
    cg.kill_all().unwrap();
    assert_eq!(cg.pids().unwrap(), Vec::<i32>::new());
    assert_eq!(reaper.join().unwrap().signal(), Some(9));
    cg.destroy().unwrap();
}

#[test]
fn process_added_later_is_tracked_recovered_and_destroyed() {
    let Some(m) = manager() else { return };
    let id = id();
    let cg = m
        .create(
            &id,
            &Limits {
                cpus: 1.0,
                mem_bytes: Some(256 * MIB),
                cfs_quota: false,
            },
        )
        .unwrap();
    // Held on stdin until it is in the cgroup, so what it then does (a busy
    // loop, exec of sleep) is charged to the cgroup.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "read _; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exec sleep 1000",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    cg.add_process(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();

    // After an agent restart: found by id alone.
    let recovered = m.recover(&id).unwrap();
    assert_eq!(recovered.container_id(), id);
    assert!(m.containers().unwrap().contains(&id));
    wait_until("the busy loop used cpu and sleep has memory", || {
        let s = recovered.stats().unwrap();
        s.cpus_user_time_secs + s.cpus_system_time_secs > 0.0 && s.mem_rss_bytes > 0
    });
    let stats = recovered.stats().unwrap();
    assert_eq!(stats.mem_limit_bytes, Some(256 * MIB));

    let reaper = std::thread::spawn(move || child.wait().unwrap());
    recovered.destroy().unwrap();
    assert_eq!(reaper.join().unwrap().signal(), Some(9));
    assert!(matches!(m.recover(&id), Err(CgroupError::NotFound { .. })));
}

#[test]
fn ids_that_are_not_one_path_component_are_refused() {
    let Some(m) = manager() else { return };
    for bad in ["", ".", "..", "a/b", "../../etc"] {
        assert!(matches!(
            m.create(
                bad,
                &Limits {
                    cpus: 1.0,
                    mem_bytes: None,
                    cfs_quota: false
                }
            ),
            Err(CgroupError::InvalidId(_))
        ));
    }
}

#[test]
fn cpu_conversions() {
    let l = |cpus| Limits {
        cpus,
        mem_bytes: None,
        cfs_quota: true,
    };
    assert_eq!(l(1.0).cpu_shares(), 1024);
    assert_eq!(l(0.001).cpu_shares(), 2);
    assert_eq!(l(0.25).cfs_quota_us(), 25_000);
    assert_eq!(l(0.001).cfs_quota_us(), 1000);
    assert_eq!(l(1.0).cpu_weight(), 39);
    assert_eq!(l(0.0).cpu_weight(), 1);
    assert_eq!(l(1000.0).cpu_weight(), 10_000);
}
