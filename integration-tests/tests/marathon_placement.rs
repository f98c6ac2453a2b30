//! Where Marathon places what: a DOCKER app goes only to agents that run
//! the Docker containerizer. The agents here are embedded in the test
//! binary, so they run the Mesos containerizer alone.

use std::time::Duration;

use agora_integration_tests::{assert_eventually, Cluster, Marathon};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_docker_app_waits_in_the_queue_for_an_agent_with_docker_and_says_why() {
    let cluster = Cluster::builder()
        .agents(1)
        .agent_resources("cpus:4;mem:4096;disk:10000;ports:[31000-31100]")
        .start()
        .await;
    let marathon = Marathon::start(&cluster).await;
    let docker = json!({"id": "/boxed", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16,
        "instances": 1, "container": {"type": "DOCKER", "docker": {"image": "busybox"}}});
    let plain =
        json!({"id": "/plain", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1});
    for app in [&docker, &plain] {
        let answer = marathon
            .call("POST", "/v2/apps", Some(&app.to_string()))
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
    marathon.wait_running("/plain", 1, WAIT).await;
    assert_eventually!(
        WAIT,
        {
            let queue = marathon.get("/v2/queue?embed=lastUnusedOffers").await;
            queue["queue"].as_array().is_some_and(|q| {
                q.iter().any(|entry| {
                    entry["app"]["id"] == "/boxed"
                        && entry["count"] == 1
                        && entry["lastUnusedOffers"].as_array().is_some_and(|o| {
                            o.iter().any(|o| {
                                o["reason"]
                                    .as_array()
                                    .is_some_and(|r| r.contains(&json!("UnsupportedContainerizer")))
                            })
                        })
                })
            })
        },
        "the queue does not say why the DOCKER app waits: {}",
        marathon.get("/v2/queue?embed=lastUnusedOffers").await
    );
    let state = cluster.state().await;
    let tasks: Vec<&serde_json::Value> = state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["tasks"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(tasks.len(), 1, "only the plain app was launched: {tasks:?}");
    marathon.stop().await;
    cluster.stop().await;
}
