//! A master stand-in speaking the real Agent API over a real socket, and
//! helpers to start an agent against it.
//!
//! The stand-in is a test peer, not a mock of the agent: it registers the
//! agent (`Registered`/`Reregistered` with id `test-S0`), optionally
//! acknowledges every status update, records everything the agent sends, and
//! lets the test push master messages or drop the stream.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_agent::{AgentConfig, AgentHandle};
use agora_common::resources::scalar;
use agora_common::shutdown::{self, ShutdownTrigger};
use agora_proto::agent::agent_service_server::{AgentService, AgentServiceServer};
use agora_proto::agent::{agent_message, master_message, AgentMessage, MasterMessage};
use agora_proto::framework_info::{capability, Capability};
use agora_proto::{
    AgentId, CommandInfo, DurationInfo, FrameworkId, FrameworkInfo, KillPolicy, TaskId, TaskInfo,
    TaskState, TaskStatus,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status, Streaming};

pub const AGENT_ID: &str = "test-S0";

type Outbound = mpsc::UnboundedSender<Result<MasterMessage, Status>>;

#[derive(Default)]
struct Shared {
    /// The current connection's outbound queue; taking it ends the stream.
    current: Mutex<Option<Outbound>>,
    auto_ack: AtomicBool,
}

impl Shared {
    fn send(&self, message: master_message::Message) -> bool {
        let current = self.current.lock().expect("lock");
        current.as_ref().is_some_and(|tx| {
            tx.send(Ok(MasterMessage {
                message: Some(message),
            }))
            .is_ok()
        })
    }
}

struct Service {
    shared: Arc<Shared>,
    inbound: mpsc::UnboundedSender<AgentMessage>,
}

#[tonic::async_trait]
impl AgentService for Service {
    type AttachStream = UnboundedReceiverStream<Result<MasterMessage, Status>>;

    async fn attach(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.shared.current.lock().expect("lock") = Some(tx);
        let mut stream = request.into_inner();
        let shared = self.shared.clone();
        let inbound = self.inbound.clone();
        tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                answer(&shared, &message);
                if inbound.send(message).is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }
}

/// What the stand-in says on its own: registration answers and acks.
fn answer(shared: &Shared, message: &AgentMessage) {
    use agent_message::Message as A;
    use master_message::Message as M;
    let agent_id = Some(AgentId {
        value: AGENT_ID.into(),
    });
    match &message.message {
        Some(A::Register(_)) => {
            shared.send(M::Registered(master_message::Registered {
                agent_id,
                master_info: None,
            }));
        }
        Some(A::Reregister(_)) => {
            shared.send(M::Reregistered(master_message::Reregistered {
                agent_id,
                master_info: None,
                kill_tasks: vec![],
            }));
        }
        Some(A::StatusUpdate(u)) if shared.auto_ack.load(Ordering::SeqCst) => {
            let status = u.status.clone().unwrap_or_default();
            shared.send(M::Acknowledgement(
                master_message::StatusUpdateAcknowledgement {
                    framework_id: u.framework_id.clone(),
                    task_id: status.task_id,
                    uuid: status.uuid.unwrap_or_default(),
                },
            ));
        }
        _ => {}
    }
}

/// The master stand-in.
pub struct TestMaster {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    inbound: mpsc::UnboundedReceiver<AgentMessage>,
}

impl TestMaster {
    pub async fn start(auto_ack: bool) -> TestMaster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared::default());
        shared.auto_ack.store(auto_ack, Ordering::SeqCst);
        let (inbound_tx, inbound) = mpsc::unbounded_channel();
        let service = Service {
            shared: shared.clone(),
            inbound: inbound_tx,
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(AgentServiceServer::new(service))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        TestMaster {
            addr,
            shared,
            inbound,
        }
    }

    pub fn set_auto_ack(&self, on: bool) {
        self.shared.auto_ack.store(on, Ordering::SeqCst);
    }

    /// Sends a message on the current stream.
    pub fn send(&self, message: master_message::Message) {
        assert!(self.shared.send(message), "no agent connected");
    }

    /// Ends the current stream, as a master restart would.
    pub fn drop_connection(&self) {
        self.shared.current.lock().expect("lock").take();
    }

    /// The next message from the agent satisfying `pick`, within 10 s.
    pub async fn expect<T>(&mut self, mut pick: impl FnMut(&AgentMessage) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let message = tokio::time::timeout_at(deadline, self.inbound.recv())
                .await
                .expect("timed out waiting for a message from the agent")
                .expect("master stand-in stopped");
            if let Some(t) = pick(&message) {
                return t;
            }
        }
    }

    /// The next status update for `task_id`.
    pub async fn expect_update(&mut self, task_id: &str) -> TaskStatus {
        self.expect(|m| match &m.message {
            Some(agent_message::Message::StatusUpdate(u)) => u
                .status
                .clone()
                .filter(|s| s.task_id.as_ref().is_some_and(|t| t.value == task_id)),
            _ => None,
        })
        .await
    }

    /// Every message received in the next `window`.
    pub async fn collect_for(&mut self, window: Duration) -> Vec<AgentMessage> {
        let deadline = tokio::time::Instant::now() + window;
        let mut out = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, self.inbound.recv()).await {
            out.push(m);
        }
        out
    }
}

