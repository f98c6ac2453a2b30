//! `agora bench agent` end to end, small: the real binary spawns a master
//! and an agent, launches 20 + 5 tasks under real shims, measures, and leaves
//! nothing behind. No timing is asserted.

mod support;

use std::process::Stdio;

use support::agora;

#[test]
fn a_small_agent_bench_runs_every_task_and_leaves_none() {
    let output = agora()
        .args(["bench", "agent", "--tasks", "20", "--serial", "5"])
        .args(["--timeout", "60secs"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run agora bench agent");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench failed: {stdout}");
    // Pretty JSON first, then the table.
    let json_end = stdout
        .find("\nagent bench:")
        .expect("the table follows the JSON");
    let report: serde_json::Value = serde_json::from_str(&stdout[..json_end]).expect("JSON report");

    assert_eq!(report["tasks"], 20);
    assert_eq!(report["leftover_tasks"], 0, "{stdout}");
    assert_eq!(report["serial_tasks"], 5);
    assert_eq!(report["shims"]["count"], 25, "one shim per task: {stdout}");
    assert!(report["shims"]["avg_rss_kb"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(report["all_running_secs"].as_f64().unwrap_or(0.0) > 0.0);
    let launch = &report["launch_latency"];
    assert!(launch["p50_ms"].as_f64() <= launch["p99_ms"].as_f64());
    assert!(report["bare_spawn"]["p50_ms"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(report["agent_memory"]["rss_kb"].as_u64().unwrap_or(0) > 0);
}
