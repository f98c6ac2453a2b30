//! A tiny master bench against an in-process master: a functional test that
//! the phases run end to end and the counts agree (no timing assertions).

use std::time::Duration;

use agora_bench::{run_master_bench, MasterBenchArgs, MasterTarget};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_in_process_bench_launches_every_task() {
    let mut args = MasterBenchArgs::new(20, 4, 200, MasterTarget::InProcess);
    args.timeout = Duration::from_secs(60);
    args.steady_duration = Duration::from_secs(1);
    let report = run_master_bench(args).await.expect("bench runs");

    assert_eq!(report.connections, 1);
    assert!(report.registration.agents_per_sec > 0.0);
    assert!(report.subscription.frameworks_per_sec > 0.0);
    let launch = &report.launch;
    assert_eq!(launch.running_at_frameworks, 200);
    assert_eq!(launch.run_tasks_at_agents, 200);
    assert_eq!(launch.acks_at_agents, 200);
    assert_eq!(launch.master_tasks_running, 200);
    assert!(launch.accepts >= 4, "each framework accepted at least once");
    assert!(launch.offers_received >= launch.accepts);
    assert!(launch.tasks_per_sec > 0.0 && launch.offers_per_sec > 0.0);
    assert!(report.allocation_during_launch.runs_total > 0);
    assert!(
        report.steady.runs > 0,
        "revived frameworks caused allocation runs"
    );
    assert!(report.steady.offers_received > 0);
    let memory = report
        .memory
        .as_ref()
        .expect("in-process memory is measured");
    assert!(memory.scope.contains("in-process"));
    assert!(memory.end.peak_kb >= memory.end.rss_kb);

    let json = serde_json::to_value(&report).expect("serializes");
    assert_eq!(json["launch"]["acks_at_agents"], 200);
    let table = report.table();
    assert!(
        table.contains("tasks/s") && table.contains("p50"),
        "{table}"
    );
}
