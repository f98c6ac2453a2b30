//! The HTTP server every health check of the health bench reaches, and
//! what it knows: which tasks are sick, since when, and how long it took
//! for each to be killed.
//!
//! A task is known by a key: the path `/t/<key>` when its check names one
//! (the real agent's tasks, all checked on one port), else the address the
//! check connected to, `<ip>:<port>` (the emulated agents' tasks: each
//! agent has a loopback address of its own and the tasks their host ports,
//! so the server listens on every port of the agents' range). A sick task
//! is answered 503, a healthy one 200; HTTP/1.1 connections are kept alive
//! unless the client asks to close them (Marathon's prober keeps them, the
//! agent's checks close them).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The first ports tried for the listeners, then every 1,000 above.
const FIRST_BASE_PORT: u16 = 31_000;
const LAST_BASE_PORT: u16 = 60_000;
/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// What the server knows, shared with whoever kills tasks.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Sick tasks by key, and since when.
    sick: Mutex<HashMap<String, Instant>>,
    /// Sick → killed, per task killed while sick.
    detections: Mutex<Vec<Duration>>,
    /// Requests answered.
    requests: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Health {
    /// From now on, `key`'s checks fail.
    pub fn make_sick(&self, key: &str) {
        lock(&self.sick).insert(key.to_string(), Instant::now());
    }

    /// `key`'s task was killed: healthy again (its replacement may get the
    /// same address), and the time since it turned sick counted.
    pub fn killed(&self, key: &str) {
        if let Some(since) = lock(&self.sick).remove(key) {
            lock(&self.detections).push(since.elapsed());
        }
    }

    /// Makes every task healthy again, forgetting what was sick.
    pub fn heal_all(&self) {
        lock(&self.sick).clear();
    }

    /// Takes the detections so far.
    pub fn take_detections(&self) -> Vec<Duration> {
        std::mem::take(&mut *lock(&self.detections))
    }

    /// Detections so far.
    pub fn detected(&self) -> usize {
        lock(&self.detections).len()
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn is_sick(&self, key: &str) -> bool {
        lock(&self.sick).contains_key(key)
    }
}

/// The running server; dropping it stops the listeners.
pub(crate) struct CheckServer {
    /// What it knows.
    pub health: Arc<Health>,
    /// Its first port; it listens on as many as it was asked from there.
    pub base_port: u16,
    _tasks: JoinSet<()>,
}

impl CheckServer {
    /// Listens on `ports` consecutive ports of every address (the first
    /// range of them all free, from 31000 up).
    pub async fn start(ports: u16) -> anyhow::Result<Self> {
        if ports == 0 {
            bail!("the check server needs at least one port");
        }
        let mut base = FIRST_BASE_PORT;
        let listeners = loop {
            match bind_range(base, ports).await {
                Ok(listeners) => break listeners,
                Err(e) if base < LAST_BASE_PORT => {
                    tracing::debug!(base, error = %e, "ports taken, trying the next range");
                    base += 1_000;
                }
                Err(e) => return Err(e).context("finding free ports for the check server"),
            }
        };
        let health = Arc::new(Health::default());
        let mut tasks = JoinSet::new();
        for listener in listeners {
            tasks.spawn(accept_loop(listener, health.clone()));
        }
        Ok(CheckServer {
            health,
            base_port: base,
            _tasks: tasks,
        })
    }
}

async fn bind_range(base: u16, ports: u16) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(usize::from(ports));
    for port in base..base.checked_add(ports).context("port range past 65535")? {
        let listener = TcpListener::bind(("0.0.0.0", port))
            .await
            .with_context(|| format!("port {port}"))?;
        listeners.push(listener);
    }
    Ok(listeners)
}

async fn accept_loop(listener: TcpListener, health: Arc<Health>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors for a moment: try again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let health = health.clone();
        tokio::spawn(async move {
            let _ = serve(stream, &health).await;
        });
    }
}

/// Answers the requests of one connection.
async fn serve(mut stream: TcpStream, health: &Health) -> std::io::Result<()> {
    let local = stream.local_addr()?;
    let mut buf = Vec::with_capacity(512);
    loop {
        let head_end = loop {
            if let Some(end) = find_head_end(&buf) {
                break end;
            }
            if buf.len() > MAX_HEAD {
                return Ok(());
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let request = parse_head(&head, local);
        health.requests.fetch_add(1, Ordering::Relaxed);
        let (status, body) = if health.is_sick(&request.key) {
            ("503 Service Unavailable", "sick")
        } else {
            ("200 OK", "ok")
        };
        let connection = if request.close { "close" } else { "keep-alive" };
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: {connection}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).await?;
        if request.close {
            return Ok(());
        }
    }
}

/// Where a request head ends (after its blank line).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// What the server needs of a request.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    key: String,
    close: bool,
}

/// The task a request checks, and whether its connection ends after it.
fn parse_head(head: &str, local: SocketAddr) -> Request {
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut words = first.split(' ');
    let path = words.nth(1).unwrap_or("/");
    let version = words.next().unwrap_or("HTTP/1.0");
    let asked_close = lines.any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("connection")
                && value.trim().eq_ignore_ascii_case("close")
        })
    });
    let key = match path.strip_prefix("/t/") {
        Some(key) if !key.is_empty() => key.to_string(),
        _ => format!("{}:{}", local.ip(), local.port()),
    };
    Request {
        key,
        close: asked_close || version == "HTTP/1.0",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_their_task_by_path_or_by_address() {
        let local: SocketAddr = "127.1.0.3:31007".parse().expect("addr");
        let table = [
            (
                "GET /t/bench-task-7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "bench-task-7",
                true,
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                "127.1.0.3:31007",
                false,
            ),
            ("GET /t/ HTTP/1.1\r\n\r\n", "127.1.0.3:31007", false),
            ("GET /health HTTP/1.0\r\n\r\n", "127.1.0.3:31007", true),
            (
                "GET / HTTP/1.1\r\nconnection:  Close\r\n\r\n",
                "127.1.0.3:31007",
                true,
            ),
        ];
        for (head, key, close) in table {
            assert_eq!(
                parse_head(head, local),
                Request {
                    key: key.into(),
                    close
                },
                "{head:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_sick_task_is_answered_503_until_killed_and_the_wait_is_counted() {
        let server = CheckServer::start(2).await.expect("server");
        let port = server.base_port + 1;
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            s.write_all(format!("GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes())
                .await
                .expect("write");
            let mut answer = String::new();
            s.read_to_string(&mut answer).await.expect("read");
            answer
        };
        assert!(get("/t/a").await.starts_with("HTTP/1.1 200"));
        server.health.make_sick("a");
        server.health.make_sick(&format!("127.0.0.1:{port}"));
        assert!(get("/t/a").await.starts_with("HTTP/1.1 503"));
        assert!(get("/").await.starts_with("HTTP/1.1 503"));
        assert!(get("/t/b").await.starts_with("HTTP/1.1 200"));
        server.health.killed("a");
        server.health.killed("never-sick");
        assert!(get("/t/a").await.starts_with("HTTP/1.1 200"));
        assert_eq!(server.health.detected(), 1);
        assert_eq!(server.health.requests(), 5);

        // Kept alive: two requests on one connection.
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.write_all(b"GET /t/b HTTP/1.1\r\n\r\nGET /t/b HTTP/1.1\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.expect("read");
        assert_eq!(answer.matches("HTTP/1.1 200").count(), 2, "{answer}");
    }
}