/// An agent started against a [`TestMaster`], with its own work dir.
pub struct TestAgent {
    pub handle: AgentHandle,
    pub trigger: ShutdownTrigger,
    pub work_dir: PathBuf,
}

impl TestAgent {
    pub async fn start(master: &TestMaster, tweak: impl FnOnce(&mut AgentConfig)) -> TestAgent {
        let work_dir =
            std::env::temp_dir().join(format!("agora-agent-test-{}", uuid::Uuid::new_v4()));
        let mut config = AgentConfig::with_master_address(master.addr.to_string(), &work_dir);
        config.port = 0;
        config.hostname = "test-host".into();
        config.resources = Some("cpus:2;mem:1024;disk:1000;ports:[31000-31010]".into());
        config.attributes = Some("rack:r1".into());
        tweak(&mut config);
        let (trigger, shutdown) = shutdown::channel();
        let handle = agora_agent::start(config, shutdown)
            .await
            .expect("agent starts");
        TestAgent {
            handle,
            trigger,
            work_dir,
        }
    }

    /// The sandbox of the latest run of a command task.
    pub fn sandbox(&self, framework_id: &str, task_id: &str) -> PathBuf {
        self.work_dir
            .join("slaves")
            .join(AGENT_ID)
            .join("frameworks")
            .join(framework_id)
            .join("executors")
            .join(task_id)
            .join("runs")
            .join("latest")
    }

    /// Fires the shutdown, waits for the agent and removes the work dir.
    pub async fn stop(self) -> Result<(), agora_agent::AgentError> {
        self.trigger.fire();
        let result = self.handle.join().await;
        let _ = std::fs::remove_dir_all(&self.work_dir);
        result
    }
}

/// Polls `check` until it holds, failing after 10 s.
pub async fn assert_eventually<F>(what: &str, mut check: F)
where
    F: FnMut() -> Pin<Box<dyn Future<Output = bool> + Send>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not eventually true: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A plain HTTP/1.1 GET; returns (status code, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("http response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (code, body.to_string())
}

/// Whether a process is alive (a zombie counts as dead: it runs nothing).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
    }
}

pub const FRAMEWORK: &str = "fw-0000";

/// The test framework, with `capabilities`.
pub fn framework(capabilities: &[capability::Type]) -> FrameworkInfo {
    FrameworkInfo {
        id: Some(FrameworkId {
            value: FRAMEWORK.into(),
        }),
        name: "test-framework".into(),
        user: "root".into(),
        capabilities: capabilities
            .iter()
            .map(|t| Capability { r#type: *t as i32 })
            .collect(),
        ..Default::default()
    }
}

/// A task running `script` through `/bin/sh -c`.
pub fn shell_task(id: &str, script: &str) -> TaskInfo {
    TaskInfo {
        name: format!("{id}-name"),
        task_id: Some(TaskId { value: id.into() }),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(CommandInfo {
            value: Some(script.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `RunTask` of `task`.
pub fn run(framework: FrameworkInfo, task: TaskInfo) -> master_message::Message {
    master_message::Message::RunTask(master_message::RunTask {
        framework: Some(framework),
        task: Some(task),
    })
}

/// `KillTask` of `task_id`, with a grace period when given.
pub fn kill(task_id: &str, grace: Option<Duration>) -> master_message::Message {
    master_message::Message::KillTask(master_message::KillTask {
        framework_id: Some(FrameworkId {
            value: FRAMEWORK.into(),
        }),
        task_id: Some(TaskId {
            value: task_id.into(),
        }),
        kill_policy: grace.map(|g| KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: g.as_nanos() as i64,
            }),
        }),
    })
}

/// A status's state.
pub fn state(s: &agora_proto::TaskStatus) -> TaskState {
    TaskState::try_from(s.state).expect("known state")
}

/// Waits until the agent registered.
pub async fn registered(master: &mut TestMaster, agent: &TestAgent) {
    master
        .expect(|m| matches!(m.message, Some(agent_message::Message::Register(_))).then_some(()))
        .await;
    assert_eq!(agent.handle.registered().await.as_deref(), Some(AGENT_ID));
}
