//! Emulated agents: real `AgentService.Attach` streams that register, answer
//! pings, and report every task they are given as running at once.
//!
//! Each agent is one tokio task owning one bidirectional gRPC stream, as a
//! real agent would, but the streams are multiplexed over a few HTTP/2
//! connections (tonic `Channel`s) so that ten thousand agents cost a hundred
//! file descriptors, not ten thousand. A semaphore bounds the registrations
//! in flight, so the master sees a steady stream of Register messages rather
//! than ten thousand at the same instant, and the bench never holds more
//! half-open streams than it can track.
//!
//! What the agents see is counted in [`AgentCounters`] (atomics shared with
//! the bench), which the phases poll: registrations, RunTask messages and
//! the acknowledgements the master forwards from the frameworks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_common::resources::Resources;
use agora_common::shutdown::{self, Shutdown, ShutdownTrigger};
use agora_proto::agent::agent_service_client::AgentServiceClient;
use agora_proto::agent::{agent_message, master_message, AgentMessage, MasterMessage};
use agora_proto::{task_status, AgentId, AgentInfo, Resource, TaskId, TaskState, TaskStatus};
use anyhow::Context;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// Registrations in flight at once.
const REGISTRATION_WINDOW: usize = 1000;
/// Largest gRPC message accepted or sent (matches the master's limit).
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// Messages an agent may queue towards the master.
const OUTBOUND_QUEUE: usize = 256;

/// What the emulated agents have seen, in all.
#[derive(Debug, Default)]
pub(crate) struct AgentCounters {
    /// Agents that received `Registered`.
    pub registered: AtomicU64,
    /// `RunTask` messages received.
    pub run_tasks: AtomicU64,
    /// `Acknowledgement`s received (forwarded framework ACKNOWLEDGE calls).
    pub acks: AtomicU64,
    /// Streams that failed or were closed by the master.
    pub failures: AtomicU64,
    /// The latest failure, for the error message.
    last_failure: Mutex<Option<String>>,
}

impl AgentCounters {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn fail(&self, agent: usize, why: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(agent, %why, "emulated agent failed");
        if let Ok(mut last) = self.last_failure.lock() {
            *last = Some(format!("bench-agent-{agent}: {why}"));
        }
    }

    /// Fails if any agent stream failed.
    pub fn check(&self) -> anyhow::Result<()> {
        let failures = Self::get(&self.failures);
        if failures == 0 {
            return Ok(());
        }
        let last = self
            .last_failure
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or_default();
        anyhow::bail!("{failures} emulated agent stream(s) failed; latest: {last}")
    }
}

/// The running emulated agents.
pub(crate) struct AgentFleet {
    /// What they have seen.
    pub counters: Arc<AgentCounters>,
    stop: ShutdownTrigger,
    tasks: JoinSet<()>,
}

impl AgentFleet {
    /// Opens `connections` HTTP/2 connections to `addr` and starts `agents`
    /// agents over them (round robin), each registering with `resources`.
    pub async fn start(
        addr: &str,
        agents: usize,
        connections: usize,
        resources: &Resources,
    ) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .context("master address")?
            .connect_timeout(Duration::from_secs(10))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(60));
        let mut channels = Vec::with_capacity(connections);
        for i in 0..connections {
            let channel = endpoint
                .connect()
                .await
                .with_context(|| format!("opening agent connection {i} to {addr}"))?;
            channels.push(channel);
        }
        let counters = Arc::new(AgentCounters::default());
        let (stop, stopped) = shutdown::channel();
        let window = Arc::new(Semaphore::new(REGISTRATION_WINDOW));
        let resources = resources.to_vec();
        let mut tasks = JoinSet::new();
        for index in 0..agents {
            let agent = Agent {
                index,
                counters: counters.clone(),
                stop: stopped.clone(),
            };
            let channel = channels[index % channels.len()].clone();
            tasks.spawn(agent.run(channel, resources.clone(), window.clone()));
        }
        Ok(AgentFleet {
            counters,
            stop,
            tasks,
        })
    }

    /// Closes every agent stream and waits (briefly) for the tasks to end.
    pub async fn stop(mut self) {
        self.stop.fire();
        let drained = tokio::time::timeout(Duration::from_secs(5), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
    }
}

