//! Which isolators the agent uses: `--isolation` checked against what the
//! host allows, decided once at agent start.
//!
//! [`select`] is pure: it takes the flag and what detection found
//! ([`Availability`]) and returns the isolators in force, or an error naming
//! the flag. Without the flag the agent uses whatever is available and, where
//! cgroups or namespaces are not, logs *one* warning at start (the
//! [`Selection::warning`]) and runs tasks with plain process-group isolation.
//! `posix` (alone) asks for no isolation at all.
//!
//! The outcome reaches each executor shim as a [`ShimIsolation`] in its
//! config: the shim creates the cgroup and the namespaces, so they are the
//! shim's to tear down, even while the agent is away.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The isolator names `--isolation` accepts (Mesos' spelling).
pub const KNOWN: [&str; 8] = [
    "cgroups/cpu",
    "cgroups/mem",
    "namespaces/pid",
    "namespaces/ipc",
    "filesystem/posix",
    "disk/du",
    "posix/cpu",
    "posix/mem",
];

/// What detection found on this host: `Err` holds why a mechanism is unusable.
#[derive(Debug, Clone, PartialEq)]
pub struct Availability {
    /// cgroups (v1 or v2) can be created.
    pub cgroups: Result<(), String>,
    /// `unshare` can create pid, mount, ipc and uts namespaces.
    pub namespaces: Result<(), String>,
}

/// The isolators in force.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selection {
    /// Names, in a stable order, for the log and `/state`.
    pub isolators: Vec<&'static str>,
    /// Tasks get a cgroup.
    pub cgroups: bool,
    /// ... with a memory limit.
    pub mem: bool,
    /// ... with cpu shares (and a quota with `--cgroups-enable-cfs`).
    pub cpu: bool,
    /// Tasks get pid, mount, ipc and uts namespaces.
    pub namespaces: bool,
    /// Set when the default selection had to leave out what the host lacks.
    pub warning: Option<String>,
}

/// A bad `--isolation`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IsolationError {
    /// A name this agent does not know.
    #[error("--isolation: unknown isolator '{name}' (known: posix, {})", KNOWN.join(", "))]
    Unknown {
        /// The name.
        name: String,
    },
    /// An isolator the host cannot provide.
    #[error("--isolation: '{name}' is not available on this host: {why}")]
    Unavailable {
        /// The name.
        name: String,
        /// What detection said.
        why: String,
    },
}

/// The isolators for `flag` (`None`: everything available) on a host with
/// `available`.
pub fn select(flag: Option<&str>, available: &Availability) -> Result<Selection, IsolationError> {
    let names: Vec<String> = match flag {
        Some(text) => text
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect(),
        None => {
            let mut names = Vec::new();
            let mut missing = Vec::new();
            match &available.cgroups {
                Ok(()) => names.extend(["cgroups/cpu".into(), "cgroups/mem".into()]),
                Err(why) => missing.push(why.clone()),
            }
            match &available.namespaces {
                Ok(()) => names.extend(["namespaces/pid".into(), "namespaces/ipc".into()]),
                Err(why) => missing.push(why.clone()),
            }
            let mut selection = from_names(&names, available)?;
            if !missing.is_empty() {
                selection.warning = Some(format!(
                    "{}; tasks run with process-group isolation only",
                    missing.join("; ")
                ));
            }
            return Ok(selection);
        }
    };
    from_names(&names, available)
}

fn from_names(names: &[String], available: &Availability) -> Result<Selection, IsolationError> {
    let mut s = Selection::default();
    for name in names {
        let need = |r: &Result<(), String>| {
            r.clone().map_err(|why| IsolationError::Unavailable {
                name: name.clone(),
                why,
            })
        };
        match name.as_str() {
            "posix" | "posix/cpu" | "posix/mem" => {}
            "cgroups/cpu" => {
                need(&available.cgroups)?;
                s.cgroups = true;
                s.cpu = true;
            }
            "cgroups/mem" => {
                need(&available.cgroups)?;
                s.cgroups = true;
                s.mem = true;
            }
            "namespaces/pid" | "namespaces/ipc" => {
                need(&available.namespaces)?;
                s.namespaces = true;
            }
            "filesystem/posix" | "disk/du" => {}
            other => {
                return Err(IsolationError::Unknown {
                    name: other.to_string(),
                })
            }
        }
    }
    // Stable, complete names: what is really in force.
    if s.cpu {
        s.isolators.push("cgroups/cpu");
    }
    if s.mem {
        s.isolators.push("cgroups/mem");
    }
    if s.namespaces {
        s.isolators.extend(["namespaces/pid", "namespaces/ipc"]);
    }
    s.isolators.extend(["filesystem/posix", "disk/du"]);
    Ok(s)
}

/// The isolation an executor shim applies to its task (in `shim.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShimIsolation {
    /// Put the task in a cgroup of its own (named after the container).
    #[serde(default)]
    pub cgroups: bool,
    /// Set the cgroup's memory limit from the task's `mem`.
    #[serde(default)]
    pub mem: bool,
    /// Set cpu shares from the task's `cpus`.
    #[serde(default)]
    pub cpu: bool,
    /// Also a CFS quota (`--cgroups-enable-cfs`).
    #[serde(default)]
    pub cfs_quota: bool,
    /// Run the task under this `unshare` (the agent probed it) in new
    /// namespaces.
    #[serde(default)]
    pub unshare: Option<PathBuf>,
    /// Measure the sandbox this often (milliseconds) and kill the task once
    /// it uses more than its `disk` (`--enforce-container-disk-quota`).
    #[serde(default)]
    pub disk_watch_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(cgroups: bool, namespaces: bool) -> Availability {
        let r = |ok: bool, why: &str| if ok { Ok(()) } else { Err(why.to_string()) };
        Availability {
            cgroups: r(cgroups, "cgroup isolation disabled: read-only"),
            namespaces: r(namespaces, "namespace isolation disabled: no unshare"),
        }
    }

    #[test]
    fn the_default_is_what_the_host_has_with_one_warning_for_the_rest() {
        let s = select(None, &host(true, true)).unwrap();
        assert!(s.cgroups && s.mem && s.cpu && s.namespaces);
        assert_eq!(s.warning, None);
        assert!(s.isolators.contains(&"namespaces/pid"));

        let s = select(None, &host(false, false)).unwrap();
        assert!(!s.cgroups && !s.namespaces);
        let warning = s.warning.unwrap();
        assert!(warning.contains("read-only") && warning.contains("no unshare"));
        assert_eq!(s.isolators, ["filesystem/posix", "disk/du"]);
    }

    #[test]
    fn the_flag_is_checked_against_the_host() {
        let s = select(Some("cgroups/mem,namespaces/pid"), &host(true, true)).unwrap();
        assert!(s.mem && !s.cpu && s.namespaces);
        let s = select(Some("posix"), &host(true, true)).unwrap();
        assert!(!s.cgroups && !s.namespaces && s.warning.is_none());

        let err = select(Some("cgroups/mem"), &host(false, true)).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("--isolation: 'cgroups/mem' is not available"));
        let err = select(Some("gpu/nvidia"), &host(true, true)).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("--isolation: unknown isolator 'gpu/nvidia'"));
    }
}
