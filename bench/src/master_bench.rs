//! The master bench, phase by phase: registration, subscription, launch,
//! steady state, with memory read between phases.
//!
//! Every phase is bounded by `timeout` and fails naming itself and what it
//! reached. Whatever happens, the fleets are closed and a master the bench
//! started is stopped before `run_master_bench` returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_common::resources::Resources;
use agora_coord::StaticDetector;
use anyhow::Context;

use crate::agents::{AgentCounters, AgentFleet};
use crate::args::{MasterBenchArgs, MasterTarget};
use crate::frameworks::{FrameworkCounters, FrameworkFleet, Mode, TaskShape};
use crate::metrics::{wait_until, AllocationStats, MetricsClient};
use crate::report::{
    per_item, rate, LaunchFigures, MasterBenchReport, MemoryFigures, RegistrationFigures,
    SteadyFigures, SubscriptionFigures,
};
use crate::target::RunningMaster;

/// The master's allocation latency window (`ALLOCATION_WINDOW` in the master).
const ALLOCATION_WINDOW: u64 = 1000;
/// How often the steady phase reads the master's metrics.
const STEADY_POLL: Duration = Duration::from_millis(250);

/// Runs the master bench described by `args` and reports its figures.
pub async fn run_master_bench(args: MasterBenchArgs) -> anyhow::Result<MasterBenchReport> {
    let resources = args.validate()?;
    let started = Instant::now();
    let master = RunningMaster::start(&args.master, args.timeout).await?;
    let http = MetricsClient::new(&master.addr)?;
    let mut bench = Bench {
        args,
        master,
        http,
        agents: None,
        frameworks: None,
    };
    let result = bench.run(&resources, started).await;
    let Bench {
        master,
        agents,
        frameworks,
        ..
    } = bench;
    if let Some(frameworks) = frameworks {
        frameworks.stop().await;
    }
    if let Some(agents) = agents {
        agents.stop().await;
    }
    master.stop().await;
    result
}

/// The state of one run.
struct Bench {
    args: MasterBenchArgs,
    master: RunningMaster,
    http: MetricsClient,
    agents: Option<AgentFleet>,
    frameworks: Option<FrameworkFleet>,
}

