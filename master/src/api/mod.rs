//! The master's APIs: gRPC (scheduler, agent, operator) and HTTP (Mesos-shaped
//! JSON, metrics), served together on one port. Handlers only translate:
//! they build a [`Command`](crate::actor::Command), await the actor's answer
//! and map it to a response.

pub mod agent;
pub mod http;
pub mod leadership;
pub mod operator;
pub mod scheduler;

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::actor::Command;

pub use leadership::Leadership;

/// A cloneable way to reach the master actor.
#[derive(Debug, Clone)]
pub struct MasterClient {
    tx: mpsc::Sender<Command>,
}

impl MasterClient {
    /// Wraps the actor's command channel.
    pub fn new(tx: mpsc::Sender<Command>) -> Self {
        MasterClient { tx }
    }

    /// Sends a command without waiting for an answer.
    pub async fn send(&self, command: Command) -> Result<(), Status> {
        self.tx
            .send(command)
            .await
            .map_err(|_| Status::unavailable("the master is shutting down"))
    }

    /// Sends a command built around a reply channel and awaits the reply.
    pub async fn ask<T>(
        &self,
        build: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        self.send(build(tx)).await?;
        rx.await
            .map_err(|_| Status::unavailable("the master is shutting down"))
    }
}
