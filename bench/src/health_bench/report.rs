//! The figures of `agora bench health`: JSON through `serde`, and a table.

use serde::Serialize;

use crate::agent_bench::{CheckFigures, ShimFigures};
use crate::target::MemoryReading;

/// Phase 1: real tasks, checked by their shims.
#[derive(Debug, Clone, Serialize)]
pub struct RealFigures {
    /// The checks.
    pub checks: CheckFigures,
    /// The shims' memory with their checks running.
    pub shims: ShimFigures,
    /// The agent's memory.
    pub agent_memory: MemoryReading,
    /// Task processes left after the agent stopped.
    pub leftover_tasks: usize,
}

/// Phases 2 and 3: tasks on emulated agents, checked by them or by Marathon.
#[derive(Debug, Clone, Serialize)]
pub struct EmulatedFigures {
    /// The Marathon health check protocol.
    pub protocol: String,
    /// The group posted → every task healthy in Marathon (`tasksHealthy`).
    pub all_healthy_secs: f64,
    /// The sick tasks killed → every task healthy again (replacements).
    pub replaced_secs: f64,
    /// The checks.
    pub checks: CheckFigures,
}

/// The result of `agora bench health`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthBenchReport {
    /// Real tasks, checked by their shims.
    pub real: Option<RealFigures>,
    /// `MESOS_HTTP` checks, run by the (emulated) agents.
    pub mesos: Option<EmulatedFigures>,
    /// `HTTP` checks, run by Marathon.
    pub marathon: Option<EmulatedFigures>,
}

impl HealthBenchReport {
    /// A human-readable summary.
    pub fn table(&self) -> String {
        let mib = |kb: f64| kb / 1024.0;
        let mut lines = vec!["health bench".to_string()];
        if let Some(real) = &self.real {
            lines.push(format!(
                "real agent: {} tasks, each checked by its shim",
                real.checks.tasks
            ));
            lines.extend(real.checks.lines());
            lines.push(format!(
                "  shim memory       {} shims ({}): RSS avg {:.2} MiB (max {:.2}), private avg {:.2} MiB; agent RSS {:.1} MiB",
                real.shims.count,
                real.shims.program,
                mib(real.shims.avg_rss_kb),
                mib(real.shims.max_rss_kb as f64),
                mib(real.shims.avg_rss_anon_kb),
                mib(real.agent_memory.rss_kb as f64)
            ));
        }
        for (name, phase) in [
            ("Mesos checks", &self.mesos),
            ("Marathon checks", &self.marathon),
        ] {
            if let Some(p) = phase {
                lines.push(format!("{name} ({}): {} tasks", p.protocol, p.checks.tasks));
                lines.push(format!(
                    "  all healthy       {:.1} s after the group was posted; replacements healthy {:.1} s after the kills",
                    p.all_healthy_secs, p.replaced_secs
                ));
                lines.extend(p.checks.lines());
            }
        }
        lines.join("\n")
    }
}
