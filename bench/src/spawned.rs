//! The bench's own child processes (an agent, a Marathon): stopped with
//! SIGTERM, never SIGKILL, so that an agent kills its tasks rather than
//! leaving its shims and their tasks (or containers) running; dropping one
//! SIGTERMs it too.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

/// A child process of the bench.
pub(crate) struct Spawned {
    what: &'static str,
    child: Child,
    pid: u32,
}

impl Spawned {
    /// Spawns `command` (described as `what` in errors) with its stderr in `log`.
    pub fn spawn(what: &'static str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(log)
            .with_context(|| format!("creating the {what} log {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning the {what}"))?;
        let pid = child
            .id()
            .with_context(|| format!("the {what} exited before its pid was read"))?;
        Ok(Spawned { what, child, pid })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn terminate(&self) {
        // `kill(1)` rather than a signal crate: the bench needs one signal once.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
    }

    /// SIGTERM, then wait up to `timeout` for it to exit; how long it took.
    pub async fn stop(mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.terminate();
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => {
                status.with_context(|| format!("waiting for the {}", self.what))?;
                Ok(started.elapsed())
            }
            Err(_) => bail!(
                "the {} did not stop within {timeout:?} of SIGTERM",
                self.what
            ),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
        }
    }
}
