//! CPU time of processes, from `/proc/<pid>/stat`: what a phase cost each
//! party, as a share of one core over a window.

use std::time::{Duration, Instant};

/// `/proc` reports CPU time in USER_HZ ticks, 100 per second on Linux
/// whatever the kernel's own tick rate.
const TICKS_PER_SEC: f64 = 100.0;

/// User plus system CPU time of `pid` so far (ticks); `None` once it is gone.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ticks(&stat)
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
    ticks: u64,
    at: Instant,
}

impl CpuWindow {
    /// Starts counting `pids` (their sum) now.
    pub fn start(pids: Vec<u32>) -> Self {
        let ticks = pids.iter().filter_map(|p| cpu_ticks(*p)).sum();
        CpuWindow {
            pids,
            ticks,
            at: Instant::now(),
        }
    }

    /// The CPU used since the start, in % of one core (processes gone in
    /// between are left out of both readings' difference as best it can:
    /// their time up to the start is subtracted, what they used after is not
    /// seen).
    pub fn percent(&self) -> f64 {
        let now: u64 = self.pids.iter().filter_map(|p| cpu_ticks(*p)).sum();
        let secs = self
            .at
            .elapsed()
            .max(Duration::from_millis(1))
            .as_secs_f64();
        now.saturating_sub(self.ticks) as f64 / TICKS_PER_SEC / secs * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_past_an_odd_command() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 17 5 0 0 20 0 1 0 100 1000 50";
        assert_eq!(parse_ticks(stat), Some(22));
        assert_eq!(parse_ticks("garbage"), None);
    }

    #[test]
    fn a_busy_process_shows_its_cpu() {
        let me = std::process::id();
        let window = CpuWindow::start(vec![me]);
        let before = cpu_ticks(me).expect("this process");
        // Spin until this process has used 50 ms more (however loaded the
        // machine is), then the window must show it.
        let cap = Instant::now() + Duration::from_secs(30);
        let mut x = 0u64;
        while cpu_ticks(me).expect("this process") < before + 5 && Instant::now() < cap {
            for _ in 0..100_000 {
                x = x.wrapping_mul(31).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
        assert!(window.percent() > 0.0);
    }
}
