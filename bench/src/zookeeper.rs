//! The ZooKeeper a failover bench runs against: one given with `--zk`, or a
//! standalone server spawned from Debian's package for the run.
//!
//! The spawned server gets a generated `zoo.cfg` (free loopback port, its
//! own data folder under the temp dir, a 200 ms tick so that sessions of a
//! second or two are allowed and expire promptly, sessions up to 60 s) and
//! runs as `java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar
//! QuorumPeerMain zoo.cfg`. It is killed on drop, and its folder removed
//! when stopped. The test suites have their own launcher
//! (`coord/tests/support/zk.rs`) with crash, restart and freeze controls this
//! bench does not need.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Where Debian's `zookeeper` package puts the server; its manifest names
/// every other jar it needs.
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// The class path: the package's configuration folder (log4j) and the jar.
const CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar";
/// The server's entry point (standalone when the config names no peers).
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";
/// How long a spawned server may take to serve.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A ZooKeeper to run the bench against.
pub(crate) enum ZooKeeper {
    /// Given by the caller: `host:port,...` (the connect string of `--zk`).
    External { hosts: String },
    /// Spawned for this run.
    Spawned {
        port: u16,
        dir: PathBuf,
        child: Child,
    },
}

impl ZooKeeper {
    /// The ensemble named by a `zk://hosts/path` URL (the path is ignored:
    /// the bench picks a fresh group folder for every run).
    pub fn external(url: &str) -> anyhow::Result<Self> {
        let parsed = agora_coord::zk::ZkUrl::parse(url).with_context(|| format!("--zk '{url}'"))?;
        if parsed.credentials.is_some() {
            bail!("--zk: credentials are not supported by the bench");
        }
        Ok(ZooKeeper::External {
            hosts: parsed.connect_string(),
        })
    }

    /// Spawns a standalone server on a free port and waits until it serves.
    pub async fn spawn() -> anyhow::Result<Self> {
        if !Path::new(ZOOKEEPER_JAR).exists() {
            bail!(
                "ZooKeeper is not installed ({ZOOKEEPER_JAR} is missing): \
                 apt-get install zookeeper, or pass --zk zk://HOST:PORT of a running one"
            );
        }
        let port = crate::args::free_port().context("finding a port for ZooKeeper")?;
        let dir = crate::target::scratch("zookeeper");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let cfg = format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\n\
             clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n\
             4lw.commands.whitelist=srvr,ruok\nminSessionTimeout=400\nmaxSessionTimeout=60000\n",
            data.display()
        );
        let cfg_path = dir.join("zoo.cfg");
        std::fs::write(&cfg_path, cfg)
            .with_context(|| format!("writing {}", cfg_path.display()))?;
        let log_path = dir.join("zookeeper.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new("java")
            .args(["-Xmx256m", "-Dzookeeper.jmx.log4j.disable=true"])
            .args(["-cp", CLASSPATH, MAIN_CLASS])
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log file")?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context(
                "starting ZooKeeper: cannot run `java` (install a JRE, e.g. apt-get install \
                 default-jre-headless, or pass --zk zk://HOST:PORT of a running ZooKeeper)",
            )?;
        let mut zk = ZooKeeper::Spawned { port, dir, child };
        zk.wait_serving().await?;
        Ok(zk)
    }

    /// `host:port,...` for a `zk://` URL.
    pub fn hosts(&self) -> String {
        match self {
            ZooKeeper::External { hosts } => hosts.clone(),
            ZooKeeper::Spawned { port, .. } => format!("127.0.0.1:{port}"),
        }
    }

    /// Whether the bench started this server.
    pub fn spawned(&self) -> bool {
        matches!(self, ZooKeeper::Spawned { .. })
    }

    async fn wait_serving(&mut self) -> anyhow::Result<()> {
        let ZooKeeper::Spawned { port, dir, child } = self else {
            return Ok(());
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if srvr(*port).await.is_some_and(|r| r.contains("Mode:")) {
                return Ok(());
            }
            let log = || std::fs::read_to_string(dir.join("zookeeper.log")).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                bail!("ZooKeeper exited ({status}); its log:\n{}", tail(&log()));
            }
            if Instant::now() >= deadline {
                bail!(
                    "ZooKeeper did not serve within {START_TIMEOUT:?}; its log:\n{}",
                    tail(&log())
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops a spawned server and removes its folder; leaves an external one alone.
    pub async fn stop(self) {
        if let ZooKeeper::Spawned { dir, mut child, .. } = self {
            if let Err(e) = child.start_kill() {
                tracing::warn!(error = %e, "could not kill ZooKeeper");
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The reply to the `srvr` four-letter word, if the server answers.
async fn srvr(port: u16) -> Option<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream.write_all(b"srvr").await.ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.ok()?;
        Some(reply)
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

/// The last lines of a log, for an error message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
