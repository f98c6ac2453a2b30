//! What the Docker tests share: the engine (or a visible skip where this
//! machine has none), tiny test images built here from Debian's
//! `busybox-static` (no registry is reachable), and a look at the
//! containers an agent left.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::ContainerSummary;
use bollard::query_parameters::{CreateImageOptions, ListContainersOptions};
use bollard::Docker;
use futures::StreamExt;

/// The engine's socket the tests use (the agent's default).
pub const SOCKET: &str = "/var/run/docker.sock";
/// A busybox image with a shell, `httpd`, `nc` and friends; no entrypoint.
pub const IMAGE: &str = "agora-test/busybox:1";
/// The same files, with `ENTRYPOINT ["/bin/echo", "entry:"]` and
/// `CMD ["default"]`: what runs tells entrypoint and arguments apart.
pub const ECHO_IMAGE: &str = "agora-test/echo:1";
/// Where Debian's `busybox-static` puts the binary.
const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "sleep", "echo", "cat", "httpd", "nc", "head", "tail", "touch", "ls", "id", "wget",
    "true", "false", "grep", "mkdir", "rm", "ps", "kill", "env", "hostname", "ip",
];

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

/// `docker import` of a busybox root file system as `tag`, unless present.
async fn ensure_image(docker: &Docker, tag: &str, changes: &[&str]) {
    if docker.inspect_image(tag).await.is_ok() {
        return;
    }
    let (repo, version) = tag.split_once(':').expect("repo:tag");
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(version.into()),
        changes: changes.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    };
    let mut progress = docker.create_image(
        Some(options),
        Some(bollard::body_full(rootfs().into())),
        None,
    );
    while let Some(step) = progress.next().await {
        step.unwrap_or_else(|e| panic!("cannot import {tag}: {e}"));
    }
}

/// A tar of `/bin/busybox` with its applets linked, `/etc/passwd` with
/// `root` and `nobody`, and `/tmp`.
fn rootfs() -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX).unwrap_or_else(|e| {
        panic!("{BUSYBOX}: {e}: the Docker tests need Debian's busybox-static (scripts/test.sh installs it)")
    });
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = |path: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        tar.append_data(&mut h, path, std::io::empty())
            .expect("dir");
    };
    for d in ["bin", "etc", "root"] {
        dir(d, 0o755);
    }
    dir("tmp", 0o1777);
    let mut file = |path: &str, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        tar.append_data(&mut h, path, data).expect("file");
    };
    file("bin/busybox", 0o755, &busybox);
    file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\n",
    );
    file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
    for applet in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("link");
    }
    tar.into_inner().expect("tar")
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
