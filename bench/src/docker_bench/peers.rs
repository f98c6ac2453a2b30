//! The peers Agora is measured beside, run as their users run them: the
//! `docker` CLI (`docker run -d`, one at a time and in a shell loop),
//! Docker Swarm mode (`docker service create --replicas N`), and the
//! engine's API alone. Every container is on the host's network, as
//! Agora's are (Marathon's and Mesos' default), so that none pays for a
//! network namespace the others do not.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use bollard::Docker;
use tokio::process::Command;

/// Names of every container the peers make start with this.
pub(crate) const PREFIX: &str = "agora-bench-";
/// The Swarm service's name.
const SERVICE: &str = "agora-bench-swarm";

async fn docker_cli(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running the docker CLI")?;
    if !out.status.success() {
        bail!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `docker run -d` of `command` in `image`, `n` times one after another,
/// each timed alone.
pub(crate) async fn single_runs(
    n: usize,
    image: &str,
    command: &[&str],
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{PREFIX}single-{i}");
        let mut args = vec![
            "run",
            "-d",
            "--network",
            "host",
            "--name",
            name.as_str(),
            image,
        ];
        args.extend_from_slice(command);
        let started = Instant::now();
        docker_cli(&args).await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// The engine's API alone, without a CLI: create and start `n` containers
/// one after another, each pair timed (the floor under any way of starting
/// a container).
pub(crate) async fn api_runs(
    docker: &Docker,
    n: usize,
    image: &str,
    command: &[&str],
) -> anyhow::Result<Vec<Duration>> {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::CreateContainerOptions;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{PREFIX}api-{i}");
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(command.iter().map(|c| c.to_string()).collect()),
            host_config: Some(bollard::models::HostConfig {
                network_mode: Some("host".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let started = Instant::now();
        docker
            .create_container(Some(options), body)
            .await
            .context("creating a container")?;
        docker
            .start_container(&name, None)
            .await
            .context("starting a container")?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// `n` containers by `docker run -d` in a shell loop; its duration.
pub(crate) async fn run_loop(n: usize, image: &str, command: &str) -> anyhow::Result<Duration> {
    let script = format!(
        "for i in $(seq 1 {n}); do docker run -d --network host --name {PREFIX}loop-$i {image} {command} >/dev/null || exit 1; done"
    );
    let started = Instant::now();
    let status = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .status()
        .await
        .context("running the docker run loop")?;
    if !status.success() {
        bail!("the docker run loop failed ({status})");
    }
    Ok(started.elapsed())
}

/// What Swarm mode measured.
pub(crate) struct SwarmRun {
    /// `docker service create` → `n` replicas running.
    pub all_running: Duration,
}

/// `docker service create --no-resolve-image --replicas n` on a one-node
/// swarm made for the run (and left afterwards); `None` when this engine
/// is already part of a swarm the bench must not disturb.
pub(crate) async fn swarm(
    docker: &Docker,
    n: usize,
    image: &str,
    command: &[&str],
    timeout: Duration,
) -> anyhow::Result<Option<SwarmRun>> {
    let state = docker_cli(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).await?;
    if state != "inactive" {
        tracing::warn!(%state, "the engine is in a swarm already; the Swarm phase is skipped");
        return Ok(None);
    }
    docker_cli(&["swarm", "init", "--advertise-addr", "127.0.0.1"]).await?;
    let result = swarm_phase(docker, n, image, command, timeout).await;
    let _ = docker_cli(&["service", "rm", SERVICE]).await;
    let _ = wait_for(docker, &swarm_filter(), 0, false, timeout).await;
    docker_cli(&["swarm", "leave", "--force"]).await?;
    result.map(Some)
}

async fn swarm_phase(
    docker: &Docker,
    n: usize,
    image: &str,
    command: &[&str],
    timeout: Duration,
) -> anyhow::Result<SwarmRun> {
    let replicas = n.to_string();
    let mut args = vec![
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--network",
        "host",
        "--replicas",
        replicas.as_str(),
        "--name",
        SERVICE,
        image,
    ];
    args.extend_from_slice(command);
    let started = Instant::now();
    docker_cli(&args).await?;
    wait_for(docker, &swarm_filter(), n, true, timeout).await?;
    Ok(SwarmRun {
        all_running: started.elapsed(),
    })
}

fn swarm_filter() -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("com.docker.swarm.service.name={SERVICE}")],
    )])
}

/// The containers matching `filters` (running ones only with `running`).
pub(crate) async fn count(
    docker: &Docker,
    filters: &HashMap<String, Vec<String>>,
    running: bool,
) -> anyhow::Result<usize> {
    let listed = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .context("listing containers")?;
    Ok(listed
        .iter()
        .filter(|c| !running || c.state == Some(ContainerSummaryStateEnum::RUNNING))
        .count())
}

/// Polls until exactly `n` containers match (running ones with `running`).
pub(crate) async fn wait_for(
    docker: &Docker,
    filters: &HashMap<String, Vec<String>>,
    n: usize,
    running: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = count(docker, filters, running).await?;
        if found == n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{found} containers instead of {n} after {timeout:?} ({filters:?})");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Removes every container the peers made (whatever an aborted run left).
pub(crate) async fn remove_all(docker: &Docker) -> anyhow::Result<usize> {
    let filters = HashMap::from([("name".to_string(), vec![PREFIX.to_string()])]);
    remove_matching(docker, filters).await
}

/// Removes every container matching `filters`; how many went.
pub(crate) async fn remove_matching(
    docker: &Docker,
    filters: HashMap<String, Vec<String>>,
) -> anyhow::Result<usize> {
    let listed = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .context("listing containers to remove")?;
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    let removals = listed.iter().filter_map(|c| c.id.clone()).map(|id| {
        let docker = docker.clone();
        let options = options.clone();
        async move { docker.remove_container(&id, Some(options)).await }
    });
    let results = futures::future::join_all(removals).await;
    Ok(results.iter().filter(|r| r.is_ok()).count())
}
