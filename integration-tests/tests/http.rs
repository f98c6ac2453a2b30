//! The master's HTTP endpoints, in Mesos' shapes.

use agora_integration_tests::{Cluster, TestFramework};
use agora_proto::TaskState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_has_the_mesos_shape() {
    let cluster = Cluster::builder().agents(2).start().await;
    let mut f =
        TestFramework::subscribe(cluster.scheduler_config("shape").auto_acknowledge(true)).await;
    f.launch_on_next_offer("shaped", "sleep 30", 0.5, 64.0)
        .await;
    f.update("shaped", TaskState::TaskRunning).await;

    for path in ["/master/state", "/state", "/master/state.json"] {
        let state = cluster.get_json(path).await;
        assert_eq!(state["version"], agora_common::build::MESOS_API_VERSION);
        assert_eq!(state["git_tag"], format!("agora-{}", agora_common::VERSION));
        let pid = state["pid"].as_str().expect("pid");
        assert!(pid.starts_with("master@127.0.0.1:"), "{pid}");
        assert_eq!(state["leader"], state["pid"]);
        assert_eq!(state["leader_info"]["address"]["ip"], "127.0.0.1");
        assert_eq!(state["activated_slaves"], 2);
        assert_eq!(state["deactivated_slaves"], 0);
        assert_eq!(state["unreachable_slaves"], 0);
        let slaves = state["slaves"].as_array().expect("slaves");
        assert_eq!(slaves.len(), 2);
        for s in slaves {
            assert_eq!(s["resources"]["cpus"], 4.0);
            assert_eq!(s["resources"]["ports"], "[31000-31100]");
            for key in [
                "used_resources",
                "offered_resources",
                "unreserved_resources",
            ] {
                assert!(s[key].is_object(), "{key}");
            }
            assert!(s["pid"]
                .as_str()
                .is_some_and(|p| p.starts_with("slave(1)@")));
        }
        let fw = &state["frameworks"][0];
        assert_eq!(fw["name"], "shape");
        assert!(fw.get("pid").is_none(), "gRPC frameworks have no pid");
        assert_eq!(fw["used_resources"]["cpus"], 0.5);
        let task = &fw["tasks"][0];
        assert_eq!(task["id"], "shaped");
        assert_eq!(task["state"], "TASK_RUNNING");
        assert_eq!(task["statuses"][0]["state"], "TASK_RUNNING");
        assert!(fw["completed_tasks"].is_array() && fw["offers"].is_array());
        assert!(state["completed_frameworks"].is_array());
    }
    let metrics = cluster.metrics().await;
    for key in [
        "master/elected",
        "master/uptime_secs",
        "master/cpus_total",
        "master/cpus_used",
        "master/mem_total",
        "master/slaves_active",
        "master/frameworks_active",
        "master/outstanding_offers",
        "master/tasks_running",
        "master/tasks_finished",
        "master/tasks_failed",
        "master/tasks_lost",
    ] {
        assert!(metrics[key].is_number(), "{key} missing");
    }
    assert_eq!(metrics["master/cpus_total"], 8.0);
    assert_eq!(metrics["master/cpus_used"], 0.5);
    assert_eq!(metrics["master/tasks_running"], 1.0);
    assert_eq!(metrics["master/slaves_active"], 2.0);

    let base = format!("http://{}", cluster.master_addr());
    let prom = cluster
        .http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    assert!(prom.contains("agora_master_tasks_running 1"), "{prom}");
    let version: serde_json::Value = cluster.get_json("/version").await;
    // The Mesos API level, for tools that gate on it; Agora's own in the tag.
    assert_eq!(version["version"], agora_common::build::MESOS_API_VERSION);
    assert_eq!(
        version["git_tag"],
        format!("agora-{}", agora_common::VERSION)
    );
    assert!(version["git_sha"].is_string());
    let health = cluster
        .http()
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("GET");
    assert_eq!(health.status(), 200);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_endpoint_removes_a_framework() {
    let cluster = Cluster::builder().agents(1).start().await;
    let mut f =
        TestFramework::subscribe(cluster.scheduler_config("victim").auto_acknowledge(true)).await;
    f.launch_on_next_offer("v1", "sleep 30", 0.1, 16.0).await;
    f.update("v1", TaskState::TaskRunning).await;
    let base = format!("http://{}", cluster.master_addr());
    let missing = cluster
        .http()
        .post(format!("{base}/master/teardown"))
        .form(&[("x", "y")])
        .send()
        .await
        .expect("POST");
    assert_eq!(missing.status(), 400);
    let unknown = cluster
        .http()
        .post(format!("{base}/master/teardown"))
        .form(&[("frameworkId", "nope")])
        .send()
        .await
        .expect("POST");
    assert_eq!(unknown.status(), 400);
    let ok = cluster
        .http()
        .post(format!("{base}/master/teardown"))
        .form(&[("frameworkId", f.framework_id.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(ok.status(), 200);
    let error = f
        .expect(std::time::Duration::from_secs(10), "ERROR", |e| match e {
            agora_sdk::SchedulerEvent::Error(m) => Some(m.clone()),
            _ => None,
        })
        .await;
    assert!(error.contains("removed"));
    let state = cluster.state().await;
    assert_eq!(state["frameworks"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        state["completed_frameworks"][0]["id"],
        f.framework_id.as_str()
    );
    cluster.stop().await;
}
