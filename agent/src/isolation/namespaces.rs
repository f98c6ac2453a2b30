//! Starting a task in its own pid, mount, ipc and uts namespaces.
//!
//! The task runs under util-linux `unshare --pid --fork --kill-child
//! --mount-proc --ipc --uts -- <command>` rather than calling `unshare(2)` in
//! a `pre_exec` hook, because a new pid namespace only applies to the
//! *children* of the caller: the hook would have to fork again between
//! `fork` and `exec` (where only async-signal-safe calls are allowed), wait
//! for that child, mount a fresh `/proc` inside it and forward its exit
//! status. `unshare` does exactly that, is on every Linux host with
//! util-linux, and keeps this module free of `unsafe`. What it gives:
//!
//! * the task is pid 1 of its namespace: when it ends, the kernel kills
//!   everything else in the namespace, so no descendant outlives it;
//! * `/proc` inside shows only the task's processes (`--mount-proc` makes
//!   the mount namespace private first, so the host's `/proc` is untouched);
//! * `--kill-child`: if `unshare` itself is killed, the task gets SIGKILL;
//! * `unshare` exits with the task's exit code, and re-raises a signal that
//!   killed the task so the shim's `waitpid` sees it. Except one: util-linux
//!   2.38 (Debian 12) cannot re-raise SIGKILL and exits 1 instead, printing
//!   `sigprocmask unblock failed`; a task OOM-killed is therefore told apart
//!   by the cgroup (`Cgroup::oom_killed`), not by the wait status. Killing
//!   `unshare` itself (the shim's process-group kill) reports SIGKILL as
//!   usual.
//!
//! Being pid 1, the task only receives the signals it installed a handler
//! for (SIGKILL always): a graceful SIGTERM is ignored by a task that does
//! not handle it, and the kill grace period ends it with SIGKILL.
//!
//! Whether the host allows it (root, or a kernel that permits the
//! namespaces) is found once by running a probe; where it fails the shim
//! runs tasks without namespaces and logs [`Unavailable`].

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use tracing::debug;

use crate::containerizer::CommandSpec;

/// Where util-linux installs `unshare`.
const UNSHARE_PATHS: [&str; 2] = ["/usr/bin/unshare", "/bin/unshare"];

/// The `unshare` flags, in order, before `--` and the task's argv.
pub const FLAGS: [&str; 6] = [
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
    "--ipc",
    "--uts",
];

/// Why tasks run without namespaces; the agent logs it as a warning.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("namespace isolation disabled: {0}")]
pub struct Unavailable(pub String);

/// Wraps task commands so they start in new namespaces.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespaces {
    /// The `unshare` binary that passed the probe.
    unshare: PathBuf,
}

impl Namespaces {
    /// Finds `unshare` and checks, once per process, that it can create the
    /// namespaces here (a probe running `true` inside them).
    pub fn detect() -> Result<Self, Unavailable> {
        static PROBE: OnceLock<Result<Namespaces, Unavailable>> = OnceLock::new();
        PROBE.get_or_init(probe).clone()
    }

    /// The `unshare` a probe found, as the executor shim is told it.
    pub fn unshare(&self) -> &Path {
        &self.unshare
    }

    /// Namespaces through an `unshare` another process (the agent) already
    /// probed: the shim must not pay for a probe on every launch.
    pub fn probed_by_parent(unshare: PathBuf) -> Self {
        Namespaces { unshare }
    }

    /// The Mesos isolator names this provides.
    pub fn isolators(&self) -> [&'static str; 2] {
        ["namespaces/pid", "namespaces/ipc"]
    }

    /// The argv that runs `program args...` in new namespaces.
    pub fn argv<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> Vec<OsString>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut argv: Vec<OsString> = vec![self.unshare.clone().into()];
        argv.extend(FLAGS.iter().map(OsString::from));
        argv.push("--".into());
        argv.push(program.as_ref().to_owned());
        argv.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        argv
    }

    /// A [`Command`] running `program args...` in new namespaces; the caller
    /// sets environment, directory, stdio and process group on it as it
    /// would on the bare command (all of them pass through `unshare`).
    pub fn command<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let argv = self.argv(program, args);
        debug!(?argv, "task in new namespaces");
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        command
    }

    /// The task of a [`CommandSpec`] in new namespaces. `unshare` execs the
    /// program under its own name, so an `Exec` spec's `argv0` is not
    /// honoured here.
    pub fn wrap(&self, spec: &CommandSpec) -> Command {
        match spec {
            CommandSpec::Shell(script) => self.command("/bin/sh", ["-c", script.as_str()]),
            CommandSpec::Exec { program, args, .. } => self.command(program, args),
        }
    }
}

fn probe() -> Result<Namespaces, Unavailable> {
    let unshare = UNSHARE_PATHS
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| Unavailable("util-linux `unshare` is not installed".into()))?;
    let ns = Namespaces {
        unshare: unshare.to_owned(),
    };
    let argv = ns.argv("true", std::iter::empty::<&str>());
    debug!(?argv, "probing namespace support");
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Unavailable(format!("cannot run {}: {e}", unshare.display())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Unavailable(format!(
            "`{} {}` failed ({}): {}",
            unshare.display(),
            FLAGS.join(" "),
            output.status,
            stderr.trim()
        )));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn namespaces() -> Option<Namespaces> {
        match Namespaces::detect() {
            Ok(ns) => Some(ns),
            Err(why) => {
                // Only acceptable where the host cannot do it at all.
                assert!(
                    !nix::unistd::geteuid().is_root() || !Path::new(UNSHARE_PATHS[0]).exists(),
                    "{why}"
                );
                crate::isolation::skip_unavailable(&why);
                None
            }
        }
    }

    #[test]
    fn the_task_is_pid_1_and_sees_only_its_processes() {
        let Some(ns) = namespaces() else { return };
        let script = "echo $$; ls /proc | grep -c '^[0-9]'";
        let out = ns
            .wrap(&CommandSpec::Shell(script.into()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let out = String::from_utf8(out.stdout).unwrap();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("1"));
        // sh, ls and grep at most.
        let procs: usize = lines.next().unwrap().parse().unwrap();
        assert!(procs <= 3, "{procs} processes visible");
    }

    #[test]
    fn exit_code_and_group_kill_come_through() {
        use std::os::unix::process::CommandExt;
        let Some(ns) = namespaces() else { return };
        let status = ns.command("sh", ["-c", "exit 7"]).status().unwrap();
        assert_eq!(status.code(), Some(7));

        // As the shim kills a task: SIGKILL to the process group.
        let mut child = ns
            .command("sleep", ["1000"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
        std::thread::sleep(std::time::Duration::from_millis(100));
        nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(9));
    }

    #[test]
    fn argv_prefixes_unshare() {
        let ns = Namespaces {
            unshare: "/usr/bin/unshare".into(),
        };
        let argv = ns.argv("/bin/echo", ["a b"]);
        let argv: Vec<_> = argv.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(argv[0], "/usr/bin/unshare");
        assert_eq!(&argv[argv.len() - 3..], ["--", "/bin/echo", "a b"]);
    }
}
