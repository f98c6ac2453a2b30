//! Framework lifecycle: subscribe, resubscribe (failover), disconnect,
//! failover timeout, teardown.

use agora_proto::scheduler::event::error::Reason as ErrorReason;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use agora_common::resources::Resources;
use agora_common::task_state::is_terminal;
use agora_common::time::now_secs;
use agora_proto::agent::{master_message, MasterMessage};
use agora_proto::scheduler::{call, event, Call, Event};
use agora_proto::{FrameworkId, FrameworkInfo, TaskState};
use tokio::sync::mpsc;
use tonic::Status;
use tracing::{info, warn};

use super::Master;
use crate::books::frameworks_roles_of as roles_of;
use crate::books::{task_resources, task_role, Framework, FrameworkConn, FrameworkState};
use crate::config::validate_role;

impl Master {
    /// Handles SUBSCRIBE; on success the SUBSCRIBED event is already queued.
    pub(super) fn subscribe(
        &mut self,
        call: Call,
        events: mpsc::UnboundedSender<Result<Event, Status>>,
        now: Instant,
    ) -> Result<u64, Status> {
        if call.r#type() != call::Type::Subscribe {
            return Err(Status::invalid_argument(
                "the first call on a stream must be SUBSCRIBE",
            ));
        }
        let subscribe = call
            .subscribe
            .ok_or_else(|| Status::invalid_argument("SUBSCRIBE call without 'subscribe'"))?;
        let mut info = subscribe
            .framework_info
            .ok_or_else(|| Status::invalid_argument("SUBSCRIBE without 'framework_info'"))?;
        self.validate_framework_info(&info, call.framework_id.as_ref())?;
        let roles = roles_of(&info);

        let conn_id = self.next_conn();
        let conn = FrameworkConn {
            id: conn_id,
            tx: events,
        };
        let requested = info.id.as_ref().map(|i| i.value.clone());
        if let Some(id) = &requested {
            if self.completed_frameworks.iter().any(|f| &f.id == id) {
                let error = error_event(ErrorReason::Removed, "Framework has been removed");
                let _ = conn.tx.send(Ok(error));
                return Ok(conn_id);
            }
        }
        let id = requested.unwrap_or_else(|| self.ids.framework());
        info.id = Some(FrameworkId { value: id.clone() });

