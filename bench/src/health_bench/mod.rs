//! `agora bench health`: what health checks cost at scale and how fast
//! they find a sick task, in three phases:
//!
//! 1. **real**: N tasks on one real agent, each with an HTTP check run by
//!    its real executor shim (the agent bench with checks: `agent_bench/`);
//!    CPU of the agent, the shims and the master, the shims' memory;
//! 2. **Mesos checks**: Marathon apps with `MESOS_HTTP` checks, their tasks
//!    on emulated agents that run each check with the agent's own check
//!    code (`agent_checks.rs`) and report verdicts as a real agent does;
//!    CPU of the master and Marathon (both spawned, measured apart);
//! 3. **Marathon checks**: apps with `HTTP` checks, which the leading
//!    Marathon probes itself; its CPU, the probe rate, and the probes it
//!    started an interval or more late (Marathon's `/metrics`).
//!
//! Every check reaches the bench's check server (`server.rs`), which
//! answers 200, or 503 for a task turned sick. In each phase, once every
//! task is healthy, the CPU is read over a window; then a few tasks are
//! turned sick at once and each is timed until it is TASK_KILLED (by its
//! shim, its emulated agent's check, or Marathon through the master).
//!
//! The bench reports figures and asserts none.

mod report;
pub(crate) mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_common::resources::Resources;
use agora_coord::StaticDetector;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::process::Command;

pub use report::{EmulatedFigures, HealthBenchReport};

use crate::agent_bench::{latency_figures, run_agent_bench, AgentBenchArgs, CheckFigures};
use crate::agents::AgentFleet;
use crate::args::{free_port, MasterTarget};
use crate::cpu::CpuWindow;
use crate::metrics::MetricsClient;
use crate::spawned::Spawned;
use crate::target::RunningMaster;
use report::RealFigures;
use server::CheckServer;

/// Instances per app in the emulated phases.
const INSTANCES_PER_APP: usize = 500;
/// CPUs and memory (MB) of every emulated task.
const TASK_CPUS: f64 = 0.01;
const TASK_MEM: f64 = 1.0;
/// How often Marathon is polled while the bench waits on it.
const POLL: Duration = Duration::from_millis(200);
/// How long a stopping Marathon is given.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The parameters of a health bench.
#[derive(Debug, Clone)]
pub struct HealthBenchArgs {
    /// The `agora` binary: master, agent (and its shims), Marathon.
    pub program: PathBuf,
    /// Scratch directory; removed at the end when all went well.
    pub work_dir: PathBuf,
    /// Tasks on the real agent (0 skips the phase).
    pub real_tasks: usize,
    /// Tasks with `MESOS_HTTP` checks on emulated agents (0 skips).
    pub mesos_tasks: usize,
    /// Tasks with Marathon's own `HTTP` checks (0 skips).
    pub marathon_tasks: usize,
    /// Tasks per emulated agent (its port range).
    pub tasks_per_agent: usize,
    /// The checks' interval (and timeout).
    pub interval: Duration,
    /// Their consecutive failures before a kill.
    pub consecutive_failures: u32,
    /// Tasks turned sick at once, per phase.
    pub sick: usize,
    /// The CPU window, per phase.
    pub cpu_window: Duration,
    /// Give up on a wait after this long.
    pub timeout: Duration,
}

impl HealthBenchArgs {
    /// The figures: 1,000 real tasks, 5,000 with Mesos checks,
    /// 2,000 with Marathon's, checked every second, killed after 3 failures.
    pub fn new(program: PathBuf, work_dir: PathBuf) -> Self {
        HealthBenchArgs {
            program,
            work_dir,
            real_tasks: 1_000,
            mesos_tasks: 5_000,
            marathon_tasks: 2_000,
            tasks_per_agent: 100,
            interval: Duration::from_secs(1),
            consecutive_failures: 3,
            sick: 50,
            cpu_window: Duration::from_secs(10),
            timeout: Duration::from_secs(300),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.tasks_per_agent == 0 || self.tasks_per_agent > 1_000 {
            bail!("--tasks-per-agent must be between 1 and 1000");
        }
        if self.interval < Duration::from_secs(1) || self.interval.subsec_nanos() != 0 {
            bail!("--interval must be a whole number of seconds (Marathon's unit), at least 1");
        }
        if self.consecutive_failures == 0 {
            bail!("--consecutive-failures must be at least 1");
        }
        if self.sick == 0 {
            bail!("--sick must be at least 1");
        }
        Ok(())
    }
}

/// Runs the phases asked for; the scratch directory is removed when all
/// went well.
pub async fn run_health_bench(args: HealthBenchArgs) -> anyhow::Result<HealthBenchReport> {
    args.validate()?;
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("creating {}", args.work_dir.display()))?;
    let mut report = HealthBenchReport::default();
    if args.real_tasks > 0 {
        report.real = Some(real_phase(&args).await.context("phase 'real'")?);
    }
    if args.mesos_tasks > 0 || args.marathon_tasks > 0 {
        let mut cluster = Emulated::start(&args).await?;
        let result = cluster.phases(&args, &mut report).await;
        cluster.stop().await;
        result?;
    }
    let _ = std::fs::remove_dir_all(&args.work_dir);
    Ok(report)
}

