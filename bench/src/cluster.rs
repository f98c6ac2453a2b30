//! The masters of a failover bench: several `agora master --zk` children
//! electing through one ZooKeeper, the leader among them found through the
//! election group, and the registry they keep there, measured.
//!
//! Every run takes a fresh group folder (`/agora-bench-<pid>-<nanos>`), so
//! runs against a shared ZooKeeper never see each other's masters; the
//! registry lies beside it in `<group>-state`, as `agora master` puts it.
//! With an external ZooKeeper those nodes are left behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_coord::zk::{ZkCoordination, ZkStore};
use agora_coord::{Detector, Store};
use anyhow::{anyhow, bail, Context};
use serde::Serialize;

use crate::failover_args::FailoverBenchArgs;
use crate::metrics::MetricsClient;
use crate::target::{scratch, MemoryReading, RunningMaster};
use crate::zookeeper::ZooKeeper;
use crate::MasterTarget;

/// Where `agora master` keeps the registry inside its store (`registry/layout.rs`).
const REGISTRY_PREFIX: &str = "/agora/registry";
/// Registry reads in flight at once when measuring it.
const READ_BATCH: usize = 512;
/// How often the leader is looked for.
const LEADER_POLL: Duration = Duration::from_millis(10);

/// The registry as ZooKeeper holds it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegistryFigures {
    /// The root folder (`<group>-state`).
    pub root: String,
    /// Keys (znodes holding an entry).
    pub keys: usize,
    /// Of which admitted agents (`.../registry/agents/<id>`).
    pub agent_keys: usize,
    /// Znodes in all under the root: keys and the folders above them.
    pub znodes: usize,
    /// Bytes of data in all the keys.
    pub bytes: u64,
    /// How long listing and reading every key took the bench (one session,
    /// pipelined), as a yardstick for a new leader's registry recovery.
    pub read_seconds: f64,
}

/// Masters, ZooKeeper and the bench's own session with it.
pub(crate) struct Cluster {
    /// `zk://hosts/group` as given to the masters.
    pub url: String,
    /// A description of the ZooKeeper (spawned or given).
    pub zookeeper: String,
    zk: Option<ZooKeeper>,
    coordination: ZkCoordination,
    /// `None` once killed.
    masters: Vec<Option<RunningMaster>>,
    /// `127.0.0.1:port` of each master.
    pub addrs: Vec<String>,
    /// The masters' work folders, removed at the end.
    work: std::path::PathBuf,
}