        if let Some(framework) = self.frameworks.get_mut(&id) {
            // Failover: the new stream replaces the old one.
            if let Some(old) = framework.conn.take() {
                let _ = old.tx.send(Ok(error_event(
                    ErrorReason::FailedOver,
                    "Framework failed over",
                )));
                self.framework_conns.remove(&old.id);
            }
            info!(framework_id = %id, "framework resubscribed");
            framework.info = info;
            framework.roles = roles.clone();
            framework.state = FrameworkState::Connected;
            framework.conn = Some(conn);
            framework.reregistered_time = Some(now_secs());
            framework.unregistered_time = None;
            self.allocator.update_framework_roles(&id, roles);
            self.allocator.activate_framework(&id);
            // Offers sent on the old stream are void.
            let stale: Vec<String> = framework.offers.iter().cloned().collect();
            for offer_id in stale {
                self.remove_offer(&offer_id, None, now);
            }
        } else {
            info!(framework_id = %id, name = %info.name, ?roles, "framework subscribed");
            self.allocator.add_framework(
                &id,
                roles.clone(),
                subscribe.suppressed_roles.clone(),
                true,
            );
            self.frameworks.insert(
                id.clone(),
                Framework::new(info, roles, FrameworkState::Connected, Some(conn)),
            );
        }
        if !subscribe.suppressed_roles.is_empty() {
            self.allocator.suppress(&id, &subscribe.suppressed_roles);
        }
        self.framework_conns.insert(conn_id, id.clone());
        let subscribed = Event {
            r#type: event::Type::Subscribed as i32,
            subscribed: Some(event::Subscribed {
                framework_id: Some(FrameworkId { value: id.clone() }),
                heartbeat_interval_seconds: Some(self.config.heartbeat_interval.as_secs_f64()),
                master_info: Some(self.info.clone()),
            }),
            ..Default::default()
        };
        if let Some(framework) = self.frameworks.get(&id) {
            framework.send(subscribed);
        }
        self.allocation_pending = true;
        Ok(conn_id)
    }

    fn validate_framework_info(
        &self,
        info: &FrameworkInfo,
        call_id: Option<&FrameworkId>,
    ) -> Result<(), Status> {
        if info.name.trim().is_empty() {
            return Err(Status::invalid_argument(
                "'framework_info.name' must not be empty",
            ));
        }
        if let (Some(a), Some(b)) = (call_id, info.id.as_ref()) {
            if a.value != b.value {
                return Err(Status::invalid_argument(
                    "'framework_id' differs from 'framework_info.id'",
                ));
            }
        }
        if info
            .failover_timeout
            .is_some_and(|t| !t.is_finite() || t < 0.0)
        {
            return Err(Status::invalid_argument(
                "'framework_info.failover_timeout' must be a finite number >= 0",
            ));
        }
        for role in roles_of(info) {
            validate_role(&role).map_err(Status::invalid_argument)?;
            if let Some(allowed) = &self.config.roles {
                if role != "*" && !allowed.contains(&role) {
                    return Err(Status::permission_denied(format!(
                        "role '{role}' is not in the master's --roles"
                    )));
                }
            }
        }
        Ok(())
    }

    /// A framework's stream ended: deactivate it and start its failover clock.
    pub(super) fn framework_disconnected(&mut self, conn_id: u64, now: Instant) {
        let Some(id) = self.framework_conns.remove(&conn_id) else {
            return;
        };
        let Some(framework) = self.frameworks.get_mut(&id) else {
            return;
        };
        if framework.conn.as_ref().map(|c| c.id) != Some(conn_id) {
            return;
        }
        let timeout = framework.info.failover_timeout.unwrap_or(0.0).max(0.0);
        framework.conn = None;
        framework.unregistered_time = Some(now_secs());
        let deadline = now + Duration::try_from_secs_f64(timeout).unwrap_or(Duration::MAX / 4);
        framework.state = FrameworkState::Disconnected {
            since: now,
            deadline,
        };
        info!(framework_id = %id, failover_timeout = timeout, "framework disconnected");
        self.allocator.deactivate_framework(&id);
        let stale: Vec<String> = framework.offers.iter().cloned().collect();
        for offer_id in stale {
            self.remove_offer(&offer_id, None, now);
        }
        if timeout == 0.0 {
            self.teardown(&id, "Framework disconnected with no failover timeout");
        }
    }

    /// Tears down frameworks whose failover timeout passed.
    pub(super) fn expire_frameworks(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .frameworks
            .values()
            .filter(|f| matches!(f.state, FrameworkState::Disconnected { deadline, .. } if deadline <= now))
            .map(|f| f.id.clone())
            .collect();
        for id in expired {
            warn!(framework_id = %id, "framework failover timeout expired; tearing down");
            self.teardown(&id, "Framework failover timeout expired");
        }
    }

    /// Removes a framework: kills its tasks, voids its offers, forgets its
    /// allocation and keeps it among the completed frameworks.
    pub(crate) fn teardown(&mut self, id: &str, reason: &str) {
        let Some(mut framework) = self.frameworks.remove(id) else {
            return;
        };
        info!(framework_id = %id, %reason, "tearing down framework");
        let now = Instant::now();
        for offer_id in framework.offers.clone() {
            self.remove_offer(&offer_id, None, now);
            framework.offers.remove(&offer_id);
        }
        let mut agents_with_tasks = HashSet::new();
        let tasks: Vec<_> = framework.tasks.drain().map(|(_, t)| t).collect();
        for mut task in tasks {
            let agent_id = task
                .agent_id
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_default();
            if let Some(agent) = self.agents.get_mut(&agent_id) {
                agent.tasks.remove(&(
                    id.to_string(),
                    task.task_id
                        .as_ref()
                        .map(|t| t.value.clone())
                        .unwrap_or_default(),
                ));
                if !is_terminal(task.state()) {
                    agent.used.subtract(&task_resources(&task));
                }
                agents_with_tasks.insert(agent_id.clone());
            }
            if !is_terminal(task.state()) {
                task.set_state(TaskState::TaskKilled);
                self.metrics.task_terminal(TaskState::TaskKilled);
            }
            framework.complete_task(task, self.config.max_completed_tasks_per_framework);
        }
        for (_, task) in framework.unreachable_tasks.drain() {
            framework.completed_tasks.push_back(task);
        }
        for agent_id in agents_with_tasks {
            if let Some(agent) = self.agents.get(&agent_id) {
                agent.send(MasterMessage {
                    message: Some(master_message::Message::ShutdownFramework(
                        master_message::ShutdownFramework {
                            framework_id: Some(FrameworkId {
                                value: id.to_string(),
                            }),
                        },
                    )),
                });
            }
        }
        self.allocator.remove_framework(id);
        if let Some(conn) = framework.conn.take() {
            let _ = conn.tx.send(Ok(error_event(ErrorReason::Removed, reason)));
            self.framework_conns.remove(&conn.id);
        }
        framework.unregistered_time = Some(now_secs());
        framework.used = Resources::new();
        framework.offered = Resources::new();
        self.completed_frameworks.push_back(framework);
        while self.completed_frameworks.len() > self.config.max_completed_frameworks {
            self.completed_frameworks.pop_front();
        }
        self.allocation_pending = true;
    }

    /// Sends HEARTBEAT to every connected framework.
    pub(super) fn heartbeat_frameworks(&mut self) {
        let heartbeat = Event {
            r#type: event::Type::Heartbeat as i32,
            ..Default::default()
        };
        for framework in self.frameworks.values() {
            framework.send(heartbeat.clone());
        }
    }

    /// Creates a framework known only from an agent's report (master restart).
    pub(super) fn recover_framework(&mut self, info: FrameworkInfo) {
        let Some(id) = info.id.as_ref().map(|i| i.value.clone()) else {
            return;
        };
        if self.frameworks.contains_key(&id) || self.completed_frameworks.iter().any(|f| f.id == id)
        {
            return;
        }
        let roles = roles_of(&info);
        self.allocator
            .add_framework(&id, roles.clone(), Vec::new(), false);
        self.frameworks.insert(
            id,
            Framework::new(info, roles, FrameworkState::Recovered, None),
        );
    }

    /// The role a task of `framework_id` uses.
    pub(crate) fn role_of_task(&self, framework_id: &str, task: &agora_proto::Task) -> String {
        let fallback = self
            .frameworks
            .get(framework_id)
            .map(|f| f.default_role().to_string())
            .unwrap_or_else(|| "*".to_string());
        task_role(task, &fallback)
    }
}

/// An ERROR event; the SDK stops reconnecting when it sees one.
pub(crate) fn error_event(reason: ErrorReason, message: &str) -> Event {
    Event {
        r#type: event::Type::Error as i32,
        error: Some(event::Error {
            message: message.to_string(),
            reason: reason as i32,
        }),
        ..Default::default()
    }
}