/// Phase 1: the agent bench with checks.
async fn real_phase(args: &HealthBenchArgs) -> anyhow::Result<RealFigures> {
    let port = free_port()?;
    let mut agent = AgentBenchArgs::new(
        args.real_tasks,
        args.program.clone(),
        port,
        args.work_dir.join("real"),
    );
    agent.serial = 0;
    agent.health_checks = true;
    agent.check_interval = args.interval;
    agent.consecutive_failures = args.consecutive_failures;
    agent.sick = args.sick;
    agent.cpu_window = args.cpu_window;
    agent.timeout = args.timeout;
    let report = run_agent_bench(agent).await?;
    Ok(RealFigures {
        checks: report
            .checks
            .context("the agent bench measured no checks")?,
        shims: report.shims,
        agent_memory: report.agent_memory,
        leftover_tasks: report.leftover_tasks,
    })
}

/// The emulated phases' cluster: a spawned master and Marathon, emulated
/// agents, the check server.
struct Emulated {
    master: RunningMaster,
    fleet: Option<AgentFleet>,
    marathon: Option<Spawned>,
    server: CheckServer,
    api: Api,
}

impl Emulated {
    async fn start(args: &HealthBenchArgs) -> anyhow::Result<Self> {
        let tasks = args.mesos_tasks.max(args.marathon_tasks);
        let agents = tasks.div_ceil(args.tasks_per_agent);
        let ports = u16::try_from(args.tasks_per_agent).context("--tasks-per-agent")?;
        let server = CheckServer::start(ports).await?;
        let master_dir = args.work_dir.join("master");
        let target = MasterTarget::spawn_agora(args.program.clone(), free_port()?, &master_dir);
        let master = RunningMaster::start(&target, args.timeout).await?;
        let per = args.tasks_per_agent as f64;
        let resources = Resources::parse(&format!(
            "cpus:{:.2};mem:{:.0};disk:1000;ports:[{}-{}]",
            per * TASK_CPUS + 0.5,
            per * TASK_MEM + 64.0,
            server.base_port,
            server.base_port + ports - 1
        ))
        .map_err(|e| anyhow::anyhow!("the emulated agents' resources: {e}"))?;
        let detector = Arc::new(StaticDetector::new(master.addr.clone()));
        let fleet = AgentFleet::start_checking(
            detector,
            agents,
            agents.div_ceil(100).clamp(1, 8),
            &resources,
            args.timeout,
            server.health.clone(),
        )
        .await
        .context("starting the emulated agents")?;
        MetricsClient::new(&master.addr)?
            .wait_for(
                "agents",
                "master/slaves_active",
                agents as f64,
                args.timeout,
            )
            .await?;
        let marathon_port = free_port()?;
        let mut command = Command::new(&args.program);
        command
            .args(["marathon", "--master", &master.addr])
            .args(["--http-port", &marathon_port.to_string()])
            .args(["--http-address", "127.0.0.1", "--hostname", "127.0.0.1"])
            // Kills right after the election are not what is measured.
            .args(["--health-kill-hold", "0secs"]);
        let marathon = Spawned::spawn("marathon", command, &args.work_dir.join("marathon.log"))?;
        let api = Api {
            http: reqwest::Client::new(),
            url: format!("http://127.0.0.1:{marathon_port}"),
            timeout: args.timeout,
        };
        let cluster = Emulated {
            master,
            fleet: Some(fleet),
            marathon: Some(marathon),
            server,
            api,
        };
        cluster
            .api
            .until("Marathon to lead", || async {
                let info = cluster.api.get("/v2/info").await.ok()?;
                (info["elected"] == true).then_some(())
            })
            .await?;
        Ok(cluster)
    }

