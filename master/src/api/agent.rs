//! The Agent gRPC service: the stream an agent dials to the master.

use std::pin::Pin;

use agora_proto::agent::agent_service_server::AgentService;
use agora_proto::agent::{AgentMessage, MasterMessage};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::debug;

use super::Leadership;
use crate::actor::Command;

/// Serves `agora.v1.agent.AgentService`.
#[derive(Debug, Clone)]
pub struct AgentApi {
    leadership: Leadership,
}

impl AgentApi {
    /// A service forwarding to the leading actor.
    pub fn new(leadership: Leadership) -> Self {
        AgentApi { leadership }
    }
}

type MessageStream = Pin<Box<dyn Stream<Item = Result<MasterMessage, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl AgentService for AgentApi {
    type AttachStream = MessageStream;

    async fn attach(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let master = self.leadership.client_or_redirect().await?;
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("stream closed before registration"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let conn_id = master
            .ask(|reply| Command::AgentAttach {
                first,
                messages: tx,
                reply,
            })
            .await??;
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(message)) => {
                        if master
                            .send(Command::AgentMessage { conn_id, message })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        debug!(conn_id, error = %status, "agent stream broke");
                        break;
                    }
                }
            }
            let _ = master.send(Command::AgentDisconnected { conn_id }).await;
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }
}
