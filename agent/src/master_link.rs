//! The agent's link to the leading master: one gRPC `Attach` stream at a time.
//!
//! The link owns the connection and nothing else. Each session: ask the
//! detector where the leader is, dial it, ask the actor for the first message
//! (`Register`, or `Reregister` once the agent has an id, built from the
//! actor's state at that instant), open the stream, then forward every
//! master message to the actor. `Ping`s are answered here, at once, so that a
//! busy actor cannot make the master think the agent is gone.
//!
//! A session ends when the stream ends or fails, or when no `Ping` came
//! within `master_ping_timeout` (a half-open TCP connection looks alive
//! otherwise). The link then tells the actor, backs off (100 ms doubling to
//! 5 s, reset once a session got as far as hearing from the master) and
//! starts over through the detector, so a master failover is followed.

use std::sync::Arc;
use std::time::Duration;

use agora_common::backoff::Backoff;
use agora_common::shutdown::Shutdown;
use agora_coord::{Detector, DetectorError};
use agora_proto::agent::agent_service_client::AgentServiceClient;
use agora_proto::agent::{agent_message, master_message, AgentMessage, MasterMessage};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, sleep_until, Instant};
use tokio_stream::wrappers::ReceiverStream;

/// Capacity of the outbound queue; the actor never blocks on it (it drops
/// and relies on retries when full).
pub const OUTBOUND_CAPACITY: usize = 1024;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the link tells the agent actor.
#[derive(Debug)]
pub enum LinkEvent {
    /// A session is starting with `master`: reply with the first message;
    /// `out` carries whatever the actor sends during this session.
    Connecting {
        /// The master's `host:port`.
        master: String,
        /// The session's outbound queue.
        out: mpsc::Sender<AgentMessage>,
        /// Where the registration message goes.
        reply: oneshot::Sender<AgentMessage>,
    },
    /// A message from the master (never a `Ping`).
    Message(Box<MasterMessage>),
    /// The session is over; `out` is dead.
    Disconnected,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("no master detected: {0}")]
    Detect(#[from] DetectorError),
    #[error("invalid master address '{0}'")]
    Address(String),
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("stream failed: {0}")]
    Stream(#[from] tonic::Status),
    #[error("no ping from the master within {0:?}")]
    PingTimeout(Duration),
    #[error("the master closed the stream")]
    Closed,
    #[error("the master shut this agent down")]
    ShutDown,
    #[error("the agent is stopping")]
    AgentGone,
}

/// Runs sessions until `stop` fires or the master shuts the agent down.
pub async fn run(
    detector: Arc<dyn Detector>,
    ping_timeout: Duration,
    events: mpsc::Sender<LinkEvent>,
    stop: Shutdown,
) {
    let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX, 2.0);
    let mut previous: Option<String> = None;
    // Where a standby said the leader is; dialled before asking the detector.
    let mut hint: Option<String> = None;
    loop {
        let mut heard_from_master = false;
        let result = tokio::select! {
            _ = stop.fired() => return,
            r = session(&*detector, &mut previous, &mut hint, ping_timeout, &events, &mut heard_from_master) => r,
        };
        let Err(err) = result;
        if events.send(LinkEvent::Disconnected).await.is_err() {
            return;
        }
        match err {
            SessionError::ShutDown | SessionError::AgentGone => return,
            SessionError::Stream(status) if status.code() == tonic::Code::Unavailable => {
                // A live master refused (a standby, or the leader still
                // recovering): ask the detector afresh rather than wait for a
                // leader other than the one that may be about to serve, and
                // go straight to the leader a standby named.
                previous = None;
                hint = status
                    .metadata()
                    .get("agora-leader")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                tracing::debug!(error = %status.message(), "master refused the attach; retrying");
            }
            err => {
                tracing::warn!(master = ?previous, error = %err, "master link lost; reconnecting")
            }
        }
        if heard_from_master {
            backoff.reset();
        }
        tokio::select! {
            _ = stop.fired() => return,
            _ = sleep(backoff.next_delay()) => {}
        }
    }
}

/// One session; only returns with the reason it ended.
async fn session(
    detector: &dyn Detector,
    previous: &mut Option<String>,
    hint: &mut Option<String>,
    ping_timeout: Duration,
    events: &mpsc::Sender<LinkEvent>,
    heard_from_master: &mut bool,
) -> Result<std::convert::Infallible, SessionError> {
    let master = match hint.take() {
        Some(leader) => leader,
        None => detector.detect(previous.as_deref()).await?,
    };
    *previous = Some(master.clone());
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{master}"))
        .map_err(|_| SessionError::Address(master.clone()))?
        .connect_timeout(CONNECT_TIMEOUT);
    let mut client = AgentServiceClient::new(endpoint.connect().await?);

    let (out, out_rx) = mpsc::channel(OUTBOUND_CAPACITY);
    let (reply, registration) = oneshot::channel();
    events
        .send(LinkEvent::Connecting {
            master: master.clone(),
            out: out.clone(),
            reply,
        })
        .await
        .map_err(|_| SessionError::AgentGone)?;
    let registration = registration.await.map_err(|_| SessionError::AgentGone)?;
    // The queue is fresh, so there is room for the first message.
    out.try_send(registration)
        .map_err(|_| SessionError::AgentGone)?;
    tracing::info!(%master, "attaching to master");
    let mut inbound = client
        .attach(ReceiverStream::new(out_rx))
        .await?
        .into_inner();

    let mut ping_deadline = Instant::now() + ping_timeout;
    loop {
        let message = tokio::select! {
            m = inbound.message() => m?.ok_or(SessionError::Closed)?,
            _ = sleep_until(ping_deadline) => return Err(SessionError::PingTimeout(ping_timeout)),
        };
        *heard_from_master = true;
        match message.message {
            Some(master_message::Message::Ping(ping)) => {
                ping_deadline = Instant::now() + ping_timeout;
                let pong = AgentMessage {
                    message: Some(agent_message::Message::Pong(agent_message::Pong {
                        sequence: ping.sequence,
                    })),
                };
                if out.try_send(pong).is_err() {
                    tracing::warn!("outbound queue full; pong dropped");
                }
            }
            Some(master_message::Message::Shutdown(_)) => {
                events
                    .send(LinkEvent::Message(Box::new(message)))
                    .await
                    .map_err(|_| SessionError::AgentGone)?;
                return Err(SessionError::ShutDown);
            }
            _ => events
                .send(LinkEvent::Message(Box::new(message)))
                .await
                .map_err(|_| SessionError::AgentGone)?,
        }
    }
}
