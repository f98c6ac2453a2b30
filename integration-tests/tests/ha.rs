//! Several masters in one election group (in memory, with ZooKeeper's
//! semantics): one leads, standbys point at it, and losing the leader is a
//! non-event for agents, frameworks and tasks.

use std::sync::Arc;
use std::time::Duration;

use agora_agent::AgentConfig;
use agora_common::shutdown::{self, ShutdownTrigger};
use agora_coord::{MemoryDetector, MemoryElection, MemoryGroup, MemoryStore};
use agora_integration_tests::{assert_eventually, TestFramework};
use agora_master::{Coordination, MasterConfig, MasterHandle};
use agora_proto::framework_info::capability::Type as Capability;
use agora_proto::TaskState;
use agora_sdk::SchedulerConfig;
use serde_json::Value;

struct Masters {
    group: Arc<MemoryGroup>,
    running: Vec<(ShutdownTrigger, MasterHandle)>,
}

impl Masters {
    async fn start(n: usize, dir: &std::path::Path) -> Masters {
        let group = MemoryGroup::new();
        let store = Arc::new(MemoryStore::new());
        let mut running = Vec::new();
        for i in 0..n {
            let coordination = Coordination {
                election: Arc::new(MemoryElection::new(group.clone())),
                store: store.clone(),
                detector: Arc::new(MemoryDetector::new(group.clone(), Duration::from_secs(5))),
            };
            let config = MasterConfig {
                ip: [127, 0, 0, 1].into(),
                port: 0,
                work_dir: dir.join(format!("master{i}")),
                allocation_interval: Duration::from_millis(100),
                agent_ping_timeout: Duration::from_millis(300),
                max_agent_ping_timeouts: 3,
                ..MasterConfig::default()
            };
            let (trigger, shutdown) = shutdown::channel();
            let handle = agora_master::start_with(config, coordination, shutdown)
                .await
                .expect("master starts");
            running.push((trigger, handle));
        }
        Masters { group, running }
    }

    fn detector(&self) -> Arc<MemoryDetector> {
        Arc::new(MemoryDetector::new(
            self.group.clone(),
            Duration::from_secs(5),
        ))
    }

    fn leader(&self) -> Option<usize> {
        self.running.iter().position(|(_, h)| h.is_leading())
    }
}

async fn get(url: String) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(url)
        .send()
        .await
        .expect("GET")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_leader_is_a_non_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut masters = Masters::start(3, dir.path()).await;
    masters.running[0].1.wait_until_leading().await;
    assert_eq!(masters.leader(), Some(0), "the first contender leads");
    let leader_addr = masters.running[0].1.addr();

    // Standbys say who leads, and send API clients there.
    let standby = masters.running[1].1.addr();
    let state: Value = get(format!("http://{standby}/master/state"))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(state["leader"], format!("master@{leader_addr}"));
    let redirect = get(format!("http://{standby}/master/redirect")).await;
    assert_eq!(redirect.status(), 307);
    assert_eq!(
        redirect.headers()["location"].to_str().expect("location"),
        format!("http://{leader_addr}/")
    );
    let moved = get(format!("http://{standby}/master/slaves")).await;
    assert_eq!(moved.status(), 307);
    let metrics: Value = get(format!("http://{standby}/metrics/snapshot"))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(metrics["master/elected"], 0.0);

    // An agent and a framework that follow the leader through the group.
    let (agent_trigger, agent_shutdown) = shutdown::channel();
    let mut agent_config = AgentConfig::new(masters.detector(), dir.path().join("agent"));
    agent_config.port = 0;
    agent_config.resources = Some("cpus:2;mem:1024;disk:1000;ports:[31000-31010]".into());
    agent_config.status_update_retry_interval = Duration::from_millis(500);
    agent_config.master_ping_timeout = Duration::from_secs(3);
    let agent = agora_agent::start(agent_config, agent_shutdown)
        .await
        .expect("agent");
    let config = SchedulerConfig::with_detector(masters.detector(), "steady")
        .failover_timeout(300.0)
        .capability(Capability::PartitionAware)
        .auto_acknowledge(true)
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500));
    let mut f = TestFramework::subscribe(config).await;
    f.launch_on_next_offer("survivor", "sleep 60", 0.1, 16.0)
        .await;
    f.update("survivor", TaskState::TaskRunning).await;
    let agent_id = agent.agent_id().expect("registered");

    // The leader dies.
    let (trigger, handle) = masters.running.remove(0);
    trigger.fire();
    handle.join().await;
    assert_eventually!(
        Duration::from_secs(10),
        masters.leader().is_some(),
        "no new leader"
    );
    let new_leader = masters.running[masters.leader().expect("leader")].1.addr();
    assert_eventually!(
        Duration::from_secs(20),
        {
            let state: Value = get(format!("http://{new_leader}/master/state"))
                .await
                .json()
                .await
                .expect("JSON");
            state["slaves"][0]["id"] == agent_id.as_str()
                && state["frameworks"][0]["id"] == f.framework_id.as_str()
                && state["frameworks"][0]["connected"] == true
                && state["frameworks"][0]["tasks"][0]["state"] == "TASK_RUNNING"
        },
        "agent, framework and task not all back with the new leader"
    );
    // Offers flow again, and nothing was killed or lost on the way.
    f.offers().await;
    f.scheduler.reconcile(vec![]).await.expect("reconcile");
    f.update("survivor", TaskState::TaskRunning).await;
    agent_trigger.fire();
    let _ = agent.join().await;
    for (trigger, handle) in masters.running {
        trigger.fire();
        handle.join().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_refuses_schedulers_naming_the_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let masters = Masters::start(2, dir.path()).await;
    masters.running[0].1.wait_until_leading().await;
    let leader = masters.running[0].1.addr().to_string();
    let standby = masters.running[1].1.addr().to_string();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{standby}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = agora_proto::scheduler::scheduler_client::SchedulerClient::new(channel);
    let subscribe = agora_proto::scheduler::Call {
        r#type: agora_proto::scheduler::call::Type::Subscribe as i32,
        subscribe: Some(agora_proto::scheduler::call::Subscribe {
            framework_info: Some(agora_proto::FrameworkInfo {
                user: "u".into(),
                name: "n".into(),
                ..Default::default()
            }),
            suppressed_roles: vec![],
        }),
        ..Default::default()
    };
    let status = client
        .subscribe(tokio_stream::iter(vec![subscribe]))
        .await
        .expect_err("a standby refuses");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        status
            .metadata()
            .get("agora-leader")
            .and_then(|v| v.to_str().ok()),
        Some(leader.as_str())
    );
    // The SDK follows that hint: pointed at the standby, it subscribes with the leader.
    let config = SchedulerConfig::new(standby, "follower")
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500));
    let f = TestFramework::subscribe(config).await;
    let state: Value = get(format!("http://{leader}/master/state"))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(state["frameworks"][0]["id"], f.framework_id.as_str());
    for (trigger, handle) in masters.running {
        trigger.fire();
        handle.join().await;
    }
}
