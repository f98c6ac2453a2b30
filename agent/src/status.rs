//! Building task status updates: what a container's end means for its task.
//!
//! Messages and reasons follow Mesos' command executor so that frameworks
//! written against Mesos (and people reading Marathon's UI) see the texts
//! they know: "Command exited with status 3", "Command terminated with
//! signal SIGKILL".

use std::net::IpAddr;

use agora_proto::network_info::IpAddress;
use agora_proto::task_status::{Reason, Source};
use agora_proto::{
    AgentId, ContainerId, ContainerStatus, ExecutorId, NetworkInfo, TaskId, TaskState, TaskStatus,
};

use crate::containerizer::{ContainerNetwork, LimitedResource, Termination};

/// The fields every update of one task shares.
#[derive(Debug, Clone)]
pub struct StatusTarget<'a> {
    /// The task.
    pub task_id: &'a str,
    /// Its executor (the task id for command tasks).
    pub executor_id: &'a str,
    /// This agent.
    pub agent_id: &'a str,
    /// The container, once launched.
    pub container: Option<RunningContainer<'a>>,
    /// The task's health, once its health check has a verdict.
    pub healthy: Option<bool>,
    /// The task's general check's last result, once it has one.
    pub check_status: Option<agora_proto::CheckStatusInfo>,
}

/// A launched container as its task's statuses describe it.
#[derive(Debug, Clone)]
pub struct RunningContainer<'a> {
    /// The container id.
    pub id: &'a str,
    /// Its main pid.
    pub pid: i32,
    /// Its addresses (see [`network_infos`]).
    pub network_infos: Vec<NetworkInfo>,
}

/// `ContainerStatus.network_infos` as Mesos reports them: a container on a
/// network of its own has its addresses there; `host_ip` is the agent's
/// address for a task on the host's network (none when the agent does not
/// know it, or the task is not on the host's network).
pub fn network_infos(networks: &[ContainerNetwork], host_ip: Option<IpAddr>) -> Vec<NetworkInfo> {
    let info = |name: Option<String>, ip: IpAddr| NetworkInfo {
        ip_addresses: vec![IpAddress {
            ip_address: Some(ip.to_string()),
        }],
        name,
        ..Default::default()
    };
    if networks.is_empty() {
        return host_ip.map(|ip| info(None, ip)).into_iter().collect();
    }
    networks
        .iter()
        .map(|n| info(Some(n.name.clone()), n.ip))
        .collect()
}

/// What a status says beyond its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The new state.
    pub state: TaskState,
    /// Why, for failures.
    pub reason: Option<Reason>,
    /// A human-readable explanation.
    pub message: Option<String>,
}

impl Outcome {
    /// A state with neither reason nor message.
    pub fn state(state: TaskState) -> Self {
        Outcome {
            state,
            reason: None,
            message: None,
        }
    }

    /// A state with a reason and a message.
    pub fn with(state: TaskState, reason: Reason, message: impl Into<String>) -> Self {
        Outcome {
            state,
            reason: Some(reason),
            message: Some(message.into()),
        }
    }
}

/// A fresh status (new uuid, current timestamp) for `target`.
pub fn new_status(target: &StatusTarget<'_>, outcome: Outcome) -> TaskStatus {
    TaskStatus {
        task_id: Some(TaskId {
            value: target.task_id.to_string(),
        }),
        state: outcome.state as i32,
        message: outcome.message,
        // Command tasks have no executor of their own yet; the agent speaks
        // for them as Mesos' command executor would.
        source: Some(Source::Executor as i32),
        reason: outcome.reason.map(|r| r as i32),
        agent_id: Some(AgentId {
            value: target.agent_id.to_string(),
        }),
        executor_id: Some(ExecutorId {
            value: target.executor_id.to_string(),
        }),
        timestamp: Some(agora_common::time::now_secs()),
        uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
        container_status: target.container.as_ref().map(|c| ContainerStatus {
            container_id: Some(ContainerId {
                value: c.id.to_string(),
                parent: None,
            }),
            network_infos: c.network_infos.clone(),
            executor_pid: Some(c.pid),
        }),
        healthy: target.healthy,
        check_status: target.check_status,
        ..Default::default()
    }
}

