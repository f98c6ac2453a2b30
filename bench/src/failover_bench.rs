//! The failover bench, phase by phase: masters electing through ZooKeeper,
//! agents and frameworks following the leader, tasks running; then the
//! leader is SIGKILLed and the bench times the way back.
//!
//! Setup: start (or find) ZooKeeper and spawn the masters; wait for a
//! leader; register the agents, subscribe the frameworks, launch and
//! acknowledge every task (as `agora bench master` does, but with both
//! fleets finding the master through a ZooKeeper detector); put the
//! frameworks in `Watch` mode (one offer per subscription); wait until the
//! registry in ZooKeeper holds every agent.
//!
//! Failover: SIGKILL the leader, then watch, all at once, the election
//! group (a), the new leader's `master/elected`, its `master/slaves_active`
//! (b) and `master/frameworks_active`, and what the agents and frameworks
//! see (reregistrations, resubscriptions, the first offer from the new
//! leader: (c)). Every wait is bounded; whatever happens, the fleets, the
//! masters and a ZooKeeper the bench started are stopped before returning.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::agents::{AgentCounters, AgentFleet};
use crate::cluster::Cluster;
use crate::failover_args::{FailoverBenchArgs, REREGISTRATION_TARGET};
use crate::failover_report::{FailoverBenchReport, FailoverFigures, FailoverMemory, SetupFigures};
use crate::frameworks::{FrameworkCounters, FrameworkFleet, Mode, TaskShape};
use crate::metrics::{wait_until, MetricsClient};

/// How often the new leader's metrics are read during the failover (each
/// read walks every task in the master, so not too often).
const METRICS_POLL: Duration = Duration::from_millis(100);
/// How often the registry is counted while waiting for it to be complete.
const REGISTRY_POLL: Duration = Duration::from_millis(250);

/// Runs the failover bench described by `args` and reports its figures.
pub async fn run_failover_bench(args: FailoverBenchArgs) -> anyhow::Result<FailoverBenchReport> {
    let resources = args.validate()?;
    let started = Instant::now();
    let mut cluster = Cluster::start(&args).await?;
    let mut fleets = Fleets::default();
    let report = phases(&args, &resources, &mut fleets, &mut cluster, started).await;
    if let Some(frameworks) = fleets.frameworks {
        frameworks.stop().await;
    }
    if let Some(agents) = fleets.agents {
        agents.stop().await;
    }
    cluster.stop().await;
    report
}

/// The emulated parties, stopped by the caller whatever happens.
#[derive(Default)]
struct Fleets {
    agents: Option<AgentFleet>,
    frameworks: Option<FrameworkFleet>,
}

