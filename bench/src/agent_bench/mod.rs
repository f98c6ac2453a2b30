//! `agora bench agent`: N long-running tasks launched on ONE real agent.
//!
//! The agent is the real binary (`agora agent`, spawned from the given
//! program with the host's default isolation), so every task runs under a
//! real executor shim, in a real cgroup and namespaces where the host allows
//! them. The master is spawned too (or in-process); one SDK framework
//! ([`framework`]) launches the tasks on the agent's offers. Phases:
//!
//! 1. **baseline**: the task's command spawned N times directly by the bench
//!    (bare `fork/exec`), then killed: what a launch costs without the agent;
//! 2. **launch**: first ACCEPT → every TASK_RUNNING, and per task ACCEPT
//!    sent → TASK_RUNNING received (all N in one ACCEPT when one offer holds
//!    them, so a task's latency includes waiting for the ones before it);
//!    then **serial**: a few more tasks one at a time, the per-task cost
//!    compared with a bare spawn;
//! 3. **steady state**, every task running with its HTTP health check
//!    (`GET /t/<task>` on the bench's check server, every second by
//!    default; `health_checks: false` leaves them out): the CPU of the
//!    agent, its shims and the master over a window and the probe rate the
//!    server saw; then **memory**, at least 6 s after the last launch (once
//!    the shims dropped their start-up pages): the agent's `VmRSS`/`VmHWM`
//!    and the shims' `VmRSS`/`RssAnon` (found through `/proc/*/cmdline`);
//! 4. **detection** (with checks): a few tasks turned sick at once and
//!    timed until the framework hears them TASK_KILLED;
//! 5. **stop**: SIGTERM to the agent, which kills its tasks; then a check
//!    that no task process is left (a process running the command whose
//!    working directory is in the bench's work dir), killing any it finds.
//!
//! The bench reports figures and asserts none: targets are for the reader.

mod framework;
pub(crate) mod procs;
mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::Command;

pub use report::{AgentBenchReport, CheckFigures, CpuFigures, LatencyFigures, ShimFigures};

use crate::args::MasterTarget;
use crate::cpu::CpuWindow;
use crate::health_bench::server::CheckServer;
use crate::metrics::MetricsClient;
use crate::spawned::Spawned;
use crate::target::RunningMaster;
use framework::{BenchFramework, HealthPlan, TaskPlan};

/// The command every task runs (and the baseline spawns).
pub const TASK_COMMAND: &str = "sleep 600";

/// How long the shims get to settle before their memory is read (they
/// drop the pages only their start-up used 5 s after they start).
const SETTLE: Duration = Duration::from_secs(6);

/// How long the agent gets to kill its tasks and exit after SIGTERM.
const AGENT_STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// The parameters of an agent bench.
#[derive(Debug, Clone)]
pub struct AgentBenchArgs {
    /// Tasks to launch at once.
    pub tasks: usize,
    /// Tasks then launched one at a time.
    pub serial: usize,
    /// The `agora` binary run as the agent (and its shims).
    pub program: PathBuf,
    /// The master: spawned from `program`, or in-process.
    pub master: MasterTarget,
    /// `--isolation` for the agent; `None` leaves it to the host.
    pub isolation: Option<String>,
    /// Scratch directory (agent work dir, logs); removed at the end.
    pub work_dir: PathBuf,
    /// CPUs per task.
    pub task_cpus: f64,
    /// Memory (MB) per task: also its cgroup's limit.
    pub task_mem: f64,
    /// Give up on a phase after this long.
    pub timeout: Duration,
    /// Every task carries an HTTP health check.
    pub health_checks: bool,
    /// Its interval (and timeout).
    pub check_interval: Duration,
    /// Its consecutive failures before a kill.
    pub consecutive_failures: u32,
    /// Tasks turned sick at once in the checks phase.
    pub sick: usize,
    /// The window over which CPU is measured.
    pub cpu_window: Duration,
}

impl AgentBenchArgs {
    /// `tasks` tasks on an agent run from `program`, the master spawned from
    /// it too, scratch files under `work_dir`.
    pub fn new(tasks: usize, program: PathBuf, master_port: u16, work_dir: PathBuf) -> Self {
        // Offers every 50 ms, so the serial phase does not wait a second
        // for each (the waits are not measured, but they add up).
        let master = MasterTarget::Spawn {
            program: program.clone(),
            args: [
                "master",
                "--ip",
                "127.0.0.1",
                "--port",
                &master_port.to_string(),
                "--allocation-interval",
                "50ms",
                "--work-dir",
                &work_dir.join("master").display().to_string(),
            ]
            .map(String::from)
            .to_vec(),
        };
        AgentBenchArgs {
            tasks,
            serial: 20,
            master,
            program,
            isolation: None,
            work_dir,
            task_cpus: 0.01,
            task_mem: 16.0,
            timeout: Duration::from_secs(120),
            health_checks: true,
            check_interval: Duration::from_secs(1),
            consecutive_failures: 3,
            sick: 20,
            cpu_window: Duration::from_secs(10),
        }
    }

