//! What the actor tells others about itself: the registration message the
//! master link opens each session with, and the snapshot `/state` renders.
//! Both are copies taken at one instant, so they are always consistent.

use agora_proto::agent::{agent_message, AgentMessage};
use agora_proto::{AgentId, AgentInfo, ExecutorId, FrameworkId, FrameworkInfo, Task, TaskId};

use super::Actor;
use crate::http::state::{Snapshot, TaskView};
use crate::tasks::{TaskEntry, TaskKey};

impl Actor {
    /// `Register` for a new agent, `Reregister` with every task the master
    /// must know about once the agent has an id.
    pub(super) fn registration_message(&self) -> AgentMessage {
        use agent_message::Message as M;
        let agent_id = self.agent_id.borrow().clone();
        let agent_info = AgentInfo {
            hostname: self.me.hostname.clone(),
            port: Some(i32::from(self.me.http_port)),
            resources: self.me.resources.to_vec(),
            attributes: self.me.attributes.clone(),
            id: agent_id.clone().map(|value| AgentId { value }),
            containerizers: self
                .me
                .containerizers
                .iter()
                .map(|k| k.container_type() as i32)
                .collect(),
        };
        let version = agora_common::build::MESOS_API_VERSION.to_string();
        let message = match agent_id {
            None => M::Register(agent_message::Register {
                agent_info: Some(agent_info),
                version,
            }),
            Some(agent_id) => {
                let mut frameworks: Vec<FrameworkInfo> = Vec::new();
                let mut tasks = Vec::new();
                for ((framework_id, task_id), e) in self.tasks.iter() {
                    if !frameworks
                        .iter()
                        .any(|f| f.id.as_ref().map(|i| &i.value) == Some(framework_id))
                    {
                        frameworks.push(e.framework.clone());
                    }
                    tasks.push(Task {
                        name: e.info.name.clone(),
                        task_id: Some(TaskId {
                            value: task_id.clone(),
                        }),
                        framework_id: Some(FrameworkId {
                            value: framework_id.clone(),
                        }),
                        executor_id: Some(ExecutorId {
                            value: e.executor_id.clone(),
                        }),
                        agent_id: Some(AgentId {
                            value: agent_id.clone(),
                        }),
                        state: e.state as i32,
                        resources: e.info.resources.clone(),
                        labels: e.info.labels.clone(),
                        discovery: e.info.discovery.clone(),
                        container: e.info.container.clone(),
                        health_check: e.info.health_check.clone(),
                        kill_policy: e.info.kill_policy,
                        ..Default::default()
                    });
                }
                M::Reregister(agent_message::Reregister {
                    agent_info: Some(agent_info),
                    tasks,
                    frameworks,
                    version,
                })
            }
        };
        AgentMessage {
            message: Some(message),
        }
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        let view = |key: &TaskKey, e: &TaskEntry| TaskView {
            framework: e.framework.clone(),
            framework_id: key.0.clone(),
            task_id: key.1.clone(),
            name: e.info.name.clone(),
            executor_id: e.executor_id.clone(),
            state: e.state,
            resources: e.info.resources.clone(),
            live: e.phase.is_live(),
            sandbox: e.sandbox.clone(),
            container_id: e.container_id.clone(),
        };
        Snapshot {
            agent_id: self.agent_id.borrow().clone(),
            hostname: self.me.hostname.clone(),
            pid: self.me.pid.clone(),
            resources: self.me.resources.clone(),
            attributes: self.me.attributes.clone(),
            master_hostname: self.master_hostname.clone(),
            registered: self.registered,
            tasks: self.tasks.iter().map(|(k, e)| view(k, e)).collect(),
            completed: self
                .tasks
                .completed()
                .map(|e| {
                    let framework_id = e.framework.id.as_ref().map(|f| f.value.clone());
                    let task_id = e.info.task_id.as_ref().map(|t| t.value.clone());
                    view(
                        &(
                            framework_id.unwrap_or_default(),
                            task_id.unwrap_or_default(),
                        ),
                        e,
                    )
                })
                .collect(),
            counters: self.counters,
            uptime: self.started.elapsed(),
        }
    }
}
