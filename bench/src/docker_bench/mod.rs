//! `agora bench docker`: Docker containers through Agora beside the
//! engine's own ways of starting them, on the same engine and image, in one
//! run.
//!
//! Everything Agora runs is a real process spawned from the bench's program:
//! `agora master`, ONE `agora agent` (Mesos and Docker containerizers) and
//! `agora marathon`, driven through Marathon's REST API as a user would.
//! The image is a busybox imported for the run ([`ensure_busybox_image`]);
//! every container runs `sleep 3600`. Phases:
//!
//! 1. **one `docker run -d` at a time**, each timed (the CLI, as a user),
//!    and one create + start through the engine's API at a time (the floor
//!    under any way of starting a container);
//! 2. **N by `docker run -d` in a shell loop**;
//! 3. **N by Swarm mode**: a one-node swarm made for the run, `docker service
//!    create --no-resolve-image --replicas N`, until N run; the swarm is
//!    left afterwards (skipped if the engine is in a swarm already);
//! 4. **N through Agora**: `POST /v2/apps` with `instances: N` → N tasks
//!    TASK_RUNNING in `GET /v2/apps/{id}`; the agent's and its shims' memory
//!    with N running; `DELETE` → every container gone;
//! 5. **one at a time through Agora**: an app scaled up by one, each step
//!    timed until the new task runs;
//! 6. the agent stops (SIGTERM) and the bench counts (and removes) any
//!    container of it left.
//!
//! The peers run first, before Agora's processes exist, so neither
//! competes with the other for the two cores. The bench reports figures
//! and asserts none.

mod image;
mod peers;
mod report;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::process::Command;

pub use image::ensure_busybox_image;
pub use report::{BurstFigures, DockerBenchReport, DockerMemory, SerialFigures};

use crate::agent_bench::{procs, LatencyFigures};
use crate::args::{free_port, MasterTarget};
use crate::metrics::MetricsClient;
use crate::spawned::Spawned;
use crate::target::RunningMaster;

/// The image every container of the bench runs.
pub const IMAGE: &str = "agora-bench/busybox:1";
/// What it runs.
pub const COMMAND: &str = "sleep 3600";
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// Each task's resources: Docker's floor for memory is Mesos' 32 MB.
const TASK_CPUS: f64 = 0.01;
const TASK_MEM: f64 = 32.0;

/// The parameters of a Docker bench.
#[derive(Debug, Clone)]
pub struct DockerBenchArgs {
    /// Containers started at once, each way.
    pub containers: usize,
    /// Containers then started one at a time, each way.
    pub serial: usize,
    /// Run the Swarm mode phase.
    pub swarm: bool,
    /// The `agora` binary run as master, agent (and shims) and Marathon.
    pub program: PathBuf,
    /// The engine's socket.
    pub socket: PathBuf,
    /// Scratch directory; removed at the end.
    pub work_dir: PathBuf,
    /// Give up on a phase after this long.
    pub timeout: Duration,
}

impl DockerBenchArgs {
    /// `containers` containers, the rest by default, scratch under `work_dir`.
    pub fn new(containers: usize, program: PathBuf, work_dir: PathBuf) -> Self {
        DockerBenchArgs {
            containers,
            serial: 20,
            swarm: true,
            program,
            socket: PathBuf::from("/var/run/docker.sock"),
            work_dir,
            timeout: Duration::from_secs(300),
        }
    }
}

/// Runs the bench; containers it made are removed whatever the outcome.
pub async fn run_docker_bench(args: DockerBenchArgs) -> anyhow::Result<DockerBenchReport> {
    if args.containers == 0 || args.serial == 0 {
        bail!("--containers and --serial must be at least 1");
    }
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("creating {}", args.work_dir.display()))?;
    let docker = bollard::Docker::connect_with_unix(
        &args.socket.display().to_string(),
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .context("connecting to the Docker engine")?
    .negotiate_version()
    .await
    .with_context(|| {
        format!(
            "the Docker engine at {} does not answer",
            args.socket.display()
        )
    })?;
    let engine = docker
        .version()
        .await
        .context("asking the engine's version")?
        .version
        .unwrap_or_default();
    ensure_busybox_image(&docker, IMAGE, &[]).await?;
    peers::remove_all(&docker).await?;
    let result = phases(&args, &docker, engine).await;
    peers::remove_all(&docker).await?;
    // An aborted run may leave the agent's containers too.
    if let Ok(dir) = std::fs::canonicalize(args.work_dir.join("agent")) {
        peers::remove_matching(&docker, agent_label(&dir)).await?;
    }
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&args.work_dir);
    }
    result
}