/// One emulated agent.
struct Agent {
    index: usize,
    counters: Arc<AgentCounters>,
    stop: Shutdown,
}

impl Agent {
    async fn run(self, channel: Channel, resources: Vec<Resource>, window: Arc<Semaphore>) {
        let permit = tokio::select! {
            _ = self.stop.fired() => return,
            p = window.acquire_owned() => p,
        };
        // The semaphore is never closed, so acquiring cannot fail.
        let Ok(permit) = permit else { return };
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let register = AgentMessage {
            message: Some(agent_message::Message::Register(agent_message::Register {
                agent_info: Some(AgentInfo {
                    hostname: format!("bench-agent-{}", self.index),
                    port: Some(5051),
                    resources,
                    ..Default::default()
                }),
                version: agora_common::VERSION.to_string(),
            })),
        };
        // The receiver is alive in `rx` and the queue is empty: this cannot fail.
        let _ = tx.send(register).await;
        let mut client = AgentServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let attached = tokio::select! {
            _ = self.stop.fired() => return,
            r = client.attach(ReceiverStream::new(rx)) => r,
        };
        let mut inbound = match attached {
            Ok(response) => response.into_inner(),
            Err(status) => return self.fail(format!("attach refused: {}", status.message())),
        };
        let mut permit = Some(permit);
        let mut agent_id = String::new();
        loop {
            let message = tokio::select! {
                _ = self.stop.fired() => return,
                m = inbound.message() => m,
            };
            let message = match message {
                Ok(Some(MasterMessage { message: Some(m) })) => m,
                Ok(Some(MasterMessage { message: None })) => continue,
                Ok(None) => return self.fail("the master closed the stream".into()),
                Err(status) => return self.fail(format!("stream error: {}", status.message())),
            };
            let reply = match message {
                master_message::Message::Registered(r) => {
                    agent_id = r.agent_id.map(|a| a.value).unwrap_or_default();
                    self.counters.registered.fetch_add(1, Ordering::Relaxed);
                    permit.take();
                    None
                }
                master_message::Message::Ping(p) => {
                    Some(agent_message::Message::Pong(agent_message::Pong {
                        sequence: p.sequence,
                    }))
                }
                master_message::Message::RunTask(run) => {
                    self.counters.run_tasks.fetch_add(1, Ordering::Relaxed);
                    let framework_id = run.framework.and_then(|f| f.id);
                    let task_id = run.task.and_then(|t| t.task_id);
                    Some(update(
                        framework_id,
                        task_id,
                        &agent_id,
                        TaskState::TaskRunning,
                    ))
                }
                master_message::Message::KillTask(kill) => Some(update(
                    kill.framework_id,
                    kill.task_id,
                    &agent_id,
                    TaskState::TaskKilled,
                )),
                master_message::Message::Acknowledgement(_) => {
                    self.counters.acks.fetch_add(1, Ordering::Relaxed);
                    None
                }
                master_message::Message::Shutdown(s) => {
                    return self.fail(format!("shut down by the master: {}", s.message))
                }
                _ => None,
            };
            if let Some(reply) = reply {
                let message = AgentMessage {
                    message: Some(reply),
                };
                if tx.send(message).await.is_err() {
                    return self.fail("outbound stream closed".into());
                }
            }
        }
    }

    fn fail(&self, why: String) {
        self.counters.fail(self.index, why);
    }
}

/// A status update as an executor would send it, with a fresh uuid so the
/// master forwards it for acknowledgement.
fn update(
    framework_id: Option<agora_proto::FrameworkId>,
    task_id: Option<TaskId>,
    agent_id: &str,
    state: TaskState,
) -> agent_message::Message {
    agent_message::Message::StatusUpdate(agent_message::StatusUpdate {
        framework_id,
        status: Some(TaskStatus {
            task_id,
            state: state as i32,
            source: Some(task_status::Source::Executor as i32),
            agent_id: Some(AgentId {
                value: agent_id.to_string(),
            }),
            timestamp: Some(agora_common::time::now_secs()),
            uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
            ..Default::default()
        }),
        latest_state: None,
    })
}