    async fn phases(
        &mut self,
        args: &HealthBenchArgs,
        report: &mut HealthBenchReport,
    ) -> anyhow::Result<()> {
        if args.mesos_tasks > 0 {
            let figures = self
                .phase(args, "/bench-mesos", "MESOS_HTTP", args.mesos_tasks)
                .await
                .context("phase 'Mesos checks'")?;
            report.mesos = Some(figures);
        }
        if args.marathon_tasks > 0 {
            let figures = self
                .phase(args, "/bench-http", "HTTP", args.marathon_tasks)
                .await
                .context("phase 'Marathon checks'")?;
            report.marathon = Some(figures);
        }
        Ok(())
    }

    /// One emulated phase: `tasks` instances in apps of group `group`, with
    /// health checks of `protocol`.
    async fn phase(
        &mut self,
        args: &HealthBenchArgs,
        group: &str,
        protocol: &str,
        tasks: usize,
    ) -> anyhow::Result<EmulatedFigures> {
        let health = self.server.health.clone();
        health.heal_all();
        health.take_detections();
        let marathon_side = protocol == "HTTP";

        // Deploy, and wait until every task is healthy.
        let posted = Instant::now();
        self.api
            .post("/v2/groups", &group_json(group, protocol, tasks, args))
            .await?;
        self.api.all_healthy(group, tasks, "").await?;
        let all_healthy_secs = posted.elapsed().as_secs_f64();

        // The CPU window.
        let marathon_pid = self.marathon.as_ref().map(Spawned::pid);
        let master_cpu = self.master.pid().map(|pid| CpuWindow::start(vec![pid]));
        let marathon_cpu = marathon_pid.map(|pid| CpuWindow::start(vec![pid]));
        let bench = CpuWindow::start(vec![std::process::id()]);
        let requests = health.requests();
        let late = self.api.late_probes().await?;
        let started = Instant::now();
        tokio::time::sleep(args.cpu_window).await;
        let window = started.elapsed().as_secs_f64();
        let probes_per_sec = (health.requests() - requests) as f64 / window;
        let late_probes = self.api.late_probes().await? - late;
        let cpu = crate::agent_bench::CpuFigures {
            agent_pct: None,
            shims_pct: None,
            master_pct: master_cpu.map(|w| w.percent()),
            marathon_pct: marathon_cpu.map(|w| w.percent()),
            bench_pct: bench.percent(),
        };

        // Sick tasks, spread over the apps, timed until killed.
        let keys = self.api.task_keys(group).await?;
        let sick = args.sick.min(keys.len());
        let chosen: Vec<&String> = (0..sick).map(|i| &keys[i * keys.len() / sick]).collect();
        for key in &chosen {
            health.make_sick(key);
        }
        self.api
            .until(&format!("{sick} sick tasks killed"), || async {
                (health.detected() >= sick).then_some(())
            })
            .await?;
        let detections = health.take_detections();
        let replaced = Instant::now();
        self.api.all_healthy(group, tasks, " again").await?;
        let replaced_secs = replaced.elapsed().as_secs_f64();

        // Leave nothing behind for the next phase.
        self.api
            .delete(&format!("/v2/groups{group}?force=true"))
            .await?;
        self.api
            .until("every instance gone", || async {
                (self.api.instances().await.ok()? == 0).then_some(())
            })
            .await?;

        let interval = args.interval.as_secs_f64();
        Ok(EmulatedFigures {
            protocol: protocol.to_string(),
            all_healthy_secs,
            replaced_secs,
            checks: CheckFigures {
                tasks,
                checked_by: if marathon_side {
                    "Marathon".into()
                } else {
                    "emulated agents (the agent's check code)".into()
                },
                interval_secs: interval,
                consecutive_failures: args.consecutive_failures,
                window_secs: window,
                probes_per_sec,
                expected_per_sec: tasks as f64 / interval,
                late_probes: marathon_side.then_some(late_probes),
                cpu,
                sick,
                detection: latency_figures(&detections),
                target_p99_ms: (interval * f64::from(args.consecutive_failures) + 1.0) * 1e3,
            },
        })
    }

