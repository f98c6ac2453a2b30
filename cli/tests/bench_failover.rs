//! `agora bench failover` end to end, small: a spawned ZooKeeper, three
//! spawned masters, 20 emulated agents, 2 frameworks and 100 tasks; the
//! leader is killed and the JSON report must tell a consistent story.

use std::process::Command;

use serde_json::Value;

#[test]
fn bench_failover_reports_a_consistent_failover() {
    let out = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args([
            "bench",
            "failover",
            "--agents",
            "20",
            "--frameworks",
            "2",
            "--tasks",
            "100",
            "--session-timeout",
            "1secs",
            "--timeout",
            "30secs",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run agora bench failover");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The JSON report comes first, then the table.
    let json_end = stdout.find("\n}\n").expect("a JSON report") + 2;
    let report: Value = serde_json::from_str(&stdout[..json_end]).expect("valid JSON");
    assert!(stdout[json_end..].contains("(b) - (a)"), "a table follows");

    assert_eq!(report["agents"], 20);
    assert_eq!(report["masters"], 3);
    let f = &report["failover"];
    assert_ne!(f["killed_leader"], f["new_leader"]);
    let secs = |k: &str| f[k].as_f64().unwrap_or_else(|| panic!("{k} in {f}"));
    let (a, leading, b, c) = (
        secs("elected_seconds"),
        secs("leading_seconds"),
        secs("slaves_active_seconds"),
        secs("frameworks_offered_seconds"),
    );
    // The dead leader's node lasts about a session; nothing comes back before a leader serves.
    assert!(a > 0.5 && a < 15.0, "(a) = {a}");
    assert!(
        leading >= a && b >= leading,
        "a {a} <= leading {leading} <= b {b}"
    );
    assert!(c >= secs("frameworks_resubscribed_seconds") && c >= leading);
    let diff = secs("reregistration_after_election_seconds");
    assert!((diff - (b - a)).abs() < 1e-9);
    assert_eq!(f["target_met"], diff < 5.0);
    assert_eq!(f["tasks_running_after"], 100);
    assert_eq!(f["tasks_killed_on_reregistration"], 0);
    assert!(f["agent_disconnections"].as_u64().expect("count") >= 20);

    let r = &report["registry"];
    assert_eq!(r["agent_keys"], 20);
    assert!(r["znodes"].as_u64() > r["keys"].as_u64());
    assert!(r["bytes"].as_u64().expect("bytes") > 20 * 50);
    let m = &report["memory"]["new_leader_after"];
    assert!(m["rss_kb"].as_u64().expect("rss") > 0);
    assert!(m["peak_kb"].as_u64() >= m["rss_kb"].as_u64());
}
