//! The Operator gRPC service: typed views for tools.

use agora_proto::master::operator_server::Operator;
use agora_proto::master::*;
use agora_proto::FrameworkId;
use tonic::{Request, Response, Status};

use super::{Leadership, MasterClient};
use crate::actor::Command;

/// Serves `agora.v1.master.Operator`.
#[derive(Debug, Clone)]
pub struct OperatorService {
    leadership: Leadership,
}

impl OperatorService {
    /// A service forwarding to the leading actor.
    pub fn new(leadership: Leadership) -> Self {
        OperatorService { leadership }
    }

    async fn master(&self) -> Result<MasterClient, Status> {
        self.leadership.client_or_redirect().await
    }
}

#[tonic::async_trait]
impl Operator for OperatorService {
    async fn get_health(
        &self,
        _: Request<GetHealthRequest>,
    ) -> Result<Response<GetHealthResponse>, Status> {
        Ok(Response::new(GetHealthResponse { healthy: true }))
    }

    async fn get_version(
        &self,
        _: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, Status> {
        Ok(Response::new(GetVersionResponse {
            version: agora_common::build::MESOS_API_VERSION.to_string(),
            git_sha: agora_common::build::git_sha().to_string(),
        }))
    }

    async fn get_metrics(
        &self,
        _: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let metrics = self
            .master()
            .await?
            .ask(|reply| Command::Metrics { reply })
            .await?;
        Ok(Response::new(GetMetricsResponse {
            metrics: metrics.into_iter().collect(),
        }))
    }

    async fn get_agents(
        &self,
        _: Request<GetAgentsRequest>,
    ) -> Result<Response<GetAgentsResponse>, Status> {
        let s = self
            .master()
            .await?
            .ask(|reply| Command::Snapshot { reply })
            .await?;
        let agents = s
            .agents
            .into_iter()
            .map(|(info, active, total, used, offered, registered_time)| {
                get_agents_response::Agent {
                    agent_info: Some(info),
                    active,
                    total_resources: total.into_vec(),
                    allocated_resources: used.into_vec(),
                    offered_resources: offered.into_vec(),
                    registered_time,
                }
            })
            .collect();
        Ok(Response::new(GetAgentsResponse {
            agents,
            recovered_agents: Vec::new(),
        }))
    }

    async fn get_frameworks(
        &self,
        _: Request<GetFrameworksRequest>,
    ) -> Result<Response<GetFrameworksResponse>, Status> {
        let s = self
            .master()
            .await?
            .ask(|reply| Command::Snapshot { reply })
            .await?;
        let frameworks = s
            .frameworks
            .into_iter()
            .map(
                |(info, active, connected, registered_time)| get_frameworks_response::Framework {
                    framework_info: Some(info),
                    active,
                    connected,
                    registered_time,
                },
            )
            .collect();
        let completed_frameworks = s
            .completed_frameworks
            .into_iter()
            .map(
                |(info, registered_time)| get_frameworks_response::Framework {
                    framework_info: Some(info),
                    active: false,
                    connected: false,
                    registered_time,
                },
            )
            .collect();
        Ok(Response::new(GetFrameworksResponse {
            frameworks,
            completed_frameworks,
        }))
    }

    async fn get_tasks(
        &self,
        _: Request<GetTasksRequest>,
    ) -> Result<Response<GetTasksResponse>, Status> {
        let s = self
            .master()
            .await?
            .ask(|reply| Command::Snapshot { reply })
            .await?;
        Ok(Response::new(GetTasksResponse {
            tasks: s.tasks,
            unreachable_tasks: s.unreachable_tasks,
            completed_tasks: s.completed_tasks,
        }))
    }

    async fn teardown(
        &self,
        request: Request<TeardownRequest>,
    ) -> Result<Response<TeardownResponse>, Status> {
        let framework_id = request
            .into_inner()
            .framework_id
            .map(|FrameworkId { value }| value)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Status::invalid_argument("'framework_id' is required"))?;
        let existed = self
            .master()
            .await?
            .ask(|reply| Command::Teardown {
                framework_id,
                reply,
            })
            .await?;
        if !existed {
            return Err(Status::not_found("No framework found with specified ID"));
        }
        Ok(Response::new(TeardownResponse {}))
    }
}