async fn phases(
    args: &FailoverBenchArgs,
    resources: &agora_common::resources::Resources,
    fleets: &mut Fleets,
    cluster: &mut Cluster,
    started: Instant,
) -> anyhow::Result<FailoverBenchReport> {
    let (n, f, t) = (args.agents, args.frameworks, args.tasks);
    let timeout = args.timeout;

    // Setup 1: a leader.
    let (leader, _) = cluster
        .wait_elected(None, timeout)
        .await
        .context("phase 'first leader'")?;
    cluster
        .wait_leading(leader, timeout)
        .await
        .context("phase 'first leader'")?;
    let first_leader = started.elapsed();
    let http = MetricsClient::new(&cluster.addrs[leader])?;

    // Setup 2: agents, following the leader through ZooKeeper.
    let t0 = Instant::now();
    let fleet = AgentFleet::start(
        cluster.detector(),
        n,
        args.effective_connections(),
        resources,
        true,
        timeout,
    )
    .await
    .context("phase 'registration'")?;
    let agents = fleet.counters.clone();
    fleets.agents = Some(fleet);
    wait_until(
        "registration",
        timeout,
        || {
            agents.check()?;
            cluster.check_alive()?;
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
    http.wait_for("registration", "master/slaves_active", n as f64, timeout)
        .await?;
    let registration = t0.elapsed();

    // Setup 3: frameworks, following the leader too.
    let t1 = Instant::now();
    let shape = TaskShape {
        cpus: args.task_cpus,
        mem: args.task_mem,
    };
    let fleet = FrameworkFleet::start(cluster.detector(), f, t, shape);
    let fw = fleet.counters.clone();
    let set_mode = |fleets: &Fleets, mode| {
        if let Some(frameworks) = &fleets.frameworks {
            frameworks.set_mode(mode);
        }
    };
    fleets.frameworks = Some(fleet);
    wait_until(
        "subscription",
        timeout,
        || {
            fw.check()?;
            cluster.check_alive()?;
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
    let subscription = t1.elapsed();

    // Setup 4: every task running and acknowledged.
    let t2 = Instant::now();
    set_mode(fleets, Mode::Launch);
    wait_until(
        "launch",
        timeout,
        || {
            fw.check()?;
            agents.check()?;
            cluster.check_alive()?;
            Ok(FrameworkCounters::get(&fw.running) >= t as u64
                && AgentCounters::get(&agents.acks) >= t as u64)
        },
        || {
            format!(
                "{} of {t} tasks running at frameworks, {} acknowledged at agents",
                FrameworkCounters::get(&fw.running),
                AgentCounters::get(&agents.acks)
            )
        },
    )
    .await?;
    http.wait_for("launch", "master/tasks_running", t as f64, timeout)
        .await?;
    let launch = t2.elapsed();

    // Setup 5: frameworks want one offer per subscription; the registry is complete.
    let t3 = Instant::now();
    set_mode(fleets, Mode::Watch);
    let deadline = Instant::now() + timeout;
    loop {
        cluster.check_alive().context("phase 'registry'")?;
        let stored = cluster
            .registry_agents()
            .await
            .context("phase 'registry'")?;
        if stored >= n {
            break;
        }
        if Instant::now() >= deadline {
            anyhow::bail!("phase 'registry' timed out after {timeout:?}: {stored} of {n} agents in the registry");
        }
        tokio::time::sleep(REGISTRY_POLL).await;
    }
    let registry_complete = t3.elapsed();
    wait_until(
        "watch",
        timeout,
        || {
            fw.check()?;
            Ok(FrameworkCounters::get(&fw.watching) >= f as u64)
        },
        || {
            format!(
                "{} of {f} frameworks got an offer",
                FrameworkCounters::get(&fw.watching)
            )
        },
    )
    .await?;
    if FrameworkCounters::get(&fw.reconnections) > 0
        || AgentCounters::get(&agents.disconnections) > 0
    {
        anyhow::bail!("connections were lost before the failover; the figures would be wrong");
    }

    // The failover.
    let standbys: Vec<usize> = (0..args.masters).filter(|i| *i != leader).collect();
    let old_before = cluster.memory(leader);
    let new_before: Vec<_> = standbys.iter().map(|i| (*i, cluster.memory(*i))).collect();
    let killed_leader = cluster.addrs[leader].clone();
    let killed = Instant::now();
    cluster.kill(leader).await.context("killing the leader")?;
    let limit = timeout + args.session_timeout;
    let cluster_view: &Cluster = cluster;
    let master_side = async {
        let (new, elected) = cluster_view
            .wait_elected(Some(leader), limit)
            .await
            .context("phase 'failover'")?;
        let leading = cluster_view
            .wait_leading(new, limit)
            .await
            .context("phase 'failover'")?;
        let http = MetricsClient::new(&cluster_view.addrs[new])?;
        let (mut slaves, mut frameworks) = (None, None);
        let deadline = Instant::now() + limit;
        while slaves.is_none() || frameworks.is_none() {
            if let Ok(s) = http.snapshot().await {
                let reached = |k: &str, v: usize| s.get(k).is_some_and(|x| *x >= v as f64);
                if slaves.is_none() && reached("master/slaves_active", n) {
                    slaves = Some(Instant::now());
                }
                if frameworks.is_none() && reached("master/frameworks_active", f) {
                    frameworks = Some(Instant::now());
                }
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "phase 'failover' timed out after {limit:?}: the new leader's slaves_active \
                     or frameworks_active never reached {n} / {f}"
                );
            }
            tokio::time::sleep(METRICS_POLL).await;
        }
        let (slaves, frameworks) = (slaves.unwrap_or(leading), frameworks.unwrap_or(leading));
        anyhow::Ok((new, elected, leading, slaves, frameworks))
    };
    let party_side = async {
        let (mut reregistered, mut resubscribed) = (None, None);
        let offered = wait_until(
            "failover",
            limit,
            || {
                agents.check()?;
                fw.check()?;
                if reregistered.is_none() && AgentCounters::get(&agents.reregistered) >= n as u64 {
                    reregistered = Some(Instant::now());
                }
                if resubscribed.is_none() && FrameworkCounters::get(&fw.resubscribed) >= f as u64 {
                    resubscribed = Some(Instant::now());
                }
                Ok(reregistered.is_some()
                    && FrameworkCounters::get(&fw.offered_after_resubscription) >= f as u64)
            },
            || {
                format!(
                    "{} of {n} agents reregistered, {} of {f} frameworks resubscribed, {} offered",
                    AgentCounters::get(&agents.reregistered),
                    FrameworkCounters::get(&fw.resubscribed),
                    FrameworkCounters::get(&fw.offered_after_resubscription)
                )
            },
        )
        .await?;
        anyhow::Ok((
            reregistered.unwrap_or(offered),
            resubscribed.unwrap_or(offered),
            offered,
        ))
    };
    let (masters, parties) = tokio::try_join!(master_side, party_side)?;
    let (new, elected, leading, slaves, frameworks_active) = masters;
    let (reregistered, resubscribed, offered) = parties;
    let since = |at: Instant| at.saturating_duration_since(killed).as_secs_f64();
    let after = http_after(cluster, new, t, timeout).await?;
    let new_after = cluster.memory(new);
    let registry = cluster.registry().await.context("reading the registry")?;
    let a = since(elected);
    let b = since(slaves);
    Ok(FailoverBenchReport {
        agents: n,
        frameworks: f,
        tasks: t,
        masters: args.masters,
        session_timeout_seconds: args.session_timeout.as_secs_f64(),
        zookeeper: cluster.zookeeper.clone(),
        setup: SetupFigures {
            first_leader_seconds: first_leader.as_secs_f64(),
            registration_seconds: registration.as_secs_f64(),
            subscription_seconds: subscription.as_secs_f64(),
            launch_seconds: launch.as_secs_f64(),
            registry_complete_seconds: registry_complete.as_secs_f64(),
        },
        failover: FailoverFigures {
            killed_leader,
            new_leader: cluster.addrs[new].clone(),
            elected_seconds: a,
            leading_seconds: since(leading),
            agents_reregistered_seconds: since(reregistered),
            slaves_active_seconds: b,
            frameworks_resubscribed_seconds: since(resubscribed),
            frameworks_offered_seconds: since(offered),
            frameworks_active_seconds: since(frameworks_active),
            reregistration_after_election_seconds: b - a,
            target_seconds: REREGISTRATION_TARGET.as_secs_f64(),
            target_met: b - a < REREGISTRATION_TARGET.as_secs_f64(),
            tasks_running_after: after,
            agent_disconnections: AgentCounters::get(&agents.disconnections),
            framework_reconnections: FrameworkCounters::get(&fw.reconnections),
            tasks_killed_on_reregistration: AgentCounters::get(&agents.killed_on_reregistration),
        },
        memory: FailoverMemory {
            old_leader_before_kill: old_before,
            new_leader_before_kill: new_before
                .into_iter()
                .find(|(i, _)| *i == new)
                .and_then(|(_, m)| m),
            new_leader_after: new_after,
        },
        registry,
        total_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Waits until the new leader counts every task running again; returns its count.
async fn http_after(
    cluster: &Cluster,
    new: usize,
    tasks: usize,
    timeout: Duration,
) -> anyhow::Result<u64> {
    let http = MetricsClient::new(&cluster.addrs[new])?;
    http.wait_for(
        "after failover",
        "master/tasks_running",
        tasks as f64,
        timeout,
    )
    .await?;
    let snapshot = http.snapshot().await.context("phase 'after failover'")?;
    Ok(snapshot.get("master/tasks_running").copied().unwrap_or(0.0) as u64)
}