async fn phases(
    args: &DockerBenchArgs,
    docker: &bollard::Docker,
    engine: String,
) -> anyhow::Result<DockerBenchReport> {
    let n = args.containers;
    let command: Vec<&str> = COMMAND.split(' ').collect();
    let ours = || HashMap::from([("name".to_string(), vec![peers::PREFIX.to_string()])]);

    // 1.-3. The peers.
    let singles = peers::single_runs(args.serial, IMAGE, &command).await?;
    peers::remove_all(docker).await?;
    let api = peers::api_runs(docker, args.serial, IMAGE, &command).await?;
    peers::remove_all(docker).await?;
    let run_loop = peers::run_loop(n, IMAGE, COMMAND).await?;
    peers::wait_for(docker, &ours(), n, true, args.timeout).await?;
    peers::remove_all(docker).await?;
    let swarm = if args.swarm {
        peers::swarm(docker, n, IMAGE, &command, args.timeout).await?
    } else {
        None
    };

    // 4.-5. Agora.
    let agora = Agora::start(args).await?;
    let label = agora.label()?;
    let idle = procs::memory(agora.agent.pid())
        .context("reading the agent's memory")?
        .reading();
    let burst = agora.start_app("/bench/burst", n).await?;
    peers::wait_for(docker, &label, n, true, args.timeout).await?;
    let busy = procs::memory(agora.agent.pid())
        .context("reading the agent's memory")?
        .reading();
    let shims = crate::agent_bench::shim_figures(&args.work_dir.join("agent"));
    let started = Instant::now();
    agora.delete_app("/bench/burst").await?;
    peers::wait_for(docker, &label, 0, false, args.timeout).await?;
    let teardown = started.elapsed();
    let serial = agora.scale_one_by_one("/bench/serial", args.serial).await?;
    agora.delete_app("/bench/serial").await?;
    peers::wait_for(docker, &label, 0, false, args.timeout).await?;

    // 6. Stop.
    agora.stop().await?;
    let leftover_containers = peers::count(docker, &label, false).await?;

    let quantiles = |samples: &[Duration]| LatencyFigures {
        p50_ms: procs::quantile_ms(samples, 0.5),
        p99_ms: procs::quantile_ms(samples, 0.99),
        max_ms: procs::quantile_ms(samples, 1.0),
    };
    let docker_run = quantiles(&singles);
    let engine_api = quantiles(&api);
    let agora_serial = quantiles(&serial);
    let swarm_secs = swarm.map(|s| s.all_running.as_secs_f64());
    Ok(DockerBenchReport {
        engine,
        image: IMAGE.into(),
        command: COMMAND.into(),
        burst: BurstFigures {
            containers: n,
            agora_secs: burst.as_secs_f64(),
            docker_run_loop_secs: run_loop.as_secs_f64(),
            swarm_secs,
            agora_vs_docker_run: burst.as_secs_f64() / run_loop.as_secs_f64(),
            agora_vs_swarm: swarm_secs.map(|s| burst.as_secs_f64() / s),
            agora_teardown_secs: teardown.as_secs_f64(),
        },
        serial: SerialFigures {
            containers: args.serial,
            docker_run,
            engine_api,
            agora: agora_serial,
            p50_overhead_ms: agora_serial.p50_ms - docker_run.p50_ms,
            p50_overhead_vs_api_ms: agora_serial.p50_ms - engine_api.p50_ms,
        },
        memory: DockerMemory {
            agent_idle: idle,
            agent_busy: busy,
            agent_kb_per_container: (busy.rss_kb as f64 - idle.rss_kb as f64) / n as f64,
            shims,
        },
        leftover_containers,
    })
}

