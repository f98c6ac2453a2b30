//! The fetcher against a real HTTP server on 127.0.0.1:0 and real files:
//! archives are built here with the same crates a packager would use.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::oneshot;

use super::*;

/// Serves `files` by name and counts the requests; stops when dropped.
struct Server {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

type Files = Arc<HashMap<String, Vec<u8>>>;

impl Server {
    async fn start(files: Vec<(&str, Vec<u8>)>) -> Server {
        let files: Files = Arc::new(files.into_iter().map(|(n, b)| (n.to_string(), b)).collect());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let app = axum::Router::new()
            .route(
                "/files/{name}",
                get(
                    |State(files): State<Files>, UrlPath(name): UrlPath<String>| async move {
                        files.get(&name).cloned().ok_or(StatusCode::NOT_FOUND)
                    },
                ),
            )
            .with_state(files)
            .layer(axum::middleware::from_fn(
                move |req, next: axum::middleware::Next| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    next.run(req)
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Server {
            addr,
            requests,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, name: &str) -> String {
        format!("http://{}/files/{name}", self.addr)
    }

    /// Stops serving and waits until the port is closed.
    async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        (&mut self.task).await.unwrap();
    }
}

fn uri(value: &str) -> Uri {
    Uri {
        value: value.to_string(),
        ..Default::default()
    }
}

fn tar_gz(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, data, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        tar.append_data(&mut header, name, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A tar whose entry is named `name` verbatim: `tar::Builder` refuses `..`,
/// so the header is filled by hand, as a hostile packer would.
fn raw_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut tar = tar::Builder::new(Vec::new());
    tar.append(&header, data).unwrap();
    tar.into_inner().unwrap()
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn http_plain_archives_executable_and_output_file() {
    let server = Server::start(vec![
        ("hello.txt", b"hello".to_vec()),
        (
            "app.tar.gz",
            tar_gz(&[
                ("app/run.sh", b"#!/bin/sh\necho run\n", 0o755),
                ("app/conf", b"c", 0o644),
            ]),
        ),
        (
            "site.zip",
            zip(&[("site/index.html", b"<html/>"), ("top.txt", b"top")]),
        ),
        ("tool", b"#!/bin/sh\necho tool\n".to_vec()),
    ])
    .await;
    let sandbox = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let uris = [
        uri(&server.url("hello.txt")),
        uri(&server.url("app.tar.gz")),
        uri(&server.url("site.zip")),
        Uri {
            executable: Some(true),
            output_file: Some("bin/the-tool".into()),
            ..uri(&server.url("tool"))
        },
        Uri {
            extract: Some(false),
            output_file: Some("kept.tgz".into()),
            ..uri(&server.url("app.tar.gz"))
        },
    ];
    fetch(&uris, sandbox.path(), cache.path()).await.unwrap();
    let s = sandbox.path();
    assert_eq!(read(s.join("hello.txt")), "hello");
    // Archives are unpacked next to themselves, with their modes.
    assert!(s.join("app.tar.gz").is_file());
    assert_eq!(read(s.join("app/conf")), "c");
    let mode = std::fs::metadata(s.join("app/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "{mode:o}");
    assert_eq!(read(s.join("site/index.html")), "<html/>");
    assert_eq!(read(s.join("top.txt")), "top");
    let tool = s.join("bin/the-tool");
    assert_eq!(
        std::fs::metadata(&tool).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let out = std::process::Command::new(&tool).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tool\n");
    assert!(s.join("kept.tgz").is_file());
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(s)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !names.iter().any(|n| n.to_string_lossy().ends_with(".part")),
        "{names:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn cached_uri_is_served_from_the_cache_after_the_server_stops() {
    let server = Server::start(vec![("pkg.tgz", tar_gz(&[("pkg/v", b"1", 0o644)]))]).await;
    let cache = tempfile::tempdir().unwrap();
    let cached = Uri {
        cache: Some(true),
        ..uri(&server.url("pkg.tgz"))
    };
    let first = tempfile::tempdir().unwrap();
    fetch(std::slice::from_ref(&cached), first.path(), cache.path())
        .await
        .unwrap();
    assert_eq!(read(first.path().join("pkg/v")), "1");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    server.stop().await;

    let second = tempfile::tempdir().unwrap();
    fetch(std::slice::from_ref(&cached), second.path(), cache.path())
        .await
        .unwrap();
    assert_eq!(read(second.path().join("pkg/v")), "1");

    // A copy, not a link: what a task does to its file stays in its sandbox.
    std::fs::write(second.path().join("pkg.tgz"), b"scribbled").unwrap();
    let third = tempfile::tempdir().unwrap();
    fetch(&[cached], third.path(), cache.path()).await.unwrap();
    assert_eq!(read(third.path().join("pkg/v")), "1");
}

#[tokio::test]
async fn local_files_by_file_uri_and_plain_path() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a.txt"), b"A").unwrap();
    std::fs::write(src.path().join("b.tar.gz"), tar_gz(&[("b/x", b"X", 0o644)])).unwrap();
    let sandbox = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let uris = [
        uri(&format!("file://{}", src.path().join("a.txt").display())),
        uri(src.path().join("b.tar.gz").to_str().unwrap()),
    ];
    fetch(&uris, sandbox.path(), cache.path()).await.unwrap();
    assert_eq!(read(sandbox.path().join("a.txt")), "A");
    assert_eq!(read(sandbox.path().join("b/x")), "X");
}

#[tokio::test]
async fn failures_name_the_uri_and_the_cause() {
    let server = Server::start(vec![]).await;
    let sandbox = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let missing = server.url("missing.tgz");
    let err = fetch(&[uri(&missing)], sandbox.path(), cache.path())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::HttpStatus { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(err.uri(), missing);
    let message = err.to_string();
    assert!(
        message.contains(&missing) && message.contains("404"),
        "{message}"
    );
    server.stop().await;

    // Nothing listens any more: the cause is the refused connection.
    let err = fetch(&[uri(&missing)], sandbox.path(), cache.path())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&missing), "{message}");
    assert!(message.to_lowercase().contains("connect"), "{message}");

    for (value, expected) in [
        ("hdfs://nn/x", "unsupported scheme"),
        ("relative/x", "unsupported scheme"),
        ("/no/such/file", "No such file"),
        ("http://127.0.0.1:1/", "names no file"),
    ] {
        let err = fetch(&[uri(value)], sandbox.path(), cache.path())
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(value) && message.contains(expected),
            "{message}"
        );
    }
    let escaping = Uri {
        output_file: Some("../out".into()),
        ..uri("/etc/hostname")
    };
    let err = fetch(&[escaping], sandbox.path(), cache.path())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::BadOutputFile { .. }), "{err:?}");
}

#[tokio::test]
async fn archive_entries_escaping_the_sandbox_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let sandbox = root.path().join("sandbox");
    std::fs::create_dir(&sandbox).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let evil_tar = root.path().join("evil.tar");
    std::fs::write(&evil_tar, raw_tar("../evil", b"pwned")).unwrap();
    let err = fetch(&[uri(evil_tar.to_str().unwrap())], &sandbox, cache.path())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::EscapingEntry { entry, .. } if entry == "../evil"),
        "{err:?}"
    );
    assert!(err.to_string().contains("evil.tar"), "{err}");
    assert!(!root.path().join("evil").exists());

    let abs_tar = root.path().join("abs.tar");
    let target = root.path().join("abs-target");
    std::fs::write(&abs_tar, raw_tar(target.to_str().unwrap(), b"pwned")).unwrap();
    let err = fetch(&[uri(abs_tar.to_str().unwrap())], &sandbox, cache.path())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::EscapingEntry { .. }), "{err:?}");
    assert!(!target.exists());

    let evil_zip = root.path().join("evil.zip");
    std::fs::write(
        &evil_zip,
        zip(&[("ok.txt", b"ok"), ("../../evil-zip", b"pwned")]),
    )
    .unwrap();
    let err = fetch(&[uri(evil_zip.to_str().unwrap())], &sandbox, cache.path())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::EscapingEntry { .. }), "{err:?}");
    assert!(
        !sandbox.join("ok.txt").exists(),
        "nothing is written from a refused zip"
    );
}