impl Cluster {
    /// Starts (or finds) ZooKeeper and spawns the masters, waiting until each answers `/health`.
    pub async fn start(args: &FailoverBenchArgs) -> anyhow::Result<Self> {
        let zk = match &args.zk {
            Some(url) => ZooKeeper::external(url)?,
            None => ZooKeeper::spawn().await?,
        };
        let zookeeper = match zk.spawned() {
            true => format!("spawned at {}", zk.hosts()),
            false => format!("given at {}", zk.hosts()),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let group = format!("/agora-bench-{}-{nanos}", std::process::id());
        let url = format!("zk://{}{group}", zk.hosts());
        let coordination = tokio::time::timeout(
            args.timeout,
            ZkCoordination::connect(&url, args.session_timeout),
        )
        .await
        .map_err(|_| {
            anyhow!(
                "no ZooKeeper session with {} within {:?}",
                zk.hosts(),
                args.timeout
            )
        })?
        .with_context(|| format!("connecting to ZooKeeper at {}", zk.hosts()))?;
        let mut cluster = Cluster {
            url,
            zookeeper,
            zk: Some(zk),
            coordination,
            masters: Vec::new(),
            addrs: Vec::new(),
            work: scratch("masters"),
        };
        let work = cluster.work.clone();
        for i in 0..args.masters {
            let port = crate::args::free_port().context("finding a port for a master")?;
            let target = MasterTarget::Spawn {
                program: args.program.clone(),
                args: vec![
                    "master".into(),
                    "--ip".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    port.to_string(),
                    "--work-dir".into(),
                    work.join(format!("m{i}")).display().to_string(),
                    "--zk".into(),
                    cluster.url.clone(),
                    "--zk-session-timeout".into(),
                    format!("{}ms", args.session_timeout.as_millis()),
                ],
            };
            let master = RunningMaster::start(&target, args.timeout)
                .await
                .with_context(|| format!("starting master {i}"))?;
            cluster.addrs.push(master.addr.clone());
            cluster.masters.push(Some(master));
        }
        Ok(cluster)
    }

    /// A detector of the leader on the bench's ZooKeeper session.
    pub fn detector(&self) -> Arc<dyn Detector> {
        Arc::new(self.coordination.detector())
    }

    /// The master the election group names as leader now, if it is one of
    /// ours and other than `not`.
    pub async fn elected(&self, not: Option<usize>) -> Option<usize> {
        let info = self.coordination.detector().leader_info().await.ok()??;
        let addr = info.host_port()?;
        let index = self.addrs.iter().position(|a| *a == addr)?;
        (Some(index) != not).then_some(index)
    }

    /// Waits until the group names a leader other than `not`; returns it and when.
    pub async fn wait_elected(
        &self,
        not: Option<usize>,
        timeout: Duration,
    ) -> anyhow::Result<(usize, Instant)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(index) = self.elected(not).await {
                return Ok((index, Instant::now()));
            }
            if Instant::now() >= deadline {
                bail!("no new leader in the ZooKeeper group within {timeout:?}");
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    /// Waits until master `index` serves as leader (`master/elected` is 1:
    /// registry recovered, actor running); returns when.
    pub async fn wait_leading(&self, index: usize, timeout: Duration) -> anyhow::Result<Instant> {
        let http = MetricsClient::new(&self.addrs[index])?;
        http.wait_for("leading", "master/elected", 1.0, timeout)
            .await
    }

    /// Master `index`.
    pub fn master(&mut self, index: usize) -> anyhow::Result<&mut RunningMaster> {
        self.masters
            .get_mut(index)
            .and_then(Option::as_mut)
            .ok_or_else(|| anyhow!("master {index} is not running"))
    }

    /// Fails if a master that should run has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for (i, master) in self.masters.iter_mut().enumerate() {
            if let Some(master) = master {
                master
                    .check_alive()
                    .with_context(|| format!("master {i}"))?;
            }
        }
        Ok(())
    }

    /// SIGKILLs master `index` and reaps it.
    pub async fn kill(&mut self, index: usize) -> anyhow::Result<()> {
        self.master(index)?.kill().await?;
        if let Some(master) = self.masters[index].take() {
            master.stop().await;
        }
        Ok(())
    }

    /// Master `index`'s memory now.
    pub fn memory(&mut self, index: usize) -> Option<MemoryReading> {
        self.master(index).ok()?.memory()
    }

    fn store(&self) -> ZkStore {
        let root = format!("{}-state", self.coordination.group().trim_end_matches('/'));
        ZkStore::new(self.coordination.client().clone(), root)
    }

    /// How many admitted agents the registry holds.
    pub async fn registry_agents(&self) -> anyhow::Result<usize> {
        let keys = self
            .store()
            .list(&format!("{REGISTRY_PREFIX}/agents"))
            .await?;
        Ok(keys.len())
    }

    /// Reads the whole registry back and measures it.
    pub async fn registry(&self) -> anyhow::Result<RegistryFigures> {
        let started = Instant::now();
        let store = self.store();
        let keys = store.list(REGISTRY_PREFIX).await?;
        let mut bytes = 0u64;
        for batch in keys.chunks(READ_BATCH) {
            let values = futures::future::join_all(batch.iter().map(|k| store.get(k))).await;
            for value in values {
                bytes += value?.map_or(0, |v| v.data.len() as u64);
            }
        }
        let mut folders = std::collections::HashSet::new();
        for key in &keys {
            let mut path = key.as_str();
            while let Some((parent, _)) = path.rsplit_once('/') {
                if parent.is_empty() {
                    break;
                }
                folders.insert(parent.to_string());
                path = parent;
            }
        }
        let agents = format!("{REGISTRY_PREFIX}/agents/");
        Ok(RegistryFigures {
            root: format!("{}-state", self.coordination.group()),
            agent_keys: keys.iter().filter(|k| k.starts_with(&agents)).count(),
            keys: keys.len(),
            znodes: keys.len() + folders.len(),
            bytes,
            read_seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Stops every master, then a ZooKeeper the bench started.
    pub async fn stop(self) {
        for master in self.masters.into_iter().flatten() {
            master.stop().await;
        }
        drop(self.coordination);
        let _ = std::fs::remove_dir_all(&self.work);
        if let Some(zk) = self.zk {
            zk.stop().await;
        }
    }
}
