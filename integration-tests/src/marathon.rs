//! The bundled Marathon on a test cluster, and a small client for its API.

use std::sync::Arc;
use std::time::Duration;

use agora_common::shutdown::{self, ShutdownTrigger};
use agora_coord::{LocalElection, MemoryStore, StaticDetector, Store};
use agora_marathon::{Coordination, MarathonConfig, MarathonHandle};
use serde_json::Value;

use crate::Cluster;

/// An answer from Marathon's API.
#[derive(Debug, Clone)]
pub struct MarathonAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The `Marathon-Deployment-Id` header, if any.
    pub deployment_id: Option<String>,
    /// The body (JSON `null` if empty or not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

/// A subscription to `/v2/events`, with everything read so far.
pub struct EventStream {
    /// The response's headers.
    pub headers: reqwest::header::HeaderMap,
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    /// The text read so far.
    pub seen: String,
}

impl EventStream {
    /// Reads until `done(seen)` holds; panics after `timeout` with what was seen.
    pub async fn read_until(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> &str {
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "events not seen in time; seen: {}",
                self.seen
            );
            match tokio::time::timeout(left, futures::StreamExt::next(&mut self.body)).await {
                Ok(Some(Ok(chunk))) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => panic!("the event stream ended; seen: {}", self.seen),
                Err(_) => {}
            }
        }
        &self.seen
    }
}

/// A Marathon instance serving on loopback.
pub struct Marathon {
    trigger: ShutdownTrigger,
    handle: Option<MarathonHandle>,
    url: String,
    http: reqwest::Client,
    /// Marathon's store (kept across restarts, like ZooKeeper).
    pub store: Arc<dyn Store>,
}

impl Marathon {
    /// Starts Marathon against `cluster`'s master with fast timers and waits until it leads.
    pub async fn start(cluster: &Cluster) -> Marathon {
        Self::start_with(cluster, Arc::new(MemoryStore::new()), |_| {}).await
    }

    /// Like [`Marathon::start`], with a given store and configuration tweaks.
    pub async fn start_with(
        cluster: &Cluster,
        store: Arc<dyn Store>,
        tweak: impl FnOnce(&mut MarathonConfig),
    ) -> Marathon {
        let mut config = MarathonConfig {
            http_addr: "127.0.0.1:0".parse().expect("address"),
            hostname: "127.0.0.1".into(),
            master: cluster.master_addr(),
            decline_offer_duration: Duration::from_secs(1),
            tick: Duration::from_millis(100),
            health_kill_hold: Duration::ZERO,
            ..MarathonConfig::default()
        };
        tweak(&mut config);
        let (trigger, stop) = shutdown::channel();
        let coordination = Coordination {
            election: Arc::new(LocalElection),
            leader: Arc::new(StaticDetector::new("127.0.0.1:0")),
            store: store.clone(),
            master: Arc::new(StaticDetector::new(cluster.master_addr())),
        };
        let handle = agora_marathon::start(config, coordination, stop)
            .await
            .expect("marathon starts");
        tokio::time::timeout(Duration::from_secs(20), handle.wait_until_leading())
            .await
            .expect("marathon leads");
        let url = format!("http://{}", handle.addr());
        Marathon {
            trigger,
            handle: Some(handle),
            url,
            http: reqwest::Client::new(),
            store,
        }
    }

    /// The API's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Subscribes to `/v2/events` with `event_type` filters (none: every event).
    pub async fn events(&self, types: &[&str]) -> EventStream {
        let query: Vec<(&str, &str)> = types.iter().map(|t| ("event_type", *t)).collect();
        let response = self
            .http
            .get(format!("{}/v2/events", self.url))
            .query(&query)
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("events answer");
        assert_eq!(response.status(), 200, "GET /v2/events");
        EventStream {
            headers: response.headers().clone(),
            body: Box::pin(response.bytes_stream()),
            seen: String::new(),
        }
    }

    /// Sends a request; `body` is sent as JSON text when given.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> MarathonAnswer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let answer = req.send().await.expect("marathon answers");
        let status = answer.status().as_u16();
        let deployment_id = answer
            .headers()
            .get("Marathon-Deployment-Id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = answer.text().await.expect("body");
        MarathonAnswer {
            status,
            deployment_id,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// GET, expecting 200, returning the JSON body.
    pub async fn get(&self, path: &str) -> Value {
        let answer = self.call("GET", path, None).await;
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.text);
        answer.body
    }

    /// Waits until no deployment runs.
    pub async fn wait_for_deployments(&self, timeout: Duration) {
        crate::assert_eventually!(
            timeout,
            self.get("/v2/deployments")
                .await
                .as_array()
                .is_some_and(|d| d.is_empty()),
            "deployments still running: {}",
            self.get("/v2/deployments").await
        );
    }

    /// Tasks of an app in a given state (`TASK_RUNNING`).
    pub async fn tasks_in_state(&self, app: &str, state: &str) -> Vec<Value> {
        let answer = self
            .call("GET", &format!("/v2/apps{app}/tasks"), None)
            .await;
        answer.body["tasks"]
            .as_array()
            .map(|tasks| {
                tasks
                    .iter()
                    .filter(|t| t["state"] == state)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `app` has exactly `n` running tasks.
    pub async fn wait_running(&self, app: &str, n: usize, timeout: Duration) {
        crate::assert_eventually!(
            timeout,
            self.tasks_in_state(app, "TASK_RUNNING").await.len() == n,
            "{app} did not reach {n} running tasks: {}",
            self.get(&format!("/v2/apps{app}")).await
        );
    }

    /// Stops Marathon (its tasks keep running) and waits.
    pub async fn stop(mut self) {
        self.trigger.fire();
        if let Some(handle) = self.handle.take() {
            handle.join().await;
        }
    }
}

impl Drop for Marathon {
    fn drop(&mut self) {
        self.trigger.fire();
    }
}
