//! Marathon's own probes: `HTTP`, `HTTPS` and `TCP` health checks and the
//! readiness checks of instances being deployed, run by the leading
//! Marathon itself (Mesos checks run on the agents).
//!
//! A [`Prober`] keeps one loop per check of each watched instance, each on
//! its own interval; at most [`MAX_CONCURRENT`] probes are in flight at once
//! (a semaphore), and HTTP probes share one client whose connections stay
//! open between probes (keep-alive), so thousands of checks cost a few
//! sockets' worth of work per interval rather than a connection each. The
//! loops only probe and report ([`ProbeResult`]); what a result means, and
//! when an instance is killed for it, is the core's ([`policy`] and
//! [`crate::model::health`]).

pub mod policy;
pub mod target;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::core::state::{ReadinessResponse, ReadinessResult};
use crate::model::app::ReadinessCheck;

/// Probes in flight at once, across all instances.
pub const MAX_CONCURRENT: usize = 256;
/// The most of a readiness answer's body kept (`preserveLastResponse`).
const MAX_BODY: usize = 64 * 1024;

/// What one of Marathon's health checks asks.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthProbe {
    /// Which of the app's `healthChecks`.
    pub index: usize,
    /// HTTP, HTTPS (certificates unverified, as Marathon) or TCP.
    pub kind: ProbeKind,
    /// The port to reach.
    pub port: u16,
    /// The HTTP path.
    pub path: String,
    /// Between probes.
    pub interval: Duration,
    /// How long a probe may take.
    pub timeout: Duration,
    /// An HTTP answer from 100 to 199 changes nothing (`ignoreHttp1xx`).
    pub ignore_1xx: bool,
}

/// The kinds of Marathon's own probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// HTTP GET.
    Http,
    /// HTTPS GET.
    Https,
    /// TCP connect.
    Tcp,
}

/// A readiness check with the port it reaches.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadinessProbe {
    /// The check.
    pub check: ReadinessCheck,
    /// The port named by its `portName`.
    pub port: u16,
}

/// An instance to probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeTarget {
    /// The instance.
    pub instance_id: String,
    /// Its task.
    pub task_id: String,
    /// Where it answers (its address, or its agent's).
    pub host: String,
    /// Marathon's health checks of its app.
    pub health: Vec<HealthProbe>,
    /// Readiness checks still to pass.
    pub readiness: Vec<ReadinessProbe>,
}

/// A probe's result, for the core.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeResult {
    /// A health check ran.
    Health {
        /// The instance.
        instance_id: String,
        /// Which check.
        index: usize,
        /// What it found.
        outcome: Outcome,
    },
    /// A readiness check ran.
    Readiness {
        /// The instance.
        instance_id: String,
        /// What it found.
        result: ReadinessResult,
    },
}

/// A health probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Healthy.
    Passed,
    /// Unhealthy, and why.
    Failed(String),
    /// Neither (a 1xx answer with `ignoreHttp1xx`).
    Ignored,
}

/// Figures of the probes run so far.
#[derive(Debug, Default)]
pub struct ProbeStats {
    /// Probes run.
    pub probes: AtomicU64,
    /// Probes that started a whole interval or more after they were due
    /// (waiting for a free slot): intervals missed.
    pub late: AtomicU64,
}

/// Runs the probes of the watched instances.
pub struct Prober {
    watches: HashMap<String, (ProbeTarget, Vec<JoinHandle<()>>)>,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    results: mpsc::UnboundedSender<ProbeResult>,
    stats: Arc<ProbeStats>,
}

