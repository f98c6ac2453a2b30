//! Isolation of the tasks an executor shim runs: building blocks the shim
//! calls, each detecting at run time what the host allows.
//!
//! * [`cgroups`]: cpu and memory limits, OOM reporting, usage statistics and
//!   a whole-tree kill, on cgroup v1 or v2 behind one [`cgroups::CgroupManager`];
//! * [`namespaces`]: the task as pid 1 of a new pid namespace with a private
//!   `/proc`, and its own ipc and uts namespaces;
//! * [`disk`]: a sandbox's disk usage, for the disk quota;
//! * [`policy`]: `--isolation` against what the host allows, and what each
//!   shim is told to apply.
//!
//! Where the host does not allow a mechanism (not root, read-only cgroupfs,
//! no util-linux), detection returns an `Unavailable` whose message the agent
//! logs once as a warning, and tasks run with plain process isolation.
//! [`available_isolators`] names what is in force, Mesos-style, for the
//! agent's flags and `/state`.

pub mod cgroups;
pub mod disk;
pub mod namespaces;
pub mod policy;

/// The isolators this host supports, by Mesos' names: `cgroups/cpu` and
/// `cgroups/mem` when cgroups are usable, `namespaces/pid` and
/// `namespaces/ipc` when the namespace probe passes, and always
/// `filesystem/posix` (the sandbox) and `disk/du`. Runs the detections
/// (the namespace probe spawns a process, once per agent process).
pub fn available_isolators() -> Vec<&'static str> {
    let mut isolators = Vec::new();
    if cgroups::CgroupManager::detect().is_ok() {
        isolators.extend(["cgroups/cpu", "cgroups/mem"]);
    }
    if let Ok(ns) = namespaces::Namespaces::detect() {
        isolators.extend(ns.isolators());
    }
    isolators.extend(["filesystem/posix", "disk/du"]);
    isolators
}

/// For tests of isolation on a host without it (`why`): a note that the
/// test is skipped, or, under `CI=true` (the CI host has cgroups and
/// namespaces), a failure, so that a missing isolator cannot pass unseen.
pub fn skip_unavailable(why: &dyn std::fmt::Display) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and this host cannot isolate: {why}");
    }
    eprintln!("skipping: {why}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn isolators_follow_detection() {
        let isolators = super::available_isolators();
        assert!(isolators.contains(&"filesystem/posix"));
        let cgroups = super::cgroups::CgroupManager::detect().is_ok();
        assert_eq!(isolators.contains(&"cgroups/mem"), cgroups);
        let ns = super::namespaces::Namespaces::detect().is_ok();
        assert_eq!(isolators.contains(&"namespaces/pid"), ns);
        eprintln!("isolators here: {isolators:?}");
    }
}
