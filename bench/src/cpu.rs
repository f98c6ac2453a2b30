//! CPU time of processes: what a phase cost each party, as a share of one
//! core over a window.
//!
//! The time is the scheduler's own count of nanoseconds on a CPU
//! (`/proc/<pid>/task/<tid>/schedstat`, summed over the threads), not the
//! tick-sampled `utime`/`stime` of `/proc/<pid>/stat`: a thousand shims
//! that each wake once a second for a few microseconds, just after a tick,
//! are seldom caught running by the tick and would look free (seen here:
//! the same run read 0.2 % one time and 37 % another). `stat` is the
//! fallback where `schedstat` is missing.

use std::time::{Duration, Instant};

/// `/proc/<pid>/stat` counts CPU time in USER_HZ ticks, 100 per second on
/// Linux whatever the kernel's own tick rate.
const NANOS_PER_TICK: u64 = 10_000_000;

/// CPU time `pid` has used so far, in nanoseconds (every thread it has
/// now; threads that have ended are left out); `None` once it is gone.
pub(crate) fn cpu_nanos(pid: u32) -> Option<u64> {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    let mut any = false;
    for thread in threads.flatten() {
        let path = thread.path().join("schedstat");
        if let Some(ns) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| parse_schedstat(&s))
        {
            total += ns;
            any = true;
        }
    }
    if any {
        return Some(total);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ticks(&stat).map(|ticks| ticks * NANOS_PER_TICK)
}

/// The first field of `schedstat`: time spent on a CPU (ns).
fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// utime and stime, the 14th and 15th fields: the 12th and 13th after the
/// command, which may hold spaces and parentheses (hence the last `)`).
fn parse_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of a set of processes from a start, read again at the end.
#[derive(Debug, Clone)]
pub(crate) struct CpuWindow {
    pids: Vec<u32>,
    nanos: u64,
    at: Instant,
}

impl CpuWindow {
    /// Starts counting `pids` (their sum) now.
    pub fn start(pids: Vec<u32>) -> Self {
        let nanos = pids.iter().filter_map(|p| cpu_nanos(*p)).sum();
        CpuWindow {
            pids,
            nanos,
            at: Instant::now(),
        }
    }

    /// The CPU used since the start, in % of one core (a process gone in
    /// between takes its whole time out of the sum: the figure is then low).
    pub fn percent(&self) -> f64 {
        let now: u64 = self.pids.iter().filter_map(|p| cpu_nanos(*p)).sum();
        let secs = self
            .at
            .elapsed()
            .max(Duration::from_millis(1))
            .as_secs_f64();
        now.saturating_sub(self.nanos) as f64 / 1e9 / secs * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_schedstat_and_stat() {
        assert_eq!(
            parse_schedstat("428306786 231185216 1225\n"),
            Some(428_306_786)
        );
        assert_eq!(parse_schedstat(""), None);
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 17 5 0 0 20 0 1 0 100 1000 50";
        assert_eq!(parse_ticks(stat), Some(22));
        assert_eq!(parse_ticks("garbage"), None);
    }

    #[test]
    fn a_busy_process_shows_its_cpu() {
        let me = std::process::id();
        let window = CpuWindow::start(vec![me]);
        let before = cpu_nanos(me).expect("this process");
        // Spin until this process has used 50 ms more (however loaded the
        // machine is), then the window must show it.
        let cap = Instant::now() + Duration::from_secs(30);
        let mut x = 0u64;
        while cpu_nanos(me).expect("this process") < before + 50_000_000 && Instant::now() < cap {
            for _ in 0..100_000 {
                x = x.wrapping_mul(31).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
        assert!(window.percent() > 0.0);
    }
}
