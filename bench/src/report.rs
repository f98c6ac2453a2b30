//! The figures a master bench reports: serializable for machines, and a
//! table for people.

use std::fmt::Write as _;

use serde::Serialize;

use crate::metrics::AllocationStats;
use crate::target::MemoryReading;

/// Everything one run of the master bench measured.
#[derive(Debug, Clone, Serialize)]
pub struct MasterBenchReport {
    /// Emulated agents.
    pub agents: usize,
    /// Frameworks.
    pub frameworks: usize,
    /// Tasks launched in all.
    pub tasks: usize,
    /// HTTP/2 connections the agents were spread over.
    pub connections: usize,
    /// Resources of each agent.
    pub agent_resources: String,
    /// CPUs per task.
    pub task_cpus: f64,
    /// Memory (MB) per task.
    pub task_mem: f64,
    /// Which master was measured: `spawned`, `in-process` or `address <host:port>`.
    pub master: String,
    /// Phase 1.
    pub registration: RegistrationFigures,
    /// Phase 2.
    pub subscription: SubscriptionFigures,
    /// Phase 3.
    pub launch: LaunchFigures,
    /// The master's allocation latency window read right after the launch
    /// (it covers the last 1000 runs, so registration runs too).
    pub allocation_during_launch: AllocationStats,
    /// Phase 4: every framework revived and declining without filters.
    pub steady: SteadyFigures,
    /// Phase 5; `None` for a master we did not start.
    pub memory: Option<MemoryFigures>,
    /// Framework connections lost (and re-established by the SDK) during the bench.
    pub framework_reconnections: u64,
    /// Why the latest one was lost.
    pub last_reconnection_reason: Option<String>,
    /// Wall time of the whole bench, master start to stop.
    pub total_seconds: f64,
}

/// Agent registration.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrationFigures {
    /// From opening the first connection until every agent got `Registered`.
    pub seconds: f64,
    /// `agents / seconds`.
    pub agents_per_sec: f64,
    /// From the same start until the master's `master/slaves_active` reached the count.
    pub seconds_until_active: f64,
}

/// Framework subscription.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionFigures {
    /// From starting the schedulers until every one got SUBSCRIBED.
    pub seconds: f64,
    /// `frameworks / seconds`.
    pub frameworks_per_sec: f64,
}

/// Task launch.
#[derive(Debug, Clone, Serialize)]
pub struct LaunchFigures {
    /// From telling the frameworks to revive until every task was running
    /// at its framework and acknowledged back at its agent.
    pub wall_seconds: f64,
    /// From the first ACCEPT until the same point.
    pub seconds_from_first_accept: f64,
    /// `tasks / seconds_from_first_accept`.
    pub tasks_per_sec: f64,
    /// Offers the frameworks received during the launch.
    pub offers_received: u64,
    /// `offers_received / wall_seconds`.
    pub offers_per_sec: f64,
    /// Offers declined during the launch.
    pub offers_declined: u64,
    /// ACCEPT calls made.
    pub accepts: u64,
    /// Tasks the frameworks saw TASK_RUNNING.
    pub running_at_frameworks: u64,
    /// RunTask messages the agents received.
    pub run_tasks_at_agents: u64,
    /// Acknowledgements the agents received.
    pub acks_at_agents: u64,
    /// The master's `master/tasks_running` afterwards.
    pub master_tasks_running: u64,
}

/// The steady state with every framework revived.
#[derive(Debug, Clone, Serialize)]
pub struct SteadyFigures {
    /// How long it ran.
    pub seconds: f64,
    /// Allocation runs during it (if fewer than the window, the percentiles
    /// also cover earlier runs).
    pub runs: u64,
    /// The master's allocation latency window at its end.
    pub allocation: AllocationStats,
    /// Offers the frameworks received during it.
    pub offers_received: u64,
    /// `offers_received / seconds`.
    pub offers_per_sec: f64,
}

/// The master's memory.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryFigures {
    /// Whose memory: the master process alone, or the whole bench process.
    pub scope: String,
    /// Once the master answered `/health`.
    pub start: MemoryReading,
    /// Once every agent was registered.
    pub after_registration: MemoryReading,
    /// Once every framework was subscribed.
    pub after_subscription: MemoryReading,
    /// Once every task was running.
    pub after_launch: MemoryReading,
    /// At the end of the steady state.
    pub end: MemoryReading,
    /// `(after_registration - start) / agents`, KiB.
    pub per_agent_kb: f64,
    /// `(after_subscription - after_registration) / frameworks`, KiB.
    pub per_framework_kb: f64,
    /// `(after_launch - after_subscription) / tasks`, KiB.
    pub per_task_kb: f64,
}

