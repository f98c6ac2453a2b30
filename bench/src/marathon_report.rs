//! The figures a Marathon bench reports: serializable for machines, and a
//! table for people. Each headline figure is reported beside its target
//! (the bench never fails on a missed target).

use serde::Serialize;

use crate::report::Table;
use crate::target::MemoryReading;

/// Everything one run of the Marathon bench measured.
#[derive(Debug, Clone, Serialize)]
pub struct MarathonBenchReport {
    /// Emulated agents.
    pub agents: usize,
    /// Resources of each agent.
    pub agent_resources: String,
    /// CPUs per instance.
    pub task_cpus: f64,
    /// Memory (MB) per instance.
    pub task_mem: f64,
    /// Which master: `spawned`, `in-process` or `address <host:port>`.
    pub master: String,
    /// Where Marathon ran.
    pub marathon: String,
    /// Getting agents and Marathon up.
    pub setup: SetupFigures,
    /// Phase 1: one app scaled up.
    pub scale: DeployFigures,
    /// Phase 2: many apps in one `POST /v2/groups`.
    pub group: DeployFigures,
    /// Removing phases 1 and 2 (one `DELETE /v2/groups`).
    pub teardown: TeardownFigures,
    /// Deploying the apps phases 3 and 4 use (one `POST /v2/groups`).
    pub read_setup: DeployFigures,
    /// Phase 3: `GET /v2/apps?embed=apps.tasks` under concurrent clients.
    pub read: ReadFigures,
    /// Phase 4: Marathon stopped and started again on the same store.
    pub failover: MarathonFailoverFigures,
    /// Memory between phases.
    pub memory: MarathonMemory,
    /// Wall time of the whole bench.
    pub total_seconds: f64,
}

/// Getting agents and Marathon up.
#[derive(Debug, Clone, Serialize)]
pub struct SetupFigures {
    /// Until every agent was registered and active at the master.
    pub agents_seconds: f64,
    /// From starting Marathon until it served and was subscribed.
    pub marathon_seconds: f64,
}

/// A deployment timed until its instances run.
#[derive(Debug, Clone, Serialize)]
pub struct DeployFigures {
    /// What was deployed, e.g. `PUT /v2/apps/bench/scale {"instances": 1000}`.
    pub request: String,
    /// Apps deployed (or scaled).
    pub apps: usize,
    /// Instances launched by it.
    pub instances: usize,
    /// Instances running (in all) once it was done.
    pub running: u64,
    /// How long the request itself took to answer.
    pub request_ms: f64,
    /// From the answer until Marathon's state had every instance TASK_RUNNING
    /// (`marathon.instances.running.gauge` of `/metrics`, polled every 5 ms).
    pub running_seconds: f64,
    /// From the answer until no deployment was left.
    pub deployment_seconds: f64,
    /// `instances / running_seconds`.
    pub instances_per_sec: f64,
    /// RunTask messages the agents received during it.
    pub run_tasks_at_agents: u64,
    /// The target for `running_seconds`, if the issue set one.
    pub target_seconds: Option<f64>,
    /// Whether `running_seconds` met it.
    pub met: Option<bool>,
}

/// Removing apps.
#[derive(Debug, Clone, Serialize)]
pub struct TeardownFigures {
    /// Instances killed.
    pub instances: usize,
    /// From the `DELETE` answered until no instance and no deployment was left.
    pub seconds: f64,
}

/// Latencies, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencyMs {
    /// Requests measured.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl LatencyMs {
    /// Percentiles of `samples` (sorted here), in milliseconds.
    pub fn of(samples: &mut [std::time::Duration]) -> Self {
        samples.sort_unstable();
        let pick = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1000.0
        };
        LatencyMs {
            count: samples.len(),
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
            max: pick(1.0),
        }
    }
}

