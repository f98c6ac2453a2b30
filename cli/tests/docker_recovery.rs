//! Docker containers across agent restarts: a real master and agent, the
//! real engine. The agent is SIGKILLed (and a container's shim with it)
//! while containers run or end, and comes back to find them; containers of
//! its own that no task owns are removed, other agents' left alone.
//! Each test skips, saying so, only where the machine has no engine socket.

mod support;

use agora_proto::TaskState;
use support::docker::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_ends_while_the_agent_is_down_is_reported_when_it_is_back() {
    let Some(docker) = engine("a_container_that_ends_while_the_agent_is_down").await else {
        return;
    };
    let cluster = Cluster::start();
    let (mut agent, agent_id) = cluster.agent(RESOURCES, &[]);
    let mut f = framework(&cluster).await;
    let offer = f.offers().await.remove(0);
    let waiter = task(
        &offer,
        "waiter",
        "while [ ! -e /mnt/mesos/sandbox/go ]; do sleep 0.05; done; exit 7",
        in_image(IMAGE),
    );
    f.scheduler
        .launch(&offer, vec![waiter])
        .await
        .expect("launch");
    f.update("waiter", TaskState::TaskRunning).await;
    let dir = sandbox(&cluster, &agent_id, &f, "waiter");

    agent.kill();
    std::fs::write(dir.join("go"), "").expect("go");
    eventually("the shim to record the exit", || {
        dir.join(".agora/exit_status").exists().then_some(())
    });
    let (_agent, again) = cluster.agent(RESOURCES, &[]);
    assert_eq!(again, agent_id);
    let failed = f.update("waiter", TaskState::TaskFailed).await;
    assert_eq!(
        failed.message.as_deref(),
        Some("Command exited with status 7")
    );
    no_container_left(&docker, &cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_outlives_agent_and_shim_sigkills_and_stays_supervised() {
    let Some(docker) = engine("a_container_outlives_agent_and_shim_sigkills").await else {
        return;
    };
    let cluster = Cluster::start();
    let (mut agent, agent_id) = cluster.agent(RESOURCES, &[]);
    let mut f = framework(&cluster).await;
    let offer = f.offers().await.remove(0);
    let sleeper = task(
        &offer,
        "sleeper",
        "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.1; done",
        in_image(IMAGE),
    );
    f.scheduler
        .launch(&offer, vec![sleeper])
        .await
        .expect("launch");
    f.update("sleeper", TaskState::TaskRunning).await;
    let running = || async {
        containers_of(&docker, &cluster.work_dir())
            .await
            .iter()
            .filter(|c| c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING))
            .count()
    };
    assert_eq!(running().await, 1);

    agent.kill();
    assert_eq!(running().await, 1, "the container survives the agent");
    let (mut agent, again) = cluster.agent(RESOURCES, &[]);
    assert_eq!(again, agent_id);
    assert_eq!(
        agent_task_state(&cluster, "sleeper").as_deref(),
        Some("TASK_RUNNING")
    );

    // Now its shim dies too, with the agent: the container runs on, and the
    // next agent gives it a new shim that adopts it.
    let shim = shim_pid(&cluster).expect("the container's shim");
    agent.kill();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the shim");
    eventually("the shim to be gone", || (!alive(shim)).then_some(()));
    assert_eq!(running().await, 1, "the container survives its shim");
    let (_agent, again) = cluster.agent(RESOURCES, &[]);
    assert_eq!(again, agent_id);
    let adopted = eventually("a new shim", || shim_pid(&cluster).filter(|p| *p != shim));
    assert!(alive(adopted));
    assert_eq!(
        agent_task_state(&cluster, "sleeper").as_deref(),
        Some("TASK_RUNNING")
    );
    let out = sandbox(&cluster, &agent_id, &f, "sleeper").join("stdout");
    let before = read(out.clone()).lines().count();
    eventually("output copied again by the new shim", || {
        (std::fs::read_to_string(&out).ok()?.lines().count() > before + 3).then_some(())
    });
    // The new shim resumed right after the last line the dead one copied:
    // every tick once, none missing.
    let ticks: Vec<usize> = read(out)
        .lines()
        .map(|l| {
            l.strip_prefix("tick-")
                .and_then(|n| n.parse().ok())
                .expect("a tick")
        })
        .collect();
    assert!(
        ticks.iter().enumerate().all(|(i, n)| i == *n),
        "output lost or repeated across the shims: {ticks:?}"
    );
    f.scheduler.kill("sleeper", None, None).await.expect("kill");
    f.update("sleeper", TaskState::TaskKilled).await;
    no_container_left(&docker, &cluster).await;
}

/// The state of `task_id` in the agent's `/state`: what a restarted agent
/// recovered (it registers only once every container answered).
fn agent_task_state(cluster: &Cluster, task_id: &str) -> Option<String> {
    let state = get_json(cluster.agent_port, "/state")?;
    state["frameworks"].as_array()?.iter().find_map(|f| {
        f["executors"].as_array()?.iter().find_map(|e| {
            e["tasks"].as_array()?.iter().find_map(|t| {
                (t["id"] == task_id).then(|| t["state"].as_str().unwrap_or_default().to_string())
            })
        })
    })
}

/// The pid of the one shim running under this cluster's work dir.
fn shim_pid(cluster: &Cluster) -> Option<i32> {
    let marker = cluster.work_dir().display().to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains(" executor --config ") && cmdline.contains(&marker) && alive(pid))
                .then_some(pid)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_containers_of_this_agent_are_removed_and_other_agents_left_alone() {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
    let Some(docker) = engine("orphaned_containers_of_this_agent_are_removed").await else {
        return;
    };
    let cluster = Cluster::start();
    std::fs::create_dir_all(cluster.work_dir()).expect("work dir");
    let work_dir = std::fs::canonicalize(cluster.work_dir()).expect("canonical");
    let other = tempfile::tempdir().expect("another agent's work dir");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    for (name, dir) in [
        (format!("agora-test-orphan-{suffix}"), work_dir.clone()),
        (
            format!("agora-test-other-{suffix}"),
            other.path().to_path_buf(),
        ),
    ] {
        let labels = std::collections::HashMap::from([
            ("agora.work_dir".to_string(), dir.display().to_string()),
            ("agora.container_id".to_string(), format!("{name}-id")),
        ]);
        let body = ContainerCreateBody {
            image: Some(IMAGE.into()),
            cmd: Some(vec!["sleep".into(), "600".into()]),
            labels: Some(labels),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        docker
            .create_container(Some(options), body)
            .await
            .expect("create");
        docker.start_container(&name, None).await.expect("start");
    }
    assert_eq!(containers_of(&docker, &work_dir).await.len(), 1);

    let (mut kept, _) = cluster.agent(RESOURCES, &["--docker-kill-orphans=false"]);
    assert_eq!(
        containers_of(&docker, &work_dir).await.len(),
        1,
        "--docker-kill-orphans=false leaves it"
    );
    kept.terminate();
    let (_agent, _) = cluster.agent(RESOURCES, &[]);
    no_container_left(&docker, &cluster).await;
    let others = containers_of(&docker, other.path()).await;
    assert_eq!(
        others.len(),
        1,
        "another agent's container is not this agent's orphan"
    );
    let remove = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    docker
        .remove_container(&format!("agora-test-other-{suffix}"), Some(remove))
        .await
        .expect("clean up");
}
