//! What the Docker tests share: the engine (or a visible skip where this
//! machine has none), tiny test images built here from Debian's
//! `busybox-static` (no registry is reachable), a framework launching
//! tasks in containers, and a look at the containers an agent left.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agora_integration_tests::TestFramework;
use agora_proto::container_info::{DockerInfo, Type as ContainerType};
use agora_proto::{ContainerInfo, Offer, TaskInfo, TaskStatus};
use agora_sdk::{SchedulerConfig, TaskBuilder};
use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;

use super::{Cluster, DEADLINE};

/// The engine's socket the tests use (the agent's default).
pub const SOCKET: &str = "/var/run/docker.sock";
/// A busybox image with a shell, `httpd`, `nc` and friends; no entrypoint.
pub const IMAGE: &str = "agora-test/busybox:1";
/// The same files, with `ENTRYPOINT ["/bin/echo", "entry:"]` and
/// `CMD ["default"]`: what runs tells entrypoint and arguments apart.
pub const ECHO_IMAGE: &str = "agora-test/echo:1";

/// The engine, with the test images in place; `None` (and a line saying
/// the test is skipped) only where the machine has no engine socket.
pub async fn engine(test: &str) -> Option<Docker> {
    if !Path::new(SOCKET).exists() {
        eprintln!("SKIPPED {test}: no Docker engine socket at {SOCKET}");
        return None;
    }
    let docker = Docker::connect_with_unix(SOCKET, 120, bollard::API_DEFAULT_VERSION)
        .expect("a client for the engine")
        .negotiate_version()
        .await
        .expect("the Docker engine answers on its socket");
    ensure_image(&docker, IMAGE, &[]).await;
    ensure_image(
        &docker,
        ECHO_IMAGE,
        &[
            r#"ENTRYPOINT ["/bin/echo", "entry:"]"#,
            r#"CMD ["default"]"#,
        ],
    )
    .await;
    Some(docker)
}

async fn ensure_image(docker: &Docker, tag: &str, changes: &[&str]) {
    agora_bench::ensure_busybox_image(docker, tag, changes)
        .await
        .unwrap_or_else(|e| panic!("cannot make the test image {tag}: {e:#}"));
}

/// The containers labelled with an agent's work dir, running or not.
pub async fn containers_of(docker: &Docker, work_dir: &Path) -> Vec<ContainerSummary> {
    let work_dir = std::fs::canonicalize(work_dir).unwrap_or_else(|_| work_dir.to_path_buf());
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("agora.work_dir={}", work_dir.display())],
    )]);
    docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .expect("list containers")
}

/// A `DOCKER` container of `image`, on the host network.
pub fn in_image(image: &str) -> ContainerInfo {
    ContainerInfo {
        r#type: ContainerType::Docker as i32,
        docker: Some(DockerInfo {
            image: image.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A framework on the SDK subscribed to the cluster's master, acknowledging
/// every update.
pub async fn framework(cluster: &Cluster) -> TestFramework {
    let config = SchedulerConfig::new(format!("127.0.0.1:{}", cluster.master_port), "docker-test")
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500))
        .auto_acknowledge(true);
    TestFramework::subscribe(config).await
}

/// A task running `command` (through the image's `/bin/sh -c`) in `container`.
pub fn task(offer: &Offer, id: &str, command: &str, container: ContainerInfo) -> TaskInfo {
    TaskBuilder::new(id, command)
        .cpus(0.1)
        .mem(64.0)
        .container(container)
        .build(offer)
}

/// A task's sandbox (its latest run) on the cluster's agent.
pub fn sandbox(cluster: &Cluster, agent_id: &str, f: &TestFramework, task_id: &str) -> PathBuf {
    cluster.work_dir().join(format!(
        "slaves/{agent_id}/frameworks/{}/executors/{task_id}/runs/latest",
        f.framework_id
    ))
}

/// A file's text; the test fails naming it if it cannot be read.
pub fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The addresses a status reports for its container.
pub fn addresses(status: &TaskStatus) -> Vec<String> {
    status
        .container_status
        .iter()
        .flat_map(|c| c.network_infos.iter())
        .flat_map(|n| n.ip_addresses.iter())
        .filter_map(|ip| ip.ip_address.clone())
        .collect()
}

/// Waits until the engine has no container of this agent left.
pub async fn no_container_left(docker: &Docker, cluster: &Cluster) {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let left = containers_of(docker, &cluster.work_dir()).await;
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "containers left behind: {:?}",
            left.iter().map(|c| &c.names).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