/// The read load.
#[derive(Debug, Clone, Serialize)]
pub struct ReadFigures {
    /// The request.
    pub request: String,
    /// Apps in the answer.
    pub apps: usize,
    /// Tasks in the answer.
    pub tasks: usize,
    /// Size of one answer, bytes (uncompressed).
    pub body_bytes: usize,
    /// Whether the clients asked for gzip answers (and decompressed them).
    pub gzip: bool,
    /// One client, one request at a time (no queueing): what one answer costs.
    pub single_client: LatencyMs,
    /// Concurrent clients (each its own connection, one request at a time).
    pub clients: usize,
    /// How long they read.
    pub seconds: f64,
    /// Answers other than 200, or failed requests.
    pub errors: u64,
    /// Under the concurrent clients.
    pub latency: LatencyMs,
    /// Answers per second, all clients together.
    pub requests_per_sec: f64,
    /// Body bytes per second, MiB.
    pub mib_per_sec: f64,
    /// The target for `latency.p99`, ms.
    pub target_p99_ms: f64,
    /// Whether it was met.
    pub met: bool,
}

/// Marathon stopped and a new instance started on the same store; every
/// time runs from the call that starts the new instance (with a local
/// election it is elected at once).
#[derive(Debug, Clone, Serialize)]
pub struct MarathonFailoverFigures {
    /// Apps stored.
    pub apps: usize,
    /// Instances stored.
    pub instances: usize,
    /// How long the old instance took to stop.
    pub stop_seconds: f64,
    /// Until the new instance led with its state loaded.
    pub leading_seconds: f64,
    /// Until `GET /v2/apps` answered with every app.
    pub apps_served_seconds: f64,
    /// Until `/metrics` counted every instance running.
    pub tasks_known_seconds: f64,
    /// Until `/v2/info` showed the same framework id as before.
    pub framework_id_seconds: f64,
    /// Until the master counted the framework connected again.
    pub resubscribed_seconds: f64,
    /// The latest of the four above: serving everything and resubscribed.
    pub serving_seconds: f64,
    /// The target for `serving_seconds`.
    pub target_seconds: f64,
    /// Whether it was met.
    pub met: bool,
}

/// Memory readings between phases.
#[derive(Debug, Clone, Serialize)]
pub struct MarathonMemory {
    /// Whose memory.
    pub scope: String,
    /// Before Marathon started (agents registered).
    pub before_marathon: Option<MemoryReading>,
    /// After phase 1.
    pub after_scale: Option<MemoryReading>,
    /// After phase 2.
    pub after_group: Option<MemoryReading>,
    /// With every app of phase 3 running.
    pub after_read_setup: Option<MemoryReading>,
    /// After the read load.
    pub after_read: Option<MemoryReading>,
    /// After the failover.
    pub after_failover: Option<MemoryReading>,
}

