//! Agent lifecycle and messages: register, reregister (with running tasks),
//! pings, disconnection, unreachability, status updates.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use agora_common::resources::Resources;
use agora_common::task_state::{can_transition, is_terminal};
use agora_common::time::{now_nanos, now_secs};
use agora_proto::agent::{agent_message, master_message, AgentMessage, MasterMessage};
use agora_proto::task_status::Reason;
use agora_proto::{AgentId, TaskId, TaskState, TimeInfo};
use tokio::sync::mpsc;
use tonic::Status;
use tracing::{debug, info, warn};

use super::calls::{acknowledgement, master_status};
use super::offers::update_event;
use super::Master;
use crate::books::{task_resources, Agent, AgentConn, AgentState, UnreachableAgent};
use crate::registry::Operation;

/// How many statuses a task keeps for `/master/state`.
const MAX_STATUSES_PER_TASK: usize = 10;

impl Master {
    /// A new agent stream: its first message registers or reregisters it.
    pub(super) fn agent_attach(
        &mut self,
        first: AgentMessage,
        messages: mpsc::UnboundedSender<Result<MasterMessage, Status>>,
        now: Instant,
    ) -> Result<u64, Status> {
        let conn_id = self.next_conn();
        let conn = AgentConn {
            id: conn_id,
            tx: messages,
        };
        match first.message {
            Some(agent_message::Message::Register(register)) => {
                let mut info = register
                    .agent_info
                    .ok_or_else(|| Status::invalid_argument("Register without 'agent_info'"))?;
                let total = Resources::from_vec(info.resources.iter().cloned());
                if info.hostname.is_empty() {
                    return Err(Status::invalid_argument(
                        "'agent_info.hostname' must be set",
                    ));
                }
                let id = self.ids.agent();
                info.id = Some(AgentId { value: id.clone() });
                info!(agent_id = %id, hostname = %info.hostname, resources = %total, "agent registered");
                let _ = conn.tx.send(Ok(MasterMessage {
                    message: Some(master_message::Message::Registered(
                        master_message::Registered {
                            agent_id: Some(AgentId { value: id.clone() }),
                            master_info: Some(self.info.clone()),
                        },
                    )),
                }));
                self.allocator.add_agent(&id, total.clone(), Vec::new());
                self.persist(Operation::AdmitAgent(info.clone()));
                self.agents.insert(
                    id.clone(),
                    new_agent(id.clone(), info, total, register.version, conn),
                );
                self.agent_conns.insert(conn_id, id);
                self.metrics.agent_registrations += 1;
                self.allocation_pending = true;
                Ok(conn_id)
            }
            Some(agent_message::Message::Reregister(reregister)) => {
                self.agent_reregister(reregister, conn, now)?;
                Ok(conn_id)
            }
            _ => Err(Status::invalid_argument(
                "the first message on an agent stream must be Register or Reregister",
            )),
        }
    }

    fn agent_reregister(
        &mut self,
        reregister: agent_message::Reregister,
        conn: AgentConn,
        now: Instant,
    ) -> Result<(), Status> {
        let info = reregister
            .agent_info
            .ok_or_else(|| Status::invalid_argument("Reregister without 'agent_info'"))?;
        let id = info
            .id
            .as_ref()
            .map(|a| a.value.clone())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Status::invalid_argument("Reregister without 'agent_info.id'"))?;
        let total = Resources::from_vec(info.resources.iter().cloned());
        // Start from a clean slate for this agent: whatever the master
        // believed is replaced by what the agent reports.
        let previous_tasks: HashSet<(String, String)> = match self.agents.get(&id) {
            Some(existing) => existing.tasks.clone(),
            None => HashSet::new(),
        };
        if self.agents.contains_key(&id) {
            self.detach_agent(&id, now);
        }
        let was_unreachable = self.unreachable_agents.remove(&id).is_some();
        self.recovered_agents.remove(&id);
        self.persist(Operation::AdmitAgent(info.clone()));
        for framework in reregister.frameworks {
            self.recover_framework(framework);
        }

