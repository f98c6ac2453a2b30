//! Failures: framework failover within and after its timeout, an agent cut
//! off and coming back, a master restart.

use std::time::Duration;

use agora_integration_tests::{assert_eventually, Cluster, TestFramework};
use agora_proto::framework_info::capability::Type as Capability;
use agora_proto::task_status::Reason;
use agora_proto::{TaskId, TaskState};
use agora_sdk::{Scheduler, SchedulerEvent};

async fn launch_sleeper(f: &mut TestFramework, id: &str) -> agora_proto::Offer {
    let offer = f.launch_on_next_offer(id, "sleep 100", 0.1, 32.0).await;
    f.update(id, TaskState::TaskRunning).await;
    offer
}

fn framework_json<'a>(
    state: &'a serde_json::Value,
    key: &str,
    id: &str,
) -> Option<&'a serde_json::Value> {
    state[key].as_array()?.iter().find(|f| f["id"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_that_resubscribes_within_its_failover_timeout_keeps_its_tasks() {
    let cluster = Cluster::builder().agents(1).start().await;
    let config = cluster
        .scheduler_config("phoenix")
        .failover_timeout(60.0)
        .capability(Capability::PartitionAware)
        .auto_acknowledge(true);
    let mut f = TestFramework::subscribe(config.clone()).await;
    launch_sleeper(&mut f, "survivor").await;
    let id = f.framework_id.clone();
    drop(f);
    assert_eventually!(
        Duration::from_secs(10),
        framework_json(&cluster.state().await, "frameworks", &id)
            .is_some_and(|f| f["connected"] == false),
        "framework not seen disconnected"
    );
    let mut again = TestFramework::subscribe(config.framework_id(id.clone())).await;
    assert_eq!(again.framework_id, id);
    again
        .scheduler
        .reconcile(vec![(
            TaskId {
                value: "survivor".into(),
            },
            None,
        )])
        .await
        .expect("reconcile");
    again.update("survivor", TaskState::TaskRunning).await;
    let state = cluster.state().await;
    let fw = framework_json(&state, "frameworks", &id).expect("framework");
    assert_eq!(fw["connected"], true);
    assert_eq!(fw["tasks"][0]["state"], "TASK_RUNNING");
    // Offers keep coming to the resubscribed framework.
    again.offers().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_away_past_its_failover_timeout_is_torn_down() {
    let cluster = Cluster::builder().agents(1).start().await;
    let config = cluster
        .scheduler_config("mayfly")
        .failover_timeout(1.0)
        .auto_acknowledge(true);
    let mut f = TestFramework::subscribe(config.clone()).await;
    launch_sleeper(&mut f, "doomed").await;
    let id = f.framework_id.clone();
    drop(f);
    assert_eventually!(
        Duration::from_secs(15),
        framework_json(&cluster.state().await, "completed_frameworks", &id).is_some(),
        "framework not torn down after its failover timeout"
    );
    let state = cluster.state().await;
    let fw = framework_json(&state, "completed_frameworks", &id).expect("completed");
    assert_eq!(fw["completed_tasks"][0]["state"], "TASK_KILLED");
    // The process is gone from the agent too.
    let agent = cluster.agent_http(0);
    assert_eventually!(
        Duration::from_secs(10),
        {
            let s: serde_json::Value = cluster
                .http()
                .get(format!("http://{agent}/state"))
                .send()
                .await
                .expect("GET")
                .json()
                .await
                .expect("JSON");
            s["frameworks"]
                .as_array()
                .is_none_or(|f| f.iter().all(|f| f["id"] != id.as_str()))
        },
        "agent still runs the torn-down framework's task"
    );
    // Coming back with the removed id is refused.
    let (_s, mut events) = Scheduler::subscribe(config.framework_id(id))
        .await
        .expect("subscribe");
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Some(SchedulerEvent::Error(message)) => return message,
                Some(_) => continue,
                None => panic!("closed without ERROR"),
            }
        }
    })
    .await
    .expect("ERROR in time");
    assert!(refused.contains("removed"), "{refused}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_agent_becomes_unreachable_and_comes_back() {
    let cluster = Cluster::builder().agents(1).proxied().start().await;
    let config = cluster
        .scheduler_config("partitioned")
        .capability(Capability::PartitionAware)
        .auto_acknowledge(true);
    let mut f = TestFramework::subscribe(config).await;
    launch_sleeper(&mut f, "islander").await;
    let proxy = cluster.agent(0).proxy.as_ref().expect("proxied");
    proxy.cut();
    let unreachable = f.update("islander", TaskState::TaskUnreachable).await;
    assert!(unreachable.unreachable_time.is_some());
    let state = cluster.state().await;
    assert_eq!(state["unreachable_slaves"], 1);
    assert_eq!(
        state["frameworks"][0]["unreachable_tasks"][0]["id"],
        "islander"
    );
    proxy.restore();
    let back = f.update("islander", TaskState::TaskRunning).await;
    assert_eq!(back.reason, Some(Reason::AgentReregistered as i32));
    cluster.wait_for_active_agents(1).await;
    let state = cluster.state().await;
    assert_eq!(state["unreachable_slaves"], 0);
    assert_eq!(state["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_and_frameworks_come_back_after_a_master_restart() {
    let mut cluster = Cluster::builder().agents(1).start().await;
    let config = cluster
        .scheduler_config("steadfast")
        .failover_timeout(300.0)
        .auto_acknowledge(true);
    let mut f = TestFramework::subscribe(config).await;
    launch_sleeper(&mut f, "persistent").await;
    let id = f.framework_id.clone();
    let agent_id = cluster.state().await["slaves"][0]["id"]
        .as_str()
        .expect("agent id")
        .to_string();
    let admitted = cluster.registry().await;
    assert!(
        admitted.agents.iter().any(|a| a
            .info
            .as_ref()
            .and_then(|i| i.id.as_ref())
            .map(|i| i.value.as_str())
            == Some(agent_id.as_str())),
        "the agent is in the stored registry: {admitted:?}"
    );
    cluster.restart_master().await;
    // The agent reregisters with its running task; the framework resubscribes.
    assert_eventually!(
        Duration::from_secs(20),
        {
            let state = cluster.state().await;
            framework_json(&state, "frameworks", &id).is_some_and(|fw| {
                fw["connected"] == true && fw["tasks"][0]["state"] == "TASK_RUNNING"
            })
        },
        "task and framework not recovered by the new master"
    );
    f.scheduler.reconcile(vec![]).await.expect("reconcile");
    f.update("persistent", TaskState::TaskRunning).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_that_do_not_come_back_after_a_failover_become_unreachable() {
    let mut cluster = Cluster::builder()
        .agents(1)
        .master(|m| m.agent_reregister_timeout = Duration::from_millis(1500))
        .start()
        .await;
    let agent_id = cluster.state().await["slaves"][0]["id"]
        .as_str()
        .expect("agent id")
        .to_string();
    cluster.stop_agent(0).await;
    cluster.restart_master().await;
    let state = cluster.state().await;
    assert_eq!(state["recovered_slaves"][0]["id"], agent_id.as_str());
    assert_eq!(state["unreachable_slaves"], 0);
    assert_eventually!(
        Duration::from_secs(10),
        cluster.state().await["unreachable_slaves"] == 1,
        "the missing agent was not marked unreachable"
    );
    let state = cluster.state().await;
    assert_eq!(state["recovered_slaves"].as_array().map(Vec::len), Some(0));
    let registry = cluster.registry().await;
    assert_eq!(
        registry.unreachable[0]
            .id
            .as_ref()
            .map(|i| i.value.as_str()),
        Some(agent_id.as_str())
    );
    cluster.stop().await;
}

/// Marathon recognised a framework failover by matching the text of the
/// master's ERROR; the master now says why in a typed reason, which the
/// SDK turns into `SchedulerEvent::FailedOver` (and a removal stays an
/// `Error`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_taken_over_by_another_hears_a_typed_failover() {
    let cluster = Cluster::builder().start().await;
    let config = cluster.scheduler_config("twice").failover_timeout(60.0);
    let mut first = TestFramework::subscribe(config.clone()).await;
    let id = first.framework_id.clone();
    let second = TestFramework::subscribe(config.framework_id(id.clone())).await;
    assert_eq!(second.framework_id, id);
    let heard = loop {
        match first.next_event(Duration::from_secs(10)).await {
            Some(SchedulerEvent::FailedOver(message)) => break message,
            Some(SchedulerEvent::Error(message)) => panic!("an untyped ERROR: {message}"),
            Some(_) => continue,
            None => panic!("no failover heard"),
        }
    };
    assert_eq!(heard, "Framework failed over");
    drop(second);
    drop(first);
}
