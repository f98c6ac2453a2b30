//! Offers: fair sharing between frameworks, decline filters, rescinds.

use std::time::Duration;

use agora_common::resources::Resources;
use agora_integration_tests::{Cluster, TestFramework};
use agora_proto::Offer;
use agora_sdk::{SchedulerEvent, TaskBuilder};

/// Launches as many `cpus:1;mem:128` sleeping tasks as fit in the offer.
async fn fill(framework: &TestFramework, offer: &Offer, prefix: &str) -> usize {
    let mut available = Resources::from_vec(offer.resources.iter().cloned());
    let per_task = Resources::parse("cpus:1;mem:128").expect("valid");
    let mut tasks = Vec::new();
    while available.contains(&per_task) {
        available.subtract(&per_task);
        let id = format!(
            "{prefix}-{}-{}",
            offer.id.as_ref().map(|o| o.value.as_str()).unwrap_or(""),
            tasks.len()
        );
        tasks.push(
            TaskBuilder::new(id, "sleep 30")
                .cpus(1.0)
                .mem(128.0)
                .build(offer),
        );
    }
    let n = tasks.len();
    framework
        .scheduler
        .launch(offer, tasks)
        .await
        .expect("launch");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_frameworks_share_the_cluster_fairly() {
    // Frameworks subscribe before any agent registers, so every agent is
    // allocated by DRF as it arrives. Four tasks use all of an agent's cpus
    // and memory, so no leftovers muddy the shares.
    let mut cluster = Cluster::builder()
        .agents(0)
        .agent_resources("cpus:4;mem:512;disk:100;ports:[31000-31010]")
        .start()
        .await;
    let mut a = TestFramework::subscribe(cluster.scheduler_config("fair-a")).await;
    let mut b = TestFramework::subscribe(cluster.scheduler_config("fair-b")).await;
    for _ in 0..4 {
        cluster.add_agent().await;
    }
    let mut launched = (0, 0);
    while launched.0 + launched.1 < 16 {
        tokio::select! {
            Some(event) = async { a.next_event(Duration::from_secs(20)).await } => {
                if let SchedulerEvent::Offers(offers) = event {
                    for o in offers { launched.0 += fill(&a, &o, "a").await; }
                }
            }
            Some(event) = async { b.next_event(Duration::from_secs(20)).await } => {
                if let SchedulerEvent::Offers(offers) = event {
                    for o in offers { launched.1 += fill(&b, &o, "b").await; }
                }
            }
        }
    }
    assert_eq!(launched, (8, 8), "each framework gets half of 16 cpus");
    // The master books the launches as it receives them.
    let used_cpus = |state: serde_json::Value| -> Vec<f64> {
        state["frameworks"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .map(|f| f["used_resources"]["cpus"].as_f64().unwrap_or(0.0))
                    .collect()
            })
            .unwrap_or_default()
    };
    agora_integration_tests::assert_eventually!(
        Duration::from_secs(10),
        used_cpus(cluster.state().await).iter().sum::<f64>() == 16.0,
        "launches not booked"
    );
    let shares: Vec<f64> = used_cpus(cluster.state().await)
        .iter()
        .map(|c| c / 16.0)
        .collect();
    assert_eq!(shares.len(), 2);
    assert!(
        (shares[0] - shares[1]).abs() <= 0.05,
        "dominant shares {shares:?}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_offers_are_filtered_for_refuse_seconds_only_for_the_decliner() {
    let cluster = Cluster::builder().agents(1).start().await;
    let mut a = TestFramework::subscribe(cluster.scheduler_config("decliner")).await;
    let offers = a.offers().await;
    let ids = offers.iter().filter_map(|o| o.id.clone()).collect();
    a.scheduler.decline(ids, Some(3.0)).await.expect("decline");
    // Another framework gets the declined resources right away.
    let mut b = TestFramework::subscribe(cluster.scheduler_config("other")).await;
    let offers_b = b.offers().await;
    assert_eq!(offers_b[0].agent_id, offers[0].agent_id);
    let ids = offers_b.iter().filter_map(|o| o.id.clone()).collect();
    b.scheduler
        .decline(ids, Some(3600.0))
        .await
        .expect("decline");
    // The decliner sees nothing during most of its filter...
    let early = a
        .sees_within(Duration::from_millis(2000), |e| {
            matches!(e, SchedulerEvent::Offers(_))
        })
        .await;
    assert!(!early, "offer re-sent inside the 3 s refuse window");
    // ...and the agent again once it expires.
    let again = a.offers().await;
    assert_eq!(again[0].agent_id, offers[0].agent_id);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revive_clears_filters() {
    let cluster = Cluster::builder().agents(1).start().await;
    let mut a = TestFramework::subscribe(cluster.scheduler_config("reviver")).await;
    let offers = a.offers().await;
    let ids = offers.iter().filter_map(|o| o.id.clone()).collect();
    a.scheduler
        .decline(ids, Some(3600.0))
        .await
        .expect("decline");
    a.scheduler.revive(&[]).await.expect("revive");
    let again = a.offers().await;
    assert_eq!(again[0].agent_id, offers[0].agent_id);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressed_frameworks_get_no_offers_until_revived() {
    let cluster = Cluster::builder().agents(1).start().await;
    let mut a =
        TestFramework::subscribe(cluster.scheduler_config("quiet").suppressed_roles(&["*"])).await;
    let offered = a
        .sees_within(Duration::from_millis(1000), |e| {
            matches!(e, SchedulerEvent::Offers(_))
        })
        .await;
    assert!(!offered, "a suppressed framework got offers");
    a.scheduler.revive(&[]).await.expect("revive");
    a.offers().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_are_rescinded_when_their_agent_goes_away() {
    let mut cluster = Cluster::builder().agents(1).start().await;
    let mut a = TestFramework::subscribe(cluster.scheduler_config("rescind")).await;
    let offers = a.offers().await;
    let offer_id = offers[0].id.clone().expect("id");
    cluster.stop_agent(0).await;
    let rescinded = a
        .expect(Duration::from_secs(10), "RESCIND", |e| match e {
            SchedulerEvent::Rescind(id) => Some(id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(rescinded, offer_id);
    // Accepting the rescinded offer now fails cleanly.
    let task = TaskBuilder::new("late", "true")
        .cpus(0.1)
        .mem(16.0)
        .build(&offers[0]);
    a.scheduler
        .launch(&offers[0], vec![task])
        .await
        .expect("send");
    let status = a.any_update("late").await;
    assert_eq!(status.state(), agora_proto::TaskState::TaskLost);
    assert_eq!(
        status.reason,
        Some(agora_proto::task_status::Reason::InvalidOffers as i32)
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_timeout_rescinds_unanswered_offers() {
    let cluster = Cluster::builder()
        .agents(1)
        .master(|m| m.offer_timeout = Some(Duration::from_millis(500)))
        .start()
        .await;
    let mut a = TestFramework::subscribe(cluster.scheduler_config("slow")).await;
    let offers = a.offers().await;
    let rescinded = a
        .expect(Duration::from_secs(10), "RESCIND", |e| match e {
            SchedulerEvent::Rescind(id) => Some(id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(Some(rescinded), offers[0].id);
    cluster.stop().await;
}