        let mut kill_tasks = Vec::new();
        let mut reported = HashSet::new();
        let mut used_by: HashMap<(String, String), Resources> = HashMap::new();
        let mut agent = new_agent(id.clone(), info, total.clone(), reregister.version, conn);
        agent.reregistered_time = Some(now_secs());
        for mut task in reregister.tasks {
            let framework_id = task
                .framework_id
                .as_ref()
                .map(|f| f.value.clone())
                .unwrap_or_default();
            let task_id = task
                .task_id
                .as_ref()
                .map(|t| t.value.clone())
                .unwrap_or_default();
            let role = self.role_of_task(&framework_id, &task);
            let Some(framework) = self.frameworks.get_mut(&framework_id) else {
                // Its framework was removed while the agent was away.
                kill_tasks.push(TaskId { value: task_id });
                continue;
            };
            reported.insert((framework_id.clone(), task_id.clone()));
            let resources = task_resources(&task);
            let terminal = is_terminal(task.state());
            let came_back = framework.unreachable_tasks.remove(&task_id);
            if let Some(known) = came_back.as_ref().or_else(|| framework.tasks.get(&task_id)) {
                // Keep the master's history of statuses.
                let mut statuses = known.statuses.clone();
                statuses.append(&mut task.statuses);
                let excess = statuses.len().saturating_sub(MAX_STATUSES_PER_TASK);
                statuses.drain(..excess);
                task.statuses = statuses;
                task.status_update_uuid = known.status_update_uuid.clone();
                task.status_update_state = known.status_update_state;
            }
            if came_back.is_some() {
                let mut status = master_status(
                    &task_id,
                    Some(&id),
                    task.state(),
                    Reason::AgentReregistered,
                    format!("Agent {id} reregistered"),
                );
                status.healthy = task.statuses.last().and_then(|s| s.healthy);
                framework.send(update_event(status));
            }
            if !terminal {
                framework.used.add(&resources);
                agent.used.add(&resources);
                used_by
                    .entry((framework_id.clone(), role))
                    .or_default()
                    .add(&resources);
            }
            framework.tasks.insert(task_id.clone(), task);
            agent.tasks.insert((framework_id, task_id));
        }
        // Tasks the master launched there that the agent never got (or lost):
        // Mesos reports them dropped (lost for frameworks that are not partition-aware).
        let max_completed = self.config.max_completed_tasks_per_framework;
        for (framework_id, task_id) in previous_tasks.difference(&reported) {
            let Some((framework, mut task)) = self.take_live_task(framework_id, task_id) else {
                continue;
            };
            let state = if framework.partition_aware() {
                TaskState::TaskDropped
            } else {
                TaskState::TaskLost
            };
            task.set_state(state);
            let status = master_status(
                task_id,
                Some(&id),
                state,
                Reason::AgentReregistered,
                "Task was not reported by its agent when the agent reregistered",
            );
            task.statuses.push(status.clone());
            framework.complete_task(task, max_completed);
            framework.send(update_event(status));
            self.metrics.task_terminal(state);
        }
        info!(agent_id = %id, tasks = agent.tasks.len(), was_unreachable, "agent reregistered");
        agent.send(MasterMessage {
            message: Some(master_message::Message::Reregistered(
                master_message::Reregistered {
                    agent_id: Some(AgentId { value: id.clone() }),
                    master_info: Some(self.info.clone()),
                    kill_tasks,
                },
            )),
        });
        if let Some(conn) = &agent.conn {
            self.agent_conns.insert(conn.id, id.clone());
        }
        let used = used_by
            .into_iter()
            .map(|((framework, role), resources)| (framework, role, resources))
            .collect();
        self.allocator.add_agent(&id, total, used);
        self.agents.insert(id, agent);
        self.metrics.agent_reregistrations += 1;
        self.allocation_pending = true;
        Ok(())
    }

    /// Removes an agent from the books and the allocator (before it
    /// reregisters, or when it becomes unreachable); its offers are rescinded.
    fn detach_agent(&mut self, id: &str, now: Instant) -> Option<Agent> {
        let offers: Vec<String> = self.agents.get(id)?.offers.iter().cloned().collect();
        for offer_id in offers {
            self.rescind_offer(&offer_id, now);
        }
        let mut agent = self.agents.remove(id)?;
        if let Some(conn) = agent.conn.take() {
            self.agent_conns.remove(&conn.id);
        }
        for (framework_id, task_id) in &agent.tasks {
            if let Some(framework) = self.frameworks.get_mut(framework_id) {
                if let Some(task) = framework.tasks.get(task_id) {
                    if !is_terminal(task.state()) {
                        framework.used.subtract(&task_resources(task));
                    }
                }
            }
        }
        self.allocator.remove_agent(id);
        Some(agent)
    }

    /// A later message on an agent stream.
    pub(super) fn agent_message(&mut self, conn_id: u64, message: AgentMessage) {
        let Some(agent_id) = self.agent_conns.get(&conn_id).cloned() else {
            return;
        };
        match message.message {
            Some(agent_message::Message::Pong(pong)) => {
                if let Some(agent) = self.agents.get_mut(&agent_id) {
                    if pong.sequence == agent.ping_sequence {
                        agent.ping_outstanding = false;
                        agent.missed_pings = 0;
                    }
                }
            }
            Some(agent_message::Message::StatusUpdate(update)) => {
                self.status_update(&agent_id, update)
            }
            Some(agent_message::Message::ExecutorMessage(m)) => {
                let framework_id = m.framework_id.map(|f| f.value).unwrap_or_default();
                if let Some(framework) = self.frameworks.get(&framework_id) {
                    framework.send(agora_proto::scheduler::Event {
                        r#type: agora_proto::scheduler::event::Type::Message as i32,
                        message: Some(agora_proto::scheduler::event::Message {
                            agent_id: Some(AgentId { value: agent_id }),
                            executor_id: m.executor_id,
                            data: m.data,
                        }),
                        ..Default::default()
                    });
                }
            }
            Some(agent_message::Message::Register(_) | agent_message::Message::Reregister(_)) => {
                warn!(%agent_id, "registration on an established stream ignored");
            }
            None => {}
        }
    }

    /// A status update from an agent: book it, free resources of terminal
    /// tasks, forward it to the framework (which acknowledges it).
    fn status_update(&mut self, agent_id: &str, update: agent_message::StatusUpdate) {
        let framework_id = update.framework_id.map(|f| f.value).unwrap_or_default();
        let Some(mut status) = update.status else {
            self.metrics.invalid_status_updates += 1;
            return;
        };
        let task_id = status
            .task_id
            .as_ref()
            .map(|t| t.value.clone())
            .unwrap_or_default();
        let uuid = status.uuid.clone().unwrap_or_default();
        let Some(framework) = self.frameworks.get_mut(&framework_id) else {
            // Nobody will acknowledge it: do it for the removed framework, or
            // the agent would retry forever.
            debug!(%framework_id, %task_id, "update for an unknown framework acknowledged by the master");
            if let Some(agent) = self.agents.get(agent_id) {
                agent.send(acknowledgement(&framework_id, &task_id, uuid));
            }
            return;
        };
        self.metrics.valid_status_updates += 1;
        status.agent_id = Some(AgentId {
            value: agent_id.to_string(),
        });
        let latest = update
            .latest_state
            .and_then(|s| TaskState::try_from(s).ok())
            .unwrap_or(status.state());
        let mut freed = None;
        if let Some(task) = framework.tasks.get_mut(&task_id) {
            let before = task.state();
            if can_transition(before, latest) {
                task.set_state(latest);
            }
            if !is_terminal(before) && is_terminal(task.state()) {
                freed = Some((task_resources(task), task.clone()));
                self.metrics.task_terminal(task.state());
            }
            task.status_update_state = Some(status.state);
            task.status_update_uuid = status.uuid.clone();
            let mut booked = status.clone();
            booked.data = None;
            task.statuses.push(booked);
            if task.statuses.len() > MAX_STATUSES_PER_TASK {
                task.statuses.remove(0);
            }
        }
        if let Some((resources, task)) = &freed {
            framework.used.subtract(resources);
            let role = crate::books::task_role(task, framework.default_role());
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.used.subtract(resources);
            }
            self.allocator.recover(
                agent_id,
                &framework_id,
                &role,
                resources,
                None,
                Instant::now(),
            );
            self.allocation_pending = true;
        }
        if let Some(framework) = self.frameworks.get(&framework_id) {
            framework.send(update_event(status));
        }
    }

    /// An agent stream ended: stop offering its resources; it becomes
    /// unreachable unless it comes back within the ping window.
    pub(super) fn agent_disconnected(&mut self, conn_id: u64, now: Instant) {
        let Some(agent_id) = self.agent_conns.remove(&conn_id) else {
            return;
        };
        let Some(agent) = self.agents.get_mut(&agent_id) else {
            return;
        };
        if agent.conn.as_ref().map(|c| c.id) != Some(conn_id) {
            return;
        }
        info!(%agent_id, "agent disconnected");
        agent.conn = None;
        agent.state = AgentState::Disconnected { since: now };
        let offers: Vec<String> = agent.offers.iter().cloned().collect();
        self.allocator.deactivate_agent(&agent_id);
        for offer_id in offers {
            self.rescind_offer(&offer_id, now);
        }
    }

    /// Pings every connected agent; marks unreachable those that missed too many.
    pub(super) fn ping_agents(&mut self) {
        let max = self.config.max_agent_ping_timeouts;
        let mut lost = Vec::new();
        for agent in self.agents.values_mut() {
            if agent.conn.is_none() {
                continue;
            }
            if agent.ping_outstanding {
                agent.missed_pings += 1;
                if agent.missed_pings >= max {
                    lost.push(agent.id.clone());
                    continue;
                }
            }
            agent.ping_sequence += 1;
            agent.ping_outstanding = true;
            agent.send(MasterMessage {
                message: Some(master_message::Message::Ping(master_message::Ping {
                    sequence: agent.ping_sequence,
                })),
            });
        }
        for id in lost {
            warn!(agent_id = %id, "agent missed {max} pings");
            self.mark_unreachable(&id, Instant::now());
        }
    }

    /// Marks unreachable the agents disconnected for longer than the ping window.
    pub(super) fn expire_disconnected_agents(&mut self, now: Instant) {
        let window = self.config.agent_ping_timeout * self.config.max_agent_ping_timeouts;
        let expired: Vec<String> = self
            .agents
            .values()
            .filter(|a| matches!(a.state, AgentState::Disconnected { since } if now.duration_since(since) >= window))
            .map(|a| a.id.clone())
            .collect();
        for id in expired {
            warn!(agent_id = %id, "agent did not come back; marking it unreachable");
            self.mark_unreachable(&id, now);
        }
    }

    /// The agent is gone from view: its tasks become unreachable (lost for
    /// frameworks that are not partition-aware) until it reregisters.
    pub(crate) fn mark_unreachable(&mut self, id: &str, now: Instant) {
        let Some(agent) = self.detach_agent(id, now) else {
            return;
        };
        let since = now_secs();
        self.persist(Operation::MarkUnreachable {
            id: id.to_string(),
            nanos: now_nanos(),
        });
        for (framework_id, task_id) in &agent.tasks {
            let Some((framework, mut task)) = self.take_live_task(framework_id, task_id) else {
                continue;
            };
            let state = if framework.partition_aware() {
                TaskState::TaskUnreachable
            } else {
                TaskState::TaskLost
            };
            let mut status = master_status(
                task_id,
                Some(id),
                state,
                Reason::AgentRemoved,
                format!("Agent {id} is unreachable"),
            );
            status.unreachable_time = Some(TimeInfo {
                nanoseconds: now_nanos(),
            });
            task.set_state(TaskState::TaskUnreachable);
            task.statuses.push(status.clone());
            framework.unreachable_tasks.insert(task_id.clone(), task);
            framework.send(update_event(status));
            self.metrics.tasks_unreachable_total += 1;
        }
        self.unreachable_agents.insert(
            id.to_string(),
            UnreachableAgent {
                info: agent.info,
                since,
            },
        );
        self.metrics.agent_removals += 1;
        self.allocation_pending = true;
    }
}

impl Master {
    /// Takes a task out of its framework's active books when its agent's
    /// report or loss decides its fate: terminal tasks go to the completed
    /// ones (`None`), live ones are handed back with their framework.
    fn take_live_task(
        &mut self,
        framework_id: &str,
        task_id: &str,
    ) -> Option<(&mut crate::books::Framework, agora_proto::Task)> {
        let max = self.config.max_completed_tasks_per_framework;
        let framework = self.frameworks.get_mut(framework_id)?;
        let task = framework.tasks.remove(task_id)?;
        if is_terminal(task.state()) {
            framework.complete_task(task, max);
            return None;
        }
        Some((framework, task))
    }
}

fn new_agent(
    id: String,
    info: agora_proto::AgentInfo,
    total: Resources,
    version: String,
    conn: AgentConn,
) -> Agent {
    Agent {
        id,
        info,
        total,
        used: Resources::new(),
        offered: Resources::new(),
        version,
        state: AgentState::Active,
        conn: Some(conn),
        tasks: HashSet::new(),
        offers: HashSet::new(),
        registered_time: now_secs(),
        reregistered_time: None,
        ping_sequence: 0,
        ping_outstanding: false,
        missed_pings: 0,
    }
}
