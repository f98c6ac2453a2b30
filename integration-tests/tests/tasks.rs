//! Tasks end to end: real processes, kills, reconciliation, and every kind
//! of invalid launch answered with the right status instead of a crash.

use std::time::Duration;

use agora_integration_tests::{Cluster, TestFramework};
use agora_proto::framework_info::capability::Type as Capability;
use agora_proto::offer::operation;
use agora_proto::task_status::Reason;
use agora_proto::{AgentId, CommandInfo, OfferId, TaskId, TaskInfo, TaskState};
use agora_sdk::{launch_operation, TaskBuilder};

fn partition_aware(cluster: &Cluster, name: &str) -> agora_sdk::SchedulerConfig {
    cluster
        .scheduler_config(name)
        .capability(Capability::PartitionAware)
        .auto_acknowledge(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_as_a_real_process_and_finishes() {
    let cluster = Cluster::builder().agents(1).start().await;
    let mut f = TestFramework::subscribe(partition_aware(&cluster, "runner")).await;
    let offer = f
        .launch_on_next_offer(
            "hello",
            "echo \"hello $MESOS_TASK_ID\"; test -d \"$MESOS_SANDBOX\"",
            0.1,
            32.0,
        )
        .await;
    let running = f.update("hello", TaskState::TaskRunning).await;
    assert!(running.uuid.is_some(), "agent updates carry a uuid");
    let finished = f.update("hello", TaskState::TaskFinished).await;
    assert_eq!(finished.agent_id, offer.agent_id);
    // Acknowledged terminal tasks move to completed_tasks.
    agora_integration_tests::assert_eventually!(
        Duration::from_secs(10),
        cluster.state().await["frameworks"][0]["completed_tasks"]
            .as_array()
            .is_some_and(|t| t
                .iter()
                .any(|t| t["id"] == "hello" && t["state"] == "TASK_FINISHED")),
        "finished task not in completed_tasks"
    );
    let metrics = cluster.metrics().await;
    assert_eq!(metrics["master/tasks_finished"], 1.0);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_is_reported_failed() {
    let cluster = Cluster::builder().agents(1).start().await;
    let mut f = TestFramework::subscribe(partition_aware(&cluster, "failing")).await;
    f.launch_on_next_offer("bad", "exit 3", 0.1, 32.0).await;
    let failed = f.update("bad", TaskState::TaskFailed).await;
    assert!(
        failed.message.as_deref().unwrap_or("").contains('3'),
        "message names the exit status: {:?}",
        failed.message
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_stops_a_running_task() {
    let cluster = Cluster::builder().agents(1).start().await;
    let mut f = TestFramework::subscribe(partition_aware(&cluster, "killer")).await;
    let offer = f
        .launch_on_next_offer("sleeper", "sleep 100", 0.1, 32.0)
        .await;
    f.update("sleeper", TaskState::TaskRunning).await;
    f.scheduler
        .kill("sleeper", offer.agent_id.clone(), None)
        .await
        .expect("kill");
    f.update("sleeper", TaskState::TaskKilled).await;
    // Killing an unknown task answers TASK_UNKNOWN for a partition-aware framework.
    f.scheduler.kill("nobody", None, None).await.expect("kill");
    let unknown = f.any_update("nobody").await;
    assert_eq!(unknown.state(), TaskState::TaskUnknown);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_and_implicit_reconciliation() {
    let cluster = Cluster::builder().agents(1).start().await;
    let mut f = TestFramework::subscribe(partition_aware(&cluster, "reconciler")).await;
    let offer = f.offers().await.remove(0);
    let agent = offer.agent_id.clone();
    let task = TaskBuilder::new("long", "sleep 100")
        .cpus(0.1)
        .mem(32.0)
        .build(&offer);
    f.scheduler
        .launch(&offer, vec![task])
        .await
        .expect("launch");
    f.update("long", TaskState::TaskRunning).await;

    let id = |v: &str| TaskId { value: v.into() };
    f.scheduler
        .reconcile(vec![
            (id("long"), agent.clone()),
            (id("ghost-on-agent"), agent.clone()),
            (
                id("ghost"),
                Some(AgentId {
                    value: "no-such-agent".into(),
                }),
            ),
        ])
        .await
        .expect("reconcile");
    let long = f.update("long", TaskState::TaskRunning).await;
    assert_eq!(long.reason, Some(Reason::Reconciliation as i32));
    assert!(
        long.uuid.is_none(),
        "reconciliation updates need no acknowledgement"
    );
    let gone = f.any_update("ghost-on-agent").await;
    assert_eq!(gone.state(), TaskState::TaskGone);
    let unknown = f.any_update("ghost").await;
    assert_eq!(unknown.state(), TaskState::TaskUnknown);

    // Implicit: every task the master knows.
    f.scheduler.reconcile(vec![]).await.expect("reconcile");
    let implicit = f.update("long", TaskState::TaskRunning).await;
    assert_eq!(implicit.reason, Some(Reason::Reconciliation as i32));
    cluster.stop().await;
}

fn command_task(id: &str, agent: &Option<AgentId>, resources: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: Some(TaskId { value: id.into() }),
        agent_id: agent.clone(),
        resources: agora_common::resources::Resources::parse(resources)
            .expect("valid")
            .into_vec(),
        command: Some(CommandInfo {
            value: Some("sleep 100".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_launches_get_error_or_dropped_statuses() {
    let cluster = Cluster::builder().agents(1).start().await;
    let mut f = TestFramework::subscribe(partition_aware(&cluster, "invalid")).await;
    let offer = f.offers().await.remove(0);
    let agent = offer.agent_id.clone();

    // Unknown offer id.
    let bogus = OfferId {
        value: "no-such-offer".into(),
    };
    f.scheduler
        .accept(
            vec![bogus],
            vec![launch_operation(vec![command_task(
                "t-unknown-offer",
                &agent,
                "cpus:0.1;mem:16",
            )])],
            None,
        )
        .await
        .expect("send");
    let s = f.any_update("t-unknown-offer").await;
    assert_eq!(
        (s.state(), s.reason),
        (TaskState::TaskDropped, Some(Reason::InvalidOffers as i32))
    );

    // One accept carrying: a good task, a duplicate id in the same accept,
    // a task beyond the offer, a task with no command, a task with an empty
    // id, a task for another agent.
    let good = command_task("t-good", &agent, "cpus:0.1;mem:16");
    let duplicate = command_task("t-good", &agent, "cpus:0.1;mem:16");
    let too_big = command_task("t-too-big", &agent, "cpus:1000;mem:16");
    let mut no_command = command_task("t-no-command", &agent, "cpus:0.1;mem:16");
    no_command.command = None;
    let empty_id = command_task("", &agent, "cpus:0.1;mem:16");
    let wrong_agent = command_task(
        "t-wrong-agent",
        &Some(AgentId {
            value: "elsewhere".into(),
        }),
        "cpus:0.1;mem:16",
    );
    let offer_id = offer.id.clone().expect("id");
    f.scheduler
        .accept(
            vec![offer_id.clone()],
            vec![launch_operation(vec![
                good,
                duplicate,
                too_big,
                no_command,
                empty_id,
                wrong_agent,
            ])],
            None,
        )
        .await
        .expect("send");
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 6 {
        let status = f
            .expect(Duration::from_secs(20), "launch statuses", |e| match e {
                agora_sdk::SchedulerEvent::Update(s) => Some(s.clone()),
                _ => None,
            })
            .await;
        let id = status.task_id.clone().map(|t| t.value).unwrap_or_default();
        let key = if id == "t-good" && status.state() == TaskState::TaskError {
            "t-good-duplicate".to_string()
        } else {
            id
        };
        seen.entry(key).or_insert(status);
    }
    assert_eq!(seen["t-good"].state(), TaskState::TaskRunning);
    for (id, needle) in [
        ("t-good-duplicate", "duplicate ID"),
        ("t-too-big", "more resources"),
        ("t-no-command", "CommandInfo or ExecutorInfo"),
        ("", "must not be empty"),
        ("t-wrong-agent", "does not match"),
    ] {
        let s = &seen[id];
        assert_eq!(s.state(), TaskState::TaskError, "{id}");
        assert_eq!(s.reason, Some(Reason::TaskInvalid as i32), "{id}");
        assert!(
            s.message.as_deref().unwrap_or("").contains(needle),
            "{id}: {:?}",
            s.message
        );
    }

    // The offer was used: accepting it again is a stale offer.
    f.scheduler
        .accept(
            vec![offer_id],
            vec![launch_operation(vec![command_task(
                "t-stale",
                &agent,
                "cpus:0.1;mem:16",
            )])],
            None,
        )
        .await
        .expect("send");
    let s = f.any_update("t-stale").await;
    assert_eq!(
        (s.state(), s.reason),
        (TaskState::TaskDropped, Some(Reason::InvalidOffers as i32))
    );

    // Re-using the id of a running task in a new offer.
    let offer = f.offers().await.remove(0);
    f.scheduler
        .accept(
            vec![offer.id.clone().expect("id")],
            vec![launch_operation(vec![command_task(
                "t-good",
                &agent,
                "cpus:0.1;mem:16",
            )])],
            None,
        )
        .await
        .expect("send");
    let s = f.update("t-good", TaskState::TaskError).await;
    assert!(s.message.as_deref().unwrap_or("").contains("duplicate ID"));

    // Operations the master does not carry out are refused without harm.
    let unsupported = agora_proto::offer::Operation {
        r#type: operation::Type::Reserve as i32,
        ..Default::default()
    };
    let offer = f.offers().await.remove(0);
    f.scheduler
        .accept(
            vec![offer.id.clone().expect("id")],
            vec![unsupported],
            Some(0.0),
        )
        .await
        .expect("send");
    // The master is alive and well.
    let state = cluster.state().await;
    assert_eq!(state["activated_slaves"], 1);
    assert_eq!(cluster.metrics().await["master/tasks_error"], 6.0);
    cluster.stop().await;
}
