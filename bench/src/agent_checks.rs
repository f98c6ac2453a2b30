//! Health checks on emulated agents (the health bench): each agent runs the
//! `HealthCheck` of every task it is given with the agent's own check code
//! (`agora_agent::executor::health`, what a shim runs next to its task),
//! against the bench's check server, and reports what a real agent would:
//! a `TASK_RUNNING` update with `healthy` when the verdict changes, and
//! `TASK_KILLED` with `healthy: false` when the check kills the task.
//!
//! An agent checking tasks has a loopback address of its own (also its
//! hostname, so that Marathon's own probes reach it too) and its tasks
//! their host ports there: the check server knows a task by that address.
//! When a task is killed, by its check or by the master, the server is told
//! at once ([`Health::killed`]), which times the detection and makes the
//! address healthy for whatever is launched there next.

use std::collections::HashMap;
use std::io;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_agent::executor::health::{self, probe::Target};
use agora_agent::executor::protocol::HealthStatus;
use agora_proto::{Resource, TaskInfo};
use async_trait::async_trait;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::health_bench::server::Health;

/// The kill grace a check's verdict does not depend on (no process to stop).
const KILL_GRACE: Duration = Duration::from_secs(1);

/// The loopback address of emulated agent `index`: `127.1.<i/250>.<i%250+1>`.
pub(crate) fn agent_ip(index: usize) -> Ipv4Addr {
    let high = u8::try_from(index / 250).unwrap_or(u8::MAX);
    let low = u8::try_from(index % 250 + 1).unwrap_or(u8::MAX);
    Ipv4Addr::new(127, 1, high, low)
}

/// What a task's checks ask of its agent.
#[derive(Debug)]
pub(crate) enum CheckEvent {
    /// The verdict changed.
    Changed {
        task_id: String,
        healthy: bool,
        cause: Option<String>,
    },
    /// The check killed the task.
    Killed { task_id: String, cause: String },
}

/// The checking side of one emulated agent.
pub(crate) struct AgentChecks {
    ip: Ipv4Addr,
    server: Arc<Health>,
    events_tx: mpsc::UnboundedSender<CheckEvent>,
    events: mpsc::UnboundedReceiver<CheckEvent>,
    /// Per task: its key at the check server and its running checks.
    tasks: HashMap<String, (String, Option<JoinHandle<()>>)>,
}

impl AgentChecks {
    /// The checks of agent `index`, reporting sickness and kills to `server`.
    pub fn new(index: usize, server: Arc<Health>) -> Self {
        let (events_tx, events) = mpsc::unbounded_channel();
        AgentChecks {
            ip: agent_ip(index),
            server,
            events_tx,
            events,
            tasks: HashMap::new(),
        }
    }

    /// The agent's address, also its hostname.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Starts the checks of a task given to the agent.
    pub fn launch(&mut self, task: &TaskInfo) {
        let task_id = task.task_id.clone().unwrap_or_default().value;
        let key = format!("{}:{}", self.ip, first_port(&task.resources).unwrap_or(0));
        let running = match health::of_task(task, KILL_GRACE) {
            Ok(checks) if !checks.is_empty() => {
                let target: Arc<dyn Target> = Arc::new(AddressTarget(self.ip));
                let running =
                    health::start(&checks, target, Instant::now(), HealthStatus::default());
                Some(tokio::spawn(follow(
                    task_id.clone(),
                    running,
                    self.events_tx.clone(),
                )))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(task_id, error = %e, "emulated agent cannot run these checks");
                None
            }
        };
        self.tasks.insert(task_id, (key, running));
    }

    /// A task ended (killed by the master or by its check): its checks stop
    /// and the server learns it.
    pub fn ended(&mut self, task_id: &str) {
        if let Some((key, running)) = self.tasks.remove(task_id) {
            if let Some(running) = running {
                running.abort();
            }
            self.server.killed(&key);
        }
    }

    /// The next thing a check asks for.
    pub async fn next(&mut self) -> Option<CheckEvent> {
        self.events.recv().await
    }
}

/// The first port of a task's `ports` resource.
fn first_port(resources: &[Resource]) -> Option<u64> {
    resources
        .iter()
        .filter(|r| r.name == "ports")
        .find_map(|r| r.ranges.as_ref()?.range.first().map(|range| range.begin))
}

/// Forwards a task's verdicts, and its kill, to its agent.
async fn follow(
    task_id: String,
    mut running: health::Running,
    events: mpsc::UnboundedSender<CheckEvent>,
) {
    let mut kill = running.take_kill();
    loop {
        tokio::select! {
            changed = running.status.changed() => {
                if changed.is_err() {
                    // The health loop is over: it may have asked for a kill
                    // as it ended.
                    if let Ok(cause) = kill.await {
                        let _ = events.send(CheckEvent::Killed { task_id, cause });
                    }
                    return;
                }
                let status = running.status.borrow_and_update().clone();
                if let Some(healthy) = status.healthy {
                    let event = CheckEvent::Changed {
                        task_id: task_id.clone(),
                        healthy,
                        cause: status.cause,
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                }
            }
            cause = &mut kill => {
                if let Ok(cause) = cause {
                    let _ = events.send(CheckEvent::Killed { task_id, cause });
                }
                return;
            }
        }
    }
}

/// A task reached at its agent's address.
struct AddressTarget(Ipv4Addr);

#[async_trait]
impl Target for AddressTarget {
    async fn connect(&self, port: u16) -> io::Result<TcpStream> {
        TcpStream::connect((self.0, port)).await
    }

    async fn run(&self, _script: &str, _env: &[(String, String)]) -> io::Result<i32> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "emulated agents run no command checks",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agent_has_its_own_loopback_address() {
        assert_eq!(agent_ip(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(agent_ip(249), Ipv4Addr::new(127, 1, 0, 250));
        assert_eq!(agent_ip(250), Ipv4Addr::new(127, 1, 1, 1));
        let all: std::collections::HashSet<_> = (0..5_000).map(agent_ip).collect();
        assert_eq!(all.len(), 5_000);
    }
}