    async fn stop(mut self) {
        if let Some(marathon) = self.marathon.take() {
            if let Err(e) = marathon.stop(STOP_TIMEOUT).await {
                tracing::warn!(error = %e, "stopping Marathon");
            }
        }
        if let Some(fleet) = self.fleet.take() {
            fleet.stop().await;
        }
        self.master.stop().await;
    }
}

/// A group of apps with `tasks` instances in all, each with one health
/// check of `protocol` on its first port.
fn group_json(group: &str, protocol: &str, tasks: usize, args: &HealthBenchArgs) -> Value {
    let interval = args.interval.as_secs();
    let apps: Vec<Value> = (0..tasks.div_ceil(INSTANCES_PER_APP))
        .map(|i| {
            let instances = INSTANCES_PER_APP.min(tasks - i * INSTANCES_PER_APP);
            json!({
                "id": format!("{group}/app-{i}"),
                "cmd": "sleep 3600",
                "cpus": TASK_CPUS,
                "mem": TASK_MEM,
                "instances": instances,
                "portDefinitions": [{"port": 0}],
                "healthChecks": [{
                    "protocol": protocol,
                    "path": "/",
                    "portIndex": 0,
                    "gracePeriodSeconds": 0,
                    "delaySeconds": 0,
                    "intervalSeconds": interval,
                    "timeoutSeconds": interval,
                    "maxConsecutiveFailures": args.consecutive_failures,
                }],
            })
        })
        .collect();
    json!({"id": group, "apps": apps})
}

/// A client of the spawned Marathon.
struct Api {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
}

impl Api {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let answer = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        Ok(answer.error_for_status()?.json().await?)
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<()> {
        let answer = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = answer.status();
        if !status.is_success() {
            let text = answer.text().await.unwrap_or_default();
            bail!("POST {path} answered {status}: {text}");
        }
        Ok(())
    }

    async fn delete(&self, path: &str) -> anyhow::Result<()> {
        let answer = self
            .http
            .delete(format!("{}{path}", self.url))
            .send()
            .await
            .with_context(|| format!("DELETE {path}"))?;
        answer.error_for_status()?;
        Ok(())
    }

    /// Healthy tasks of the apps in `group`.
    async fn healthy(&self, group: &str) -> anyhow::Result<usize> {
        let apps = self.get("/v2/apps").await?;
        let prefix = format!("{group}/");
        Ok(apps["apps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["id"].as_str().is_some_and(|id| id.starts_with(&prefix)))
            .filter_map(|a| a["tasksHealthy"].as_u64())
            .sum::<u64>() as usize)
    }

    /// Waits until Marathon shows `tasks` healthy tasks in `group`.
    async fn all_healthy(&self, group: &str, tasks: usize, when: &str) -> anyhow::Result<()> {
        self.until(
            &format!("{tasks} healthy tasks in {group}{when}"),
            || async { (self.healthy(group).await.ok()? >= tasks).then_some(()) },
        )
        .await
    }

    /// Instances Marathon knows, running or not.
    async fn instances(&self) -> anyhow::Result<u64> {
        let metrics = self.get("/metrics").await?;
        let gauge = |name: &str| metrics["gauges"][name]["value"].as_u64().unwrap_or(0);
        Ok(gauge("marathon.instances.running.gauge") + gauge("marathon.instances.staged.gauge"))
    }

    /// Marathon's probes started an interval or more late, so far.
    async fn late_probes(&self) -> anyhow::Result<u64> {
        let metrics = self.get("/metrics").await?;
        Ok(
            metrics["counters"]["marathon.health.probes-late.counter"]["count"]
                .as_u64()
                .unwrap_or(0),
        )
    }

    /// The check server's key (`host:port`) of every task in `group`.
    async fn task_keys(&self, group: &str) -> anyhow::Result<Vec<String>> {
        let tasks = self.get("/v2/tasks").await?;
        let prefix = format!("{group}/");
        let mut keys: Vec<String> = tasks["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| {
                t["appId"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(&prefix))
            })
            .filter_map(|t| {
                Some(format!(
                    "{}:{}",
                    t["host"].as_str()?,
                    t["ports"][0].as_u64()?
                ))
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Polls `check` until it answers, at most the bench's timeout.
    async fn until<F, Fut>(&self, what: &str, check: F) -> anyhow::Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<()>>,
    {
        let deadline = Instant::now() + self.timeout;
        while check().await.is_none() {
            if Instant::now() > deadline {
                bail!("timed out after {:?} waiting for {what}", self.timeout);
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }
}
