//! The shim's side of the socket: whichever agent dialled last.
//!
//! A task of its own accepts connections (a new one replaces the old: the
//! agent that dialled last is the live one), greets each with `started`
//! (with the task's checks' state), passes every change of that state on,
//! decodes the agent's requests and hands them to the supervisor over a
//! channel, so the supervisor's `select!` only ever waits on cancel-safe
//! futures. [`Session::finish`] sends the final `exited` to the connected
//! agent, if any, and closes the listener.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::protocol::{encode, HealthStatus, ShimEvent, ShimRequest};
use crate::containerizer::ContainerNetwork;

/// The supervisor's handle on the session task.
pub(super) struct Session {
    requests: mpsc::UnboundedReceiver<ShimRequest>,
    finish: oneshot::Sender<ShimEvent>,
    task: JoinHandle<()>,
}

struct Conn {
    lines: Lines<BufReader<OwnedReadHalf>>,
    out: OwnedWriteHalf,
}

impl Conn {
    fn new(stream: UnixStream) -> Self {
        let (read, write) = stream.into_split();
        Conn {
            lines: BufReader::new(read).lines(),
            out: write,
        }
    }

    async fn send(&mut self, event: &ShimEvent) -> io::Result<()> {
        let mut line = encode(event);
        line.push('\n');
        self.out.write_all(line.as_bytes()).await
    }
}

async fn next_line(conn: &mut Option<Conn>) -> io::Result<Option<String>> {
    match conn {
        Some(c) => c.lines.next_line().await,
        None => std::future::pending().await,
    }
}

/// Waits for the next change of the task's checks (never, without any).
async fn changed(health: &mut Option<watch::Receiver<HealthStatus>>) -> Option<HealthStatus> {
    match health {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => {
                // The checks are over (the task is ending): nothing more.
                *health = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

impl Session {
    /// Starts serving `listener`: every agent is greeted with `started`
    /// (the task's pid and addresses) and the checks' state now, and told
    /// of every change of it afterwards.
    pub(super) fn start(
        listener: UnixListener,
        pid: i32,
        networks: Vec<ContainerNetwork>,
        mut health: Option<watch::Receiver<HealthStatus>>,
    ) -> Session {
        let (requests_tx, requests) = mpsc::unbounded_channel();
        let (finish, mut finish_rx) = oneshot::channel::<ShimEvent>();
        let task = tokio::spawn(async move {
            let mut conn: Option<Conn> = None;
            loop {
                tokio::select! {
                    status = changed(&mut health) => {
                        if let (Some(status), Some(c)) = (status, conn.as_mut()) {
                            if let Err(e) = c.send(&ShimEvent::Health { status }).await {
                                tracing::info!(error = %e, "agent gone; it learns the health when it dials again");
                                conn = None;
                            }
                        }
                    }
                    exited = &mut finish_rx => {
                        if let (Ok(event), Some(mut c)) = (exited, conn.take()) {
                            if let Err(e) = c.send(&event).await {
                                tracing::info!(error = %e, "agent gone; the exit status is in the sandbox");
                            }
                            let _ = c.out.shutdown().await;
                        }
                        return;
                    }
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let mut c = Conn::new(stream);
                            let started = ShimEvent::Started {
                                pid,
                                networks: networks.clone(),
                                health: health
                                    .as_ref()
                                    .map(|h| h.borrow().clone())
                                    .unwrap_or_default(),
                            };
                            match c.send(&started).await {
                                Ok(()) => conn = Some(c),
                                Err(e) => tracing::warn!(error = %e, "agent connection failed"),
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "accept failed"),
                    },
                    line = next_line(&mut conn) => match line {
                        Ok(Some(line)) => match serde_json::from_str::<ShimRequest>(&line) {
                            Ok(request) => {
                                // The supervisor is gone only once it finished.
                                let _ = requests_tx.send(request);
                            }
                            Err(e) => tracing::warn!(error = %e, %line, "invalid request ignored"),
                        },
                        // The agent went away; it will dial again when it is back.
                        Ok(None) | Err(_) => conn = None,
                    },
                }
            }
        });
        Session {
            requests,
            finish,
            task,
        }
    }

    /// The next request of an agent (cancel-safe).
    pub(super) async fn request(&mut self) -> ShimRequest {
        match self.requests.recv().await {
            Some(request) => request,
            // The session task only ends once `finish` is called.
            None => std::future::pending().await,
        }
    }

    /// Tells the connected agent how the task ended and stops serving.
    pub(super) async fn finish(self, exited: ShimEvent) {
        let _ = self.finish.send(exited);
        let _ = self.task.await;
    }
}
