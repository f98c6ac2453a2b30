//! Health checks run by real executor shims (`agora agent` spawned by the
//! test): next to a native task, inside a Docker container (its network
//! namespace, the engine's exec), and across an agent restart.

mod support;

use std::time::Duration;

use agora_common::resources::{ranges, Resources};
use agora_proto::container_info::docker_info;
use agora_proto::health_check::{HttpCheckInfo, Type as HealthType};
use agora_proto::task_status::Reason;
use agora_proto::{CommandInfo, HealthCheck, TaskState};
use agora_sdk::{SchedulerEvent, TaskBuilder};
use support::docker::*;
use support::*;

fn http_check(port: u16) -> HealthCheck {
    HealthCheck {
        r#type: HealthType::Http as i32,
        http: Some(HttpCheckInfo {
            port: u32::from(port),
            path: Some("/health".into()),
            ..Default::default()
        }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.1),
        timeout_seconds: Some(2.0),
        consecutive_failures: Some(3),
        grace_period_seconds: Some(30.0),
        ..Default::default()
    }
}

fn ports(port: u16) -> Resources {
    Resources::from_vec(vec![ranges("ports", &[(u64::from(port), u64::from(port))])])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shim_checks_its_task_across_an_agent_restart_without_a_spurious_change() {
    let cluster = Cluster::start();
    let (mut agent, agent_id) = cluster.agent(RESOURCES, &[]);
    let mut f = framework(&cluster).await;
    let offer = f.offers().await.remove(0);
    let port = 31004;
    let mut web = TaskBuilder::new(
        "web",
        "touch health && exec python3 -m http.server $PORT0 --bind 127.0.0.1",
    )
    .cpus(0.1)
    .mem(64.0)
    .resources(&ports(port))
    .build(&offer);
    web.health_check = Some(http_check(port));
    f.scheduler.launch(&offer, vec![web]).await.expect("launch");
    f.update("web", TaskState::TaskRunning).await;
    let healthy = f
        .expect(Duration::from_secs(20), "web healthy", |e| match e {
            SchedulerEvent::Update(s) if s.healthy == Some(true) => Some(s.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        healthy.reason,
        Some(Reason::TaskHealthCheckStatusUpdated as i32)
    );

    agent.kill();
    let (_agent, again) = cluster.agent(RESOURCES, &[]);
    assert_eq!(again, agent_id);
    // The healthy update may come again if its acknowledgement was lost
    // with the agent (at least once); a new one would be a spurious change.
    assert!(
        !f.sees_within(Duration::from_secs(1), |e| matches!(
            e,
            SchedulerEvent::Update(s) if s.reason == Some(Reason::TaskHealthCheckStatusUpdated as i32)
                && s.uuid != healthy.uuid
        ))
        .await,
        "the health was reported again after the agent's restart"
    );
    std::fs::remove_file(sandbox(&cluster, &agent_id, &f, "web").join("health")).expect("toggle");
    let unhealthy = f
        .expect(Duration::from_secs(20), "web unhealthy", |e| match e {
            SchedulerEvent::Update(s) if s.healthy == Some(false) => Some(s.clone()),
            _ => None,
        })
        .await;
    assert_eq!(unhealthy.state(), TaskState::TaskRunning);
    let killed = f.update("web", TaskState::TaskKilled).await;
    assert_eq!(killed.healthy, Some(false));
    assert!(
        killed
            .message
            .as_deref()
            .is_some_and(|m| m.contains("answered 404")),
        "{:?}",
        killed.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_containers_checks_run_inside_it() {
    let Some(docker) = engine("a_containers_checks_run_inside_it").await else {
        return;
    };
    let cluster = Cluster::start();
    let (_agent, agent_id) = cluster.agent(RESOURCES, &[]);
    let mut f = framework(&cluster).await;
    let offer = f.offers().await.remove(0);
    // Bridged, the server listening on the container's loopback only: the
    // check can reach it from inside the container's network namespace.
    let mut bridged = in_image(IMAGE);
    bridged.docker.as_mut().expect("docker").network = docker_info::Network::Bridge as i32;
    let mut web = task(
        &offer,
        "web",
        "touch /mnt/mesos/sandbox/health && exec httpd -f -p 127.0.0.1:8080 -h /mnt/mesos/sandbox",
        bridged,
    );
    web.health_check = Some(http_check(8080));
    // A command check through the engine's exec, in the container's file system.
    let mut commanded = task(
        &offer,
        "cmd",
        "touch /tmp/ready; exec sleep 600",
        in_image(IMAGE),
    );
    commanded.health_check = Some(HealthCheck {
        r#type: HealthType::Command as i32,
        command: Some(CommandInfo {
            value: Some("test -f /tmp/ready".into()),
            ..Default::default()
        }),
        ..http_check(0)
    });
    f.scheduler
        .launch(&offer, vec![web, commanded])
        .await
        .expect("launch");
    let mut healthy = std::collections::HashSet::new();
    while healthy.len() < 2 {
        let update = f
            .expect(Duration::from_secs(30), "both healthy", |e| match e {
                SchedulerEvent::Update(s) if s.healthy == Some(true) => Some(s.clone()),
                _ => None,
            })
            .await;
        healthy.insert(update.task_id.map(|t| t.value).unwrap_or_default());
    }
    std::fs::remove_file(sandbox(&cluster, &agent_id, &f, "web").join("health")).expect("toggle");
    let killed = f.update("web", TaskState::TaskKilled).await;
    assert!(
        killed
            .message
            .as_deref()
            .is_some_and(|m| m.contains("GET http://127.0.0.1:8080/health answered 404")),
        "{:?}",
        killed.message
    );
    f.scheduler.kill("cmd", None, None).await.expect("kill");
    f.update("cmd", TaskState::TaskKilled).await;
    no_container_left(&docker, &cluster).await;
}