    /// The agent's `--resources`: exactly room for every task plus a
    /// margin, so that one offer carries them all.
    fn agent_resources(&self) -> String {
        let n = (self.tasks + self.serial) as f64;
        format!(
            "cpus:{:.2};mem:{:.0};disk:1024",
            n * self.task_cpus + 1.0,
            n * self.task_mem + 256.0
        )
    }
}

/// The agent under test, spawned from the bench's program.
fn spawn_agent(args: &AgentBenchArgs, master: &str, port: u16) -> anyhow::Result<Spawned> {
    let mut command = Command::new(&args.program);
    command
        .args(["agent", "--ip", "127.0.0.1", "--master", master])
        .args(["--port", &port.to_string()])
        .arg("--work-dir")
        .arg(args.work_dir.join("agent"))
        .args(["--resources", &args.agent_resources()])
        .args(["--executor-shutdown-grace-period", "1secs"]);
    if let Some(isolation) = &args.isolation {
        command.args(["--isolation", isolation]);
    }
    Spawned::spawn("agent", command, &args.work_dir.join("agent.log"))
}

/// Runs the bench; the scratch directory is removed whatever the outcome.
pub async fn run_agent_bench(args: AgentBenchArgs) -> anyhow::Result<AgentBenchReport> {
    if args.tasks == 0 {
        bail!("--tasks must be at least 1");
    }
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("creating {}", args.work_dir.display()))?;
    let result = run_phases(&args).await;
    // Whatever happened, no task of ours may outlive the bench.
    let leftovers = kill_leftovers(&args.work_dir.join("agent"));
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&args.work_dir);
    }
    let mut report = result?;
    report.leftover_tasks = leftovers;
    Ok(report)
}

