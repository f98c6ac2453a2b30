//! The Scheduler gRPC service: one bidirectional stream per framework.

use std::pin::Pin;

use agora_proto::scheduler::scheduler_server::Scheduler;
use agora_proto::scheduler::{Call, Event};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::debug;

use super::Leadership;
use crate::actor::Command;

/// Serves `agora.v1.scheduler.Scheduler`.
#[derive(Debug, Clone)]
pub struct SchedulerService {
    leadership: Leadership,
}

impl SchedulerService {
    /// A service forwarding to the leading actor.
    pub fn new(leadership: Leadership) -> Self {
        SchedulerService { leadership }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Scheduler for SchedulerService {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<Streaming<Call>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let master = self.leadership.client_or_redirect().await?;
        let mut calls = request.into_inner();
        let first = calls
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("stream closed before SUBSCRIBE"))?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let conn_id = master
            .ask(|reply| Command::Subscribe {
                call: first,
                events: events_tx,
                reply,
            })
            .await??;
        tokio::spawn(async move {
            loop {
                match calls.message().await {
                    Ok(Some(call)) => {
                        if master.send(Command::Call { conn_id, call }).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        debug!(conn_id, error = %status, "scheduler stream broke");
                        break;
                    }
                }
            }
            let _ = master
                .send(Command::FrameworkDisconnected { conn_id })
                .await;
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(
            events_rx,
        ))))
    }
}