impl MarathonBenchReport {
    /// A human-readable table of the figures.
    pub fn table(&self) -> String {
        let mut t = Table::default();
        t.title(&format!(
            "marathon bench: {} agents, master {}, Marathon {}",
            self.agents, self.master, self.marathon
        ));
        t.row("agent resources", &self.agent_resources);
        t.row(
            "instance",
            &format!(
                "cpus {} mem {} MB, one host port",
                self.task_cpus, self.task_mem
            ),
        );
        t.row(
            "agents registered",
            &format!("{:.2} s", self.setup.agents_seconds),
        );
        t.row(
            "Marathon serving and subscribed",
            &format!("{:.2} s", self.setup.marathon_seconds),
        );
        for (name, d) in [
            ("scale", &self.scale),
            ("group", &self.group),
            ("read setup", &self.read_setup),
        ] {
            deploy_rows(&mut t, name, d);
        }
        t.row("teardown", "DELETE /v2/groups/bench?force=true");
        t.row(
            &format!("  until {} instances gone", self.teardown.instances),
            &format!("{:.2} s", self.teardown.seconds),
        );
        let r = &self.read;
        t.row("read", &r.request);
        t.row(
            "  answer",
            &format!(
                "{} apps, {} tasks, {:.1} MiB{}",
                r.apps,
                r.tasks,
                r.body_bytes as f64 / (1024.0 * 1024.0),
                if r.gzip { ", sent gzipped" } else { "" }
            ),
        );
        t.row(
            "  1 client: p50 / p99 / max",
            &format!(
                "{:.1} / {:.1} / {:.1} ms ({} requests)",
                r.single_client.p50,
                r.single_client.p99,
                r.single_client.max,
                r.single_client.count
            ),
        );
        t.row(
            &format!("  {} clients: p50 / p90 / p99 / max", r.clients),
            &format!(
                "{:.1} / {:.1} / {:.1} / {:.1} ms",
                r.latency.p50, r.latency.p90, r.latency.p99, r.latency.max
            ),
        );
        t.row(
            "  requests/s (MiB/s)",
            &format!(
                "{:.0} ({:.0}); {} requests in {:.1} s, {} errors",
                r.requests_per_sec, r.mib_per_sec, r.latency.count, r.seconds, r.errors
            ),
        );
        t.row(
            "  target p99",
            &verdict(&format!("< {:.0} ms", r.target_p99_ms), Some(r.met)),
        );
        let f = &self.failover;
        t.row(
            "failover",
            &format!("{} apps, {} instances stored", f.apps, f.instances),
        );
        t.row(
            "  old instance stopped",
            &format!("{:.2} s", f.stop_seconds),
        );
        t.row("  leading, state loaded", &secs(f.leading_seconds));
        t.row(
            "  GET /v2/apps with every app",
            &secs(f.apps_served_seconds),
        );
        t.row("  every task known running", &secs(f.tasks_known_seconds));
        t.row(
            "  same frameworkId in /v2/info",
            &secs(f.framework_id_seconds),
        );
        t.row("  resubscribed (master)", &secs(f.resubscribed_seconds));
        t.row(
            "  serving everything, resubscribed",
            &format!(
                "{} {}",
                secs(f.serving_seconds),
                verdict(&format!("< {:.0} s", f.target_seconds), Some(f.met))
            ),
        );
        let m = &self.memory;
        t.row("memory", &m.scope);
        let mb = |r: &Option<MemoryReading>| match r {
            Some(r) => format!("{:.1} MiB", r.rss_kb as f64 / 1024.0),
            None => "-".into(),
        };
        t.row("  RSS before Marathon", &mb(&m.before_marathon));
        t.row("  RSS after scale", &mb(&m.after_scale));
        t.row("  RSS after group", &mb(&m.after_group));
        t.row("  RSS after read setup", &mb(&m.after_read_setup));
        t.row("  RSS after read load", &mb(&m.after_read));
        t.row("  RSS after failover", &mb(&m.after_failover));
        if let Some(r) = &m.after_failover {
            t.row(
                "  peak RSS (VmHWM)",
                &format!("{:.1} MiB", r.peak_kb as f64 / 1024.0),
            );
        }
        t.row("total", &format!("{:.1} s", self.total_seconds));
        t.out
    }
}

fn secs(s: f64) -> String {
    format!("{s:.3} s")
}

fn verdict(target: &str, met: Option<bool>) -> String {
    match met {
        Some(true) => format!("(target {target}: met)"),
        Some(false) => format!("(target {target}: MISSED)"),
        None => String::new(),
    }
}

fn deploy_rows(t: &mut Table, name: &str, d: &DeployFigures) {
    t.row(name, &d.request);
    t.row("  answered in", &format!("{:.0} ms", d.request_ms));
    let target = d
        .target_seconds
        .map(|s| verdict(&format!("< {s:.0} s"), d.met))
        .unwrap_or_default();
    t.row(
        &format!("  until {} instances running", d.running),
        &format!("{:.2} s {target}", d.running_seconds),
    );
    t.row(
        "  until the deployment finished",
        &format!("{:.2} s", d.deployment_seconds),
    );
    t.row(
        "  launched/s (RunTask at agents)",
        &format!("{:.0} ({})", d.instances_per_sec, d.run_tasks_at_agents),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let l = LatencyMs::of(&mut samples);
        assert_eq!(l.count, 100);
        assert!((l.p50 - 50.0).abs() < 1e-9);
        assert!((l.p99 - 99.0).abs() < 1e-9);
        assert!((l.max - 100.0).abs() < 1e-9);
        assert_eq!(LatencyMs::of(&mut []).count, 0);
    }
}
