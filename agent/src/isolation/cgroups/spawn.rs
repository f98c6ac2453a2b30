//! Joining a cgroup between `fork` and `exec`: the only `unsafe` in the
//! isolation code, kept to this one function.
//!
//! Moving a task in after it started leaves a window in which it can fork
//! children that stay outside the cgroup (and escape its limits and
//! `kill_all`). Instead the child writes `0` ("myself") to `cgroup.procs`
//! before it execs. The files are opened in the parent, so the child only
//! calls `write(2)`, which is async-signal-safe, as code between `fork` and
//! `exec` must be.

#![allow(unsafe_code)]

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use tracing::debug;

use super::CgroupError;

/// Makes `command`'s process write itself into each of `procs` (the
/// `cgroup.procs` files of its cgroup) before it execs.
pub(super) fn enter_on_spawn(
    command: &mut std::process::Command,
    procs: &[PathBuf],
) -> Result<(), CgroupError> {
    let fds = procs
        .iter()
        .map(|path| {
            debug!(path = %path.display(), "cgroup join on spawn");
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map(OwnedFd::from)
                .map_err(|source| CgroupError::io(path, source))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // SAFETY: the closure runs in the child after fork. It allocates nothing
    // and takes no lock: it iterates a Vec built before the fork and calls
    // write(2) on descriptors opened before the fork (O_CLOEXEC, so they
    // close at exec). A failed write becomes an io::Error from the raw errno,
    // which does not allocate, and makes the spawn fail in the parent.
    unsafe {
        command.pre_exec(move || {
            for fd in &fds {
                nix::unistd::write(fd, b"0")?;
            }
            Ok(())
        });
    }
    Ok(())
}
