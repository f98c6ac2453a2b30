//! The figures of `agora bench agent`: JSON through `serde`, and a table.

use serde::Serialize;

use crate::target::MemoryReading;

/// p50/p99/max of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LatencyFigures {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// Memory of the executor shims, averaged over all of them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShimFigures {
    /// Shims found (processes `executor --config <work dir>/...`).
    pub count: usize,
    /// The program they run (`agora-executor`, or `agora` without it).
    pub program: String,
    /// Mean `VmRSS` (KiB): shared pages of the binary counted in each.
    pub avg_rss_kb: f64,
    /// Mean `RssAnon` (KiB): the shim's private memory.
    pub avg_rss_anon_kb: f64,
    /// Largest `VmRSS` (KiB).
    pub max_rss_kb: u64,
}

/// The result of `agora bench agent`.
#[derive(Debug, Clone, Serialize)]
pub struct AgentBenchReport {
    /// Tasks launched.
    pub tasks: usize,
    /// The task command.
    pub command: String,
    /// The agent's `--isolation` (`default` when the host decides).
    pub isolation: String,
    /// ACCEPT calls made.
    pub accepts: usize,
    /// First ACCEPT sent → last TASK_RUNNING received.
    pub all_running_secs: f64,
    /// Per task: ACCEPT sent → TASK_RUNNING received.
    pub launch_latency: LatencyFigures,
    /// The same command spawned directly by the bench, one after another
    /// (`Command::spawn`, which returns once the child exec'd).
    pub bare_spawn: LatencyFigures,
    /// All the bare spawns, in seconds.
    pub bare_spawn_total_secs: f64,
    /// Tasks launched one at a time after the burst.
    pub serial_tasks: usize,
    /// Their ACCEPT sent → TASK_RUNNING received.
    pub serial_latency: LatencyFigures,
    /// Serial launch p50 minus bare-spawn p50: what the agent adds to a launch.
    pub p50_overhead_ms: f64,
    /// The agent process with every task running.
    pub agent_memory: MemoryReading,
    /// The shims with every task running.
    pub shims: ShimFigures,
    /// The tasks' health checks, when they carry them.
    pub checks: Option<CheckFigures>,
    /// How long the agent took to stop (SIGTERM kills its tasks).
    pub stop_secs: f64,
    /// Task processes still alive after the agent stopped (killed by the bench).
    pub leftover_tasks: usize,
}

/// CPU used over a window with every check running, in % of one core;
/// `None` for a party the bench does not run apart.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuFigures {
    /// The real agent.
    pub agent_pct: Option<f64>,
    /// All its executor shims together.
    pub shims_pct: Option<f64>,
    /// The master.
    pub master_pct: Option<f64>,
    /// Marathon.
    pub marathon_pct: Option<f64>,
    /// The bench process itself: the check server (and, in the health
    /// bench, the emulated agents and their checks).
    pub bench_pct: f64,
}

/// What health checks at scale cost and how fast they find a sick task.
#[derive(Debug, Clone, Serialize)]
pub struct CheckFigures {
    /// Tasks checked.
    pub tasks: usize,
    /// Who runs the checks (`shims`, `emulated agents`, `Marathon`).
    pub checked_by: String,
    /// Their interval (s).
    pub interval_secs: f64,
    /// Consecutive failures that kill a task.
    pub consecutive_failures: u32,
    /// The CPU window (s).
    pub window_secs: f64,
    /// Checks answered per second by the bench's server over the window.
    pub probes_per_sec: f64,
    /// What the interval asks for: tasks / interval.
    pub expected_per_sec: f64,
    /// Checks Marathon started an interval or more late over the window
    /// (intervals missed; Marathon-side checks only).
    pub late_probes: Option<u64>,
    /// CPU over the window.
    pub cpu: CpuFigures,
    /// Tasks turned sick at once.
    pub sick: usize,
    /// Sick → TASK_KILLED, per sick task.
    pub detection: LatencyFigures,
    /// The target for the p99: interval × failures + 1 s.
    pub target_p99_ms: f64,
}

