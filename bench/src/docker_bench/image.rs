//! Tiny local images for benches and tests: no registry is reachable on
//! these machines, so an image is `docker import`ed from a root file system
//! made here of Debian's `busybox-static` (the one binary, its applets
//! linked, `/etc/passwd` with `root` and `nobody`, `/tmp`).

use anyhow::Context;
use bollard::query_parameters::CreateImageOptions;
use bollard::Docker;
use futures::StreamExt;

/// Where Debian's `busybox-static` puts the binary.
const BUSYBOX: &str = "/bin/busybox";
/// The applets linked in `/bin`.
const APPLETS: &[&str] = &[
    "sh", "sleep", "echo", "cat", "httpd", "nc", "head", "tail", "touch", "ls", "id", "wget",
    "true", "false", "grep", "mkdir", "rm", "ps", "kill", "env", "hostname", "ip",
];

/// Imports the busybox image as `tag` (`repo:version`) with the Dockerfile
/// `changes` (`ENTRYPOINT [...]`, `CMD [...]`), unless the engine has it.
pub async fn ensure_busybox_image(
    docker: &Docker,
    tag: &str,
    changes: &[&str],
) -> anyhow::Result<()> {
    if docker.inspect_image(tag).await.is_ok() {
        return Ok(());
    }
    let (repo, version) = tag
        .split_once(':')
        .with_context(|| format!("image tag '{tag}' is not repo:version"))?;
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(version.into()),
        changes: changes.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    };
    let rootfs = busybox_rootfs()?;
    let mut progress =
        docker.create_image(Some(options), Some(bollard::body_full(rootfs.into())), None);
    while let Some(step) = progress.next().await {
        step.with_context(|| format!("importing {tag}"))?;
    }
    Ok(())
}

/// The root file system, as a tar.
fn busybox_rootfs() -> anyhow::Result<Vec<u8>> {
    let busybox = std::fs::read(BUSYBOX).with_context(|| {
        format!("reading {BUSYBOX}: the images are made of Debian's busybox-static (scripts/test.sh installs it)")
    })?;
    let mut tar = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: usize| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size as u64);
        h
    };
    for (dir, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
    ] {
        let mut h = header(tar::EntryType::Directory, mode, 0);
        tar.append_data(&mut h, dir, std::io::empty())?;
    }
    let files: [(&str, u32, &[u8]); 3] = [
        ("bin/busybox", 0o755, &busybox),
        (
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\n",
        ),
        ("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n"),
    ];
    for (path, mode, data) in files {
        let mut h = header(tar::EntryType::Regular, mode, data.len());
        tar.append_data(&mut h, path, data)?;
    }
    for applet in APPLETS {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
    }
    Ok(tar.into_inner()?)
}
