//! Marathon's settings (the `agora marathon` flags), with Marathon's defaults.

use std::net::SocketAddr;
use std::time::Duration;

/// How Marathon runs.
#[derive(Debug, Clone)]
pub struct MarathonConfig {
    /// Where the REST API listens.
    pub http_addr: SocketAddr,
    /// The hostname Marathon advertises (in `/v2/info` and to the leader election).
    pub hostname: String,
    /// The `--master` given (shown in `/v2/info`).
    pub master: String,
    /// The `--zk` given, if any (shown in `/v2/info`).
    pub zk: Option<String>,
    /// The framework name.
    pub framework_name: String,
    /// The role Marathon subscribes with and apps default to.
    pub mesos_role: String,
    /// Seconds the master keeps Marathon's tasks while it is away.
    pub failover_timeout: Duration,
    /// App versions kept per app.
    pub zk_max_versions: usize,
    /// The ZooKeeper session timeout (with `zk`); reported in `/v2/info`.
    pub zk_session_timeout: Duration,
    /// How long a declined offer is not offered again.
    pub decline_offer_duration: Duration,
    /// Most instances launched from one offer.
    pub max_instances_per_offer: usize,
    /// Delay before the first reconciliation after subscribing.
    pub reconciliation_initial_delay: Duration,
    /// Time between reconciliations.
    pub reconciliation_interval: Duration,
    /// A task not running this long after launch is killed.
    pub task_launch_timeout: Duration,
    /// Service ports are assigned from this range.
    pub service_ports: (i64, i64),
    /// How often deployments, backoffs and timeouts are looked at.
    pub tick: Duration,
    /// Whether leadership is elected (HA) or this instance always leads.
    pub ha: bool,
    /// A deployment whose new tasks fail this many times is rolled back and
    /// reported failed (0: never, as Marathon, which retries forever).
    pub deployment_max_task_failures: u32,
    /// How long after it is elected Marathon holds kills for failing its
    /// own health checks (it has not probed everything yet, and a failover
    /// often follows trouble that settles).
    pub health_kill_hold: Duration,
    /// Compress large answers with gzip for clients that accept it (Marathon's `--http_compression`).
    pub http_compression: bool,
}

impl Default for MarathonConfig {
    fn default() -> Self {
        MarathonConfig {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            hostname: "localhost".to_string(),
            master: "127.0.0.1:5050".to_string(),
            zk: None,
            framework_name: "marathon".to_string(),
            mesos_role: "*".to_string(),
            failover_timeout: Duration::from_secs(7 * 24 * 3600),
            zk_max_versions: 50,
            decline_offer_duration: Duration::from_secs(120),
            max_instances_per_offer: 100,
            reconciliation_initial_delay: Duration::from_secs(15),
            reconciliation_interval: Duration::from_secs(600),
            task_launch_timeout: Duration::from_secs(300),
            service_ports: (10000, 20000),
            tick: Duration::from_millis(500),
            ha: false,
            deployment_max_task_failures: 0,
            health_kill_hold: Duration::from_secs(30),
            zk_session_timeout: Duration::from_secs(10),
            http_compression: true,
        }
    }
}

impl MarathonConfig {
    /// The URL of this instance's API.
    pub fn own_url(&self) -> String {
        format!("http://{}:{}", self.hostname, self.http_addr.port())
    }
}