impl Prober {
    /// A prober reporting to `results`, counting in `stats`.
    pub fn new(results: mpsc::UnboundedSender<ProbeResult>, stats: Arc<ProbeStats>) -> Self {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(4)
            .user_agent("agora-marathon-health-check")
            .build()
            .unwrap_or_default();
        Prober {
            watches: HashMap::new(),
            client,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT)),
            results,
            stats,
        }
    }

    /// The figures so far.
    pub fn stats(&self) -> Arc<ProbeStats> {
        self.stats.clone()
    }

    /// Whether `instance_id` is probed.
    pub fn is_watching(&self, instance_id: &str) -> bool {
        self.watches.contains_key(instance_id)
    }

    /// Probes `target` from now on (in place of an earlier watch of it,
    /// unless nothing changed); a target with nothing to probe stops it.
    pub fn watch(&mut self, target: ProbeTarget) {
        if target.health.is_empty() && target.readiness.is_empty() {
            self.forget(&target.instance_id);
            return;
        }
        if self
            .watches
            .get(&target.instance_id)
            .is_some_and(|(t, _)| *t == target)
        {
            return;
        }
        self.forget(&target.instance_id);
        let mut loops = Vec::new();
        for probe in &target.health {
            loops.push(tokio::spawn(health_loop(
                probe.clone(),
                target.instance_id.clone(),
                target.host.clone(),
                self.client.clone(),
                self.permits.clone(),
                self.results.clone(),
                self.stats.clone(),
            )));
        }
        for probe in &target.readiness {
            loops.push(tokio::spawn(readiness_loop(
                probe.clone(),
                target.instance_id.clone(),
                target.task_id.clone(),
                target.host.clone(),
                self.client.clone(),
                self.permits.clone(),
                self.results.clone(),
            )));
        }
        self.watches
            .insert(target.instance_id.clone(), (target, loops));
    }

    /// Stops probing `instance_id`.
    pub fn forget(&mut self, instance_id: &str) {
        if let Some((_, loops)) = self.watches.remove(instance_id) {
            for l in loops {
                l.abort();
            }
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        for (_, loops) in self.watches.values() {
            for l in loops {
                l.abort();
            }
        }
    }
}

