//! Which cgroup hierarchy this host has, read from `/proc/self/mountinfo` and
//! `/proc/self/cgroup`.
//!
//! The pure part ([`layout`]) only parses text, so every shape of host (v1,
//! v2, hybrid, none) is covered by unit tests without such a host; the
//! caller then checks the chosen directories on the real file system.
//!
//! Containers are placed under the agent's *own* cgroup (`<own>/agora/<id>`),
//! not at the hierarchy root: whatever limits the agent itself runs under
//! (a systemd slice, an outer container) keep applying to its tasks, and the
//! agent never writes outside the subtree it was given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The v1 controllers the agent needs; `freezer` is used when present.
pub(crate) const V1_REQUIRED: [&str; 3] = ["cpu", "cpuacct", "memory"];

/// The hierarchy found, before any write-access check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Layout {
    /// cgroup v1: for each controller, the agent's own cgroup directory in
    /// that controller's hierarchy.
    V1(BTreeMap<String, PathBuf>),
    /// cgroup v2: the agent's own cgroup directory in the unified hierarchy.
    V2(PathBuf),
    /// Neither, and why.
    None(String),
}

/// One line of `/proc/self/mountinfo` that mounts a cgroup file system.
struct CgroupMount<'a> {
    /// The path inside the hierarchy that is mounted (`/` unless the mount is
    /// a bind of a sub-cgroup or inside a cgroup namespace).
    root: &'a str,
    mount_point: &'a str,
    read_only: bool,
    v2: bool,
    /// The super options: for v1, the controllers (`rw,cpu,cpuacct`).
    options: &'a str,
}

fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount<'_>> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // `id parent major:minor root mount_point opts [optional...] - fstype source super_opts`
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let options = right.next().unwrap_or("");
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            Some(CgroupMount {
                root: left.get(3)?,
                mount_point: left.get(4)?,
                read_only: left.get(5)?.split(',').any(|o| o == "ro"),
                v2,
                options,
            })
        })
        .collect()
}

/// The agent's cgroup in the hierarchy whose `/proc/self/cgroup` controller
/// field satisfies `matches` (`memory`, `cpu,cpuacct`, or empty for v2).
fn own_path(self_cgroup: &str, matches: impl Fn(&str) -> bool) -> Option<&str> {
    self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        matches(controllers).then_some(path)
    })
}

/// `mount_point` + the part of `cgroup_path` below the mount's root.
fn join(mount: &CgroupMount<'_>, cgroup_path: &str) -> PathBuf {
    let relative = cgroup_path
        .strip_prefix(mount.root)
        .unwrap_or(cgroup_path)
        .trim_start_matches('/');
    Path::new(mount.mount_point).join(relative)
}

/// Chooses the hierarchy: v1 when cpu, cpuacct and memory are mounted as v1
/// controllers (hybrid hosts mount an empty cgroup2 beside them, which is of
/// no use), else v2 when a cgroup2 file system is mounted, else none.
pub(crate) fn layout(mountinfo: &str, self_cgroup: &str) -> Layout {
    let mounts = cgroup_mounts(mountinfo);
    let mut v1 = BTreeMap::new();
    let mut read_only = Vec::new();
    for mount in mounts.iter().filter(|m| !m.v2) {
        for controller in mount.options.split(',') {
            if !V1_REQUIRED.contains(&controller) && controller != "freezer" {
                continue;
            }
            if mount.read_only {
                read_only.push(mount.mount_point);
                continue;
            }
            let own = own_path(self_cgroup, |c| c.split(',').any(|c| c == controller));
            v1.insert(controller.to_string(), join(mount, own.unwrap_or("/")));
        }
    }
    if V1_REQUIRED.iter().all(|c| v1.contains_key(*c)) {
        return Layout::V1(v1);
    }
    if let Some(mount) = mounts.iter().find(|m| m.v2) {
        if mount.read_only {
            return Layout::None(format!(
                "the cgroup2 hierarchy at {} is mounted read-only",
                mount.mount_point
            ));
        }
        let own = own_path(self_cgroup, |c| c.is_empty()).unwrap_or("/");
        return Layout::V2(join(mount, own));
    }
    if !read_only.is_empty() {
        return Layout::None(format!(
            "cgroup v1 controllers are mounted read-only at {}",
            read_only.join(", ")
        ));
    }
    Layout::None(
        "no cgroup hierarchy with the cpu, cpuacct and memory controllers is mounted".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V1_SELF: &str = "4:memory:/outer/job\n2:cpu,cpuacct:/\n6:freezer:/\n0::/\n";

    #[test]
    fn v1_places_containers_under_the_agents_own_cgroups() {
        let Layout::V1(dirs) = layout(V1_MOUNTS, V1_SELF) else {
            panic!("expected v1");
        };
        assert_eq!(dirs["cpu"], Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(dirs["cpuacct"], Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(dirs["memory"], Path::new("/sys/fs/cgroup/memory/outer/job"));
        assert_eq!(dirs["freezer"], Path::new("/sys/fs/cgroup/freezer"));
    }

    #[test]
    fn v2_only_host() {
        let mounts = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            layout(mounts, "0::/system.slice/agora.service\n"),
            Layout::V2(PathBuf::from("/sys/fs/cgroup/system.slice/agora.service"))
        );
    }

    #[test]
    fn namespaced_mount_root_is_stripped() {
        let mounts = "30 23 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            layout(mounts, "0::/kubepods/pod1/agent\n"),
            Layout::V2(PathBuf::from("/sys/fs/cgroup/agent"))
        );
    }

    #[test]
    fn read_only_or_missing_hierarchies_are_unusable() {
        let ro = "30 23 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n";
        let Layout::None(why) = layout(ro, "0::/\n") else {
            panic!("expected none");
        };
        assert!(why.contains("read-only"), "{why}");
        let Layout::None(why) = layout("22 1 0:21 / /proc rw - proc proc rw\n", "") else {
            panic!("expected none");
        };
        assert!(why.contains("no cgroup hierarchy"), "{why}");
    }
}
