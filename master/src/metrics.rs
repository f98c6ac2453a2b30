//! Counters the master keeps for `/metrics/snapshot`, and the allocation
//! latency window behind `allocator/mesos/allocation_run_ms/*`.

use std::collections::VecDeque;
use std::time::Duration;

use agora_proto::TaskState;

/// How many recent allocation runs the percentiles cover.
const ALLOCATION_WINDOW: usize = 1000;

/// Monotonic counters and the allocation latency window.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Tasks that reached each terminal state (Mesos' `master/tasks_*` counters).
    pub tasks_finished: u64,
    /// See `tasks_finished`.
    pub tasks_failed: u64,
    /// See `tasks_finished`.
    pub tasks_killed: u64,
    /// See `tasks_finished`.
    pub tasks_lost: u64,
    /// See `tasks_finished`.
    pub tasks_error: u64,
    /// See `tasks_finished`.
    pub tasks_dropped: u64,
    /// See `tasks_finished`.
    pub tasks_gone: u64,
    /// Tasks that became unreachable, ever.
    pub tasks_unreachable_total: u64,
    /// Tasks sent to agents.
    pub tasks_launched: u64,
    /// Offers made.
    pub offers_sent: u64,
    /// Offers rescinded.
    pub offers_rescinded: u64,
    /// Agent registrations.
    pub agent_registrations: u64,
    /// Agent reregistrations.
    pub agent_reregistrations: u64,
    /// Agents marked unreachable.
    pub agent_removals: u64,
    /// Scheduler calls received.
    pub calls: u64,
    /// Scheduler calls dropped as invalid.
    pub invalid_calls: u64,
    /// Status updates booked.
    pub valid_status_updates: u64,
    /// Status updates dropped as invalid.
    pub invalid_status_updates: u64,
    /// Allocation runs.
    pub allocation_runs: u64,
    /// Recent allocation run times in milliseconds.
    pub allocation_run_ms: VecDeque<f64>,
}

impl Metrics {
    /// Counts a task reaching a terminal state.
    pub fn task_terminal(&mut self, state: TaskState) {
        match state {
            TaskState::TaskFinished => self.tasks_finished += 1,
            TaskState::TaskFailed => self.tasks_failed += 1,
            TaskState::TaskKilled => self.tasks_killed += 1,
            TaskState::TaskLost => self.tasks_lost += 1,
            TaskState::TaskError => self.tasks_error += 1,
            TaskState::TaskDropped => self.tasks_dropped += 1,
            TaskState::TaskGone | TaskState::TaskGoneByOperator => self.tasks_gone += 1,
            _ => {}
        }
    }

    /// Records one allocation run.
    pub fn allocation_run(&mut self, took: Duration) {
        self.allocation_runs += 1;
        self.allocation_run_ms
            .push_back(took.as_secs_f64() * 1000.0);
        if self.allocation_run_ms.len() > ALLOCATION_WINDOW {
            self.allocation_run_ms.pop_front();
        }
    }

    /// (p50, p90, p99, max) of the recent allocation runs, in milliseconds.
    pub fn allocation_percentiles(&self) -> Option<(f64, f64, f64, f64)> {
        if self.allocation_run_ms.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.allocation_run_ms.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some((at(0.5), at(0.9), at(0.99), v[v.len() - 1]))
    }
}

/// Renders a flat metrics map in the Prometheus text format:
/// `master/cpus_total` becomes `agora_master_cpus_total`.
pub fn prometheus_text(metrics: &[(String, f64)]) -> String {
    let mut out = String::new();
    for (key, value) in metrics {
        let name: String = format!("agora_{key}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        out.push_str(&format!("# TYPE {name} gauge\n{name} {value}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_over_the_window() {
        let mut m = Metrics::default();
        assert!(m.allocation_percentiles().is_none());
        for ms in 1..=100 {
            m.allocation_run(Duration::from_millis(ms));
        }
        let (p50, _, p99, max) = m.allocation_percentiles().expect("some");
        assert!((p50 - 51.0).abs() < 1.0, "{p50}");
        assert!((p99 - 99.0).abs() < 1.0, "{p99}");
        assert_eq!(max, 100.0);
    }

    #[test]
    fn prometheus_names_are_sanitized() {
        let text = prometheus_text(&[("master/cpus_total".into(), 4.0)]);
        assert_eq!(
            text,
            "# TYPE agora_master_cpus_total gauge\nagora_master_cpus_total 4\n"
        );
    }
}
