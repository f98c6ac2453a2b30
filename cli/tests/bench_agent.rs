//! `agora bench agent` and `agora bench health` end to end, small: the real
//! binary spawns a master and an agent, launches 20 + 5 tasks under real
//! shims with their health checks, turns some sick, measures, and leaves
//! nothing behind; the health bench adds emulated agents and Marathon. No
//! timing is asserted.

mod support;

use std::process::Stdio;

use support::agora;

#[test]
fn a_small_agent_bench_runs_every_task_and_leaves_none() {
    let output = agora()
        .args(["bench", "agent", "--tasks", "20", "--serial", "5"])
        .args([
            "--sick",
            "3",
            "--cpu-window",
            "1secs",
            "--timeout",
            "60secs",
        ])
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
    // Cargo builds the small shim beside `agora`: the agent runs it.
    assert_eq!(report["shims"]["program"], "agora-executor", "{stdout}");
    // Every task's check ran, and the three turned sick were killed.
    let checks = &report["checks"];
    assert_eq!(checks["tasks"], 25, "burst and serial tasks: {stdout}");
    assert!(
        checks["probes_per_sec"].as_f64().unwrap_or(0.0) > 0.0,
        "{stdout}"
    );
    assert_eq!(checks["sick"], 3, "{stdout}");
    assert!(
        checks["detection"]["p50_ms"].as_f64().unwrap_or(0.0) > 0.0,
        "{stdout}"
    );
}

#[test]
fn a_small_health_bench_finds_every_sick_task_in_each_phase() {
    let output = agora()
        .args([
            "bench",
            "health",
            "--real-tasks",
            "5",
            "--mesos-tasks",
            "100",
        ])
        .args([
            "--marathon-tasks",
            "100",
            "--tasks-per-agent",
            "25",
            "--sick",
            "3",
        ])
        .args(["--cpu-window", "1secs", "--timeout", "90secs"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run agora bench health");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench failed: {stdout}");
    let json_end = stdout
        .find("\nhealth bench")
        .expect("the table follows the JSON");
    let report: serde_json::Value = serde_json::from_str(&stdout[..json_end]).expect("JSON report");
    assert_eq!(report["real"]["leftover_tasks"], 0, "{stdout}");
    for (phase, tasks, by) in [
        ("real", 5, "their shims"),
        ("mesos", 100, "emulated agents (the agent's check code)"),
        ("marathon", 100, "Marathon"),
    ] {
        let checks = &report[phase]["checks"];
        assert_eq!(checks["tasks"], tasks, "{phase}: {stdout}");
        assert_eq!(checks["checked_by"], by, "{phase}: {stdout}");
        assert_eq!(checks["sick"], 3, "{phase}: {stdout}");
        // A sick task is killed no sooner than its third failed probe.
        let p50 = checks["detection"]["p50_ms"].as_f64().unwrap_or(0.0);
        assert!(p50 >= 1000.0, "{phase}: detected in {p50} ms: {stdout}");
    }
    assert!(
        report["marathon"]["checks"]["late_probes"].is_u64(),
        "{stdout}"
    );
}
