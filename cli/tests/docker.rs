//! The Docker containerizer end to end: a real master and agent (`agora
//! master`, `agora agent` as children of the test), a framework on the SDK,
//! the real Docker engine and images built here from `busybox-static`.
//! Each test skips, saying so, only where the machine has no engine socket.

mod support;

use std::time::Duration;

use agora_proto::container_info::{docker_info, Type as ContainerType};
use agora_proto::task_status::Reason;
use agora_proto::volume::Mode;
use agora_proto::{NetworkInfo, Parameter, TaskState, Volume};
use agora_sdk::TaskBuilder;
use support::docker::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_task_runs_its_command_entrypoint_or_image_default_in_the_image() {
    let Some(docker) = engine("a_docker_task_runs_its_command_entrypoint_or_image_default").await
    else {
        return;
    };
    let cluster = Cluster::start();
    let (_agent, agent_id) = cluster.agent(RESOURCES, &[]);
    let mut f = framework(&cluster).await;
    let offer = f.offers().await.remove(0);
    assert!(
        offer
            .containerizers
            .contains(&(ContainerType::Docker as i32))
            && offer
                .containerizers
                .contains(&(ContainerType::Mesos as i32)),
        "the agent advertises both containerizers: {:?}",
        offer.containerizers
    );
    let mut shell = task(
        &offer,
        "shell",
        "echo sandbox=$MESOS_SANDBOX host=$HOST task=$MESOS_TASK_ID path=$PATH user=$(id -u); \
         test -f /mnt/mesos/sandbox/stdout && echo mounted; echo to-stderr >&2",
        in_image(IMAGE),
    );
    shell.command.as_mut().expect("command").user = Some("nobody".into());
    let mut args = task(&offer, "args", "", in_image(ECHO_IMAGE));
    let command = args.command.as_mut().expect("command");
    command.shell = Some(false);
    command.value = None;
    command.arguments = vec!["a".into(), "b".into()];
    let mut own = task(&offer, "own", "", in_image(ECHO_IMAGE));
    let command = own.command.as_mut().expect("command");
    command.shell = Some(false);
    command.value = None;
    let failing = task(&offer, "failing", "exit 3", in_image(IMAGE));
    f.scheduler
        .launch(&offer, vec![shell, args, own, failing])
        .await
        .expect("launch");
    let mut ended = f
        .terminal_updates(&["shell", "args", "own", "failing"])
        .await;
    let failing = ended.remove("failing").expect("ended");
    assert_eq!(failing.state(), TaskState::TaskFailed);
    assert_eq!(
        failing.message.as_deref(),
        Some("Command exited with status 3")
    );
    for (id, done) in &ended {
        assert_eq!(done.state(), TaskState::TaskFinished, "{id}: {done:?}");
        assert_eq!(
            done.message.as_deref(),
            Some("Command exited with status 0")
        );
    }
    assert_eq!(
        addresses(&ended["shell"]),
        vec!["127.0.0.1".to_string()],
        "a container on the host network has the agent's address"
    );
    let out = read(sandbox(&cluster, &agent_id, &f, "shell").join("stdout"));
    let hostname = nix::unistd::gethostname().expect("hostname");
    let expected = format!(
        "sandbox=/mnt/mesos/sandbox host={} task=shell \
         path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin user=65534",
        hostname.to_string_lossy()
    );
    assert!(
        out.contains(&expected),
        "the Mesos environment, the image's PATH and the task's user: {out}"
    );
    assert!(out.contains("mounted"), "{out}");
    assert_eq!(
        read(sandbox(&cluster, &agent_id, &f, "shell").join("stderr")),
        "to-stderr\n"
    );
    assert_eq!(
        read(sandbox(&cluster, &agent_id, &f, "args").join("stdout")),
        "entry: a b\n"
    );
    assert_eq!(
        read(sandbox(&cluster, &agent_id, &f, "own").join("stdout")),
        "entry: default\n"
    );
    no_container_left(&docker, &cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridged_container_answers_on_its_host_port_and_reports_its_own_address() {
    let Some(docker) = engine("a_bridged_container_answers_on_its_host_port").await else {
        return;
    };
    let cluster = Cluster::start();
    let (_agent, agent_id) = cluster.agent(RESOURCES, &[]);
    let mut f = framework(&cluster).await;
    let offer = f.offers().await.remove(0);
    let host_port = 31005;
    let mut container = in_image(IMAGE);
    let info = container.docker.as_mut().expect("docker");
    info.network = docker_info::Network::Bridge as i32;
    info.port_mappings = vec![docker_info::PortMapping {
        host_port,
        container_port: 80,
        protocol: Some("tcp".into()),
    }];
    let web = TaskBuilder::new(
        "web",
        "mkdir -p /www && echo hello-from-$PORT0 > /www/index.html && exec httpd -f -p 80 -h /www",
    )
    .cpus(0.1)
    .mem(64.0)
    .resources(&agora_common::resources::Resources::from_vec(vec![
        agora_common::resources::ranges("ports", &[(u64::from(host_port), u64::from(host_port))]),
    ]))
    .container(container)
    .build(&offer);
    f.scheduler.launch(&offer, vec![web]).await.expect("launch");
    let running = f.update("web", TaskState::TaskRunning).await;
    let ips = addresses(&running);
    assert_eq!(ips.len(), 1, "{ips:?}");
    let ip: std::net::IpAddr = ips[0].parse().expect("an address");
    assert!(!ip.is_loopback(), "the container's own address: {ip}");
    let body = eventually("the container's HTTP answer on the host port", || {
        reqwest_get(&format!("http://127.0.0.1:{host_port}/"))
    });
    assert_eq!(
        body,
        format!("hello-from-{host_port}\n"),
        "PORT0 is the host port"
    );
    // The agent's statistics cover the container through the engine.
    let stats = eventually("statistics of the container", || {
        let all = get_json(cluster.agent_port, "/monitor/statistics")?;
        all.as_array()?
            .iter()
            .find(|s| s["executor_id"] == "web")
            .cloned()
    });
    assert!(
        stats["statistics"]["mem_rss_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0),
        "{stats}"
    );
    assert_eq!(stats["statistics"]["mem_limit_bytes"], 64 * 1024 * 1024);
    // The master's state shows the container and its address.
    let state = get_json(cluster.master_port, "/master/state").expect("state");
    let t = &state["frameworks"][0]["tasks"][0];
    assert_eq!(t["container"]["docker"]["network"], "BRIDGE");
    assert_eq!(
        t["container"]["docker"]["port_mappings"][0]["host_port"],
        host_port
    );
    let last = t["statuses"]
        .as_array()
        .expect("statuses")
        .last()
        .cloned()
        .expect("a status");
    assert_eq!(
        last["container_status"]["network_infos"][0]["ip_addresses"][0]["ip_address"],
        ip.to_string()
    );
    assert_eq!(last["state"], "TASK_RUNNING", "{agent_id}");
    f.scheduler.kill("web", None, None).await.expect("kill");
    f.update("web", TaskState::TaskKilled).await;
    no_container_left(&docker, &cluster).await;
}

/// A plain HTTP GET's body (the agent and containers speak HTTP/1.1).
fn reqwest_get(url: &str) -> Option<String> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            let answer = reqwest::get(&url).await.ok()?;
            answer.status().is_success().then_some(())?;
            answer.text().await.ok()
        })
    })
    .join()
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_on_a_user_network_reports_its_address_there() {
    use bollard::models::NetworkCreateRequest;
    let Some(docker) = engine("a_container_on_a_user_network_reports_its_address_there").await
    else {
        return;
    };
    let network = format!("agora-test-{}", uuid::Uuid::new_v4().simple());
    docker
        .create_network(NetworkCreateRequest {
            name: network.clone(),
            ..Default::default()
        })
        .await
        .expect("a user network");
    let subnet = docker
        .inspect_network(&network, None)
        .await
        .expect("inspect the network")
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.into_iter().next())
        .and_then(|c| c.subnet)
        .expect("the network's subnet");
    let cluster = Cluster::start();
    let (_agent, _) = cluster.agent(RESOURCES, &[]);
    let mut f = framework(&cluster).await;
    let offer = f.offers().await.remove(0);
    let mut container = in_image(IMAGE);
    container.docker.as_mut().expect("docker").network = docker_info::Network::User as i32;
    container.network_infos = vec![NetworkInfo {
        name: Some(network.clone()),
        ..Default::default()
    }];
    let t = task(&offer, "user-net", "sleep 600", container);
    f.scheduler.launch(&offer, vec![t]).await.expect("launch");
    let running = f.update("user-net", TaskState::TaskRunning).await;
    let names: Vec<Option<String>> = running
        .container_status
        .iter()
        .flat_map(|c| c.network_infos.iter())
        .map(|n| n.name.clone())
        .collect();
    assert_eq!(names, vec![Some(network.clone())]);
    let ip = addresses(&running).remove(0);
    let prefix: Vec<&str> = subnet.split('.').take(2).collect();
    assert!(
        ip.starts_with(&format!("{}.", prefix.join("."))),
        "{ip} is on {subnet}"
    );
    f.scheduler
        .kill("user-net", None, None)
        .await
        .expect("kill");
    f.update("user-net", TaskState::TaskKilled).await;
    no_container_left(&docker, &cluster).await;
    docker
        .remove_network(&network)
        .await
        .expect("remove the network");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_mount_read_only_and_read_write_and_relative_paths_are_in_the_sandbox() {
    let Some(docker) = engine("volumes_mount_read_only_and_read_write").await else {
        return;
    };
    let cluster = Cluster::start();
    let (_agent, agent_id) = cluster.agent(RESOURCES, &[]);
    let mut f = framework(&cluster).await;
    let shared = tempfile::tempdir().expect("host dir");
    std::fs::write(shared.path().join("config"), "from-the-host\n").expect("write");
    let offer = f.offers().await.remove(0);
    let mut container = in_image(IMAGE);
    container.volumes = vec![
        Volume {
            mode: Mode::Ro as i32,
            container_path: "/config".into(),
            host_path: Some(shared.path().display().to_string()),
        },
        Volume {
            mode: Mode::Rw as i32,
            container_path: "data".into(),
            host_path: Some("state".into()),
        },
    ];
    let t = task(
        &offer,
        "volumes",
        "cat /config/config; if touch /config/new 2>/dev/null; then echo wrote-ro; else echo refused-ro; fi; \
         echo kept > /mnt/mesos/sandbox/data/file && echo wrote-rw",
        container,
    );
    f.scheduler.launch(&offer, vec![t]).await.expect("launch");
    f.update("volumes", TaskState::TaskFinished).await;
    let dir = sandbox(&cluster, &agent_id, &f, "volumes");
    assert_eq!(
        read(dir.join("stdout")),
        "from-the-host\nrefused-ro\nwrote-rw\n"
    );
    assert!(
        !shared.path().join("new").exists(),
        "the read-only volume refused the write"
    );
    assert_eq!(
        read(dir.join("state/file")),
        "kept\n",
        "a relative host path is in the sandbox"
    );
    no_container_left(&docker, &cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_cannot_run_fails_at_once_with_the_reason() {
    let Some(docker) = engine("a_container_that_cannot_run_fails_at_once").await else {
        return;
    };
    let cluster = Cluster::start();
    let (_agent, _) = cluster.agent(RESOURCES, &[]);
    let mut f = framework(&cluster).await;
    let offer = f.offers().await.remove(0);
    let mut unknown_parameter = in_image(IMAGE);
    unknown_parameter
        .docker
        .as_mut()
        .expect("docker")
        .parameters = vec![Parameter {
        key: "blkio-weight".into(),
        value: "10".into(),
    }];
    let mut user_network = in_image(IMAGE);
    user_network.docker.as_mut().expect("docker").network = docker_info::Network::User as i32;
    user_network.network_infos = vec![NetworkInfo {
        name: Some("agora-no-such-network".into()),
        ..Default::default()
    }];
    let mut unknown_user = task(&offer, "user", "true", in_image(IMAGE));
    unknown_user.command.as_mut().expect("command").user = Some("nosuchuser".into());
    // The engine has this image, but the task asks for a pull, as Mesos
    // does it: with no registry reachable, that fails.
    let mut forced = in_image(IMAGE);
    forced.docker.as_mut().expect("docker").force_pull_image = Some(true);
    let tasks = vec![
        task(&offer, "forced", "true", forced),
        task(
            &offer,
            "image",
            "true",
            in_image("agora-test/does-not-exist:1"),
        ),
        task(&offer, "parameter", "true", unknown_parameter),
        task(&offer, "network", "true", user_network),
        unknown_user,
    ];
    f.scheduler.launch(&offer, tasks).await.expect("launch");
    let mut ended = f
        .terminal_updates(&["forced", "image", "parameter", "network", "user"])
        .await;
    for (id, cause) in [
        ("forced", "cannot pull image 'agora-test/busybox:1'"),
        ("image", "cannot pull image 'agora-test/does-not-exist:1'"),
        (
            "parameter",
            "docker parameter 'blkio-weight': unsupported option",
        ),
        ("network", "agora-no-such-network"),
        ("user", "nosuchuser"),
    ] {
        let failed = ended.remove(id).expect("ended");
        assert_eq!(failed.state(), TaskState::TaskFailed, "{id}");
        assert_eq!(
            failed.reason,
            Some(Reason::ContainerLaunchFailed as i32),
            "{id}"
        );
        let message = failed.message.unwrap_or_default();
        assert!(
            message.starts_with("Failed to launch container: ") && message.contains(cause),
            "{id}: {message}"
        );
    }
    no_container_left(&docker, &cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_sends_the_stop_signal_then_sigkill_once_the_grace_period_is_over() {
    let Some(docker) = engine("a_kill_sends_the_stop_signal_then_sigkill").await else {
        return;
    };
    let cluster = Cluster::start();
    let (_agent, agent_id) = cluster.agent(RESOURCES, &[]);
    let mut f = framework(&cluster).await;
    let offer = f.offers().await.remove(0);
    // Each exits cleanly some time after SIGTERM: 0.3 s, within its 10 s
    // grace period; 5 s, past its 1 s one.
    let trapper = |clean_up: &str| {
        format!(
            "trap 'echo got-term; sleep {clean_up}; echo clean-exit; exit 0' TERM; \
             echo ready; while true; do sleep 0.05; done"
        )
    };
    let graceful = TaskBuilder::new("graceful", trapper("0.3"))
        .cpus(0.1)
        .mem(64.0)
        .grace_period(Duration::from_secs(10))
        .docker_image(IMAGE)
        .build(&offer);
    let hasty = TaskBuilder::new("hasty", trapper("5"))
        .cpus(0.1)
        .mem(64.0)
        .grace_period(Duration::from_secs(1))
        .docker_image(IMAGE)
        .build(&offer);
    f.scheduler
        .launch(&offer, vec![graceful, hasty])
        .await
        .expect("launch");
    f.update("graceful", TaskState::TaskRunning).await;
    for id in ["graceful", "hasty"] {
        let out = sandbox(&cluster, &agent_id, &f, id).join("stdout");
        eventually("the trap to be set", || {
            std::fs::read_to_string(&out)
                .ok()?
                .contains("ready")
                .then_some(())
        });
        f.scheduler.kill(id, None, None).await.expect("kill");
    }
    let mut ended = f.terminal_updates(&["graceful", "hasty"]).await;
    let graceful = ended.remove("graceful").expect("ended");
    assert_eq!(graceful.state(), TaskState::TaskKilled);
    assert_eq!(
        graceful.message.as_deref(),
        Some("Command exited with status 0"),
        "the trap ran to its end"
    );
    let hasty = ended.remove("hasty").expect("ended");
    assert_eq!(hasty.state(), TaskState::TaskKilled);
    assert_eq!(
        hasty.message.as_deref(),
        Some("Command terminated with signal SIGKILL")
    );
    let graceful_out = read(sandbox(&cluster, &agent_id, &f, "graceful").join("stdout"));
    assert!(
        graceful_out.contains("got-term\nclean-exit"),
        "{graceful_out}"
    );
    let hasty_out = read(sandbox(&cluster, &agent_id, &f, "hasty").join("stdout"));
    assert!(
        hasty_out.contains("got-term") && !hasty_out.contains("clean-exit"),
        "{hasty_out}"
    );
    no_container_left(&docker, &cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_over_its_memory_fails_with_the_memory_reason() {
    let Some(docker) = engine("a_container_over_its_memory_fails").await else {
        return;
    };
    let cluster = Cluster::start();
    let (_agent, _) = cluster.agent(RESOURCES, &[]);
    let mut f = framework(&cluster).await;
    let offer = f.offers().await.remove(0);
    // `tail` of an endless line keeps all of it in memory.
    let hog = TaskBuilder::new("hog", "exec tail /dev/zero")
        .cpus(0.1)
        .mem(32.0)
        .docker_image(IMAGE)
        .build(&offer);
    f.scheduler.launch(&offer, vec![hog]).await.expect("launch");
    let failed = f.update("hog", TaskState::TaskFailed).await;
    assert_eq!(
        failed.reason,
        Some(Reason::ContainerLimitationMemory as i32)
    );
    assert_eq!(
        failed.message.as_deref(),
        Some("Memory limit exceeded: 32 MB")
    );
    no_container_left(&docker, &cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_the_docker_containerizer_refuses_docker_tasks() {
    let cluster = Cluster::start();
    let (_agent, _) = cluster.agent(RESOURCES, &["--containerizers", "mesos"]);
    let mut f = framework(&cluster).await;
    let offer = f.offers().await.remove(0);
    assert_eq!(offer.containerizers, vec![ContainerType::Mesos as i32]);
    // What Agora once did with such a task: run its command on the host.
    let t = task(
        &offer,
        "docker",
        "cat /etc/os-release > leaked",
        in_image(IMAGE),
    );
    f.scheduler.launch(&offer, vec![t]).await.expect("launch");
    let failed = f.update("docker", TaskState::TaskFailed).await;
    assert_eq!(failed.reason, Some(Reason::ContainerLaunchFailed as i32));
    assert_eq!(
        failed.message.as_deref(),
        Some(
            "Failed to launch container: the docker containerizer is not enabled on this agent \
             (--containerizers=mesos)"
        )
    );
    assert!(
        find(&cluster.work_dir(), "leaked").is_none(),
        "nothing ran on the host"
    );
}