impl Bench {
    async fn run(
        &mut self,
        resources: &Resources,
        started: Instant,
    ) -> anyhow::Result<MasterBenchReport> {
        let n = self.args.agents;
        let f = self.args.frameworks;
        let t = self.args.tasks;
        let timeout = self.args.timeout;
        let connections = self.args.effective_connections();
        let mem_start = self.master.memory();

        // Phase 1: registration.
        let t0 = Instant::now();
        let detector = Arc::new(StaticDetector::new(self.master.addr.clone()));
        let fleet = AgentFleet::start(detector.clone(), n, connections, resources, false, timeout)
            .await
            .context("phase 'registration'")?;
        let agents = fleet.counters.clone();
        self.agents = Some(fleet);
        let registered = wait_until(
            "registration",
            timeout,
            || {
                agents.check()?;
                self.master.check_alive()?;
                Ok(AgentCounters::get(&agents.registered) >= n as u64)
            },
            || {
                format!(
                    "{} of {n} agents registered",
                    AgentCounters::get(&agents.registered)
                )
            },
        )
        .await?;
        let active = self
            .http
            .wait_for("registration", "master/slaves_active", n as f64, timeout)
            .await?;
        let registration = RegistrationFigures {
            seconds: secs(registered - t0),
            agents_per_sec: rate(n as f64, secs(registered - t0)),
            seconds_until_active: secs(active - t0),
        };
        let mem_registered = self.master.memory();

        // Phase 2: subscription (suppressed, so no offers yet).
        let t1 = Instant::now();
        let shape = TaskShape {
            cpus: self.args.task_cpus,
            mem: self.args.task_mem,
        };
        let fleet = FrameworkFleet::start(detector, f, t, shape);
        let fw = fleet.counters.clone();
        self.frameworks = Some(fleet);
        let subscribed = wait_until(
            "subscription",
            timeout,
            || {
                fw.check()?;
                agents.check()?;
                self.master.check_alive()?;
                Ok(FrameworkCounters::get(&fw.subscribed) >= f as u64)
            },
            || {
                format!(
                    "{} of {f} frameworks subscribed",
                    FrameworkCounters::get(&fw.subscribed)
                )
            },
        )
        .await?;
        self.http
            .wait_for(
                "subscription",
                "master/frameworks_active",
                f as f64,
                timeout,
            )
            .await?;
        let subscription = SubscriptionFigures {
            seconds: secs(subscribed - t1),
            frameworks_per_sec: rate(f as f64, secs(subscribed - t1)),
        };
        let mem_subscribed = self.master.memory();

        // Phase 3: launch.
        let offers_before = FrameworkCounters::get(&fw.offers);
        let declined_before = FrameworkCounters::get(&fw.declined);
        let t2 = Instant::now();
        self.set_mode(Mode::Launch);
        let done = wait_until(
            "launch",
            timeout,
            || {
                fw.check()?;
                agents.check()?;
                self.master.check_alive()?;
                Ok(FrameworkCounters::get(&fw.running) >= t as u64
                    && AgentCounters::get(&agents.acks) >= t as u64)
            },
            || {
                format!(
                    "{} of {t} tasks launched, {} running at frameworks, {} acknowledged at agents",
                    FrameworkCounters::get(&fw.launched),
                    FrameworkCounters::get(&fw.running),
                    AgentCounters::get(&agents.acks)
                )
            },
        )
        .await?;
        let first_accept = fw.first_accept.get().copied().unwrap_or(t2);
        self.http
            .wait_for("launch", "master/tasks_running", t as f64, timeout)
            .await?;
        let after_launch = self.http.snapshot().await.context("phase 'launch'")?;
        let offers = FrameworkCounters::get(&fw.offers) - offers_before;
        let launch = LaunchFigures {
            wall_seconds: secs(done - t2),
            seconds_from_first_accept: secs(done.saturating_duration_since(first_accept)),
            tasks_per_sec: rate(t as f64, secs(done.saturating_duration_since(first_accept))),
            offers_received: offers,
            offers_per_sec: rate(offers as f64, secs(done - t2)),
            offers_declined: FrameworkCounters::get(&fw.declined) - declined_before,
            accepts: FrameworkCounters::get(&fw.accepts),
            running_at_frameworks: FrameworkCounters::get(&fw.running),
            run_tasks_at_agents: AgentCounters::get(&agents.run_tasks),
            acks_at_agents: AgentCounters::get(&agents.acks),
            master_tasks_running: value(&after_launch, "master/tasks_running"),
        };
        let allocation_during_launch = AllocationStats::from_snapshot(&after_launch);
        let mem_launched = self.master.memory();

        // Phase 4: steady state, every framework revived and declining.
        let runs_before = allocation_during_launch.runs_total;
        let offers_before = FrameworkCounters::get(&fw.offers);
        let t3 = Instant::now();
        self.set_mode(Mode::Steady);
        let mut last = allocation_during_launch.clone();
        while t3.elapsed() < self.args.steady_duration {
            tokio::time::sleep(STEADY_POLL).await;
            fw.check().context("phase 'steady'")?;
            agents.check().context("phase 'steady'")?;
            self.master.check_alive().context("phase 'steady'")?;
            let snapshot = self.http.snapshot().await.context("phase 'steady'")?;
            last = AllocationStats::from_snapshot(&snapshot);
            if last.runs_total.saturating_sub(runs_before) >= ALLOCATION_WINDOW {
                break;
            }
        }
        let steady_seconds = secs(t3.elapsed());
        let steady_offers = FrameworkCounters::get(&fw.offers) - offers_before;
        self.set_mode(Mode::Quiet);
        let steady = SteadyFigures {
            seconds: steady_seconds,
            runs: last.runs_total.saturating_sub(runs_before),
            allocation: last,
            offers_received: steady_offers,
            offers_per_sec: rate(steady_offers as f64, steady_seconds),
        };
        let mem_end = self.master.memory();

        let memory = match (
            self.master.memory_scope(),
            mem_start,
            mem_registered,
            mem_subscribed,
            mem_launched,
            mem_end,
        ) {
            (Some(scope), Some(start), Some(reg), Some(sub), Some(launched), Some(end)) => {
                Some(MemoryFigures {
                    scope,
                    per_agent_kb: per_item(reg.rss_kb, start.rss_kb, n),
                    per_framework_kb: per_item(sub.rss_kb, reg.rss_kb, f),
                    per_task_kb: per_item(launched.rss_kb, sub.rss_kb, t),
                    start,
                    after_registration: reg,
                    after_subscription: sub,
                    after_launch: launched,
                    end,
                })
            }
            _ => None,
        };
        Ok(MasterBenchReport {
            agents: n,
            frameworks: f,
            tasks: t,
            connections,
            agent_resources: self.args.agent_resources.clone(),
            task_cpus: self.args.task_cpus,
            task_mem: self.args.task_mem,
            master: match &self.args.master {
                MasterTarget::Spawn { .. } => "spawned".into(),
                MasterTarget::InProcess => "in-process".into(),
                MasterTarget::Address(a) => format!("address {a}"),
            },
            registration,
            subscription,
            launch,
            allocation_during_launch,
            steady,
            memory,
            framework_reconnections: FrameworkCounters::get(&fw.reconnections),
            last_reconnection_reason: fw.last_reconnection.lock().ok().and_then(|l| l.clone()),
            total_seconds: secs(started.elapsed()),
        })
    }

    fn set_mode(&self, mode: Mode) {
        if let Some(frameworks) = &self.frameworks {
            frameworks.set_mode(mode);
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn value(snapshot: &crate::metrics::Snapshot, key: &str) -> u64 {
    snapshot.get(key).copied().unwrap_or(0.0) as u64
}