/// What the end of a task's container means: `killed` says whether the agent
/// was killing the task (then it is `TASK_KILLED` however it ended).
pub fn termination_outcome(termination: Termination, killed: bool) -> Outcome {
    let message = match termination {
        Termination::Exited(code) => format!("Command exited with status {code}"),
        Termination::Signaled(signal) => format!("Command terminated with signal {signal}"),
        Termination::Limited(ref limitation) => limitation.message.clone(),
        Termination::Unhealthy(ref cause) => {
            format!("Killed for failing its health check: {cause}")
        }
        Termination::Unknown => {
            "The executor shim ended without recording how the command ended".to_string()
        }
    };
    if killed || matches!(termination, Termination::Unhealthy(_)) {
        return Outcome {
            state: TaskState::TaskKilled,
            reason: None,
            message: Some(message),
        };
    }
    match termination {
        Termination::Exited(0) => Outcome {
            state: TaskState::TaskFinished,
            reason: None,
            message: Some(message),
        },
        Termination::Unknown => {
            Outcome::with(TaskState::TaskFailed, Reason::ExecutorTerminated, message)
        }
        // Mesos reports a limitation as a failure whose reason names the resource.
        Termination::Limited(limitation) => {
            let reason = match limitation.resource {
                LimitedResource::Memory => Reason::ContainerLimitationMemory,
                LimitedResource::Disk => Reason::ContainerLimitationDisk,
            };
            Outcome::with(TaskState::TaskFailed, reason, message)
        }
        _ => Outcome::with(
            TaskState::TaskFailed,
            Reason::CommandExecutorFailed,
            message,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn outcomes_follow_the_command_executor() {
        let o = termination_outcome(Termination::Exited(0), false);
        assert_eq!(o.state, TaskState::TaskFinished);
        assert_eq!(o.message.as_deref(), Some("Command exited with status 0"));

        let o = termination_outcome(Termination::Exited(3), false);
        assert_eq!(o.state, TaskState::TaskFailed);
        assert_eq!(o.reason, Some(Reason::CommandExecutorFailed));
        assert_eq!(o.message.as_deref(), Some("Command exited with status 3"));

        let o = termination_outcome(Termination::Signaled(Signal::SIGSEGV), false);
        assert_eq!(o.state, TaskState::TaskFailed);
        assert_eq!(
            o.message.as_deref(),
            Some("Command terminated with signal SIGSEGV")
        );

        let o = termination_outcome(Termination::Unknown, false);
        assert_eq!(o.state, TaskState::TaskFailed);
        assert_eq!(o.reason, Some(Reason::ExecutorTerminated));

        let limited = Termination::Limited(crate::containerizer::Limitation {
            resource: LimitedResource::Memory,
            message: "Memory limit exceeded: 32 MB".into(),
        });
        let o = termination_outcome(limited, false);
        assert_eq!(o.state, TaskState::TaskFailed);
        assert_eq!(o.reason, Some(Reason::ContainerLimitationMemory));
        assert_eq!(o.message.as_deref(), Some("Memory limit exceeded: 32 MB"));

        let o = termination_outcome(Termination::Signaled(Signal::SIGKILL), true);
        assert_eq!(o.state, TaskState::TaskKilled);
        assert_eq!(
            o.message.as_deref(),
            Some("Command terminated with signal SIGKILL")
        );

        // Killed by its own supervisor: killed all the same, saying why.
        let o = termination_outcome(Termination::Unhealthy("3 failed".into()), false);
        assert_eq!(o.state, TaskState::TaskKilled);
        assert_eq!(
            o.message.as_deref(),
            Some("Killed for failing its health check: 3 failed")
        );
    }

    #[test]
    fn statuses_are_unique_and_complete() {
        let target = StatusTarget {
            task_id: "t",
            executor_id: "t",
            agent_id: "a",
            container: Some(RunningContainer {
                id: "c",
                pid: 42,
                network_infos: network_infos(&[], "10.0.0.7".parse().ok()),
            }),
            healthy: Some(false),
            check_status: None,
        };
        let a = new_status(&target, Outcome::state(TaskState::TaskRunning));
        let b = new_status(&target, Outcome::state(TaskState::TaskRunning));
        assert_ne!(a.uuid, b.uuid);
        assert_eq!(a.uuid.as_ref().map(Vec::len), Some(16));
        assert!(a.timestamp.is_some_and(|t| t > 0.0));
        let container = a.container_status.expect("container status");
        assert_eq!(container.executor_pid, Some(42));
        assert_eq!(
            container.network_infos[0].ip_addresses[0]
                .ip_address
                .as_deref(),
            Some("10.0.0.7")
        );
    }

    #[test]
    fn addresses_are_the_containers_own_or_the_agents() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let addresses = |infos: Vec<NetworkInfo>| -> Vec<(Option<String>, String)> {
            infos
                .into_iter()
                .map(|n| {
                    let ip = n.ip_addresses[0].ip_address.clone().unwrap_or_default();
                    (n.name, ip)
                })
                .collect()
        };
        assert_eq!(
            addresses(network_infos(&[], Some(ip("10.0.0.7")))),
            vec![(None, "10.0.0.7".to_string())]
        );
        assert!(network_infos(&[], None).is_empty());
        let own = [ContainerNetwork {
            name: "bridge".into(),
            ip: ip("172.17.0.2"),
        }];
        assert_eq!(
            addresses(network_infos(&own, Some(ip("10.0.0.7")))),
            vec![(Some("bridge".to_string()), "172.17.0.2".to_string())]
        );
    }
}