fn kill_leftovers(work_dir: &Path) -> usize {
    let command: Vec<&str> = TASK_COMMAND.split(' ').collect();
    let left = procs::tasks_under(work_dir, &command);
    for pid in &left {
        tracing::warn!(pid, "killing a task process left over");
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    left.len()
}

async fn run_phases(args: &AgentBenchArgs) -> anyhow::Result<AgentBenchReport> {
    // 1. The baseline, before anything else competes for the CPUs.
    let n = args.tasks;
    let bare = tokio::task::spawn_blocking(move || procs::bare_spawns(n, TASK_COMMAND))
        .await
        .context("the bare-spawn thread")?
        .context("spawning the bare baseline")?;

    let master = RunningMaster::start(&args.master, args.timeout).await?;
    let port = crate::args::free_port().context("finding a port for the agent")?;
    let agent = spawn_agent(args, &master.addr, port)?;
    let agent_http = MetricsClient::new(&format!("127.0.0.1:{port}"))?;
    agent_http
        .wait_for("agent registration", "slave/registered", 1.0, args.timeout)
        .await?;

    // 2. The launch.
    let server = if args.health_checks {
        Some(CheckServer::start(1).await?)
    } else {
        None
    };
    let mut framework = BenchFramework::subscribe(&master.addr).await?;
    let plan = TaskPlan {
        count: args.tasks,
        cpus: args.task_cpus,
        mem: args.task_mem,
        command: TASK_COMMAND.to_string(),
        health: server.as_ref().map(|s| HealthPlan {
            port: s.base_port,
            interval: args.check_interval,
            consecutive_failures: args.consecutive_failures,
        }),
    };
    let launch = framework.launch_all(&plan, args.timeout).await?;
    let serial = framework
        .launch_serial(args.serial, &plan, args.timeout)
        .await?;

    // 3. Steady state: CPU over a window with every check running (or a
    // settling wait without checks), then memory, the shims having had time
    // to drop the pages only their start-up used.
    let parties = Parties {
        agent: agent.pid(),
        master: master.pid(),
    };
    let steady = match &server {
        Some(server) => {
            let steady = cpu_window(args, server, &parties).await;
            tokio::time::sleep(SETTLE.saturating_sub(args.cpu_window)).await;
            Some(steady)
        }
        None => {
            tokio::time::sleep(SETTLE).await;
            None
        }
    };
    let agent_memory = procs::memory(agent.pid())
        .context("reading the agent's memory")?
        .reading();
    let shims = shim_figures(&args.work_dir.join("agent"));

    // 4. How fast the checks find a sick task.
    let checks = match (&server, steady) {
        (Some(server), Some(steady)) => Some(detect(args, server, &mut framework, steady).await?),
        _ => None,
    };

    // 5. Stop: the agent kills its tasks.
    let stop = agent.stop(AGENT_STOP_TIMEOUT).await?;
    framework.close();
    master.stop().await;

    let launch_latency = latency_figures(&launch.latencies);
    let bare_spawn = latency_figures(&bare);
    let serial_latency = latency_figures(&serial);
    Ok(AgentBenchReport {
        tasks: args.tasks,
        command: TASK_COMMAND.to_string(),
        isolation: args.isolation.clone().unwrap_or_else(|| "default".into()),
        accepts: launch.accepts,
        all_running_secs: (launch.all_running - launch.first_accept).as_secs_f64(),
        launch_latency,
        bare_spawn,
        bare_spawn_total_secs: bare.iter().sum::<Duration>().as_secs_f64(),
        serial_tasks: args.serial,
        serial_latency,
        p50_overhead_ms: serial_latency.p50_ms - bare_spawn.p50_ms,
        agent_memory,
        shims,
        checks,
        stop_secs: stop.as_secs_f64(),
        leftover_tasks: 0,
    })
}

/// The memory of the shims whose configs lie under `work_dir`.
pub(crate) fn shim_figures(work_dir: &Path) -> ShimFigures {
    let readings: Vec<_> = procs::shims(work_dir)
        .into_iter()
        .filter_map(procs::memory)
        .collect();
    let count = readings.len();
    let avg = |f: fn(&procs::ProcMemory) -> u64| {
        if count == 0 {
            0.0
        } else {
            readings.iter().map(f).sum::<u64>() as f64 / count as f64
        }
    };
    ShimFigures {
        count,
        program: procs::shims(work_dir)
            .first()
            .and_then(|pid| procs::program(*pid))
            .unwrap_or_default(),
        avg_rss_kb: avg(|m| m.rss_kb),
        avg_rss_anon_kb: avg(|m| m.anon_kb),
        max_rss_kb: readings.iter().map(|m| m.rss_kb).max().unwrap_or(0),
    }
}

/// The processes whose CPU the checks phase reads.
struct Parties {
    agent: u32,
    master: Option<u32>,
}

/// What the CPU window found.
struct Steady {
    window_secs: f64,
    probes_per_sec: f64,
    cpu: CpuFigures,
}

/// CPU and probe rate over a window with every check running.
async fn cpu_window(args: &AgentBenchArgs, server: &CheckServer, parties: &Parties) -> Steady {
    let shims = procs::shims(&args.work_dir.join("agent"));
    let agent_cpu = CpuWindow::start(vec![parties.agent]);
    let shims_cpu = CpuWindow::start(shims);
    let master_cpu = parties.master.map(|pid| CpuWindow::start(vec![pid]));
    let bench = CpuWindow::start(vec![std::process::id()]);
    let requests = server.health.requests();
    let started = std::time::Instant::now();
    tokio::time::sleep(args.cpu_window).await;
    let window_secs = started.elapsed().as_secs_f64();
    Steady {
        window_secs,
        probes_per_sec: (server.health.requests() - requests) as f64 / window_secs,
        cpu: CpuFigures {
            agent_pct: Some(agent_cpu.percent()),
            shims_pct: Some(shims_cpu.percent()),
            master_pct: master_cpu.map(|w| w.percent()),
            marathon_pct: None,
            bench_pct: bench.percent(),
        },
    }
}

/// `args.sick` tasks (spread over all) turned sick at once and timed until
/// the framework hears them killed.
async fn detect(
    args: &AgentBenchArgs,
    server: &CheckServer,
    framework: &mut BenchFramework,
    steady: Steady,
) -> anyhow::Result<CheckFigures> {
    let sick = args.sick.clamp(1, args.tasks);
    let ids: Vec<String> = (0..sick)
        .map(|i| format!("bench-task-{}", i * args.tasks / sick))
        .collect();
    for id in &ids {
        server.health.make_sick(id);
    }
    framework
        .await_kills(&ids, &server.health, args.timeout)
        .await?;
    let detections = server.health.take_detections();
    let interval = args.check_interval.as_secs_f64();
    let tasks = args.tasks + args.serial;
    Ok(CheckFigures {
        tasks,
        checked_by: "their shims".into(),
        interval_secs: interval,
        consecutive_failures: args.consecutive_failures,
        window_secs: steady.window_secs,
        probes_per_sec: steady.probes_per_sec,
        expected_per_sec: tasks as f64 / interval,
        late_probes: None,
        cpu: steady.cpu,
        sick,
        detection: latency_figures(&detections),
        target_p99_ms: (interval * f64::from(args.consecutive_failures) + 1.0) * 1e3,
    })
}

/// p50/p99/max of `samples`.
pub(crate) fn latency_figures(samples: &[Duration]) -> LatencyFigures {
    LatencyFigures {
        p50_ms: procs::quantile_ms(samples, 0.5),
        p99_ms: procs::quantile_ms(samples, 0.99),
        max_ms: procs::quantile_ms(samples, 1.0),
    }
}
