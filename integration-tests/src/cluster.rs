//! A master and agents on loopback, each stoppable on its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agora_agent::{AgentConfig, AgentHandle};
use agora_common::shutdown::{self, ShutdownTrigger};
use agora_coord::MemoryStore;
use agora_master::{MasterConfig, MasterHandle};
use agora_sdk::SchedulerConfig;
use serde_json::Value;

use crate::FaultProxy;

/// How the cluster is set up.
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    agents: usize,
    agent_resources: String,
    proxied: bool,
    master: MasterConfig,
    status_update_retry: Duration,
    agent_attributes: Vec<String>,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            agents: 1,
            agent_resources: "cpus:4;mem:4096;disk:10000;ports:[31000-31100]".into(),
            proxied: false,
            master: MasterConfig {
                ip: [127, 0, 0, 1].into(),
                port: 0,
                allocation_interval: Duration::from_millis(100),
                agent_ping_timeout: Duration::from_millis(300),
                max_agent_ping_timeouts: 3,
                ..MasterConfig::default()
            },
            status_update_retry: Duration::from_millis(500),
            agent_attributes: Vec::new(),
        }
    }
}

impl ClusterBuilder {
    /// How many agents to start.
    pub fn agents(mut self, n: usize) -> Self {
        self.agents = n;
        self
    }

    /// Each agent's resources in Mesos syntax.
    pub fn agent_resources(mut self, r: &str) -> Self {
        self.agent_resources = r.into();
        self
    }

    /// Attributes of agent `i` in Mesos syntax (`rack:a`), one entry per agent.
    pub fn agent_attributes(mut self, attributes: &[&str]) -> Self {
        self.agent_attributes = attributes.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Agents dial the master through a [`FaultProxy`] each.
    pub fn proxied(mut self) -> Self {
        self.proxied = true;
        self
    }

    /// Adjusts the master's configuration.
    pub fn master(mut self, f: impl FnOnce(&mut MasterConfig)) -> Self {
        f(&mut self.master);
        self
    }

    /// Starts the cluster and waits until every agent is registered.
    pub async fn start(self) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cluster = Cluster {
            master: None,
            master_addr: "127.0.0.1:0".parse().expect("address"),
            agents: Vec::new(),
            http: reqwest::Client::new(),
            builder: self.clone(),
            store: Arc::new(MemoryStore::new()),
            dir,
        };
        cluster.start_master().await;
        for _ in 0..self.agents {
            cluster.add_agent().await;
        }
        cluster.wait_for_active_agents(self.agents).await;
        cluster
    }
}

struct RunningMaster {
    trigger: ShutdownTrigger,
    handle: MasterHandle,
}

/// An agent of the cluster.
pub struct RunningAgent {
    trigger: ShutdownTrigger,
    handle: Option<AgentHandle>,
    /// The agent's link to the master, when the cluster is proxied.
    pub proxy: Option<FaultProxy>,
}

/// A running cluster; stops everything when dropped.
pub struct Cluster {
    master: Option<RunningMaster>,
    master_addr: SocketAddr,
    agents: Vec<RunningAgent>,
    http: reqwest::Client,
    builder: ClusterBuilder,
    /// The coordination store, shared by successive masters like ZooKeeper would be.
    store: Arc<MemoryStore>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// A builder with one agent and fast timers.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    async fn start_master(&mut self) {
        let (trigger, shutdown) = shutdown::channel();
        let mut config = self.builder.master.clone();
        config.work_dir = self.dir.path().join("master");
        if self.master_addr.port() != 0 {
            config.port = self.master_addr.port();
        }
        let handle = agora_master::start_with_store(config, self.store.clone(), shutdown)
            .await
            .expect("master starts");
        handle.wait_until_leading().await;
        self.master_addr = handle.addr();
        self.master = Some(RunningMaster { trigger, handle });
    }

    /// The master's `host:port`.
    pub fn master_addr(&self) -> String {
        self.master_addr.to_string()
    }

    /// A framework configuration pointing at this cluster's master.
    pub fn scheduler_config(&self, name: &str) -> SchedulerConfig {
        SchedulerConfig::new(self.master_addr(), name)
            .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500))
    }

    /// Starts one more agent; returns its index.
    pub async fn add_agent(&mut self) -> usize {
        let index = self.agents.len();
        let proxy = if self.builder.proxied {
            Some(FaultProxy::start(self.master_addr).await.expect("proxy"))
        } else {
            None
        };
        let master = proxy
            .as_ref()
            .map(|p| p.addr().to_string())
            .unwrap_or_else(|| self.master_addr());
        let mut config =
            AgentConfig::with_master_address(master, self.dir.path().join(format!("agent{index}")));
        config.ip = [127, 0, 0, 1].into();
        config.port = 0;
        config.resources = Some(self.builder.agent_resources.clone());
        config.attributes = self.builder.agent_attributes.get(index).cloned();
        config.status_update_retry_interval = self.builder.status_update_retry;
        config.master_ping_timeout = Duration::from_secs(3);
        config.executor_shutdown_grace_period = Duration::from_secs(1);
        let (trigger, shutdown) = shutdown::channel();
        let handle = agora_agent::start(config, shutdown)
            .await
            .expect("agent starts");
        self.agents.push(RunningAgent {
            trigger,
            handle: Some(handle),
            proxy,
        });
        index
    }

    /// The agent at `index`.
    pub fn agent(&self, index: usize) -> &RunningAgent {
        &self.agents[index]
    }

    /// The HTTP address of agent `index`.
    pub fn agent_http(&self, index: usize) -> SocketAddr {
        self.agents[index]
            .handle
            .as_ref()
            .expect("agent running")
            .http_addr()
    }

    /// Stops agent `index` (its tasks are killed, its stream closes).
    pub async fn stop_agent(&mut self, index: usize) {
        let agent = &mut self.agents[index];
        agent.trigger.fire();
        if let Some(handle) = agent.handle.take() {
            let _ = handle.join().await;
        }
    }

    /// Stops the master and starts a new one on the same port with empty books.
    pub async fn restart_master(&mut self) {
        if let Some(master) = self.master.take() {
            master.trigger.fire();
            master.handle.join().await;
        }
        self.start_master().await;
    }

    /// GET a JSON document from the master.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(format!("http://{}{path}", self.master_addr))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }

    /// The registry as the masters stored it.
    pub async fn registry(&self) -> agora_proto::Registry {
        agora_master::registry::registrar::recover(self.store.as_ref())
            .await
            .expect("registry")
            .0
    }

    /// `/master/state`.
    pub async fn state(&self) -> Value {
        self.get_json("/master/state").await
    }

    /// `/metrics/snapshot`.
    pub async fn metrics(&self) -> Value {
        self.get_json("/metrics/snapshot").await
    }

    /// The HTTP client tests may reuse.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Waits until `n` agents are active in `/master/state`.
    pub async fn wait_for_active_agents(&self, n: usize) {
        crate::assert_eventually!(
            Duration::from_secs(20),
            self.state().await["activated_slaves"].as_u64() == Some(n as u64),
            "{n} agents did not become active"
        );
    }
}

impl Cluster {
    /// Stops every agent (killing their tasks) and the master, and waits.
    pub async fn stop(mut self) {
        for agent in &mut self.agents {
            agent.trigger.fire();
            if let Some(handle) = agent.handle.take() {
                let _ = handle.join().await;
            }
        }
        if let Some(master) = self.master.take() {
            master.trigger.fire();
            master.handle.join().await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for agent in &self.agents {
            agent.trigger.fire();
        }
        if let Some(master) = &self.master {
            master.trigger.fire();
        }
    }
}
