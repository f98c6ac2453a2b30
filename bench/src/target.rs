//! The master under test: spawned as a child process, started in-process,
//! or already running elsewhere; and its memory, read from `/proc`.
//!
//! A spawned master is the measurement that counts: its resident set is the
//! master's alone. The child is started with `kill_on_drop`, so a bench that
//! fails (or panics) half-way does not leave a master behind; its stderr goes
//! to a log file whose tail is quoted if it dies or never becomes healthy.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use agora_common::shutdown::{self, ShutdownTrigger};
use agora_master::{MasterConfig, MasterHandle};
use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use tokio::process::{Child, Command};

use crate::args::MasterTarget;
use crate::metrics::MetricsClient;

/// How long a stopping master is given before we stop waiting for it.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One reading of a process's memory, in KiB.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MemoryReading {
    /// Resident set now (`VmRSS`).
    pub rss_kb: u64,
    /// Peak resident set (`VmHWM`).
    pub peak_kb: u64,
}

/// The `host:port` a spawned master listens on, from its `--ip`/`--port` arguments.
pub(crate) fn spawn_address(args: &[String]) -> anyhow::Result<String> {
    let value = |flag: &str| -> Option<String> {
        let prefix = format!("{flag}=");
        args.iter().enumerate().find_map(|(i, a)| {
            if a == flag {
                args.get(i + 1).cloned()
            } else {
                a.strip_prefix(&prefix).map(str::to_string)
            }
        })
    };
    let ip: IpAddr = match value("--ip") {
        Some(ip) => ip
            .parse()
            .map_err(|_| anyhow!("master arguments: invalid --ip '{ip}'"))?,
        None => IpAddr::from([127, 0, 0, 1]),
    };
    // A master bound to every interface is reached on loopback.
    let ip = if ip.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        ip
    };
    let port: u16 = value("--port")
        .ok_or_else(|| anyhow!("master arguments: --port is required to find the master"))?
        .parse()
        .map_err(|_| anyhow!("master arguments: invalid --port"))?;
    if port == 0 {
        bail!("master arguments: --port 0 cannot be found after spawning; pick a free port");
    }
    Ok(std::net::SocketAddr::new(ip, port).to_string())
}

/// Reads `VmRSS` and `VmHWM` of `pid` (`self` for this process).
pub(crate) fn read_memory(pid: &str) -> Option<MemoryReading> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(MemoryReading {
        rss_kb: field("VmRSS:")?,
        peak_kb: field("VmHWM:")?,
    })
}

/// A fresh scratch directory name under the system temp dir.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("agora-bench-{}-{nanos}-{name}", std::process::id()))
}

enum Kind {
    Child {
        child: Child,
        log: PathBuf,
    },
    InProcess {
        trigger: ShutdownTrigger,
        handle: MasterHandle,
    },
    External,
}

/// A master the bench talks to.
pub(crate) struct RunningMaster {
    /// `host:port` for gRPC and HTTP.
    pub addr: String,
    kind: Kind,
}

impl RunningMaster {
    /// Starts (or finds) the master and waits until `/health` answers.
    pub async fn start(target: &MasterTarget, timeout: Duration) -> anyhow::Result<Self> {
        let mut master = match target {
            MasterTarget::Spawn { program, args } => {
                let addr = spawn_address(args)?;
                let log = scratch("master.log");
                let stderr = std::fs::File::create(&log)
                    .with_context(|| format!("creating {}", log.display()))?;
                let child = Command::new(program)
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(stderr)
                    .kill_on_drop(true)
                    .spawn()
                    .with_context(|| format!("spawning the master {}", program.display()))?;
                RunningMaster {
                    addr,
                    kind: Kind::Child { child, log },
                }
            }
            MasterTarget::InProcess => {
                let (trigger, shutdown) = shutdown::channel();
                let config = MasterConfig {
                    ip: IpAddr::from([127, 0, 0, 1]),
                    port: 0,
                    hostname: "localhost".into(),
                    work_dir: scratch("master"),
                    ..MasterConfig::default()
                };
                let handle = agora_master::start(config, shutdown)
                    .await
                    .context("starting the in-process master")?;
                handle.wait_until_leading().await;
                RunningMaster {
                    addr: handle.addr().to_string(),
                    kind: Kind::InProcess { trigger, handle },
                }
            }
            MasterTarget::Address(addr) => RunningMaster {
                addr: addr.clone(),
                kind: Kind::External,
            },
        };
        let http = MetricsClient::new(&master.addr)?;
        let deadline = Instant::now() + timeout;
        while !http.healthy().await {
            master.check_alive()?;
            if Instant::now() >= deadline {
                bail!(
                    "phase 'start' timed out after {timeout:?}: the master at {} never answered /health{}",
                    master.addr,
                    master.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(master)
    }

    /// What the memory figures measure, if anything.
    pub fn memory_scope(&self) -> Option<String> {
        match &self.kind {
            Kind::Child { child, .. } => {
                child.id().map(|pid| format!("master process (pid {pid})"))
            }
            Kind::InProcess { .. } => Some("whole bench process (master in-process)".into()),
            Kind::External => None,
        }
    }

    /// The master's process, if it can be measured (this process when the
    /// master runs in it).
    pub fn pid(&self) -> Option<u32> {
        match &self.kind {
            Kind::Child { child, .. } => child.id(),
            Kind::InProcess { .. } => Some(std::process::id()),
            Kind::External => None,
        }
    }

    /// The master's memory now, if it can be measured.
    pub fn memory(&self) -> Option<MemoryReading> {
        match &self.kind {
            Kind::Child { child, .. } => read_memory(&child.id()?.to_string()),
            Kind::InProcess { .. } => read_memory("self"),
            Kind::External => None,
        }
    }

    /// Kills a spawned master with SIGKILL, as a crash would, and reaps it.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let Kind::Child { child, .. } = &mut self.kind else {
            bail!("only a master the bench spawned can be killed");
        };
        child.start_kill().context("killing the master")?;
        child.wait().await.context("reaping the killed master")?;
        Ok(())
    }

    /// Fails if a spawned master has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Kind::Child { child, .. } = &mut self.kind {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("the master exited ({status}){}", self.log_tail());
            }
        }
        Ok(())
    }

    /// The last lines of a spawned master's stderr, for error messages.
    fn log_tail(&self) -> String {
        let Kind::Child { log, .. } = &self.kind else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n  ");
        format!("; log {}:\n  {tail}", log.display())
    }

    /// Stops a master we started (kills a child; fires an in-process
    /// master's shutdown); leaves an external one alone.
    pub async fn stop(self) {
        match self.kind {
            Kind::Child { mut child, log } => {
                if let Err(e) = child.start_kill() {
                    tracing::warn!(error = %e, "could not kill the master");
                }
                let _ = tokio::time::timeout(STOP_GRACE, child.wait()).await;
                let _ = std::fs::remove_file(log);
            }
            Kind::InProcess { trigger, handle } => {
                trigger.fire();
                let _ = tokio::time::timeout(STOP_GRACE, handle.join()).await;
            }
            Kind::External => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_master_arguments() {
        let args: Vec<String> = ["master", "--ip", "0.0.0.0", "--port=5051"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(spawn_address(&args).expect("ok"), "127.0.0.1:5051");
        assert!(spawn_address(&["master".to_string()]).is_err());
    }

    #[test]
    fn reads_this_process_memory() {
        let m = read_memory("self").expect("linux /proc");
        assert!(m.rss_kb > 0 && m.peak_kb >= m.rss_kb);
    }
}