impl CheckFigures {
    /// The figures as table lines.
    pub fn lines(&self) -> Vec<String> {
        let pct = |name: &str, v: Option<f64>| v.map(|v| format!("{name} {v:.1}%"));
        let cpu: Vec<String> = [
            pct("agent", self.cpu.agent_pct),
            pct("shims", self.cpu.shims_pct),
            pct("master", self.cpu.master_pct),
            pct("Marathon", self.cpu.marathon_pct),
            pct("bench (check server)", Some(self.cpu.bench_pct)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let d = &self.detection;
        let mut lines = vec![
            format!(
                "  checks            {} tasks checked by {}, every {:.0} s, killed after {} failures",
                self.tasks, self.checked_by, self.interval_secs, self.consecutive_failures
            ),
            format!(
                "  probe rate        {:.0}/s answered (the interval asks {:.0}/s){}",
                self.probes_per_sec,
                self.expected_per_sec,
                self.late_probes
                    .map(|l| format!(", {l} started an interval late"))
                    .unwrap_or_default()
            ),
            format!(
                "  CPU               {} of one core, over {:.0} s",
                cpu.join(", "),
                self.window_secs
            ),
            format!(
                "  detection         {} sick at once: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (target p99 <= {:.0} ms)",
                self.sick, d.p50_ms, d.p99_ms, d.max_ms, self.target_p99_ms
            ),
        ];
        lines.retain(|l| !l.is_empty());
        lines
    }
}

impl AgentBenchReport {
    /// A human-readable summary.
    pub fn table(&self) -> String {
        let mib = |kb: f64| kb / 1024.0;
        let l = &self.launch_latency;
        let b = &self.bare_spawn;
        let s = &self.shims;
        [
            format!(
                "agent bench: {} x `{}` on one agent (isolation: {})",
                self.tasks, self.command, self.isolation
            ),
            format!(
                "  all running       {:>9.2} s from the first ACCEPT ({} ACCEPT call(s))",
                self.all_running_secs, self.accepts
            ),
            format!(
                "  burst latency     p50 {:>8.1} ms   p99 {:>8.1} ms   max {:>8.1} ms",
                l.p50_ms, l.p99_ms, l.max_ms
            ),
            format!(
                "  bare fork/exec    p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms   ({:.2} s in all)",
                b.p50_ms, b.p99_ms, b.max_ms, self.bare_spawn_total_secs
            ),
            format!(
                "  one at a time     p50 {:>8.1} ms   p99 {:>8.1} ms   max {:>8.1} ms   ({} tasks)",
                self.serial_latency.p50_ms,
                self.serial_latency.p99_ms,
                self.serial_latency.max_ms,
                self.serial_tasks
            ),
            format!(
                "  p50 overhead      {:>9.1} ms (one at a time, over bare fork/exec)",
                self.p50_overhead_ms
            ),
            format!(
                "  agent memory      RSS {:.1} MiB, peak {:.1} MiB",
                mib(self.agent_memory.rss_kb as f64),
                mib(self.agent_memory.peak_kb as f64)
            ),
            format!(
                "  shim memory       {} shims ({}): RSS avg {:.2} MiB (max {:.2}), private (RssAnon) avg {:.2} MiB",
                s.count,
                s.program,
                mib(s.avg_rss_kb),
                mib(s.max_rss_kb as f64),
                mib(s.avg_rss_anon_kb)
            ),
        ]
        .into_iter()
        .chain(self.checks.iter().flat_map(CheckFigures::lines))
        .chain([format!(
            "  stop              {:.2} s, {} task process(es) left over",
            self.stop_secs, self.leftover_tasks
        )])
        .collect::<Vec<_>>()
        .join("\n")
    }
}
