//! `agora marathon`: the bundled Marathon as its own process.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use agora_coord::zk::{ZkCoordination, ZkDetector, ZkElection};
use agora_coord::{LocalElection, MemoryStore, StaticDetector};
use agora_marathon::{Coordination, MarathonConfig};
use clap::Args;

use crate::flags::{duration, master_detector};

/// Flags of `agora marathon` (Marathon's own names where they exist).
#[derive(Debug, Args)]
pub struct MarathonArgs {
    /// The master: `HOST:PORT` or `zk://host1:2181,host2:2181/agora`.
    #[arg(long, env = "AGORA_MARATHON_MASTER")]
    pub master: String,
    /// ZooKeeper for Marathon's state and leader election, e.g.
    /// `zk://host1:2181/marathon` (default: state in memory, one instance).
    #[arg(long, env = "AGORA_MARATHON_ZK")]
    pub zk: Option<String>,
    /// ZooKeeper session timeout.
    #[arg(long, default_value = "10secs", value_parser = duration, env = "AGORA_MARATHON_ZK_SESSION_TIMEOUT")]
    pub zk_session_timeout: Duration,
    /// App versions kept per app.
    #[arg(long, default_value_t = 50, env = "AGORA_MARATHON_ZK_MAX_VERSIONS")]
    pub zk_max_versions: usize,
    /// Port of the REST API.
    #[arg(long, default_value_t = 8080, env = "AGORA_MARATHON_HTTP_PORT")]
    pub http_port: u16,
    /// Address the REST API binds to.
    #[arg(long, default_value = "0.0.0.0", env = "AGORA_MARATHON_HTTP_ADDRESS")]
    pub http_address: IpAddr,
    /// The name other instances and clients reach this one by (default: the host name).
    #[arg(long, env = "AGORA_MARATHON_HOSTNAME")]
    pub hostname: Option<String>,
    /// The Mesos role Marathon subscribes with; apps default to it.
    #[arg(long, default_value = "*", env = "AGORA_MARATHON_MESOS_ROLE")]
    pub mesos_role: String,
    /// The framework name.
    #[arg(
        long,
        default_value = "marathon",
        env = "AGORA_MARATHON_FRAMEWORK_NAME"
    )]
    pub framework_name: String,
    /// How long the master keeps Marathon's tasks while Marathon is away.
    #[arg(long, default_value = "1weeks", value_parser = duration, env = "AGORA_MARATHON_FAILOVER_TIMEOUT")]
    pub failover_timeout: Duration,
    /// Most instances launched from one offer.
    #[arg(
        long,
        default_value_t = 100,
        env = "AGORA_MARATHON_MAX_INSTANCES_PER_OFFER"
    )]
    pub max_instances_per_offer: usize,
    /// How long a declined offer is not offered again.
    #[arg(long, default_value = "120secs", value_parser = duration, env = "AGORA_MARATHON_DECLINE_OFFER_DURATION")]
    pub decline_offer_duration: Duration,
    /// Time between task reconciliations.
    #[arg(long, default_value = "10mins", value_parser = duration, env = "AGORA_MARATHON_RECONCILIATION_INTERVAL")]
    pub reconciliation_interval: Duration,
    /// Roll back and fail a deployment once its new tasks failed this many
    /// times (0: retry forever, as Marathon does).
    #[arg(
        long,
        default_value_t = 0,
        env = "AGORA_MARATHON_DEPLOYMENT_MAX_TASK_FAILURES"
    )]
    pub deployment_max_task_failures: u32,
    /// How long after it is elected Marathon holds kills for failing its own
    /// (HTTP, HTTPS, TCP) health checks.
    #[arg(long, default_value = "30secs", value_parser = duration, env = "AGORA_MARATHON_HEALTH_KILL_HOLD")]
    pub health_kill_hold: Duration,
    /// Never gzip answers, even for clients that accept it.
    #[arg(long, env = "AGORA_MARATHON_DISABLE_HTTP_COMPRESSION")]
    pub disable_http_compression: bool,
    /// Lowest service port assigned.
    #[arg(long, default_value_t = 10000, env = "AGORA_MARATHON_LOCAL_PORT_MIN")]
    pub local_port_min: u16,
    /// Highest service port assigned.
    #[arg(long, default_value_t = 20000, env = "AGORA_MARATHON_LOCAL_PORT_MAX")]
    pub local_port_max: u16,
}

impl MarathonArgs {
    /// The configuration, or a message naming the bad flag.
    pub fn config(&self) -> anyhow::Result<MarathonConfig> {
        if self.local_port_min >= self.local_port_max {
            anyhow::bail!("--local-port-min: must be below --local-port-max");
        }
        if self.max_instances_per_offer == 0 {
            anyhow::bail!("--max-instances-per-offer: must be at least 1");
        }
        if self.zk_max_versions == 0 {
            anyhow::bail!("--zk-max-versions: must be at least 1");
        }
        let hostname = match &self.hostname {
            Some(h) if h.trim().is_empty() => anyhow::bail!("--hostname: must not be empty"),
            Some(h) => h.clone(),
            None => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".to_string()),
        };
        Ok(MarathonConfig {
            http_addr: SocketAddr::new(self.http_address, self.http_port),
            hostname,
            master: self.master.clone(),
            zk: self.zk.clone(),
            framework_name: self.framework_name.clone(),
            mesos_role: self.mesos_role.clone(),
            failover_timeout: self.failover_timeout,
            zk_max_versions: self.zk_max_versions,
            zk_session_timeout: self.zk_session_timeout,
            decline_offer_duration: self.decline_offer_duration,
            max_instances_per_offer: self.max_instances_per_offer,
            reconciliation_interval: self.reconciliation_interval,
            service_ports: (
                i64::from(self.local_port_min),
                i64::from(self.local_port_max),
            ),
            ha: self.zk.is_some(),
            deployment_max_task_failures: self.deployment_max_task_failures,
            health_kill_hold: self.health_kill_hold,
            http_compression: !self.disable_http_compression,
            ..MarathonConfig::default()
        })
    }

    /// Election, leader detection and state: ZooKeeper with `--zk`, else in memory.
    pub async fn coordination(&self, config: &MarathonConfig) -> anyhow::Result<Coordination> {
        let master = master_detector(&self.master, self.zk_session_timeout).await?;
        let Some(url) = &self.zk else {
            return Ok(Coordination {
                election: Arc::new(LocalElection),
                leader: Arc::new(StaticDetector::new(format!(
                    "{}:{}",
                    config.hostname,
                    config.http_addr.port()
                ))),
                store: Arc::new(MemoryStore::new()),
                master,
            });
        };
        let zk = ZkCoordination::connect(url, self.zk_session_timeout)
            .await
            .map_err(|e| anyhow::anyhow!("--zk: {e}"))?;
        let group = zk.group().trim_end_matches('/').to_string();
        if group.is_empty() {
            anyhow::bail!("--zk: needs a path, e.g. zk://host:2181/marathon");
        }
        let leader_group = format!("{group}/leader");
        Ok(Coordination {
            election: Arc::new(ZkElection::new(zk.client().clone(), leader_group.clone())),
            leader: Arc::new(ZkDetector::new(zk.client().clone(), leader_group)),
            store: Arc::new(agora_coord::zk::ZkStore::new(zk.client().clone(), group)),
            master,
        })
    }
}