impl MasterBenchReport {
    /// A human-readable table of the figures.
    pub fn table(&self) -> String {
        let mut t = Table::default();
        t.title(&format!(
            "master bench: {} agents ({} connections), {} frameworks, {} tasks; master {}",
            self.agents, self.connections, self.frameworks, self.tasks, self.master
        ));
        let r = &self.registration;
        t.row("registration", &format!("{:.2} s", r.seconds));
        t.row("  agents/s", &format!("{:.0}", r.agents_per_sec));
        t.row(
            "  until slaves_active = N",
            &format!("{:.2} s", r.seconds_until_active),
        );
        let s = &self.subscription;
        t.row("subscription", &format!("{:.2} s", s.seconds));
        t.row("  frameworks/s", &format!("{:.0}", s.frameworks_per_sec));
        let l = &self.launch;
        t.row("launch wall time", &format!("{:.2} s", l.wall_seconds));
        t.row(
            "  from first ACCEPT",
            &format!("{:.2} s", l.seconds_from_first_accept),
        );
        t.row("  tasks/s", &format!("{:.0}", l.tasks_per_sec));
        t.row("  offers received", &l.offers_received.to_string());
        t.row("  offers/s", &format!("{:.0}", l.offers_per_sec));
        t.row(
            "  accepts / declines",
            &format!("{} / {}", l.accepts, l.offers_declined),
        );
        t.row(
            "  running (fw / acks / master)",
            &format!(
                "{} / {} / {}",
                l.running_at_frameworks, l.acks_at_agents, l.master_tasks_running
            ),
        );
        allocation_rows(
            &mut t,
            "allocation (after launch)",
            &self.allocation_during_launch,
        );
        let st = &self.steady;
        allocation_rows(
            &mut t,
            &format!(
                "allocation (steady, {} runs in {:.1} s)",
                st.runs, st.seconds
            ),
            &st.allocation,
        );
        t.row("  offers/s (steady)", &format!("{:.0}", st.offers_per_sec));
        match &self.memory {
            Some(m) => {
                t.row("memory", &m.scope);
                let mb = |kb: u64| format!("{:.1} MiB", kb as f64 / 1024.0);
                t.row("  RSS at start", &mb(m.start.rss_kb));
                t.row("  RSS after registration", &mb(m.after_registration.rss_kb));
                t.row("  RSS after subscription", &mb(m.after_subscription.rss_kb));
                t.row("  RSS after launch", &mb(m.after_launch.rss_kb));
                t.row("  RSS at end", &mb(m.end.rss_kb));
                t.row("  peak RSS (VmHWM)", &mb(m.end.peak_kb));
                t.row("  per agent", &format!("{:.1} KiB", m.per_agent_kb));
                t.row("  per framework", &format!("{:.1} KiB", m.per_framework_kb));
                t.row("  per task", &format!("{:.2} KiB", m.per_task_kb));
            }
            None => t.row("memory", "not measured (master not started by the bench)"),
        }
        if self.framework_reconnections > 0 {
            t.row(
                "framework reconnections",
                &format!(
                    "{} (latest: {})",
                    self.framework_reconnections,
                    self.last_reconnection_reason.as_deref().unwrap_or("")
                ),
            );
        }
        t.row("total", &format!("{:.1} s", self.total_seconds));
        t.out
    }
}

fn allocation_rows(t: &mut Table, title: &str, a: &AllocationStats) {
    t.row(
        title,
        &format!("window {} of {} runs", a.window, a.runs_total),
    );
    t.row(
        "  p50 / p90 / p99 / max",
        &format!(
            "{:.3} / {:.3} / {:.3} / {:.3} ms",
            a.p50_ms, a.p90_ms, a.p99_ms, a.max_ms
        ),
    );
}

/// Two aligned columns.
#[derive(Default)]
pub(crate) struct Table {
    /// The text so far.
    pub out: String,
}

impl Table {
    /// A title, underlined.
    pub fn title(&mut self, title: &str) {
        let _ = writeln!(self.out, "{title}");
        let _ = writeln!(self.out, "{}", "-".repeat(title.len().min(100)));
    }

    /// A named value.
    pub fn row(&mut self, name: &str, value: &str) {
        let _ = writeln!(self.out, "{name:<44} {value}");
    }
}

/// `count / seconds`, 0 when no time passed.
pub(crate) fn rate(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count / seconds
    } else {
        0.0
    }
}

/// `(after - before) / count` in KiB, 0 for no items.
pub(crate) fn per_item(after: u64, before: u64, count: usize) -> f64 {
    if count == 0 {
        return 0.0;
    }
    (after as f64 - before as f64) / count as f64
}
