//! Read-only views of the books: `/master/state` in Mesos' shape, the
//! metrics snapshot, and typed copies for the operator API.

use agora_common::resources::{attribute_text, format_ranges, reservation_role, Resources};
use agora_proto::{Task, TaskState};
use serde_json::{json, Map, Value};

use super::Master;
use crate::books::{Agent, Framework, FrameworkState};

/// The metrics snapshot: Mesos' key names to values, sorted.
pub type MetricsSnapshot = Vec<(String, f64)>;

/// Typed copies of the books for the operator API.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// (info, active, total, used, offered, registered_time) per agent.
    pub agents: Vec<(
        agora_proto::AgentInfo,
        bool,
        Resources,
        Resources,
        Resources,
        f64,
    )>,
    /// (info, active, connected, registered_time) per framework, then completed ones.
    pub frameworks: Vec<(agora_proto::FrameworkInfo, bool, bool, f64)>,
    /// Completed frameworks.
    pub completed_frameworks: Vec<(agora_proto::FrameworkInfo, f64)>,
    /// Tasks that are not completed.
    pub tasks: Vec<Task>,
    /// Unreachable tasks.
    pub unreachable_tasks: Vec<Task>,
    /// Completed tasks.
    pub completed_tasks: Vec<Task>,
}

/// Resources in Mesos' JSON: `{"cpus": 4, "mem": 1024, "disk": 0, "gpus": 0, "ports": "[31000-32000]"}`.
pub fn resources_json(r: &Resources) -> Value {
    let mut m = Map::new();
    for name in ["cpus", "mem", "disk", "gpus"] {
        m.insert(name.into(), json!(r.scalar(name)));
    }
    for (name, value) in r.scalars() {
        m.entry(name).or_insert(json!(value));
    }
    for res in r.iter() {
        if res.ranges.is_some() {
            m.insert(res.name.clone(), json!(format_ranges(&r.ranges(&res.name))));
        } else if let Some(set) = &res.set {
            m.insert(
                res.name.clone(),
                json!(format!("{{{}}}", set.item.join(","))),
            );
        }
    }
    Value::Object(m)
}

fn reserved_json(r: &Resources) -> Value {
    let mut by_role: std::collections::BTreeMap<String, Resources> = Default::default();
    for res in r.reserved().iter() {
        by_role
            .entry(reservation_role(res).to_string())
            .or_default()
            .add_resource(res.clone());
    }
    Value::Object(
        by_role
            .into_iter()
            .map(|(role, r)| (role, resources_json(&r)))
            .collect(),
    )
}

/// A `NetworkInfo` in Mesos' JSON (what Mesos-DNS reads for addresses).
fn network_info_json(n: &agora_proto::NetworkInfo) -> Value {
    let mut v = json!({
        "ip_addresses": n
            .ip_addresses
            .iter()
            .map(|ip| json!({"ip_address": ip.ip_address}))
            .collect::<Vec<_>>(),
    });
    if let Some(name) = &n.name {
        v["name"] = json!(name);
    }
    if !n.port_mappings.is_empty() {
        v["port_mappings"] = n
            .port_mappings
            .iter()
            .map(|p| port_mapping_json(p.host_port, p.container_port, &p.protocol))
            .collect();
    }
    v
}

/// The network infos of a container or a status, as a JSON array.
fn network_infos_json(infos: &[agora_proto::NetworkInfo]) -> Value {
    infos.iter().map(network_info_json).collect()
}

fn port_mapping_json(host_port: u32, container_port: u32, protocol: &Option<String>) -> Value {
    json!({"host_port": host_port, "container_port": container_port, "protocol": protocol})
}