fn authority(host: &str, port: u16) -> String {
    match host.parse::<std::net::Ipv6Addr>() {
        Ok(ip) => format!("[{ip}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    }
}

async fn health_loop(
    probe: HealthProbe,
    instance_id: String,
    host: String,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    results: mpsc::UnboundedSender<ProbeResult>,
    stats: Arc<ProbeStats>,
) {
    let mut ticker = tokio::time::interval(probe.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let due = ticker.tick().await;
        let Ok(_permit) = permits.acquire().await else {
            return;
        };
        if due.elapsed() >= probe.interval {
            stats.late.fetch_add(1, Ordering::Relaxed);
        }
        stats.probes.fetch_add(1, Ordering::Relaxed);
        let outcome = run_health(&probe, &host, &client).await;
        let result = ProbeResult::Health {
            instance_id: instance_id.clone(),
            index: probe.index,
            outcome,
        };
        if results.send(result).is_err() {
            return;
        }
    }
}

async fn run_health(probe: &HealthProbe, host: &str, client: &reqwest::Client) -> Outcome {
    let target = authority(host, probe.port);
    match probe.kind {
        ProbeKind::Tcp => {
            match tokio::time::timeout(probe.timeout, tokio::net::TcpStream::connect(&target)).await
            {
                Ok(Ok(_)) => Outcome::Passed,
                Ok(Err(e)) => Outcome::Failed(format!("TCP connection to {target}: {e}")),
                Err(_) => Outcome::Failed(format!(
                    "TCP connection to {target} timed out after {:?}",
                    probe.timeout
                )),
            }
        }
        ProbeKind::Http | ProbeKind::Https => {
            let scheme = if probe.kind == ProbeKind::Https {
                "https"
            } else {
                "http"
            };
            let url = format!("{scheme}://{target}{}", probe.path);
            match client.get(&url).timeout(probe.timeout).send().await {
                Ok(answer) => {
                    let status = answer.status().as_u16();
                    // The body is not needed; dropping it early keeps the
                    // connection only if it was read, so read it (bounded).
                    let _ = answer.bytes().await;
                    match status {
                        200..=399 => Outcome::Passed,
                        100..=199 if probe.ignore_1xx => Outcome::Ignored,
                        _ => Outcome::Failed(format!("GET {url} answered {status}")),
                    }
                }
                Err(e) if e.is_timeout() => {
                    Outcome::Failed(format!("GET {url} timed out after {:?}", probe.timeout))
                }
                Err(e) => Outcome::Failed(format!("GET {url}: {}", root_cause(&e))),
            }
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

async fn readiness_loop(
    probe: ReadinessProbe,
    instance_id: String,
    task_id: String,
    host: String,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    results: mpsc::UnboundedSender<ProbeResult>,
) {
    let check = &probe.check;
    let interval = Duration::from_secs(check.interval_seconds.max(1) as u64);
    let timeout = Duration::from_secs(check.timeout_seconds.max(1) as u64);
    let scheme = if check.protocol.eq_ignore_ascii_case("HTTPS") {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{}{}", authority(&host, probe.port), check.path);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Ok(permit) = permits.acquire().await else {
            return;
        };
        let started = Instant::now();
        let answer = client.get(&url).timeout(timeout).send().await;
        let (ready, last_response) = match answer {
            Ok(answer) => {
                let status = answer.status().as_u16();
                let content_type = answer
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body = answer.bytes().await.unwrap_or_default();
                let ready = check
                    .http_status_codes_for_ready
                    .contains(&i64::from(status));
                let response = check.preserve_last_response.then(|| ReadinessResponse {
                    status,
                    content_type,
                    body: String::from_utf8_lossy(&body[..body.len().min(MAX_BODY)]).into_owned(),
                });
                (ready, response)
            }
            Err(_) => (false, None),
        };
        drop(permit);
        tracing::debug!(%url, ready, took = ?started.elapsed(), "readiness check");
        let result = ProbeResult::Readiness {
            instance_id: instance_id.clone(),
            result: ReadinessResult {
                name: check.name.clone(),
                task_id: task_id.clone(),
                ready,
                last_response,
            },
        };
        if results.send(result).is_err() || ready {
            // Marathon stops checking a task once it is ready.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn server(status: &'static str) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    // Keep-alive: answer every request on the connection.
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        let body = "ok";
                        let answer = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if s.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn probe(kind: ProbeKind, port: u16) -> HealthProbe {
        HealthProbe {
            index: 0,
            kind,
            port,
            path: "/health".into(),
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(2),
            ignore_1xx: false,
        }
    }

    #[tokio::test]
    async fn probes_report_what_they_find() {
        let ok = server("200 OK").await;
        let broken = server("500 Internal Server Error").await;
        let client = reqwest::Client::new();
        assert_eq!(
            run_health(&probe(ProbeKind::Http, ok), "127.0.0.1", &client).await,
            Outcome::Passed
        );
        assert_eq!(
            run_health(&probe(ProbeKind::Http, broken), "127.0.0.1", &client).await,
            Outcome::Failed(format!("GET http://127.0.0.1:{broken}/health answered 500"))
        );
        assert_eq!(
            run_health(&probe(ProbeKind::Tcp, ok), "127.0.0.1", &client).await,
            Outcome::Passed
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        assert!(matches!(
            run_health(&probe(ProbeKind::Tcp, closed), "127.0.0.1", &client).await,
            Outcome::Failed(m) if m.contains("refused")
        ));
        assert_eq!(authority("::1", 80), "[::1]:80");
    }

    #[tokio::test]
    async fn a_watch_probes_on_its_interval_and_readiness_stops_once_ready() {
        let port = server("200 OK").await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut prober = Prober::new(tx, Arc::default());
        let check: ReadinessCheck = serde_json::from_value(serde_json::json!({
            "name": "ready", "portName": "http", "intervalSeconds": 1, "preserveLastResponse": true
        }))
        .expect("a readiness check");
        prober.watch(ProbeTarget {
            instance_id: "i".into(),
            task_id: "t".into(),
            host: "127.0.0.1".into(),
            health: vec![probe(ProbeKind::Http, port)],
            readiness: vec![ReadinessProbe { check, port }],
        });
        let mut health = 0;
        let mut readiness = Vec::new();
        while health < 5 {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(ProbeResult::Health { outcome, .. })) => {
                    assert_eq!(outcome, Outcome::Passed);
                    health += 1;
                }
                Ok(Some(ProbeResult::Readiness { result, .. })) => readiness.push(result),
                other => panic!("no result: {other:?}"),
            }
        }
        assert_eq!(
            readiness.len(),
            1,
            "ready once, then no more readiness checks"
        );
        assert!(readiness[0].ready);
        let response = readiness[0].last_response.clone().expect("preserved");
        assert_eq!((response.status, response.body.as_str()), (200, "ok"));
        assert_eq!(response.content_type, "text/plain");
        assert!(prober.stats().probes.load(Ordering::Relaxed) >= 5);
        prober.forget("i");
        assert!(!prober.is_watching("i"));
    }
}