/// Agora's processes and a client of its Marathon.
struct Agora {
    master: RunningMaster,
    agent: Spawned,
    marathon: Spawned,
    work_dir: PathBuf,
    url: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl Agora {
    async fn start(args: &DockerBenchArgs) -> anyhow::Result<Agora> {
        let master_port = free_port()?;
        let target = MasterTarget::spawn_agora(
            args.program.clone(),
            master_port,
            &args.work_dir.join("master"),
        );
        let master = RunningMaster::start(&target, args.timeout).await?;
        let agent_port = free_port()?;
        // Room for every task, each with its one host port.
        let tasks = args.containers + args.serial;
        let resources = format!(
            "cpus:{:.2};mem:{:.0};disk:1024;ports:[31000-{}]",
            tasks as f64 * TASK_CPUS + 1.0,
            tasks as f64 * TASK_MEM + 256.0,
            31_000 + tasks + 10
        );
        let mut agent = Command::new(&args.program);
        agent
            .args(["agent", "--ip", "127.0.0.1", "--master", &master.addr])
            .args(["--port", &agent_port.to_string()])
            .arg("--work-dir")
            .arg(args.work_dir.join("agent"))
            .args(["--resources", &resources])
            .args(["--containerizers", "mesos,docker"])
            .arg("--docker-socket")
            .arg(&args.socket);
        let agent = Spawned::spawn("agent", agent, &args.work_dir.join("agent.log"))?;
        MetricsClient::new(&format!("127.0.0.1:{agent_port}"))?
            .wait_for("agent registration", "slave/registered", 1.0, args.timeout)
            .await?;
        let marathon_port = free_port()?;
        let mut marathon = Command::new(&args.program);
        marathon
            .args(["marathon", "--master", &master.addr])
            .args(["--http-port", &marathon_port.to_string()])
            .args(["--http-address", "127.0.0.1", "--hostname", "127.0.0.1"]);
        let marathon = Spawned::spawn("marathon", marathon, &args.work_dir.join("marathon.log"))?;
        let agora = Agora {
            master,
            agent,
            marathon,
            work_dir: args.work_dir.join("agent"),
            url: format!("http://127.0.0.1:{marathon_port}"),
            http: reqwest::Client::new(),
            timeout: args.timeout,
        };
        agora
            .until("Marathon to lead", |a| async move {
                let info = a.get("/v2/info").await.ok()?;
                (info["elected"] == true).then_some(())
            })
            .await?;
        Ok(agora)
    }

    /// The engine's filter for this agent's containers.
    fn label(&self) -> anyhow::Result<HashMap<String, Vec<String>>> {
        let dir = std::fs::canonicalize(&self.work_dir)
            .with_context(|| format!("resolving {}", self.work_dir.display()))?;
        Ok(agent_label(&dir))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let answer = self.http.get(format!("{}{path}", self.url)).send().await?;
        Ok(answer.error_for_status()?.json().await?)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> anyhow::Result<()> {
        let answer = self
            .http
            .request(method, format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await?;
        let status = answer.status();
        if !status.is_success() {
            bail!(
                "{path}: {status} {}",
                answer.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Polls `check` every 5 ms until it says yes.
    async fn until<'a, F, Fut>(&'a self, what: &str, check: F) -> anyhow::Result<()>
    where
        F: Fn(&'a Agora) -> Fut,
        Fut: std::future::Future<Output = Option<()>>,
    {
        let deadline = Instant::now() + self.timeout;
        while check(self).await.is_none() {
            if Instant::now() > deadline {
                bail!("timed out after {:?} waiting for {what}", self.timeout);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    async fn running(&self, app: &str, n: usize) -> anyhow::Result<()> {
        self.until(&format!("{n} tasks of {app} running"), |a| async move {
            let app = a.get(&format!("/v2/apps{app}")).await.ok()?;
            (app["app"]["tasksRunning"].as_u64() == Some(n as u64)).then_some(())
        })
        .await
    }

    fn app(id: &str, instances: usize) -> Value {
        json!({
            "id": id, "cmd": COMMAND, "cpus": TASK_CPUS, "mem": TASK_MEM,
            "instances": instances,
            "container": {"type": "DOCKER", "docker": {"image": IMAGE}}
        })
    }

    /// `POST /v2/apps` with `n` instances → all running; how long it took.
    async fn start_app(&self, id: &str, n: usize) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.send(reqwest::Method::POST, "/v2/apps", Self::app(id, n))
            .await?;
        self.running(id, n).await?;
        Ok(started.elapsed())
    }

    /// The app `id` scaled 1, 2, ..., `n`: each step until its task runs.
    async fn scale_one_by_one(&self, id: &str, n: usize) -> anyhow::Result<Vec<Duration>> {
        self.send(reqwest::Method::POST, "/v2/apps", Self::app(id, 0))
            .await?;
        let mut samples = Vec::with_capacity(n);
        for k in 1..=n {
            let started = Instant::now();
            self.send(
                reqwest::Method::PUT,
                &format!("/v2/apps{id}"),
                json!({"instances": k}),
            )
            .await?;
            self.running(id, k).await?;
            samples.push(started.elapsed());
        }
        Ok(samples)
    }

    async fn delete_app(&self, id: &str) -> anyhow::Result<()> {
        let answer = self
            .http
            .delete(format!("{}/v2/apps{id}", self.url))
            .send()
            .await?;
        answer.error_for_status()?;
        Ok(())
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.marathon.stop(STOP_TIMEOUT).await?;
        self.agent.stop(STOP_TIMEOUT).await?;
        self.master.stop().await;
        Ok(())
    }
}

/// The engine's filter for the containers of the agent whose work dir is `dir`.
fn agent_label(dir: &std::path::Path) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("agora.work_dir={}", dir.display())],
    )])
}

/// Where a bench of this process keeps its files.
pub fn default_work_dir() -> PathBuf {
    std::env::temp_dir().join(format!("agora-bench-docker-{}", std::process::id()))
}