/// A task's `ContainerInfo` in Mesos' JSON.
fn container_json(c: &agora_proto::ContainerInfo) -> Value {
    let mut v = json!({"type": c.r#type().as_str_name()});
    if let Some(d) = &c.docker {
        v["docker"] = json!({
            "image": d.image,
            "network": d.network().as_str_name(),
            "port_mappings": d
                .port_mappings
                .iter()
                .map(|p| port_mapping_json(p.host_port, p.container_port, &p.protocol))
                .collect::<Vec<_>>(),
            "privileged": d.privileged.unwrap_or(false),
            "force_pull_image": d.force_pull_image.unwrap_or(false),
        });
    }
    if !c.network_infos.is_empty() {
        v["network_infos"] = network_infos_json(&c.network_infos);
    }
    v
}

fn task_json(task: &Task, framework_role: &str) -> Value {
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|s| {
            let mut v = json!({
                "state": s.state().as_str_name(),
                "timestamp": s.timestamp.unwrap_or(0.0),
            });
            if let Some(h) = s.healthy {
                v["healthy"] = json!(h);
            }
            if let Some(cs) = &s.container_status {
                let mut c = json!({});
                if let Some(id) = &cs.container_id {
                    c["container_id"] = json!({"value": id.value});
                }
                if let Some(pid) = cs.executor_pid {
                    c["executor_pid"] = json!(pid);
                }
                if !cs.network_infos.is_empty() {
                    c["network_infos"] = network_infos_json(&cs.network_infos);
                }
                v["container_status"] = c;
            }
            v
        })
        .collect();
    let resources = Resources::from_vec(task.resources.iter().cloned());
    let id = task
        .task_id
        .as_ref()
        .map(|t| t.value.as_str())
        .unwrap_or("");
    let agent = task
        .agent_id
        .as_ref()
        .map(|a| a.value.as_str())
        .unwrap_or("");
    let mut v = json!({
        "id": id,
        "name": task.name,
        "framework_id": task.framework_id.as_ref().map(|f| f.value.as_str()).unwrap_or(""),
        "executor_id": task.executor_id.as_ref().map(|e| e.value.as_str()).unwrap_or(""),
        "slave_id": agent,
        "agent_id": agent,
        "state": task.state().as_str_name(),
        "resources": resources_json(&resources),
        "role": crate::books::task_role(task, framework_role),
        "statuses": statuses,
    });
    if let Some(user) = &task.user {
        v["user"] = json!(user);
    }
    if let Some(container) = &task.container {
        v["container"] = container_json(container);
    }
    if let Some(labels) = &task.labels {
        v["labels"] = json!(labels
            .labels
            .iter()
            .map(|l| json!({"key": l.key, "value": l.value.clone().unwrap_or_default()}))
            .collect::<Vec<_>>());
    }
    if let Some(d) = &task.discovery {
        let ports: Vec<Value> = d
            .ports
            .iter()
            .flat_map(|p| p.ports.iter())
            .map(|p| json!({"number": p.number, "name": p.name, "protocol": p.protocol}))
            .collect();
        v["discovery"] = json!({
            "visibility": d.visibility().as_str_name(),
            "name": d.name,
            "ports": {"ports": ports},
        });
    }
    v
}

impl Master {
    fn pid(&self) -> String {
        self.info.pid.clone().unwrap_or_default()
    }

    fn leader_info_json(&self) -> Value {
        let address = self.info.address.clone().unwrap_or_default();
        json!({
            "id": self.info.id,
            "pid": self.pid(),
            "port": self.info.port,
            "ip": self.info.ip,
            "hostname": self.info.hostname,
            "version": self.info.version,
            "address": {
                "hostname": address.hostname,
                "ip": address.ip,
                "port": address.port,
            },
        })
    }

    fn agent_json(&self, agent: &Agent) -> Value {
        let attributes: Map<String, Value> = agent
            .info
            .attributes
            .iter()
            .map(|a| {
                let value = match a.scalar {
                    Some(s) => json!(s.value),
                    None => json!(attribute_text(a)),
                };
                (a.name.clone(), value)
            })
            .collect();
        let unreserved = agent.total.unreserved();
        let mut v = json!({
            "id": agent.id,
            "pid": agent.pid(),
            "hostname": agent.info.hostname,
            "port": agent.info.port.unwrap_or(5051),
            "registered_time": agent.registered_time,
            "resources": resources_json(&agent.total),
            "used_resources": resources_json(&agent.used),
            "offered_resources": resources_json(&agent.offered),
            "reserved_resources": reserved_json(&agent.total),
            "unreserved_resources": resources_json(&unreserved),
            "attributes": attributes,
            "active": agent.is_active(),
            "version": agent.version,
            "capabilities": [],
        });
        if let Some(t) = agent.reregistered_time {
            v["reregistered_time"] = json!(t);
        }
        v
    }

    fn framework_json(&self, f: &Framework) -> Value {
        let role = f.default_role().to_string();
        let tasks: Vec<Value> = f.tasks.values().map(|t| task_json(t, &role)).collect();
        let unreachable: Vec<Value> = f
            .unreachable_tasks
            .values()
            .map(|t| task_json(t, &role))
            .collect();
        let completed: Vec<Value> = f
            .completed_tasks
            .iter()
            .map(|t| task_json(t, &role))
            .collect();
        let offers: Vec<Value> = f
            .offers
            .iter()
            .filter_map(|id| self.offers.get(id).map(|o| (id, o)))
            .map(|(id, o)| {
                json!({
                    "id": id,
                    "framework_id": o.framework_id,
                    "slave_id": o.agent_id,
                    "resources": resources_json(&o.resources),
                    "allocation_info": {"role": o.role},
                })
            })
            .collect();
        let mut total = f.used.clone();
        total.add(&f.offered);
        let capabilities: Vec<&str> = f
            .info
            .capabilities
            .iter()
            .map(|c| c.r#type().as_str_name())
            .collect();
        let mut v = json!({
            "id": f.id,
            "name": f.info.name,
            "user": f.info.user,
            "hostname": f.info.hostname.clone().unwrap_or_default(),
            "webui_url": f.info.webui_url.clone().unwrap_or_default(),
            "failover_timeout": f.info.failover_timeout.unwrap_or(0.0),
            "checkpoint": f.info.checkpoint.unwrap_or(false),
            "role": role,
            "roles": f.roles,
            "capabilities": capabilities,
            "active": f.is_connected(),
            "connected": f.is_connected(),
            "recovered": matches!(f.state, FrameworkState::Recovered),
            "registered_time": f.registered_time,
            "unregistered_time": f.unregistered_time.unwrap_or(0.0),
            "resources": resources_json(&total),
            "used_resources": resources_json(&f.used),
            "offered_resources": resources_json(&f.offered),
            "tasks": tasks,
            "unreachable_tasks": unreachable,
            "completed_tasks": completed,
            "offers": offers,
            "executors": [],
        });
        if let Some(t) = f.reregistered_time {
            v["reregistered_time"] = json!(t);
        }
        if let Some(p) = &f.info.principal {
            v["principal"] = json!(p);
        }
        v
    }

    /// `/master/state` in Mesos' shape.
    pub(crate) fn state_json(&self) -> Value {
        let active = self.agents.values().filter(|a| a.is_active()).count();
        let agents: Vec<Value> = self.agents.values().map(|a| self.agent_json(a)).collect();
        let frameworks: Vec<Value> = self
            .frameworks
            .values()
            .map(|f| self.framework_json(f))
            .collect();
        let completed: Vec<Value> = self
            .completed_frameworks
            .iter()
            .map(|f| self.framework_json(f))
            .collect();
        json!({
            "version": agora_common::build::MESOS_API_VERSION,
            "git_sha": agora_common::build::git_sha(),
            "git_tag": agora_common::build::git_tag(),
            "build_date": "",
            "start_time": self.start_time,
            "elected_time": self.start_time,
            "id": self.info.id,
            "pid": self.pid(),
            "hostname": self.info.hostname,
            "leader": self.pid(),
            "leader_info": self.leader_info_json(),
            "activated_slaves": active,
            "deactivated_slaves": self.agents.len() - active,
            "unreachable_slaves": self.unreachable_agents.len(),
            "flags": {
                "allocation_interval": format!("{}secs", self.config.allocation_interval.as_secs_f64()),
                "hostname": self.config.hostname,
                "port": self.info.port.to_string(),
                "work_dir": self.config.work_dir.display().to_string(),
            },
            "slaves": agents,
            "recovered_slaves": self
                .recovered_agents
                .iter()
                .map(|(id, info)| json!({"id": id, "hostname": info.hostname, "port": info.port.unwrap_or(5051)}))
                .collect::<Vec<_>>(),
            "frameworks": frameworks,
            "completed_frameworks": completed,
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        })
    }

    /// `/metrics/snapshot` with Mesos' key names.
    pub(crate) fn metrics_snapshot(&self) -> MetricsSnapshot {
        let mut total = Resources::new();
        let mut used = Resources::new();
        for agent in self.agents.values().filter(|a| a.is_active()) {
            total.add(&agent.total);
            used.add(&agent.used);
        }
        let mut by_state = std::collections::HashMap::<TaskState, f64>::new();
        for f in self.frameworks.values() {
            for t in f.tasks.values() {
                *by_state.entry(t.state()).or_default() += 1.0;
            }
        }
        let count = |s: TaskState| by_state.get(&s).copied().unwrap_or(0.0);
        let unreachable_tasks: usize = self
            .frameworks
            .values()
            .map(|f| f.unreachable_tasks.len())
            .sum();
        let active_agents = self.agents.values().filter(|a| a.is_active()).count();
        let connected_frameworks = self
            .frameworks
            .values()
            .filter(|f| f.is_connected())
            .count();
        let m = &self.metrics;
        let mut out: Vec<(String, f64)> = vec![
            ("master/elected".into(), 1.0),
            (
                "master/uptime_secs".into(),
                self.started.elapsed().as_secs_f64(),
            ),
            ("master/slaves_active".into(), active_agents as f64),
            (
                "master/slaves_inactive".into(),
                (self.agents.len() - active_agents) as f64,
            ),
            (
                "master/slaves_connected".into(),
                self.agents.values().filter(|a| a.conn.is_some()).count() as f64,
            ),
            (
                "master/slaves_disconnected".into(),
                self.agents.values().filter(|a| a.conn.is_none()).count() as f64,
            ),
            (
                "master/slaves_unreachable".into(),
                self.unreachable_agents.len() as f64,
            ),
            (
                "master/slave_registrations".into(),
                m.agent_registrations as f64,
            ),
            (
                "master/slave_reregistrations".into(),
                m.agent_reregistrations as f64,
            ),
            ("master/slave_removals".into(), m.agent_removals as f64),
            (
                "master/frameworks_active".into(),
                connected_frameworks as f64,
            ),
            (
                "master/frameworks_inactive".into(),
                (self.frameworks.len() - connected_frameworks) as f64,
            ),
            (
                "master/frameworks_connected".into(),
                connected_frameworks as f64,
            ),
            (
                "master/frameworks_disconnected".into(),
                (self.frameworks.len() - connected_frameworks) as f64,
            ),
            ("master/outstanding_offers".into(), self.offers.len() as f64),
            ("master/tasks_staging".into(), count(TaskState::TaskStaging)),
            (
                "master/tasks_starting".into(),
                count(TaskState::TaskStarting),
            ),
            ("master/tasks_running".into(), count(TaskState::TaskRunning)),
            ("master/tasks_killing".into(), count(TaskState::TaskKilling)),
            ("master/tasks_unreachable".into(), unreachable_tasks as f64),
            ("master/tasks_finished".into(), m.tasks_finished as f64),
            ("master/tasks_failed".into(), m.tasks_failed as f64),
            ("master/tasks_killed".into(), m.tasks_killed as f64),
            ("master/tasks_lost".into(), m.tasks_lost as f64),
            ("master/tasks_error".into(), m.tasks_error as f64),
            ("master/tasks_dropped".into(), m.tasks_dropped as f64),
            ("master/tasks_gone".into(), m.tasks_gone as f64),
            ("master/tasks_launched".into(), m.tasks_launched as f64),
            ("master/messages_scheduler_calls".into(), m.calls as f64),
            (
                "master/invalid_scheduler_calls".into(),
                m.invalid_calls as f64,
            ),
            (
                "master/valid_status_updates".into(),
                m.valid_status_updates as f64,
            ),
            (
                "master/invalid_status_updates".into(),
                m.invalid_status_updates as f64,
            ),
            ("master/offers_sent".into(), m.offers_sent as f64),
            ("master/offers_rescinded".into(), m.offers_rescinded as f64),
            (
                "allocator/mesos/allocation_runs".into(),
                m.allocation_runs as f64,
            ),
        ];
        for name in ["cpus", "mem", "disk", "gpus"] {
            let t = total.scalar(name);
            let u = used.scalar(name);
            out.push((format!("master/{name}_total"), t));
            out.push((format!("master/{name}_used"), u));
            out.push((
                format!("master/{name}_percent"),
                if t > 0.0 { u / t } else { 0.0 },
            ));
        }
        if let Some((p50, p90, p99, max)) = m.allocation_percentiles() {
            out.push(("allocator/mesos/allocation_run_ms/p50".into(), p50));
            out.push(("allocator/mesos/allocation_run_ms/p90".into(), p90));
            out.push(("allocator/mesos/allocation_run_ms/p99".into(), p99));
            out.push(("allocator/mesos/allocation_run_ms/max".into(), max));
            out.push((
                "allocator/mesos/allocation_run_ms/count".into(),
                m.allocation_run_ms.len() as f64,
            ));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Typed copies for the operator API.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        for a in self.agents.values() {
            s.agents.push((
                a.info.clone(),
                a.is_active(),
                a.total.clone(),
                a.used.clone(),
                a.offered.clone(),
                a.registered_time,
            ));
        }
        for f in self.frameworks.values() {
            s.frameworks.push((
                f.info.clone(),
                f.is_connected(),
                f.conn.is_some(),
                f.registered_time,
            ));
            s.tasks.extend(f.tasks.values().cloned());
            s.unreachable_tasks
                .extend(f.unreachable_tasks.values().cloned());
            s.completed_tasks.extend(f.completed_tasks.iter().cloned());
        }
        for f in &self.completed_frameworks {
            s.completed_frameworks
                .push((f.info.clone(), f.registered_time));
            s.completed_tasks.extend(f.completed_tasks.iter().cloned());
        }
        s
    }
}
