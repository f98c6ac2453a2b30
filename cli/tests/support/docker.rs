//! What the Docker tests share: the engine (or a visible skip where this
//! machine has none), tiny test images built here from Debian's
//! `busybox-static` (no registry is reachable), and a look at the
//! containers an agent left.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;

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
