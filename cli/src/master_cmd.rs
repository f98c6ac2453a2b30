//! `agora master`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use agora_coord::zk::ZkCoordination;
use agora_coord::MemoryStore;
use agora_master::config::{parse_quotas, parse_weights, MasterConfig};
use agora_master::Coordination;
use clap::Args;

use crate::flags::duration;

/// Flags of `agora master`.
#[derive(Debug, Args)]
pub struct MasterArgs {
    /// Address to bind (gRPC and HTTP share the port).
    #[arg(long, default_value = "0.0.0.0", env = "AGORA_IP")]
    pub ip: IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 5050, env = "AGORA_PORT")]
    pub port: u16,
    /// IP advertised to agents and frameworks (default: from --ip or the hostname).
    #[arg(long, env = "AGORA_ADVERTISE_IP")]
    pub advertise_ip: Option<IpAddr>,
    /// Hostname advertised (default: the system hostname).
    #[arg(long, env = "AGORA_HOSTNAME")]
    pub hostname: Option<String>,
    /// Directory for the master's files.
    #[arg(long, default_value = "/var/lib/agora/master", env = "AGORA_WORK_DIR")]
    pub work_dir: PathBuf,
    /// How often the allocator runs (e.g. 1secs, 500ms).
    #[arg(long, default_value = "1secs", value_parser = duration, env = "AGORA_ALLOCATION_INTERVAL")]
    pub allocation_interval: Duration,
    /// Rescind offers not answered within this (default: never).
    #[arg(long, value_parser = duration, env = "AGORA_OFFER_TIMEOUT")]
    pub offer_timeout: Option<Duration>,
    /// Role weights, e.g. `web=2,batch=0.5`.
    #[arg(long, default_value = "", env = "AGORA_WEIGHTS")]
    pub weights: String,
    /// Quota guarantees, e.g. `web=cpus:4;mem:4096,batch=cpus:2`.
    #[arg(long, default_value = "", env = "AGORA_QUOTAS")]
    pub quotas: String,
    /// If set, the only roles frameworks may use (comma-separated).
    #[arg(long, env = "AGORA_ROLES")]
    pub roles: Option<String>,
    /// Interval of agent pings; a ping unanswered within it counts as missed.
    #[arg(long, default_value = "15secs", value_parser = duration, env = "AGORA_AGENT_PING_TIMEOUT")]
    pub agent_ping_timeout: Duration,
    /// Missed pings after which an agent is unreachable.
    #[arg(long, default_value_t = 5, env = "AGORA_MAX_AGENT_PING_TIMEOUTS")]
    pub max_agent_ping_timeouts: u32,
    /// ZooKeeper for leader election and the registry, e.g.
    /// `zk://host1:2181,host2:2181/agora` (default: a lone master, registry in memory).
    #[arg(long, env = "AGORA_ZK")]
    pub zk: Option<String>,
    /// ZooKeeper session timeout.
    #[arg(long, default_value = "10secs", value_parser = duration, env = "AGORA_ZK_SESSION_TIMEOUT")]
    pub zk_session_timeout: Duration,
    /// After a failover, agents not reregistered within this become unreachable.
    #[arg(long, default_value = "10mins", value_parser = duration, env = "AGORA_AGENT_REREGISTER_TIMEOUT")]
    pub agent_reregister_timeout: Duration,
}

impl MasterArgs {
    /// How the master coordinates: through ZooKeeper with `--zk`, else alone.
    pub async fn coordination(&self) -> anyhow::Result<Coordination> {
        let Some(url) = &self.zk else {
            return Ok(Coordination::standalone(Arc::new(MemoryStore::new())));
        };
        let zk = ZkCoordination::connect(url, self.zk_session_timeout)
            .await
            .map_err(|e| anyhow::anyhow!("--zk: {e}"))?;
        // Only election nodes may live in the group folder (Mesos tools read
        // its lowest child), so the registry goes beside it.
        let root = match zk.group().trim_end_matches('/') {
            "" => "/agora-state".to_string(),
            group => format!("{group}-state"),
        };
        let store = zk.store(&root).map_err(|e| anyhow::anyhow!("--zk: {e}"))?;
        Ok(Coordination {
            election: Arc::new(zk.election()),
            store: Arc::new(store),
            detector: Arc::new(zk.detector()),
        })
    }

    /// The validated master configuration.
    pub fn into_config(self) -> anyhow::Result<MasterConfig> {
        let mut config = MasterConfig {
            ip: self.ip,
            port: self.port,
            advertise_ip: self.advertise_ip,
            work_dir: self.work_dir,
            allocation_interval: self.allocation_interval,
            offer_timeout: self.offer_timeout,
            weights: parse_weights(&self.weights)?,
            quotas: parse_quotas(&self.quotas)?,
            roles: self.roles.map(|r| {
                r.split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(String::from)
                    .collect()
            }),
            agent_ping_timeout: self.agent_ping_timeout,
            max_agent_ping_timeouts: self.max_agent_ping_timeouts,
            agent_reregister_timeout: self.agent_reregister_timeout,
            ..MasterConfig::default()
        };
        if let Some(hostname) = self.hostname {
            config.hostname = hostname;
        }
        config.validate()?;
        Ok(config)
    }
}
