//! Reading the master's `/metrics/snapshot` over HTTP, and bounded waits.
//!
//! The bench learns what the master believes (agents active, tasks running,
//! allocation latency) only through its public HTTP API, as an operator
//! would; what the emulated agents and frameworks observe is counted on our
//! side. Every wait is bounded and fails naming its phase and what it reached.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::Serialize;

/// How often a wait re-checks its condition.
const POLL: Duration = Duration::from_millis(2);
/// How often a wait on the master's metrics asks again.
const METRICS_POLL: Duration = Duration::from_millis(25);

/// A flat snapshot: Mesos' key names to values.
pub type Snapshot = HashMap<String, f64>;

/// An HTTP client for one master.
#[derive(Debug, Clone)]
pub struct MetricsClient {
    http: reqwest::Client,
    base: String,
}

impl MetricsClient {
    /// A client for the master at `host:port`.
    pub fn new(addr: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(MetricsClient {
            http,
            base: format!("http://{addr}"),
        })
    }

    /// Whether `/health` answers 200.
    pub async fn healthy(&self) -> bool {
        match self.http.get(format!("{}/health", self.base)).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        }
    }

    /// `/metrics/snapshot`, numbers only.
    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let url = format!("{}/metrics/snapshot", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !response.status().is_success() {
            bail!("GET {url}: {}", response.status());
        }
        let body: serde_json::Map<String, serde_json::Value> = response
            .json()
            .await
            .with_context(|| format!("GET {url}: not a JSON object"))?;
        Ok(body
            .into_iter()
            .filter_map(|(k, v)| v.as_f64().map(|v| (k, v)))
            .collect())
    }

    /// Polls the snapshot until `key` reaches `target`; returns when it did.
    pub async fn wait_for(
        &self,
        phase: &str,
        key: &str,
        target: f64,
        timeout: Duration,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            match self.snapshot().await {
                Ok(s) => {
                    let value = s.get(key).copied();
                    if value.is_some_and(|v| v >= target) {
                        return Ok(Instant::now());
                    }
                    last = value;
                }
                Err(e) => tracing::debug!(error = %e, "metrics poll failed"),
            }
            if Instant::now() >= deadline {
                return Err(anyhow!(
                    "phase '{phase}' timed out after {timeout:?}: master's {key} is {} of {target}",
                    last.map_or("unknown".to_string(), |v| v.to_string())
                ));
            }
            tokio::time::sleep(METRICS_POLL).await;
        }
    }
}

/// Waits until `done()` holds; on timeout fails naming `phase` and
/// `progress()`. Returns the moment the condition was seen to hold (within
/// a couple of milliseconds of when it became true).
pub async fn wait_until(
    phase: &str,
    timeout: Duration,
    mut done: impl FnMut() -> anyhow::Result<bool>,
    progress: impl Fn() -> String,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        if done()? {
            return Ok(Instant::now());
        }
        if Instant::now() >= deadline {
            bail!(
                "phase '{phase}' timed out after {timeout:?}: {}",
                progress()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The master's allocation latency window at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AllocationStats {
    /// Median allocation run, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile, in milliseconds.
    pub p90_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Longest run in the window, in milliseconds.
    pub max_ms: f64,
    /// Runs in the window (the master keeps the last 1000).
    pub window: u64,
    /// Allocation runs since the master started.
    pub runs_total: u64,
}

impl AllocationStats {
    /// Reads the `allocator/mesos/allocation_run*` keys of a snapshot.
    pub fn from_snapshot(s: &Snapshot) -> Self {
        let get = |k: &str| s.get(k).copied().unwrap_or(0.0);
        AllocationStats {
            p50_ms: get("allocator/mesos/allocation_run_ms/p50"),
            p90_ms: get("allocator/mesos/allocation_run_ms/p90"),
            p99_ms: get("allocator/mesos/allocation_run_ms/p99"),
            max_ms: get("allocator/mesos/allocation_run_ms/max"),
            window: get("allocator/mesos/allocation_run_ms/count") as u64,
            runs_total: get("allocator/mesos/allocation_runs") as u64,
        }
    }
}
